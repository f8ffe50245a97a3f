//! The contact endpoints (docs/reference.md#6-contact-endpoints): create, fetch, list, update (the seed) and delete.

use std::collections::HashSet;
use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, State};
use axum::handler::Handler;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use contactd_api as api;
use serde::Deserialize;
use uuid::Uuid;

use super::error::ApiError;
use super::extract::{ApiQuery, Json, JsonBody, PathParam, parse_json};
use super::{AppState, bulk, cursor};
use crate::domain::contact::{ContactPatch, FieldWrite, NewContact};
use crate::domain::{
    ContactIdentifier, Email, ExtId, FieldValue, Invalid, PersonName, PhoneNumber,
};
use crate::store::{Caller, Contact, FieldDefinition, ListPosition};

/// The largest page of `GET /contacts`, and the page size when none is asked for.
const MAX_PAGE: u32 = 100;
const DEFAULT_PAGE: u32 = 20;

/// Routes under `/api/v1/contacts`. The routes that take many contacts at once admit
/// bodies up to `bulk_body_limit`.
pub fn router(bulk_body_limit: usize) -> Router<AppState> {
    let bulk = DefaultBodyLimit::max(bulk_body_limit);
    Router::new()
        .route(
            "/contacts",
            get(list_contacts)
                .post(create_contact.layer(bulk))
                .patch(update_contact),
        )
        .route("/contacts/batch", post(bulk::upsert_contacts).layer(bulk))
        .route("/contacts/export", get(bulk::export_contacts))
        .route(
            "/contacts/{id}",
            get(get_contact)
                .patch(update_contact_at)
                .delete(delete_contact),
        )
}

#[utoipa::path(
    post,
    path = "/api/v1/contacts",
    tag = "contacts",
    summary = "Create Contact",
    description = "Creates a contact. At least one of `email`, `phone_number` and `ext_id` is required; custom fields must be defined first.\n\nAn **array** of up to 1,000 such objects creates each on its own (Alpharun's \"Add contacts\"): the answer counts the items that succeeded and echoes each one that failed, with its `index` and an `error`. A failed item never fails or changes another.",
    request_body(content = bulk::CreateContactBody, description = "One contact, or an array of up to 1,000"),
    responses(
        (status = 200, description = "The contact created, or for an array the import counts", body = bulk::CreateContactResponse),
        (status = 409, description = "Another contact already has this email, phone number or ext_id", body = api::ErrorBody),
    )
)]
pub(super) async fn create_contact(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    JsonBody(bytes): JsonBody,
) -> Result<Response, ApiError> {
    if bulk::is_array(&bytes) {
        return Ok(bulk::create_contacts(&state, &caller, &bytes)
            .await?
            .into_response());
    }
    // The route admits bulk bodies; a single contact keeps the ordinary limit.
    if bytes.len() > state.body_limit {
        return Err(ApiError::PayloadTooLarge(state.body_limit));
    }
    let body: api::CreateContact = parse_json(&bytes)?;
    let created = create_one(&state, &caller, &body).await?;
    Ok(Json(contact_body(created)).into_response())
}

/// Creates one contact: the API's create and the dashboard's.
pub(super) async fn create_one(
    state: &AppState,
    caller: &Caller,
    body: &api::CreateContact,
) -> Result<Contact, ApiError> {
    let definitions = definitions_for(state, caller, !body.custom_fields.is_empty()).await?;
    let contact = new_contact(state, &definitions, body)?;
    Ok(state
        .store
        .create_contact(caller.company_id, &contact)
        .await?)
}

/// Checks a create payload and turns it into the contact to store.
pub(super) fn new_contact(
    state: &AppState,
    definitions: &[FieldDefinition],
    body: &api::CreateContact,
) -> Result<NewContact, ApiError> {
    NewContact::new(
        parse_optional(body.email.as_deref(), Email::parse, "email")?,
        parse_optional(
            body.phone_number.as_ref(),
            |phone| PhoneNumber::parse(phone, state.default_region),
            "phone_number",
        )?,
        parse_optional(body.ext_id.as_deref(), ExtId::parse, "ext_id")?,
        parse_optional(body.first_name.as_deref(), PersonName::parse, "first_name")?.flatten(),
        parse_optional(body.last_name.as_deref(), PersonName::parse, "last_name")?.flatten(),
        field_writes(definitions, &body.custom_fields, "custom_fields")?,
    )
    .map_err(|invalid| ApiError::bad_request(invalid.code, invalid.message, None))
}

#[utoipa::path(
    get,
    path = "/api/v1/contacts/{id}",
    tag = "contacts",
    summary = "Fetch Contact",
    params(("id" = String, Path, description = "The contact: its UUID, `alt:ext_id:<ext_id>`, `alt:email:<email>` or `alt:phone_number:<phone number>`, percent-encoded as one path segment")),
    responses(
        (status = 200, description = "The contact", body = api::Contact),
        (status = 400, description = "The identifier is malformed", body = api::ErrorBody),
        (status = 404, description = "No contact of your company matches the identifier", body = api::ErrorBody),
    )
)]
pub(super) async fn get_contact(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    PathParam(id): PathParam,
) -> Result<Json<api::Contact>, ApiError> {
    let identifier = parse_identifier(&state, &id, None)?;
    let contact = state
        .store
        .get_contact(caller.company_id, &identifier)
        .await?
        .ok_or_else(|| contact_not_found(&identifier))?;
    Ok(Json(contact_body(contact)))
}

/// Query of `GET /contacts`; unknown parameters are refused, not ignored.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ListQuery {
    limit: Option<String>,
    cursor: Option<String>,
}

#[utoipa::path(
    get,
    path = "/api/v1/contacts",
    tag = "contacts",
    summary = "List Contacts",
    description = "Contacts newest first, a page at a time: pass `next_cursor` back as `cursor` for the next page.",
    params(
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 100, description = "Contacts per page, 1 to 100; 20 when omitted"),
        ("cursor" = Option<String>, Query, description = "The `next_cursor` of the previous page"),
    ),
    responses(
        (status = 200, description = "A page of contacts", body = api::ContactList),
        (status = 400, description = "A bad limit, a cursor this server did not give this company, or an unknown parameter", body = api::ErrorBody),
    )
)]
pub(super) async fn list_contacts(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<api::ContactList>, ApiError> {
    let limit = match query.limit.as_deref() {
        None => DEFAULT_PAGE,
        Some(text) => Some(text)
            .filter(|text| text.bytes().all(|byte| byte.is_ascii_digit()))
            .and_then(|text| text.parse::<u32>().ok())
            .filter(|limit| (1..=MAX_PAGE).contains(limit))
            .ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_limit",
                    format!("limit must be an integer from 1 to {MAX_PAGE}"),
                    Some("limit".to_owned()),
                )
            })?,
    };
    let after = query
        .cursor
        .as_deref()
        .map(|text| {
            cursor::decode(text, &caller.cursor_secret).ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_cursor",
                    "cursor is not one this server gave you for this list",
                    Some("cursor".to_owned()),
                )
            })
        })
        .transpose()?;
    // One more than the page tells whether a next page exists without a count query.
    let mut contacts = state
        .store
        .list_contacts(caller.company_id, after, limit + 1)
        .await?;
    let next_cursor = if contacts.len() > limit as usize {
        contacts.truncate(limit as usize);
        contacts
            .last()
            .map(|last| cursor::encode(ListPosition::of(last), &caller.cursor_secret))
    } else {
        None
    };
    Ok(Json(api::ContactList {
        data: api::ContactListData {
            contacts: contacts.into_iter().map(contact_body).collect(),
        },
        next_cursor,
    }))
}

#[utoipa::path(
    patch,
    path = "/api/v1/contacts",
    tag = "contacts",
    summary = "Update Contact",
    description = "Custom fields must be created before you can set them on the contact. The `id` member names the contact: its UUID, `alt:ext_id:<ext_id>`, `alt:email:<email>` or `alt:phone_number:<phone_number>`. No two contacts can have the same email, phone number or ext_id. An omitted member is left unchanged; `null` clears it.",
    request_body = api::UpdateContact,
    responses(
        (status = 200, description = "Contact updated successfully", body = api::Contact),
        (status = 404, description = "Contact not found", body = api::ErrorBody),
        (status = 409, description = "Another contact already has this email, phone number or ext_id", body = api::ErrorBody),
    )
)]
/// `PATCH /contacts`: the seed's form, with the contact named by the body's `id`.
pub(super) async fn update_contact(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Json(body): Json<api::UpdateContact>,
) -> Result<Json<api::Contact>, ApiError> {
    let id = body.id.as_deref().ok_or_else(|| {
        ApiError::bad_request(
            "missing_id",
            "id is required: the contact's UUID, alt:ext_id:…, alt:email:… or alt:phone_number:…",
            Some("id".to_owned()),
        )
    })?;
    let identifier = parse_identifier(&state, id, Some("id"))?;
    let updated = apply_update(&state, &caller, identifier, &body).await?;
    Ok(Json(contact_body(updated)))
}

#[utoipa::path(
    patch,
    path = "/api/v1/contacts/{id}",
    tag = "contacts",
    summary = "Update Contact (identifier in the path)",
    description = "As `PATCH /api/v1/contacts`, with the contact named in the path; a body `id`, if given, must name the same contact.",
    params(("id" = String, Path, description = "The contact: its UUID, `alt:ext_id:<ext_id>`, `alt:email:<email>` or `alt:phone_number:<phone number>`, percent-encoded as one path segment")),
    request_body = api::UpdateContact,
    responses(
        (status = 200, description = "Contact updated successfully", body = api::Contact),
        (status = 404, description = "Contact not found", body = api::ErrorBody),
        (status = 409, description = "Another contact already has this email, phone number or ext_id", body = api::ErrorBody),
    )
)]
/// `PATCH /contacts/{id}`: the older form; a body `id`, if given, must name the same contact.
pub(super) async fn update_contact_at(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    PathParam(id): PathParam,
    Json(body): Json<api::UpdateContact>,
) -> Result<Json<api::Contact>, ApiError> {
    let identifier = parse_identifier(&state, &id, None)?;
    if let Some(body_id) = body.id.as_deref() {
        let body_identifier = parse_identifier(&state, body_id, Some("id"))?;
        if body_identifier != identifier {
            let store = &state.store;
            let named = store.get_contact(caller.company_id, &identifier).await?;
            let body_named = store
                .get_contact(caller.company_id, &body_identifier)
                .await?;
            let named = named.ok_or_else(|| contact_not_found(&identifier))?;
            if body_named.is_none_or(|other| other.id != named.id) {
                return Err(ApiError::bad_request(
                    "id_mismatch",
                    "the body's id names a different contact than the path",
                    Some("id".to_owned()),
                ));
            }
        }
    }
    let updated = apply_update(&state, &caller, identifier, &body).await?;
    Ok(Json(contact_body(updated)))
}

/// Applies an update to one contact: the API's two PATCH forms and the dashboard's edit.
pub(super) async fn apply_update(
    state: &AppState,
    caller: &Caller,
    identifier: ContactIdentifier,
    body: &api::UpdateContact,
) -> Result<Contact, ApiError> {
    let changes = body.custom_fields.clone().unwrap_or_default();
    let uses_fields = !changes.set.is_empty() || !changes.remove.is_empty();
    let definitions = definitions_for(state, caller, uses_fields).await?;
    let set_values = field_writes(&definitions, &changes.set, "custom_fields.set")?;
    let mut remove_fields = Vec::with_capacity(changes.remove.len());
    for (index, key) in changes.remove.iter().enumerate() {
        let at = format!("custom_fields.remove[{index}]");
        let definition = find_definition(&definitions, key, &at)?;
        if set_values
            .iter()
            .any(|write| write.field_id == definition.id)
        {
            return Err(ApiError::bad_request(
                "duplicate_custom_field",
                format!("custom field `{key}` is both set and removed"),
                Some(at),
            ));
        }
        remove_fields.push(definition.id);
    }
    let patch = ContactPatch {
        set_values,
        remove_fields,
        ..member_changes(
            state,
            &body.email,
            &body.phone_number,
            &body.ext_id,
            &body.first_name,
            &body.last_name,
        )?
    };
    state
        .store
        .update_contact(caller.company_id, &identifier, &patch)
        .await
        .map_err(ApiError::not_found_as(|| contact_not_found(&identifier)))
}

/// Checks the members of an update (omitted: `None`, `null`: `Some(None)`) into a patch
/// without custom field changes.
pub(super) fn member_changes(
    state: &AppState,
    email: &Option<Option<String>>,
    phone_number: &Option<Option<api::PhoneNumberInput>>,
    ext_id: &Option<Option<String>>,
    first_name: &Option<Option<String>>,
    last_name: &Option<Option<String>>,
) -> Result<ContactPatch, ApiError> {
    let region = state.default_region;
    Ok(ContactPatch {
        email: parse_patch(email, |email| Email::parse(email), "email")?,
        phone_number: parse_patch(
            phone_number,
            |phone| PhoneNumber::parse(phone, region),
            "phone_number",
        )?,
        ext_id: parse_patch(ext_id, |ext_id| ExtId::parse(ext_id), "ext_id")?,
        first_name: parse_patch(first_name, |name| PersonName::parse(name), "first_name")?
            .map(Option::flatten),
        last_name: parse_patch(last_name, |name| PersonName::parse(name), "last_name")?
            .map(Option::flatten),
        set_values: Vec::new(),
        remove_fields: Vec::new(),
    })
}

#[utoipa::path(
    delete,
    path = "/api/v1/contacts/{id}",
    tag = "contacts",
    summary = "Delete Contact",
    description = "Deletes a contact; its email, phone number and ext_id are free for reuse at once.",
    params(("id" = String, Path, description = "The contact: its UUID, `alt:ext_id:<ext_id>`, `alt:email:<email>` or `alt:phone_number:<phone number>`, percent-encoded as one path segment")),
    responses(
        (status = 200, description = "The contact was deleted", body = api::DeletedContact),
        (status = 400, description = "The identifier is malformed", body = api::ErrorBody),
        (status = 404, description = "No contact of your company matches the identifier", body = api::ErrorBody),
    )
)]
pub(super) async fn delete_contact(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    PathParam(id): PathParam,
) -> Result<Json<api::DeletedContact>, ApiError> {
    let identifier = parse_identifier(&state, &id, None)?;
    let id = delete_one(&state, &caller, &identifier).await?;
    Ok(Json(api::DeletedContact { id, deleted: true }))
}

/// Deletes one contact, returning its id: the API's delete and the dashboard's.
pub(super) async fn delete_one(
    state: &AppState,
    caller: &Caller,
    identifier: &ContactIdentifier,
) -> Result<Uuid, ApiError> {
    state
        .store
        .delete_contact(caller.company_id, identifier)
        .await
        .map_err(ApiError::not_found_as(|| contact_not_found(identifier)))
}

pub(super) fn parse_identifier(
    state: &AppState,
    text: &str,
    field: Option<&str>,
) -> Result<ContactIdentifier, ApiError> {
    ContactIdentifier::parse(text, state.default_region).map_err(|invalid| {
        ApiError::bad_request(invalid.code, invalid.message, field.map(str::to_owned))
    })
}

pub(super) fn contact_not_found(identifier: &ContactIdentifier) -> ApiError {
    ApiError::NotFound {
        code: "contact_not_found",
        message: format!("no contact matches {identifier}"),
    }
}

/// The company's field definitions, read only when the request names custom fields.
pub(super) async fn definitions_for(
    state: &AppState,
    caller: &Caller,
    needed: bool,
) -> Result<Arc<Vec<FieldDefinition>>, ApiError> {
    if !needed {
        return Ok(Arc::default());
    }
    state
        .caches
        .fields
        .get_or_fetch(caller.company_id, async {
            Ok(Arc::new(state.store.list_fields(caller.company_id).await?))
        })
        .await
}

/// Parses a create member: absent (or `null`) stays `None`.
fn parse_optional<T: ?Sized, U>(
    value: Option<&T>,
    parse: impl FnOnce(&T) -> Result<U, Invalid>,
    field: &str,
) -> Result<Option<U>, ApiError> {
    value
        .map(parse)
        .transpose()
        .map_err(|invalid| ApiError::invalid(invalid, field))
}

/// Parses an update member: omitted stays `None`, `null` becomes `Some(None)`.
pub(super) fn parse_patch<T, U>(
    value: &Option<Option<T>>,
    parse: impl FnOnce(&T) -> Result<U, Invalid>,
    field: &str,
) -> Result<Option<Option<U>>, ApiError> {
    value
        .as_ref()
        .map(|value| parse_optional(value.as_ref(), parse, field))
        .transpose()
}

/// Checks each value against its field's definition; a key twice is refused.
pub(super) fn field_writes(
    definitions: &[FieldDefinition],
    inputs: &[api::CustomFieldInput],
    path: &str,
) -> Result<Vec<FieldWrite>, ApiError> {
    let mut seen = HashSet::with_capacity(inputs.len());
    inputs
        .iter()
        .enumerate()
        .map(|(index, input)| {
            let at = format!("{path}[{index}]");
            let definition = find_definition(definitions, &input.key, &format!("{at}.key"))?;
            if !seen.insert(definition.id) {
                return Err(ApiError::bad_request(
                    "duplicate_custom_field",
                    format!("custom field `{}` is given more than once", input.key),
                    Some(format!("{at}.key")),
                ));
            }
            let value = FieldValue::parse(definition.field_type, &definition.options, &input.value)
                .map_err(|invalid| {
                    ApiError::bad_request(
                        invalid.code,
                        format!("custom field `{}`: {}", input.key, invalid.message),
                        Some(format!("{at}.value")),
                    )
                })?;
            Ok(FieldWrite {
                field_id: definition.id,
                value,
            })
        })
        .collect()
}

pub(super) fn find_definition<'a>(
    definitions: &'a [FieldDefinition],
    key: &str,
    field: &str,
) -> Result<&'a FieldDefinition, ApiError> {
    definitions
        .iter()
        .find(|definition| definition.key.as_str() == key)
        .ok_or_else(|| {
            ApiError::bad_request(
                "unknown_custom_field",
                format!(
                    "no custom field `{key:.64}` is defined; create it first with POST /api/v1/custom-fields"
                ),
                Some(field.to_owned()),
            )
        })
}

/// The wire form of a contact (docs/reference.md#3-the-contact-object).
pub(super) fn contact_body(contact: Contact) -> api::Contact {
    api::Contact {
        id: contact.id,
        email: contact.members.email,
        phone_number: contact.members.phone_number,
        ext_id: contact.members.ext_id,
        first_name: contact.members.first_name,
        last_name: contact.members.last_name,
        custom_fields: contact
            .custom_fields
            .into_iter()
            .map(|field| api::ContactCustomField {
                key: field.key,
                value: field.value.to_json(),
                field_type: field.field_type,
                display_name: field.display_name,
            })
            .collect(),
        created_at: contact.created_at,
        updated_at: contact.updated_at,
    }
}
