//! The custom field pages: the list with its create form, a field's rename and new-options
//! form, and the delete confirmation that says how many contacts hold a value. Writes go
//! through the API's own functions (`http::custom_fields::create`, `update`, `delete`), so
//! the rules and sentences of docs/reference.md#7-custom-field-definitions are the API's.

use std::collections::HashMap;

use askama::Template;
use axum::Extension;
use axum::extract::{Path, State};
use axum::response::Response;
use contactd_api::{self as api, FieldType};

use super::{
    ConfirmDelete, Done, DoneQuery, FormBody, FormInput, InputKind, Nav, PageError, PageQuery,
    Problem, Section, changed, filled, member, refused, render, render_with, show_time, shown_in,
};
use crate::domain::FieldKey;
use crate::http::error::ApiError;
use crate::http::{AppState, custom_fields};
use crate::store::{FieldDefinition, FieldDefinitionChange, OptionsChange, SessionUser};

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
            .value(values("type"))
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
    let fields = state.store.list_fields(user.caller.company_id).await?;
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
    PageQuery(done): PageQuery<DoneQuery>,
) -> Result<Response, PageError> {
    let mut page = fields_page(&state, &user, create_inputs(|_| String::new()), None).await?;
    page.nav = page.nav.map(|nav| nav.done(&done));
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
            let options = filled(&form, "options").map(|text| lines(&text));
            let body = api::CreateCustomField {
                key: member(&form, "key").trim().to_owned(),
                display_name: member(&form, "display_name").to_owned(),
                field_type,
                options,
            };
            custom_fields::create(&state, &user.caller, body).await
        }
        None => Err(ApiError::bad_request(
            "invalid_type",
            "choose a type: text, number, boolean, date or select",
            Some("type".to_owned()),
        )),
    };
    match created {
        Ok(_) => Ok(Done::FieldCreated.redirect(LIST)),
        Err(error) => {
            let mut inputs = create_inputs(|name| member(&form, name).to_owned());
            let (status, problem) = refused(&mut inputs, error, |field| Some(field.to_owned()))?;
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
    Ok(custom_fields::find(state, &user.caller, &key).await?)
}

/// `GET /dashboard/fields/{key}`: the field, with its rename and new-options form.
pub async fn edit_field(
    State(state): State<AppState>,
    Extension(user): Extension<SessionUser>,
    Path(key): Path<String>,
    PageQuery(done): PageQuery<DoneQuery>,
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
    page.nav = page.nav.map(|nav| nav.done(&done));
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
    let change = custom_fields::parse_display_name(changed(&form, "display_name")).and_then(
        |display_name| {
            Ok(FieldDefinitionChange {
                display_name,
                options: (!new_options.is_empty())
                    .then(|| custom_fields::parse_options(new_options).map(OptionsChange::Add))
                    .transpose()?,
            })
        },
    );
    let updated = match change {
        Ok(change) => custom_fields::update(&state, &user.caller, &field.key, &change).await,
        Err(error) => Err(error),
    };
    match updated {
        Ok(updated) => Ok(Done::FieldSaved.redirect(&field_url(&updated.key))),
        Err(error) => {
            let shown_name = shown_in(&form, "display_name").unwrap_or(&field.display_name);
            let mut inputs = edit_inputs(&field, |name| member(&form, name).to_owned(), shown_name);
            let (status, problem) = refused(&mut inputs, error, |field| {
                Some(
                    if field == "options" {
                        "new_options"
                    } else {
                        field
                    }
                    .to_owned(),
                )
            })?;
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
    let holders = match state
        .store
        .count_field_values(user.caller.company_id, &field.key)
        .await?
    {
        0 => "No contact holds a value of it.".to_owned(),
        1 => "1 contact holds a value of it; that value is deleted with the field.".to_owned(),
        many => {
            format!("{many} contacts hold a value of it; those values are deleted with the field.")
        }
    };
    let page = ConfirmDelete {
        nav: Some(Nav::new(&user, Section::Fields)),
        title: format!("Delete the field {}?", field.display_name),
        paragraphs: vec![
            holders,
            format!(
                "A field created later with the key {} starts empty. This cannot be undone.",
                field.key
            ),
        ],
        url: field_url(&field.key),
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
    custom_fields::delete(&state, &user.caller, &key).await?;
    Ok(Done::FieldDeleted.redirect(LIST))
}
