//! The contact pages: the newest-first list with its search, a contact, and its create,
//! edit and delete forms. Writes go through the contact use cases ([`crate::contacts`]),
//! so the rules and the sentences are the API's.

use std::collections::HashMap;

use askama::Template;
use axum::Extension;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use contactd_api::{ContactSort, ErrorCode, FieldType};
use serde::Deserialize;
use uuid::Uuid;

use super::extract::{FormBody, PageQuery};
use super::form::{FormInput, InputKind, Problem, changed, filled, member, refused, shown_in};
use super::history::{ShownHistory, recent_changes};
use super::nav::{Nav, Notice, NoticeQuery, Section};
use super::page::{Confirm, PageError, render, render_with, show_time};
use crate::contacts::{
    self, ContactChanges, ContactInput, CustomFieldInput, MemberChanges, PhoneNumberInput,
    contact_not_found,
};
use crate::cursor;
use crate::domain::{ContactIdentifier, FieldInput};
use crate::failure::{Failure, Field};
use crate::http::AppState;
use crate::store::{Contact, ContactQuery, FieldDefinition, Precondition, SessionUser};

/// The contact list's path.
pub const LIST: &str = "/dashboard/contacts";
/// Contacts per page of the list.
const PAGE_SIZE: u32 = 25;
/// The form member of a custom field's input: this prefix, then the field's key.
const FIELD_INPUT: &str = "field.";
/// The base members, in form order, with their labels and kinds.
const MEMBERS: [(&str, &str, InputKind); 5] = [
    ("email", "Email", InputKind::Email),
    ("phone_number", "Phone number", InputKind::Phone),
    ("ext_id", "External id (ext_id)", InputKind::Text),
    ("first_name", "First name", InputKind::Text),
    ("last_name", "Last name", InputKind::Text),
];

/// A contact as a row of the list.
#[derive(Debug)]
struct ContactRow {
    url: String,
    name: String,
    email: String,
    phone_number: String,
    ext_id: String,
    created_at: String,
    /// The values of the custom fields chosen as columns, in their order ("" for none).
    values: Vec<String>,
}

impl ContactRow {
    fn new(contact: &Contact, columns: &[Column]) -> Self {
        let members = &contact.members;
        let value_of = |column: &Column| {
            contact
                .custom_fields
                .iter()
                .find(|value| value.key.as_str() == column.key)
                .map(|value| value.value.to_storage())
                .unwrap_or_default()
        };
        Self {
            url: contact_url(contact.id),
            name: full_name(contact),
            email: members.email.clone().unwrap_or_default(),
            phone_number: members.phone_number.clone().unwrap_or_default(),
            ext_id: members.ext_id.clone().unwrap_or_default(),
            created_at: show_time(&contact.created_at),
            values: columns.iter().map(value_of).collect(),
        }
    }
}

/// A custom field of the company, as the list's filter and column choices show it.
#[derive(Debug)]
struct Column {
    key: String,
    display_name: String,
    /// Whether the list shows it as a column.
    shown: bool,
}

fn contact_url(id: Uuid) -> String {
    format!("{LIST}/{id}")
}

/// "First Last", or what identifies the contact when it has no name.
fn full_name(contact: &Contact) -> String {
    let members = &contact.members;
    let name = [&members.first_name, &members.last_name]
        .into_iter()
        .flatten()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(" ");
    if !name.is_empty() {
        return name;
    }
    [&members.email, &members.phone_number, &members.ext_id]
        .into_iter()
        .flatten()
        .next()
        .cloned()
        .unwrap_or_else(|| contact.id.to_string())
}

#[derive(Template)]
#[template(path = "dashboard/contacts.html")]
struct ContactsPage {
    nav: Option<Nav>,
    /// What the form was sent with, shown back in it.
    form: ListForm,
    /// The company's custom fields: the filter's choices and the column checkboxes.
    fields: Vec<Column>,
    /// The custom fields shown as columns.
    columns: Vec<Column>,
    rows: Vec<ContactRow>,
    /// "3 contacts found", "1204 contacts": what the list holds in all.
    total: String,
    /// Whether a search or filter narrows the list.
    filtered: bool,
    /// Why nothing was looked up: a search text too short, a filter refused.
    problem: Option<String>,
    /// The link to the next page, when there is one.
    next_page: Option<String>,
    /// The link to the first page, on a later one.
    first_page: Option<String>,
    tests: [(&'static str, &'static str); 7],
    sorts: [(&'static str, &'static str); 4],
}

/// The list's form: a search text, one custom field filter, the order, the columns, and
/// where the page starts.
#[derive(Debug, Default, Deserialize)]
pub struct ListForm {
    #[serde(default)]
    q: String,
    /// The key of the custom field filtered on; empty for none.
    #[serde(default)]
    field: String,
    /// How the field is tested: one of [`TESTS`].
    #[serde(default)]
    test: String,
    #[serde(default)]
    value: String,
    #[serde(default)]
    sort: String,
    after: Option<String>,
    /// `column.KEY=on` for each custom field shown as a column; `done=` for a notice.
    #[serde(flatten)]
    rest: HashMap<String, String>,
}

/// The tests of the custom field filter: the form's value, the label, and the suffix of
/// the API's `cf.KEY` filter it becomes.
const TESTS: [(&str, &str); 7] = [
    ("is", "is"),
    ("gt", "is more than"),
    ("gte", "is at least"),
    ("lt", "is less than"),
    ("lte", "is at most"),
    ("exists", "has a value"),
    ("absent", "has no value"),
];

/// The orders of the list, as the form offers them.
const SORTS: [(&str, &str); 4] = [
    ("-created_at", "Newest first"),
    ("created_at", "Oldest first"),
    ("-updated_at", "Recently updated first"),
    ("updated_at", "Least recently updated first"),
];

/// The prefix of a column checkbox: this, then the field's key.
const COLUMN_INPUT: &str = "column.";

impl ListForm {
    /// The API's filters the form asks for (docs/reference.md#finding-contacts), without
    /// `q` when it is blank.
    fn filters(&self) -> Vec<(String, String)> {
        let mut filters = Vec::new();
        let text = self.q.trim();
        if !text.is_empty() {
            filters.push(("q".to_owned(), text.to_owned()));
        }
        if !self.field.is_empty() {
            let name = format!("cf.{}", self.field);
            filters.push(match self.test.as_str() {
                "exists" => (format!("{name}.exists"), "true".to_owned()),
                "absent" => (format!("{name}.exists"), "false".to_owned()),
                "gt" | "gte" | "lt" | "lte" => (
                    format!("{name}.{}", self.test),
                    self.value.trim().to_owned(),
                ),
                _ => (name, self.value.trim().to_owned()),
            });
        }
        if !self.sort.is_empty() {
            filters.push(("sort".to_owned(), self.sort.clone()));
        }
        filters
    }

    /// The form's own query string, without `after`, for the page links.
    fn query_string(&self) -> String {
        let mut query = form_urlencoded::Serializer::new(String::new());
        for (name, value) in [
            ("q", &self.q),
            ("field", &self.field),
            ("test", &self.test),
            ("value", &self.value),
            ("sort", &self.sort),
        ] {
            if !value.is_empty() {
                query.append_pair(name, value);
            }
        }
        let mut columns: Vec<&String> = self
            .rest
            .keys()
            .filter(|name| name.starts_with(COLUMN_INPUT))
            .collect();
        columns.sort();
        for column in columns {
            query.append_pair(column, "on");
        }
        query.finish()
    }

    fn notice(&self) -> NoticeQuery {
        NoticeQuery::of(self.rest.get("done").cloned())
    }
}

/// `GET /dashboard/contacts`: the contacts the form's search, filter and order find, a
/// page at a time, with how many there are; a text that names one contact exactly (an
/// email, a phone number in any format, an ext_id, an id) finds that one.
pub async fn list_contacts(
    State(state): State<AppState>,
    Extension(user): Extension<SessionUser>,
    PageQuery(form): PageQuery<ListForm>,
) -> Result<Response, PageError> {
    let caller = &user.caller;
    let definitions = state.directory.field_definitions(caller.company_id).await?;
    let fields: Vec<Column> = definitions
        .iter()
        .map(|definition| Column {
            key: definition.key.as_str().to_owned(),
            display_name: definition.display_name.clone(),
            shown: form
                .rest
                .contains_key(&format!("{COLUMN_INPUT}{}", definition.key.as_str())),
        })
        .collect();
    let columns: Vec<Column> = fields
        .iter()
        .filter(|field| field.shown)
        .map(|field| Column {
            key: field.key.clone(),
            display_name: field.display_name.clone(),
            shown: true,
        })
        .collect();
    let mut page = ContactsPage {
        nav: Some(Nav::new(&user, Section::Contacts).with_notice(&form.notice())),
        fields,
        columns,
        rows: Vec::new(),
        total: String::new(),
        filtered: true,
        problem: None,
        next_page: None,
        first_page: None,
        form: ListForm::default(),
        tests: TESTS,
        sorts: SORTS,
    };
    let text = form.q.trim();
    let named = if text.is_empty() || !form.field.is_empty() {
        None
    } else {
        contacts::named_by(&state.directory, caller.company_id, text).await?
    };
    if let Some(contact) = named {
        page.rows = vec![ContactRow::new(&contact, &page.columns)];
        page.total = "1 contact found".to_owned();
        page.form = form;
        return Ok(render(&page));
    }
    let filters = form.filters();
    let query = match contacts::query(&state.directory, caller.company_id, &filters, &[]).await {
        Ok(query) => query,
        Err(Failure::Invalid { message, .. }) => {
            page.problem = Some(message);
            page.form = form;
            return Ok(render_with(StatusCode::BAD_REQUEST, &page));
        }
        Err(other) => return Err(other.into()),
    };
    let fingerprint = query.fingerprint();
    let after = form
        .after
        .as_deref()
        .map(|after| {
            cursor::decode(after, &caller.cursor_secret, &fingerprint).ok_or_else(|| {
                PageError::BadForm(
                    "this page link is not one the dashboard made for your company and this \
                     search"
                        .to_owned(),
                )
            })
        })
        .transpose()?;
    let found = contacts::list(
        &state.directory,
        caller.company_id,
        &query,
        after,
        PAGE_SIZE,
    )
    .await?;
    let total = contacts::count(&state.directory, caller.company_id, &query).await?;
    let noun = if total == 1 { "contact" } else { "contacts" };
    // An order alone does not narrow the list.
    page.filtered = !ContactQuery {
        sort: ContactSort::default(),
        ..query.clone()
    }
    .is_everything();
    page.total = if page.filtered {
        format!("{total} {noun} found")
    } else {
        format!("{total} {noun}")
    };
    let links = form.query_string();
    let link = |extra: &str| {
        let joined = [links.as_str(), extra]
            .into_iter()
            .filter(|part| !part.is_empty())
            .collect::<Vec<_>>()
            .join("&");
        if joined.is_empty() {
            LIST.to_owned()
        } else {
            format!("{LIST}?{joined}")
        }
    };
    page.next_page = found.next.map(|next| {
        let cursor = cursor::encode(next, &caller.cursor_secret, &fingerprint);
        link(&format!("after={cursor}"))
    });
    page.first_page = form.after.is_some().then(|| link(""));
    page.rows = found
        .contacts
        .iter()
        .map(|contact| ContactRow::new(contact, &page.columns))
        .collect();
    page.form = form;
    Ok(render(&page))
}

/// One member or custom value as the contact page shows it.
#[derive(Debug)]
struct Shown {
    label: String,
    value: String,
}

#[derive(Template)]
#[template(path = "dashboard/contact.html")]
struct ContactPage {
    nav: Option<Nav>,
    name: String,
    url: String,
    id: Uuid,
    members: Vec<Shown>,
    custom_fields: Vec<Shown>,
    created_at: String,
    updated_at: String,
    history: ShownHistory,
}

/// The contact a path names (its UUID), in the user's company; 404 for any other.
async fn find_contact(
    state: &AppState,
    user: &SessionUser,
    id: &str,
) -> Result<Contact, PageError> {
    // The API's own sentence, as for any identifier that finds nothing.
    let id = Uuid::try_parse(id).map_err(|_| {
        PageError::Failed(Failure::NotFound {
            code: ErrorCode::ContactNotFound,
            message: format!("no contact matches {id:.64}"),
        })
    })?;
    let identifier = ContactIdentifier::Id(id);
    contacts::find(&state.directory, user.caller.company_id, &identifier)
        .await?
        .ok_or_else(|| PageError::Failed(contact_not_found(&identifier)))
}

/// `GET /dashboard/contacts/{id}`: every member and custom field of a contact.
pub async fn show_contact(
    State(state): State<AppState>,
    Extension(user): Extension<SessionUser>,
    Path(id): Path<String>,
    PageQuery(notice): PageQuery<NoticeQuery>,
) -> Result<Response, PageError> {
    let contact = find_contact(&state, &user, &id).await?;
    let members = &contact.members;
    let page = ContactPage {
        nav: Some(Nav::new(&user, Section::Contacts).with_notice(&notice)),
        name: full_name(&contact),
        url: contact_url(contact.id),
        id: contact.id,
        members: MEMBERS
            .iter()
            .zip([
                &members.email,
                &members.phone_number,
                &members.ext_id,
                &members.first_name,
                &members.last_name,
            ])
            .map(|((_, label, _), value)| Shown {
                label: (*label).to_owned(),
                value: value.clone().unwrap_or_default(),
            })
            .collect(),
        custom_fields: contact
            .custom_fields
            .iter()
            .map(|field| Shown {
                label: format!("{} ({})", field.display_name, field.key),
                value: field.value.to_storage(),
            })
            .collect(),
        created_at: show_time(&contact.created_at),
        updated_at: show_time(&contact.updated_at),
        history: recent_changes(&state, &user, contact.id).await?,
    };
    Ok(render(&page))
}

#[derive(Template)]
#[template(path = "dashboard/contact_form.html")]
struct ContactFormPage {
    nav: Option<Nav>,
    title: String,
    action: String,
    cancel: String,
    submit: &'static str,
    inputs: Vec<FormInput>,
    problem: Option<Problem>,
}

/// The inputs of the contact form: the members, then one per custom field of the company,
/// filled from `values` (form member → value); an edit form also says what each input
/// showed when it was loaded (`shown`), so that its save writes only what the user changed.
fn contact_inputs(
    definitions: &[FieldDefinition],
    values: impl Fn(&str) -> String,
    shown: impl Fn(&str) -> Option<String>,
) -> Vec<FormInput> {
    let with_shown = |input: FormInput| match shown(&input.name) {
        Some(value) => input.shown(value),
        None => input,
    };
    let members = MEMBERS.iter().map(|(name, label, kind)| {
        let input = with_shown(FormInput::new(*name, *label, *kind).value(values(name)));
        match *name {
            "phone_number" => {
                input.hint("Any common format; without + it is read in this server's region.")
            }
            _ => input,
        }
    });
    let fields = definitions.iter().map(|field| {
        let name = format!("{FIELD_INPUT}{}", field.key);
        let (kind, hint) = match field.field_type {
            FieldType::Text => (InputKind::Text, None),
            FieldType::Number => (InputKind::Number, Some("A number, such as 4.50.")),
            FieldType::Boolean => (InputKind::Boolean, None),
            FieldType::Date => (InputKind::Date, Some("A date, YYYY-MM-DD.")),
            FieldType::Select => (InputKind::Select, None),
        };
        let input = with_shown(
            FormInput::new(name.clone(), field.display_name.clone(), kind)
                .value(values(&name))
                .options(field.options.clone()),
        );
        match hint {
            Some(hint) => input.hint(hint),
            None => input,
        }
    });
    members.chain(fields).collect()
}

/// The form input a refusal's [`Field`] is about: a member's own, or the input of the
/// custom field whose key it names.
fn input_of(field: &Field) -> Option<String> {
    let member = match field {
        Field::Email => "email",
        Field::PhoneNumber => "phone_number",
        Field::ExtId => "ext_id",
        Field::FirstName => "first_name",
        Field::LastName => "last_name",
        Field::CustomField(at) | Field::SetCustomField(at) => {
            return Some(format!("{FIELD_INPUT}{}", at.key));
        }
        Field::RemovedCustomField { key, .. } => return Some(format!("{FIELD_INPUT}{key}")),
        Field::CustomFields
        | Field::Key
        | Field::DisplayName
        | Field::FieldType
        | Field::Options
        | Field::Url
        | Field::Description
        | Field::Query(_) => return None,
    };
    Some(member.to_owned())
}

/// The custom field values a create form gives: (key, value) of each filled field input.
fn field_values(
    definitions: &[FieldDefinition],
    form: &HashMap<String, String>,
) -> Vec<CustomFieldInput> {
    definitions
        .iter()
        .filter_map(|field| {
            let key = field.key.as_str().to_owned();
            let value = filled(form, &format!("{FIELD_INPUT}{key}"))?;
            Some(CustomFieldInput {
                key,
                value: FieldInput::Text(value),
            })
        })
        .collect()
}

/// The custom field changes of an edit form: a value for each field input the user filled
/// in or changed, a removal for each they cleared. A field the form did not show (defined
/// after it was loaded) and one left as shown are not touched.
fn field_changes(
    definitions: &[FieldDefinition],
    form: &HashMap<String, String>,
) -> (Vec<CustomFieldInput>, Vec<String>) {
    let (mut set, mut remove) = (Vec::new(), Vec::new());
    for field in definitions {
        let key = field.key.as_str().to_owned();
        match changed(form, &format!("{FIELD_INPUT}{key}")) {
            Some(value) if value.trim().is_empty() => remove.push(key),
            Some(value) => set.push(CustomFieldInput {
                key,
                value: FieldInput::Text(value.to_owned()),
            }),
            None => {}
        }
    }
    (set, remove)
}

/// The change an edit form makes to a member: `None` (kept) unless the user changed the
/// input; a blank input clears the member.
fn member_change(form: &HashMap<String, String>, name: &str) -> Option<Option<String>> {
    changed(form, name).map(|value| (!value.trim().is_empty()).then(|| value.to_owned()))
}

/// `GET /dashboard/contacts/new`: the empty form.
pub async fn new_contact_form(
    State(state): State<AppState>,
    Extension(user): Extension<SessionUser>,
) -> Result<Response, PageError> {
    let definitions = state
        .directory
        .field_definitions(user.caller.company_id)
        .await?;
    let inputs = contact_inputs(&definitions, |_| String::new(), |_| None);
    let page = create_form(&user, inputs, None);
    Ok(render(&page))
}

fn create_form(
    user: &SessionUser,
    inputs: Vec<FormInput>,
    problem: Option<Problem>,
) -> ContactFormPage {
    ContactFormPage {
        nav: Some(Nav::new(user, Section::Contacts)),
        title: "New contact".to_owned(),
        action: LIST.to_owned(),
        cancel: LIST.to_owned(),
        submit: "Create contact",
        inputs,
        problem,
    }
}

/// `POST /dashboard/contacts`: creates a contact, or shows the form again with the
/// sentence next to the input at fault.
pub async fn create_contact(
    State(state): State<AppState>,
    Extension(user): Extension<SessionUser>,
    FormBody(form): FormBody<HashMap<String, String>>,
) -> Result<Response, PageError> {
    let company_id = user.caller.company_id;
    let definitions = state.directory.field_definitions(company_id).await?;
    let input = ContactInput {
        email: filled(&form, "email"),
        phone_number: filled(&form, "phone_number").map(PhoneNumberInput::Text),
        ext_id: filled(&form, "ext_id"),
        first_name: filled(&form, "first_name"),
        last_name: filled(&form, "last_name"),
        custom_fields: field_values(&definitions, &form),
    };
    match contacts::create(&state.directory, company_id, &user.caller.actor, input).await {
        Ok(created) => Ok(Notice::ContactCreated.redirect(&contact_url(created.id))),
        Err(failure) => {
            let mut inputs = contact_inputs(
                &definitions,
                |name| member(&form, name).to_owned(),
                |_| None,
            );
            let (status, problem) = refused(&mut inputs, failure, input_of)?;
            Ok(render_with(
                status,
                &create_form(&user, inputs, Some(problem)),
            ))
        }
    }
}

/// `GET /dashboard/contacts/{id}/edit`: the form, filled with the contact.
pub async fn edit_contact(
    State(state): State<AppState>,
    Extension(user): Extension<SessionUser>,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let contact = find_contact(&state, &user, &id).await?;
    let definitions = state
        .directory
        .field_definitions(user.caller.company_id)
        .await?;
    let inputs = contact_inputs(
        &definitions,
        |name| stored_value(&contact, name),
        |name| Some(stored_value(&contact, name)),
    );
    Ok(render(&edit_form(&user, &contact, inputs, None)))
}

/// What the edit form's input `name` shows of a contact: the member or custom field value
/// as stored, `""` when it has none.
fn stored_value(contact: &Contact, name: &str) -> String {
    let members = &contact.members;
    let value = match name {
        "email" => members.email.clone(),
        "phone_number" => members.phone_number.clone(),
        "ext_id" => members.ext_id.clone(),
        "first_name" => members.first_name.clone(),
        "last_name" => members.last_name.clone(),
        _ => contact
            .custom_fields
            .iter()
            .find(|field| name.strip_prefix(FIELD_INPUT) == Some(field.key.as_str()))
            .map(|field| field.value.to_storage()),
    };
    value.unwrap_or_default()
}

fn edit_form(
    user: &SessionUser,
    contact: &Contact,
    inputs: Vec<FormInput>,
    problem: Option<Problem>,
) -> ContactFormPage {
    ContactFormPage {
        nav: Some(Nav::new(user, Section::Contacts)),
        title: format!("Edit {}", full_name(contact)),
        action: contact_url(contact.id),
        cancel: contact_url(contact.id),
        submit: "Save changes",
        inputs,
        problem,
    }
}

/// `POST /dashboard/contacts/{id}`: applies the inputs the user changed as the API's PATCH
/// would (a blank input clears its member or custom field), or shows the form again with
/// the sentence next to the input at fault.
///
/// Only changed inputs are written (each input's value is compared with the value the form
/// showed, carried back in a hidden input): a member or custom field someone else changed
/// after the form was loaded keeps that change unless this user changed it too, and a field
/// defined after the form was loaded is not touched at all
/// (`docs/robustness.md#concurrent-admins-no-lost-updates`).
pub async fn update_contact(
    State(state): State<AppState>,
    Extension(user): Extension<SessionUser>,
    Path(id): Path<String>,
    FormBody(form): FormBody<HashMap<String, String>>,
) -> Result<Response, PageError> {
    let contact = find_contact(&state, &user, &id).await?;
    let company_id = user.caller.company_id;
    let definitions = state.directory.field_definitions(company_id).await?;
    let (set, remove) = field_changes(&definitions, &form);
    let changes = ContactChanges {
        members: MemberChanges {
            email: member_change(&form, "email"),
            phone_number: member_change(&form, "phone_number")
                .map(|phone| phone.map(PhoneNumberInput::Text)),
            ext_id: member_change(&form, "ext_id"),
            first_name: member_change(&form, "first_name"),
            last_name: member_change(&form, "last_name"),
        },
        set,
        remove,
    };
    let identifier = ContactIdentifier::Id(contact.id);
    match contacts::update(
        &state.directory,
        company_id,
        &user.caller.actor,
        &identifier,
        changes,
        &Precondition::None,
    )
    .await
    {
        Ok(updated) => Ok(Notice::ContactSaved.redirect(&contact_url(updated.id))),
        Err(failure) => {
            // Shown again as sent: each input keeps what it showed when first loaded, so
            // the next save still writes only what the user changed. An input the form did
            // not have (a field defined since) starts from what is stored.
            let mut inputs = contact_inputs(
                &definitions,
                |name| match form.get(name) {
                    Some(value) => value.clone(),
                    None => stored_value(&contact, name),
                },
                |name| {
                    Some(match form.get(name) {
                        Some(_) => shown_in(&form, name)?.to_owned(),
                        None => stored_value(&contact, name),
                    })
                },
            );
            let (status, problem) = refused(&mut inputs, failure, input_of)?;
            Ok(render_with(
                status,
                &edit_form(&user, &contact, inputs, Some(problem)),
            ))
        }
    }
}

/// `GET /dashboard/contacts/{id}/delete`: asks before deleting.
pub async fn confirm_delete(
    State(state): State<AppState>,
    Extension(user): Extension<SessionUser>,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let contact = find_contact(&state, &user, &id).await?;
    let url = contact_url(contact.id);
    let page = Confirm {
        nav: Some(Nav::new(&user, Section::Contacts)),
        title: format!("Delete {}?", full_name(&contact)),
        paragraphs: vec![
            "The contact and all its custom field values are deleted; its email, phone \
             number and ext_id can then be given to another contact. This cannot be undone."
                .to_owned(),
        ],
        action: format!("{url}/delete"),
        url,
        button: "Delete contact",
    };
    Ok(render(&page))
}

/// `POST /dashboard/contacts/{id}/delete`: deletes the contact, then shows the list.
pub async fn delete_contact(
    State(state): State<AppState>,
    Extension(user): Extension<SessionUser>,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let id = Uuid::try_parse(&id).map_err(|_| PageError::NotFound)?;
    contacts::delete(
        &state.directory,
        user.caller.company_id,
        &user.caller.actor,
        &ContactIdentifier::Id(id),
        &Precondition::None,
    )
    .await?;
    Ok(Notice::ContactDeleted.redirect(LIST))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::failure::{CustomFieldAt, ValuePart};

    #[test]
    fn refusals_point_at_their_inputs() {
        let at = |key: &str| CustomFieldAt {
            index: 1,
            key: key.to_owned(),
            part: ValuePart::Value,
        };
        assert_eq!(input_of(&Field::Email).as_deref(), Some("email"));
        assert_eq!(
            input_of(&Field::PhoneNumber).as_deref(),
            Some("phone_number")
        );
        assert_eq!(
            input_of(&Field::CustomField(at("age"))).as_deref(),
            Some("field.age")
        );
        assert_eq!(
            input_of(&Field::SetCustomField(at("plan"))).as_deref(),
            Some("field.plan")
        );
        assert_eq!(
            input_of(&Field::RemovedCustomField {
                index: 0,
                key: "vip".to_owned()
            })
            .as_deref(),
            Some("field.vip")
        );
        assert_eq!(input_of(&Field::CustomFields), None);
    }
}
