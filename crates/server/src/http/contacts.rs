//! The contact endpoints (docs/reference.md#6-contact-endpoints): create, fetch, list, update (the seed) and delete.

use axum::extract::{DefaultBodyLimit, State};
use axum::handler::Handler;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use contactd_api::ErrorCode;
use contactd_api::{self as api, MAX_BULK_ITEMS};
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, OneOfBuilder, Schema, Type};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{PartialSchema, ToSchema};

use super::AppState;
use super::bulk_items::{bulk_items, echo, is_array, read_each};
use super::error::ApiError;
use super::extract::{
    Json, JsonBody, PathParam, QueryPairs, next_cursor, page_cursor, page_limit, parse_json,
};
use super::preconditions::{IfMatch, IfNoneMatch, contact_response};
use crate::contacts::{self, ContactInput, contact_not_found};
use crate::domain::ContactIdentifier;
use crate::store::Caller;

/// The largest page of `GET /contacts`, and the page size when none is asked for.
const MAX_PAGE: u32 = 100;
const DEFAULT_PAGE: u32 = 20;

/// Routes under `/api/v1/contacts`. The create route admits bodies up to
/// `bulk_body_limit`, for its array form.
pub fn router(bulk_body_limit: usize) -> Router<AppState> {
    Router::new()
        .route(
            "/contacts",
            get(list_contacts)
                .post(create_contact.layer(DefaultBodyLimit::max(bulk_body_limit)))
                .patch(update_contact),
        )
        .route("/contacts/count", get(count_contacts))
        .route(
            "/contacts/{id}",
            get(get_contact)
                .patch(update_contact_at)
                .delete(delete_contact),
        )
}

/// The body of `POST /contacts` as documented: one contact, or up to 1,000 objects, each
/// checked on its own (so an item the contact schema refuses fails alone, in a 200).
pub(super) struct CreateContactBody;

impl PartialSchema for CreateContactBody {
    fn schema() -> RefOr<Schema> {
        let many = ArrayBuilder::new()
            .items(ObjectBuilder::new().schema_type(Type::Object))
            .max_items(Some(MAX_BULK_ITEMS))
            .description(Some(
                "Up to 1,000 create payloads (`CreateContact`), each checked on its own",
            ));
        RefOr::T(Schema::OneOf(
            OneOfBuilder::new()
                .item(Ref::from_schema_name("CreateContact"))
                .item(many)
                .build(),
        ))
    }
}

impl ToSchema for CreateContactBody {}

/// The answer of `POST /contacts`: the contact, or for an array the import counts.
pub(super) struct CreateContactResponse;

impl PartialSchema for CreateContactResponse {
    fn schema() -> RefOr<Schema> {
        RefOr::T(Schema::OneOf(
            OneOfBuilder::new()
                .item(Ref::from_schema_name("Contact"))
                .item(Ref::from_schema_name("ImportSummary"))
                .build(),
        ))
    }
}

impl ToSchema for CreateContactResponse {}

#[utoipa::path(
    post,
    path = "/api/v1/contacts",
    tag = "contacts",
    summary = "Create Contact",
    description = "Creates a contact. At least one of `email`, `phone_number` and `ext_id` is required; custom fields must be defined first.\n\nAn **array** of up to 1,000 such objects creates each on its own (Alpharun's \"Add contacts\"): the answer counts the items that succeeded and echoes each one that failed, with its `index` and an `error`. A failed item never fails or changes another.",
    request_body(content = CreateContactBody, description = "One contact, or an array of up to 1,000"),
    responses(
        (status = 200, description = "The contact created (with its `ETag`), or for an array the import counts", body = CreateContactResponse),
        (status = 409, description = "Another contact already has this email, phone number or ext_id", body = api::ErrorBody),
    )
)]
pub(super) async fn create_contact(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    JsonBody(bytes): JsonBody,
) -> Result<Response, ApiError> {
    if is_array(&bytes) {
        return Ok(create_contacts(&state, &caller, &bytes)
            .await?
            .into_response());
    }
    // The route admits bulk bodies; a single contact keeps the ordinary limit.
    if bytes.len() > state.body_limit {
        return Err(ApiError::PayloadTooLarge(state.body_limit));
    }
    let body: api::CreateContact = parse_json(&bytes)?;
    let created = contacts::create(
        &state.directory,
        caller.company_id,
        &caller.actor,
        body.into(),
    )
    .await?;
    Ok(contact_response(created))
}

/// Array create: each item created on its own; the answer counts them and echoes the
/// failed ones with their index and error.
async fn create_contacts(
    state: &AppState,
    caller: &Caller,
    body: &[u8],
) -> Result<Json<api::ImportSummary>, ApiError> {
    let items = bulk_items(parse_json(body)?, "")?;
    let (read, mut failed) = read_each::<api::CreateContact>(&items);
    let inputs = read
        .into_iter()
        .map(|(index, body)| (index, ContactInput::from(body)))
        .collect();
    for (index, outcome) in
        contacts::create_many(&state.directory, caller.company_id, &caller.actor, inputs).await?
    {
        if let Err(failure) = outcome {
            failed.push((index, failure.into()));
        }
    }
    failed.sort_by_key(|(index, _)| *index);
    let failed_contacts: Vec<_> = failed
        .into_iter()
        .map(|(index, error)| api::FailedContact {
            index,
            error: error.body(),
            contact: echo(&items[index]),
        })
        .collect();
    Ok(Json(api::ImportSummary {
        successful_imports_count: (items.len() - failed_contacts.len()) as u64,
        failed_imports_count: failed_contacts.len() as u64,
        failed_contacts,
    }))
}

#[utoipa::path(
    get,
    path = "/api/v1/contacts/{id}",
    tag = "contacts",
    summary = "Fetch Contact",
    params(
        ("id" = String, Path, description = "The contact: its UUID, `alt:ext_id:<ext_id>`, `alt:email:<email>` or `alt:phone_number:<phone number>`, percent-encoded as one path segment"),
        ("If-None-Match" = Option<String>, Header, description = "The `ETag`s of versions the client holds; `*`: any"),
    ),
    responses(
        (status = 200, description = "The contact", body = api::Contact, headers(("ETag" = String, description = "The contact's version, for `If-Match` and `If-None-Match`"))),
        (status = 304, description = "The contact is at a version `If-None-Match` names", headers(("ETag" = String, description = "The contact's version, for `If-Match` and `If-None-Match`"))),
        (status = 400, description = "The identifier or `If-None-Match` is malformed", body = api::ErrorBody),
        (status = 404, description = "No contact of your company matches the identifier", body = api::ErrorBody),
    )
)]
pub(super) async fn get_contact(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    PathParam(id): PathParam,
    if_none_match: IfNoneMatch,
) -> Result<Response, ApiError> {
    let identifier = parse_identifier(&state, &id, None)?;
    let contact = contacts::find(&state.directory, caller.company_id, &identifier)
        .await?
        .ok_or_else(|| contact_not_found(&identifier))?;
    Ok(if_none_match
        .not_modified(&contact)
        .unwrap_or_else(|| contact_response(contact)))
}

/// What a contact list's query string holds: the page's `limit` and `cursor`, and the
/// filters, for [`contacts::query`] to check. A name given twice is refused.
fn list_params(query: &[(String, String)]) -> (Option<&str>, Option<&str>, Vec<(String, String)>) {
    let named = |name: &str| {
        query
            .iter()
            .find(|(given, _)| given == name)
            .map(|(_, value)| value.as_str())
    };
    let filters = query
        .iter()
        .filter(|(name, _)| name != "limit" && name != "cursor")
        .cloned()
        .collect();
    (named("limit"), named("cursor"), filters)
}

#[utoipa::path(
    get,
    path = "/api/v1/contacts",
    tag = "contacts",
    summary = "List Contacts",
    description = "Contacts a page at a time, newest first unless `sort` says otherwise: pass `next_cursor` back as `cursor` for the next page, with the same filters and sort. Filters combine with AND. Custom fields filter as `cf.KEY=V` (equality; for a select field `cf.plan=pro,team` is any of), `cf.KEY.gt`, `.gte`, `.lt`, `.lte` (number and date fields) and `cf.KEY.exists=true|false`.",
    params(
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 100, description = "Contacts per page, 1 to 100; 20 when omitted"),
        ("cursor" = Option<String>, Query, description = "The `next_cursor` of the previous page, made with the same filters and sort"),
        ("sort" = Option<api::ContactSort>, Query, description = "The order: `-created_at` (the default), `created_at`, `-updated_at` or `updated_at`"),
    ),
    responses(
        (status = 200, description = "A page of contacts", body = api::ContactList),
        (status = 400, description = "A bad limit or filter, a cursor this server did not give this company for these filters and sort, or an unknown parameter", body = api::ErrorBody),
    )
)]
pub(super) async fn list_contacts(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    QueryPairs(query): QueryPairs,
) -> Result<Json<api::ContactList>, ApiError> {
    let (limit, cursor, filters) = list_params(&query);
    let limit = page_limit(limit, DEFAULT_PAGE, MAX_PAGE)?;
    let query = contacts::query(
        &state.directory,
        caller.company_id,
        &filters,
        &["limit", "cursor"],
    )
    .await?;
    let fingerprint = query.fingerprint();
    let after = page_cursor(cursor, "cursor", &caller, &fingerprint)?;
    let page = contacts::list(&state.directory, caller.company_id, &query, after, limit).await?;
    Ok(Json(api::ContactList {
        data: api::ContactListData {
            contacts: page.contacts.into_iter().map(api::Contact::from).collect(),
        },
        next_cursor: next_cursor(page.next, &caller, &fingerprint),
    }))
}

#[utoipa::path(
    get,
    path = "/api/v1/contacts/count",
    tag = "contacts",
    summary = "Count Contacts",
    description = "How many contacts the filters find: the same filters as List Contacts (a `sort` is taken and has no effect).",
    params(
        ("sort" = Option<api::ContactSort>, Query, description = "Taken, so that a list's query can be reused as it is; has no effect"),
    ),
    responses(
        (status = 200, description = "How many contacts the filters find", body = api::ContactCount),
        (status = 400, description = "A bad filter or an unknown parameter", body = api::ErrorBody),
    )
)]
pub(super) async fn count_contacts(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    QueryPairs(query): QueryPairs,
) -> Result<Json<api::ContactCount>, ApiError> {
    let query = contacts::query(&state.directory, caller.company_id, &query, &[]).await?;
    let count = contacts::count(&state.directory, caller.company_id, &query).await?;
    Ok(Json(api::ContactCount { count }))
}

#[utoipa::path(
    patch,
    path = "/api/v1/contacts",
    tag = "contacts",
    summary = "Update Contact",
    description = "Custom fields must be created before you can set them on the contact. The `id` member names the contact: its UUID, `alt:ext_id:<ext_id>`, `alt:email:<email>` or `alt:phone_number:<phone_number>`. No two contacts can have the same email, phone number or ext_id. An omitted member is left unchanged; `null` clears it.",
    params(("If-Match" = Option<String>, Header, description = "Write only if the contact is still at one of these versions (its `ETag`s); `*` asks only that it exists")),
    request_body = api::UpdateContact,
    responses(
        (status = 200, description = "Contact updated successfully", body = api::Contact, headers(("ETag" = String, description = "The contact's version, for `If-Match` and `If-None-Match`"))),
        (status = 404, description = "Contact not found", body = api::ErrorBody),
        (status = 409, description = "Another contact already has this email, phone number or ext_id", body = api::ErrorBody),
        (status = 412, description = "The contact is not at a version `If-Match` names; nothing was written", body = api::ErrorBody, headers(("ETag" = String, description = "The contact's version, for `If-Match` and `If-None-Match`"))),
    )
)]
/// `PATCH /contacts`: the seed's form, with the contact named by the body's `id`.
pub(super) async fn update_contact(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    IfMatch(precondition): IfMatch,
    Json(body): Json<api::UpdateContact>,
) -> Result<Response, ApiError> {
    let id = body.id.as_deref().ok_or_else(|| {
        ApiError::bad_request(
            ErrorCode::MissingId,
            "id is required: the contact's UUID, alt:ext_id:…, alt:email:… or alt:phone_number:…",
            Some("id".to_owned()),
        )
    })?;
    let identifier = parse_identifier(&state, id, Some("id"))?;
    let updated = contacts::update(
        &state.directory,
        caller.company_id,
        &caller.actor,
        &identifier,
        body.into(),
        &precondition,
    )
    .await?;
    Ok(contact_response(updated))
}

#[utoipa::path(
    patch,
    path = "/api/v1/contacts/{id}",
    tag = "contacts",
    summary = "Update Contact (identifier in the path)",
    description = "As `PATCH /api/v1/contacts`, with the contact named in the path; a body `id`, if given, must name the same contact.",
    params(
        ("id" = String, Path, description = "The contact: its UUID, `alt:ext_id:<ext_id>`, `alt:email:<email>` or `alt:phone_number:<phone number>`, percent-encoded as one path segment"),
        ("If-Match" = Option<String>, Header, description = "Write only if the contact is still at one of these versions (its `ETag`s); `*` asks only that it exists"),
    ),
    request_body = api::UpdateContact,
    responses(
        (status = 200, description = "Contact updated successfully", body = api::Contact, headers(("ETag" = String, description = "The contact's version, for `If-Match` and `If-None-Match`"))),
        (status = 404, description = "Contact not found", body = api::ErrorBody),
        (status = 409, description = "Another contact already has this email, phone number or ext_id", body = api::ErrorBody),
        (status = 412, description = "The contact is not at a version `If-Match` names; nothing was written", body = api::ErrorBody, headers(("ETag" = String, description = "The contact's version, for `If-Match` and `If-None-Match`"))),
    )
)]
/// `PATCH /contacts/{id}`: the older form; a body `id`, if given, must name the same contact.
pub(super) async fn update_contact_at(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    PathParam(id): PathParam,
    IfMatch(precondition): IfMatch,
    Json(body): Json<api::UpdateContact>,
) -> Result<Response, ApiError> {
    let identifier = parse_identifier(&state, &id, None)?;
    if let Some(body_id) = body.id.as_deref() {
        let body_identifier = parse_identifier(&state, body_id, Some("id"))?;
        if body_identifier != identifier {
            let directory = &state.directory;
            let named = contacts::find(directory, caller.company_id, &identifier).await?;
            let body_named = contacts::find(directory, caller.company_id, &body_identifier).await?;
            let named = named.ok_or_else(|| contact_not_found(&identifier))?;
            if body_named.is_none_or(|other| other.id != named.id) {
                return Err(ApiError::bad_request(
                    ErrorCode::IdMismatch,
                    "the body's id names a different contact than the path",
                    Some("id".to_owned()),
                ));
            }
        }
    }
    let updated = contacts::update(
        &state.directory,
        caller.company_id,
        &caller.actor,
        &identifier,
        body.into(),
        &precondition,
    )
    .await?;
    Ok(contact_response(updated))
}

#[utoipa::path(
    delete,
    path = "/api/v1/contacts/{id}",
    tag = "contacts",
    summary = "Delete Contact",
    description = "Deletes a contact; its email, phone number and ext_id are free for reuse at once.",
    params(
        ("id" = String, Path, description = "The contact: its UUID, `alt:ext_id:<ext_id>`, `alt:email:<email>` or `alt:phone_number:<phone number>`, percent-encoded as one path segment"),
        ("If-Match" = Option<String>, Header, description = "Write only if the contact is still at one of these versions (its `ETag`s); `*` asks only that it exists"),
    ),
    responses(
        (status = 200, description = "The contact was deleted", body = api::DeletedContact),
        (status = 400, description = "The identifier or `If-Match` is malformed", body = api::ErrorBody),
        (status = 404, description = "No contact of your company matches the identifier", body = api::ErrorBody),
        (status = 412, description = "The contact is not at a version `If-Match` names; nothing was deleted", body = api::ErrorBody, headers(("ETag" = String, description = "The contact's version, for `If-Match` and `If-None-Match`"))),
    )
)]
pub(super) async fn delete_contact(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    PathParam(id): PathParam,
    IfMatch(precondition): IfMatch,
) -> Result<Json<api::DeletedContact>, ApiError> {
    let identifier = parse_identifier(&state, &id, None)?;
    let id = contacts::delete(
        &state.directory,
        caller.company_id,
        &caller.actor,
        &identifier,
        &precondition,
    )
    .await?;
    Ok(Json(api::DeletedContact { id, deleted: true }))
}

/// Reads a contact identifier from the path, or from the body member `field`.
pub(super) fn parse_identifier(
    state: &AppState,
    text: &str,
    field: Option<&str>,
) -> Result<ContactIdentifier, ApiError> {
    ContactIdentifier::parse(text, state.directory.default_region).map_err(|invalid| {
        ApiError::bad_request(invalid.code, invalid.message, field.map(str::to_owned))
    })
}
