//! The export (docs/reference.md#11-bulk-batch-writes-import-and-export): every contact of the company from one snapshot, streamed as NDJSON or
//! CSV while it is read.

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderName, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use contactd_api as api;
use futures_util::{StreamExt, stream};
use serde::Deserialize;

use super::AppState;
use super::error::ApiError;
use super::export_budget::ExportPermit;
use super::extract::ApiQuery;
use crate::contacts;
use crate::store::{Caller, Contact, ExportPage, FieldDefinition};

/// The response header of an export that says how many contacts it holds, so a client can
/// show progress.
const TOTAL_COUNT_HEADER: &str = "x-total-count";

/// `GET /api/v1/contacts/export`.
pub fn router() -> Router<AppState> {
    Router::new().route("/contacts/export", get(export_contacts))
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
    let export = contacts::export(&state.directory, caller.company_id, state.stall_timeout).await?;
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
    pages: Option<tokio::sync::mpsc::Receiver<ExportPage>>,
    sent: u64,
    total: u64,
    /// Held until the body is dropped: the export counts against the budget until then.
    _permit: ExportPermit,
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
                    serde_json::to_writer(&mut out, &api::Contact::from(contact))?;
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
                // The canonical text: a string as it is, a number or boolean as JSON writes it.
                .map(|value| value.value.to_storage())
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
