//! The custom field pages: the list with its create form, a field's rename and new-options
//! form, and the delete confirmation that says how many contacts hold a value. Writes go
//! through the custom field use cases ([`crate::custom_fields`]), so the rules of docs/reference.md#7-custom-field-definitions and
//! sentences are the API's.

use contactd_api::ErrorCode;
use std::collections::HashMap;

use askama::Template;
use axum::Extension;
use axum::extract::{Path, State};
use axum::response::Response;
use contactd_api::FieldType;

use super::extract::{FormBody, PageQuery};
use super::form::{FormInput, InputKind, Problem, changed, filled, member, refused, shown_in};
use super::nav::{Nav, Notice, NoticeQuery, Section};
use super::page::{Confirm, PageError, render, render_with, show_time};
use crate::custom_fields::{self, FieldChangeInput, NewFieldInput, OptionsInput};
use crate::domain::FieldKey;
use crate::failure::{Failure, Field};
use crate::http::AppState;
use crate::store::{FieldDefinition, SessionUser};

/// The field list's path.
pub const LIST: &str = "/dashboard/fields";
/// The names of the types, as the API spells them.
const TYPES: [&str; 5] = ["text", "number", "boolean", "date", "select"];

/// A definition as a row of the list.
#[derive(Debug)]
struct FieldRow {
    key: String,
    display_name: String,
    field_type: String,
    options: String,
    created_at: String,
    url: String,
}

impl From<&FieldDefinition> for FieldRow {
    fn from(field: &FieldDefinition) -> Self {
        Self {
            key: field.key.as_str().to_owned(),
            display_name: field.display_name.clone(),
            field_type: field.field_type.to_string(),
            options: field.options.join(", "),
            created_at: show_time(&field.created_at),
            url: field_url(&field.key),
        }
    }
}

fn field_url(key: &FieldKey) -> String {
    format!("{LIST}/{key}")
}

/// One option per line, blank lines skipped.
fn lines(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .map(str::to_owned)
        .collect()
}

#[derive(Template)]
#[template(path = "dashboard/fields.html")]
struct FieldsPage {
    nav: Option<Nav>,
    fields: Vec<FieldRow>,
    inputs: Vec<FormInput>,
    problem: Option<Problem>,
}

/// The create form's inputs, filled from `values`.
fn create_inputs(values: impl Fn(&str) -> String) -> Vec<FormInput> {
    vec![
        FormInput::new("key", "Key", InputKind::Text)
            .value(values("key"))
            .hint("The name used in the API: a lower-case letter, then up to 62 of a-z, 0-9 and _. It never changes.")
            .required(),
        FormInput::new("display_name", "Display name", InputKind::Text)
            .value(values("display_name"))
            .hint("What people see, 1 to 100 characters.")
            .required(),
        FormInput::new("type", "Type", InputKind::Select)
            .value(Some(values("type")).filter(|chosen| !chosen.is_empty()).unwrap_or_else(|| "text".to_owned()))
            .options(TYPES.map(str::to_owned).to_vec())
            .hint("It never changes.")
            .required(),
        FormInput::new("options", "Options (select only)", InputKind::Lines)
            .value(values("options"))
            .hint("One option per line: 1 to 500 distinct options."),
    ]
}

async fn fields_page(
    state: &AppState,
    user: &SessionUser,
    inputs: Vec<FormInput>,
    problem: Option<Problem>,
) -> Result<FieldsPage, PageError> {
    let fields = custom_fields::list(&state.directory, user.caller.company_id).await?;
    Ok(FieldsPage {
        nav: Some(Nav::new(user, Section::Fields)),
        fields: fields.iter().map(FieldRow::from).collect(),
        inputs,
        problem,
    })
}

/// `GET /dashboard/fields`: the company's fields, and the form to define one.
pub async fn list_fields(
    State(state): State<AppState>,
    Extension(user): Extension<SessionUser>,
    PageQuery(notice): PageQuery<NoticeQuery>,
) -> Result<Response, PageError> {
    let mut page = fields_page(&state, &user, create_inputs(|_| String::new()), None).await?;
    page.nav = page.nav.map(|nav| nav.with_notice(&notice));
    Ok(render(&page))
}

/// `POST /dashboard/fields`: defines a field, or shows the form again with the sentence of docs/reference.md#7-custom-field-definitions
/// next to the input at fault.
pub async fn create_field(
    State(state): State<AppState>,
    Extension(user): Extension<SessionUser>,
    FormBody(form): FormBody<HashMap<String, String>>,
) -> Result<Response, PageError> {
    let created = match FieldType::from_name(member(&form, "type")) {
        Some(field_type) => {
            let input = NewFieldInput {
                key: member(&form, "key").trim().to_owned(),
                display_name: member(&form, "display_name").to_owned(),
                field_type,
                options: filled(&form, "options").map(|text| lines(&text)),
            };
            custom_fields::create(
                &state.directory,
                user.caller.company_id,
                &user.caller.actor,
                input,
            )
            .await
        }
        None => Err(Failure::Invalid {
            code: ErrorCode::InvalidType,
            message: "choose a type: text, number, boolean, date or select".to_owned(),
            field: Some(Field::FieldType),
        }),
    };
    match created {
        Ok(_) => Ok(Notice::FieldCreated.redirect(LIST)),
        Err(failure) => {
            let mut inputs = create_inputs(|name| member(&form, name).to_owned());
            let input_of = |field: &Field| {
                let name = match field {
                    Field::Key => "key",
                    Field::DisplayName => "display_name",
                    Field::FieldType => "type",
                    Field::Options => "options",
                    _ => return None,
                };
                Some(name.to_owned())
            };
            let (status, problem) = refused(&mut inputs, failure, input_of)?;
            let page = fields_page(&state, &user, inputs, Some(problem)).await?;
            Ok(render_with(status, &page))
        }
    }
}

#[derive(Template)]
#[template(path = "dashboard/field.html")]
struct FieldPage {
    nav: Option<Nav>,
    field: FieldRow,
    options: Vec<String>,
    inputs: Vec<FormInput>,
    problem: Option<Problem>,
}

/// The edit form's inputs: the name (with the name it showed when loaded, `shown_name`),
/// and new options for a select field.
fn edit_inputs(
    field: &FieldDefinition,
    values: impl Fn(&str) -> String,
    shown_name: &str,
) -> Vec<FormInput> {
    let mut inputs = vec![
        FormInput::new("display_name", "Display name", InputKind::Text)
            .value(values("display_name"))
            .shown(shown_name)
            .hint("1 to 100 characters.")
            .required(),
    ];
    if field.field_type == FieldType::Select {
        inputs.push(
            FormInput::new("new_options", "New options", InputKind::Lines)
                .value(values("new_options"))
                .hint("One per line, added after the current ones. Options are never removed: contacts may hold them."),
        );
    }
    inputs
}

fn field_page(
    user: &SessionUser,
    field: &FieldDefinition,
    inputs: Vec<FormInput>,
    problem: Option<Problem>,
) -> FieldPage {
    FieldPage {
        nav: Some(Nav::new(user, Section::Fields)),
        field: FieldRow::from(field),
        options: field.options.clone(),
        inputs,
        problem,
    }
}

async fn find_field(
    state: &AppState,
    user: &SessionUser,
    key: &str,
) -> Result<FieldDefinition, PageError> {
    let key = FieldKey::parse(key).map_err(|_| PageError::NotFound)?;
    Ok(custom_fields::find(&state.directory, user.caller.company_id, &key).await?)
}

/// `GET /dashboard/fields/{key}`: the field, with its rename and new-options form.
pub async fn edit_field(
    State(state): State<AppState>,
    Extension(user): Extension<SessionUser>,
    Path(key): Path<String>,
    PageQuery(notice): PageQuery<NoticeQuery>,
) -> Result<Response, PageError> {
    let field = find_field(&state, &user, &key).await?;
    let inputs = edit_inputs(
        &field,
        |name| match name {
            "display_name" => field.display_name.clone(),
            _ => String::new(),
        },
        &field.display_name,
    );
    let mut page = field_page(&user, &field, inputs, None);
    page.nav = page.nav.map(|nav| nav.with_notice(&notice));
    Ok(render(&page))
}

/// `POST /dashboard/fields/{key}`: renames the field if the name was changed in the form,
/// and adds the new options.
///
/// The options are sent as an addition ([`OptionsChange::Add`]), not as the list the page
/// showed plus the new ones: adding commutes, so two admins adding options at once both get
/// theirs, and neither is refused for the other's. The name is written only when this user
/// changed it, so saving new options never undoes someone else's rename.
pub async fn update_field(
    State(state): State<AppState>,
    Extension(user): Extension<SessionUser>,
    Path(key): Path<String>,
    FormBody(form): FormBody<HashMap<String, String>>,
) -> Result<Response, PageError> {
    let field = find_field(&state, &user, &key).await?;
    let new_options = lines(member(&form, "new_options"));
    let change = FieldChangeInput {
        display_name: changed(&form, "display_name").map(str::to_owned),
        options: (!new_options.is_empty()).then_some(OptionsInput::Add(new_options)),
    };
    let company_id = user.caller.company_id;
    match custom_fields::update(
        &state.directory,
        company_id,
        &user.caller.actor,
        &field.key,
        change,
    )
    .await
    {
        Ok(updated) => Ok(Notice::FieldSaved.redirect(&field_url(&updated.key))),
        Err(failure) => {
            let shown_name = shown_in(&form, "display_name").unwrap_or(&field.display_name);
            let mut inputs = edit_inputs(&field, |name| member(&form, name).to_owned(), shown_name);
            let input_of = |field: &Field| {
                let name = match field {
                    Field::DisplayName => "display_name",
                    Field::Options => "new_options",
                    _ => return None,
                };
                Some(name.to_owned())
            };
            let (status, problem) = refused(&mut inputs, failure, input_of)?;
            Ok(render_with(
                status,
                &field_page(&user, &field, inputs, Some(problem)),
            ))
        }
    }
}

/// `GET /dashboard/fields/{key}/delete`: asks before deleting, saying how many contacts
/// would lose their value.
pub async fn confirm_delete(
    State(state): State<AppState>,
    Extension(user): Extension<SessionUser>,
    Path(key): Path<String>,
) -> Result<Response, PageError> {
    let field = find_field(&state, &user, &key).await?;
    let holders =
        match custom_fields::count_values(&state.directory, user.caller.company_id, &field.key)
            .await?
        {
            0 => "No contact holds a value of it.".to_owned(),
            1 => "1 contact holds a value of it; that value is deleted with the field.".to_owned(),
            many => {
                format!(
                    "{many} contacts hold a value of it; those values are deleted with the field."
                )
            }
        };
    let url = field_url(&field.key);
    let page = Confirm {
        nav: Some(Nav::new(&user, Section::Fields)),
        title: format!("Delete the field {}?", field.display_name),
        paragraphs: vec![
            holders,
            format!(
                "A field created later with the key {} starts empty. This cannot be undone.",
                field.key
            ),
        ],
        action: format!("{url}/delete"),
        url,
        button: "Delete field",
    };
    Ok(render(&page))
}

/// `POST /dashboard/fields/{key}/delete`: deletes the field and every value of it.
pub async fn delete_field(
    State(state): State<AppState>,
    Extension(user): Extension<SessionUser>,
    Path(key): Path<String>,
) -> Result<Response, PageError> {
    let key = FieldKey::parse(&key).map_err(|_| PageError::NotFound)?;
    custom_fields::delete(
        &state.directory,
        user.caller.company_id,
        &user.caller.actor,
        &key,
    )
    .await?;
    Ok(Notice::FieldDeleted.redirect(LIST))
}
