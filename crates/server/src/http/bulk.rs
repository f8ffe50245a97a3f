//! The bulk routes (docs/reference.md#11-bulk-batch-writes-import-and-export): array create on `POST /contacts`, batch upsert, and export.
//!
//! Every item goes through the same parsing, validation and store code as a single write;
//! only the error handling differs: an item's failure is reported with its index, and
//! never fails or changes another item.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::Arc;

use axum::Extension;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderName, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use contactd_api::{self as api, MAX_BULK_ITEMS, MatchOn};
use futures_util::{StreamExt, stream};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, OneOfBuilder, Schema, Type};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{PartialSchema, ToSchema};

use super::AppState;
use super::contacts::{contact_body, definitions_for, field_writes, member_changes, new_contact};
use super::error::ApiError;
use super::extract::{ApiQuery, Json, JsonBody, parse_json};
use crate::domain::ContactIdentifier;
use crate::store::{Caller, Contact, ContactUpsert, FieldDefinition};

/// The response header of an export that says how many contacts it holds, so a client can
/// show progress.
const TOTAL_COUNT_HEADER: &str = "x-total-count";

/// Members of Alpharun's "Add contacts" that belong to its job openings, which contactd
/// does not have: an item carrying one fails, naming it.
const JOB_OPENING_MEMBERS: [&str; 3] = ["job_opening_id", "resume", "interview_custom_fields"];

/// Whether a create body is an array (the bulk form) rather than one contact.
pub(super) fn is_array(body: &[u8]) -> bool {
    body.iter().find(|byte| !byte.is_ascii_whitespace()) == Some(&b'[')
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

/// Array create: each item created on its own; the answer counts them and echoes the
/// failed ones with their index and error.
pub(super) async fn create_contacts(
    state: &AppState,
    caller: &Caller,
    body: &[u8],
) -> Result<Json<api::ImportSummary>, ApiError> {
    let items = bulk_items(parse_json(body)?, "")?;
    let (parsed, definitions) = read_items(state, caller, &items, |item: &api::CreateContact| {
        &item.custom_fields
    })
    .await?;
    let mut failed = Vec::new();
    let mut valid = Vec::with_capacity(items.len());
    for (index, item) in parsed.into_iter().enumerate() {
        match item.and_then(|body| new_contact(state, &definitions, &body)) {
            Ok(contact) => valid.push((index, contact)),
            Err(error) => failed.push((index, error)),
        }
    }
    let (indexes, contacts): (Vec<_>, Vec<_>) = valid.into_iter().unzip();
    let outcomes = state
        .store
        .create_contacts(caller.company_id, contacts)
        .await?;
    for (index, outcome) in indexes.into_iter().zip(outcomes) {
        if let Err(error) = outcome {
            failed.push((index, error.into()));
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
    post,
    path = "/api/v1/contacts/batch",
    tag = "contacts",
    summary = "Upsert Contacts",
    description = "Up to 1,000 contacts, each matched on its `match_on` member (which it must carry): one that names an existing contact updates it (an omitted member is kept, `null` clears it, `custom_fields` sets the keys it names), any other creates a contact. Each item is applied on its own and answered in `results`, in request order; an item whose `match_on` value repeats an earlier item's fails with 409 `duplicate_in_batch`.",
    request_body = api::BatchUpsert,
    responses(
        (status = 200, description = "One result per item", body = api::BatchResults),
    )
)]
pub(super) async fn upsert_contacts(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    JsonBody(body): JsonBody,
) -> Result<Json<api::BatchResults>, ApiError> {
    let body: api::BatchUpsert = parse_json(&body)?;
    let items = bulk_items(body.contacts, "contacts")?;
    let (parsed, definitions) = read_items(&state, &caller, &items, |item: &api::UpsertContact| {
        &item.custom_fields
    })
    .await?;
    let mut results: Vec<Option<api::BatchResult>> = vec![None; items.len()];
    let mut first_with_key = HashMap::with_capacity(items.len());
    let mut valid = Vec::with_capacity(items.len());
    for (index, item) in parsed.into_iter().enumerate() {
        let upsert = item
            .and_then(|item| upsert_item(&state, &definitions, body.match_on, &item))
            .and_then(
                |upsert| match first_with_key.entry(upsert.key.to_string()) {
                    Entry::Occupied(first) => Err(duplicate_in_batch(body.match_on, *first.get())),
                    Entry::Vacant(slot) => {
                        slot.insert(index);
                        Ok(upsert)
                    }
                },
            );
        match upsert {
            Ok(upsert) => valid.push((index, upsert)),
            Err(error) => results[index] = Some(failed_result(index, &error)),
        }
    }
    // Applied in key order, so that batches racing over the same keys take their row
    // locks in one order and never deadlock one another.
    valid.sort_by_cached_key(|(_, upsert)| upsert.key.to_string());
    let (indexes, upserts): (Vec<_>, Vec<_>) = valid.into_iter().unzip();
    let outcomes = state
        .store
        .upsert_contacts(caller.company_id, upserts)
        .await?;
    for (index, outcome) in indexes.into_iter().zip(outcomes) {
        results[index] = Some(match outcome {
            Ok(upserted) => api::BatchResult {
                index,
                status: 200,
                created: Some(upserted.created),
                contact: Some(contact_body(upserted.contact)),
                error: None,
            },
            Err(error) => failed_result(index, &error.into()),
        });
    }
    Ok(Json(api::BatchResults {
        results: results.into_iter().flatten().collect(),
    }))
}

/// A failed item's members as sent, beside which its `index` and `error` are answered: an
/// item's own `index` or `error` member (refused as unknown) is left out, so the answer
/// never holds a member twice.
fn echo(item: &RawValue) -> Map<String, Value> {
    let mut members: Map<String, Value> = serde_json::from_str(item.get()).unwrap_or_default();
    members.remove("index");
    members.remove("error");
    members
}

/// Refuses a bulk body of more than [`MAX_BULK_ITEMS`] items, or one whose items are not
/// all objects, as a whole; `at` is the path of the array. The items stay raw JSON, each
/// read on its own.
fn bulk_items(items: Vec<Box<RawValue>>, at: &str) -> Result<Vec<Box<RawValue>>, ApiError> {
    if items.len() > MAX_BULK_ITEMS {
        return Err(ApiError::bad_request(
            "too_many_items",
            format!(
                "{} items were sent; at most {MAX_BULK_ITEMS} are accepted in one request",
                items.len()
            ),
            (!at.is_empty()).then(|| at.to_owned()),
        ));
    }
    if let Some(index) = items.iter().position(|item| !item.get().starts_with('{')) {
        return Err(ApiError::bad_request(
            "invalid_request",
            "every item must be a JSON object",
            Some(format!("{at}[{index}]")),
        ));
    }
    Ok(items)
}

/// Reads every item of a bulk body (each on its own), and the company's definitions when
/// any item that was read sets custom fields.
async fn read_items<T: serde::de::DeserializeOwned>(
    state: &AppState,
    caller: &Caller,
    items: &[Box<RawValue>],
    custom_fields: impl Fn(&T) -> &[api::CustomFieldInput],
) -> Result<(Vec<Result<T, ApiError>>, Arc<Vec<FieldDefinition>>), ApiError> {
    let parsed: Vec<Result<T, ApiError>> = items.iter().map(|item| parse_item(item)).collect();
    let uses_fields = parsed.iter().any(|item| {
        item.as_ref()
            .is_ok_and(|item| !custom_fields(item).is_empty())
    });
    let definitions = definitions_for(state, caller, uses_fields).await?;
    Ok((parsed, definitions))
}

/// Reads one item; one refused for a member of Alpharun's job openings says so.
///
/// Items are read without tracking the path of each member first (path tracking costs on
/// every member of every item of an import); only a refused item is read again, with it,
/// for the error.
fn parse_item<T: serde::de::DeserializeOwned>(item: &RawValue) -> Result<T, ApiError> {
    if let Ok(parsed) = serde_json::from_str(item.get()) {
        return Ok(parsed);
    }
    parse_json(item.get().as_bytes()).map_err(|error| {
        let members: Map<String, Value> = serde_json::from_str(item.get()).unwrap_or_default();
        match JOB_OPENING_MEMBERS
            .into_iter()
            .find(|member| members.contains_key(*member))
        {
            Some(member) => ApiError::bad_request(
                "unsupported_member",
                format!(
                    "`{member}` belongs to Alpharun's job openings, which contactd does not have"
                ),
                Some(member.to_owned()),
            ),
            None => error,
        }
    })
}

/// Checks a batch item and names the contact it matches by its `match_on` member.
fn upsert_item(
    state: &AppState,
    definitions: &[FieldDefinition],
    match_on: MatchOn,
    item: &api::UpsertContact,
) -> Result<ContactUpsert, ApiError> {
    let mut patch = member_changes(
        state,
        &item.email,
        &item.phone_number,
        &item.ext_id,
        &item.first_name,
        &item.last_name,
    )?;
    patch.set_values = field_writes(definitions, &item.custom_fields, "custom_fields")?;
    let key = match match_on {
        MatchOn::ExtId => patch.ext_id.clone().flatten().map(ContactIdentifier::ExtId),
        MatchOn::Email => patch.email.clone().flatten().map(ContactIdentifier::Email),
        MatchOn::PhoneNumber => patch
            .phone_number
            .clone()
            .flatten()
            .map(ContactIdentifier::PhoneNumber),
    };
    let key = key.ok_or_else(|| {
        ApiError::bad_request(
            "match_on_required",
            format!("each contact must carry a {match_on}, the batch's match_on member"),
            Some(match_on.as_str().to_owned()),
        )
    })?;
    Ok(ContactUpsert { key, patch })
}

fn duplicate_in_batch(match_on: MatchOn, first: usize) -> ApiError {
    ApiError::Conflict {
        code: "duplicate_in_batch".to_owned(),
        message: format!("item {first} of this batch has the same {match_on}"),
        field: Some(match_on.as_str().to_owned()),
        conflicting_contact_id: None,
    }
}

fn failed_result(index: usize, error: &ApiError) -> api::BatchResult {
    let error = error.body();
    api::BatchResult {
        index,
        status: error.error,
        created: None,
        contact: None,
        error: Some(error),
    }
}

/// Query of `GET /contacts/export`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ExportQuery {
    format: Option<api::ExportFormat>,
}

#[utoipa::path(
    get,
    path = "/api/v1/contacts/export",
    tag = "contacts",
    summary = "Export Contacts",
    description = "Every contact of your company, newest first, from one consistent snapshot, streamed. `ndjson` (the default): one contact object per line. `csv`: a header row `id,email,phone_number,ext_id,first_name,last_name,created_at,updated_at` and one column per custom field, named by its key, in key order; RFC 4180 quoting, an empty cell where there is no value.",
    params(("format" = Option<api::ExportFormat>, Query, description = "`ndjson` (default) or `csv`")),
    responses(
        (status = 200, description = "The contacts", headers(("x-total-count" = u64, description = "How many contacts the export holds")), content(
            (String = "application/x-ndjson"),
            (String = "text/csv"),
        )),
        (status = 400, description = "An unknown format or query parameter", body = api::ErrorBody),
        (status = 429, description = "Your company (2) or the server (4) runs as many exports at once as allowed; retry after `Retry-After` seconds", body = api::ErrorBody),
    )
)]
pub(super) async fn export_contacts(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiQuery(query): ApiQuery<ExportQuery>,
) -> Result<Response, ApiError> {
    let format = query.format.unwrap_or_default();
    let permit = state.exports.start(caller.company_id)?;
    let export = state
        .store
        .export_contacts(caller.company_id, state.stall_timeout)
        .await?;
    let total = export.total;
    let encoder = Encoder {
        format,
        fields: export.fields,
    };
    let head = stream::iter(encoder.head().map(Ok));
    let body = ExportBody {
        encoder,
        pages: Some(export.pages),
        sent: 0,
        total,
        _permit: permit,
    };
    let pages = stream::unfold(body, |mut body| async move {
        let chunk = body.next_chunk().await?;
        Some((chunk, body))
    });
    let (content_type, disposition) = match format {
        api::ExportFormat::Ndjson => (
            "application/x-ndjson",
            "attachment; filename=\"contacts.ndjson\"",
        ),
        api::ExportFormat::Csv => (
            "text/csv; charset=utf-8",
            "attachment; filename=\"contacts.csv\"",
        ),
    };
    Ok((
        [
            (
                HeaderName::from_static(TOTAL_COUNT_HEADER),
                HeaderValue::from(total),
            ),
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (
                header::CONTENT_DISPOSITION,
                HeaderValue::from_static(disposition),
            ),
        ],
        Body::from_stream(head.chain(pages)),
    )
        .into_response())
}

/// The body of a running export: its pages, encoded, counted against its total. A reader
/// that stopped early (its client stalled, or its snapshot held too much) ends the channel
/// before the last contact, and that must reach the client as an error, which ends the body
/// short, never as a complete-looking file.
struct ExportBody {
    encoder: Encoder,
    /// `None` once the body has failed.
    pages: Option<tokio::sync::mpsc::Receiver<crate::store::ExportPage>>,
    sent: u64,
    total: u64,
    /// Held until the body is dropped: the export counts against the budget until then.
    _permit: super::exports::ExportPermit,
}

impl ExportBody {
    async fn next_chunk(&mut self) -> Option<Result<Bytes, std::io::Error>> {
        let pages = self.pages.as_mut()?;
        let failure = match pages.recv().await {
            Some(Ok(contacts)) => {
                self.sent += contacts.len() as u64;
                return Some(self.encoder.page(contacts));
            }
            None if self.sent >= self.total => return None,
            Some(Err(error)) => error.to_string(),
            None => format!("it ended {} contacts short", self.total - self.sent),
        };
        // The status is sent already: end the body short, which the client sees as a broken
        // transfer rather than a complete file. Nothing is sent after the error.
        self.pages = None;
        tracing::error!(error = failure, "an export failed part way");
        Some(Err(std::io::Error::other("the export failed")))
    }
}

/// Turns pages of contacts into the bytes of an export.
struct Encoder {
    format: api::ExportFormat,
    /// The definitions of the snapshot, in key order: one CSV column each.
    fields: Vec<FieldDefinition>,
}

impl Encoder {
    /// What precedes the first contact: the CSV header row.
    fn head(&self) -> Option<Bytes> {
        match self.format {
            api::ExportFormat::Ndjson => None,
            api::ExportFormat::Csv => {
                let columns = api::CSV_COLUMNS
                    .iter()
                    .copied()
                    .chain(self.fields.iter().map(|field| field.key.as_str()));
                csv_rows(std::iter::once(columns.map(str::to_owned).collect())).ok()
            }
        }
    }

    fn page(&self, contacts: Vec<Contact>) -> Result<Bytes, std::io::Error> {
        match self.format {
            api::ExportFormat::Ndjson => {
                let mut out = Vec::with_capacity(contacts.len() * 256);
                for contact in contacts {
                    serde_json::to_writer(&mut out, &contact_body(contact))?;
                    out.push(b'\n');
                }
                Ok(out.into())
            }
            api::ExportFormat::Csv => {
                csv_rows(contacts.into_iter().map(|contact| self.csv_row(contact)))
            }
        }
    }

    /// A contact's CSV cells: its members, its timestamps, then a cell per definition,
    /// empty where the contact holds no value.
    fn csv_row(&self, contact: Contact) -> Vec<String> {
        let members = contact.members;
        let mut row = vec![
            contact.id.to_string(),
            members.email.unwrap_or_default(),
            members.phone_number.unwrap_or_default(),
            members.ext_id.unwrap_or_default(),
            members.first_name.unwrap_or_default(),
            members.last_name.unwrap_or_default(),
            api::format_timestamp(&contact.created_at),
            api::format_timestamp(&contact.updated_at),
        ];
        row.extend(self.fields.iter().map(|field| {
            contact
                .custom_fields
                .iter()
                .find(|value| value.field_id == field.id)
                .map(|value| match value.value.to_json() {
                    Value::String(text) => text,
                    other => other.to_string(),
                })
                .unwrap_or_default()
        }));
        row
    }
}

/// RFC 4180 rows: fields quoted where they need it, CRLF line ends.
fn csv_rows(rows: impl IntoIterator<Item = Vec<String>>) -> Result<Bytes, std::io::Error> {
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    for row in rows {
        writer.write_record(&row)?;
    }
    writer
        .into_inner()
        .map(Bytes::from)
        .map_err(|error| std::io::Error::other(error.to_string()))
}
