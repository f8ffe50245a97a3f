//! Typed async client for the contactd API, built on the wire types of `contactd_api`.
//!
//! Every method maps to one endpoint and returns the decoded response body, or an
//! [`Error`] that keeps the API's error body intact so a caller can act on its `code`,
//! `field` or `conflicting_contact_id`.

use std::fmt;

mod filter;
pub mod webhooks;

pub use filter::ContactFilter;

use std::collections::VecDeque;

use contactd_api::{
    BatchResults, Contact, ContactCount, ContactList, CreateContact, CreateCustomField,
    CreateWebhook, CustomField, CustomFieldList, DeletedContact, DeletedWebhook,
    DeliveryAttemptList, ErrorBody, Event, EventList, EventType, ExportFormat, ImportSummary,
    MatchOn, ScheduledDelivery, UpdateContact, UpdateCustomField, UpdateWebhook, Webhook,
    WebhookList,
};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::{Method, RequestBuilder, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Everything outside RFC 3986's unreserved set, so that `alt:ext_id:a/b` stays one
/// path segment instead of becoming two, and `?`, `#`, `%` cannot end the path early.
const PATH_SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// A connection to one contactd server, acting with one API key.
///
/// Cloning is cheap: clones share the underlying connection pool.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    /// Scheme, host and port, such as `http://127.0.0.1:8080`, without a trailing slash.
    base_url: String,
    api_key: String,
    /// Sent as `Idempotency-Key` with every write (see [`Client::idempotent`]).
    idempotency_key: Option<String>,
}

// Written by hand so that the API key never reaches a log line through `{:?}`.
impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base_url", &self.base_url)
            .field("api_key", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The server answered with an error status; the body is the API's error body.
    #[error("{} ({})", .0.message, .0.error)]
    Api(ErrorBody),
    /// The server answered 429 or 503 with `Retry-After`: nothing was done, and the same
    /// request may succeed after `retry_after` (docs/reference.md#rate-limits).
    #[error("{} ({}); retry after {retry_after:?}", .body.message, .body.error)]
    RetryLater {
        body: ErrorBody,
        retry_after: std::time::Duration,
    },
    /// The request could not be sent, or the response could not be read or decoded.
    /// (Its message is the one clause: what went wrong follows as its source, which a
    /// report of the error's chain prints once.)
    #[error("request to contactd failed")]
    Transport(#[from] reqwest::Error),
    /// The server answered with an error status whose body is not the API's error shape.
    #[error("unexpected response with status {status}: {body}")]
    UnexpectedResponse {
        /// The HTTP status code.
        status: u16,
        /// The response body, as text.
        body: String,
    },
}

/// A resource with its `ETag`: the version to name in `If-Match`.
#[derive(Debug, Clone, PartialEq)]
pub struct Tagged<T> {
    pub value: T,
    /// The entity tag as the server sent it, quotes included.
    pub etag: String,
}

/// The response header of an export that says how many contacts it holds.
pub const TOTAL_COUNT_HEADER: &str = "x-total-count";

/// An export being received: its body arrives in chunks as the server reads its pages, so
/// a caller can write it out without holding it in memory.
#[derive(Debug)]
pub struct Export {
    response: Response,
    total: Option<u64>,
}

impl Export {
    /// How many contacts the export holds, when the server said.
    pub fn total(&self) -> Option<u64> {
        self.total
    }

    /// The next chunk of the body, `None` at its end. A body cut short (the server failed
    /// part way, or the connection broke) is an error, never a silent end.
    pub async fn chunk(&mut self) -> Result<Option<bytes::Bytes>, Error> {
        Ok(self.response.chunk().await?)
    }
}

/// The company's change events, oldest first, read page by page from the feed
/// (`GET /api/v1/events`) following each page's `next_cursor`; made by [`Client::events`].
///
/// [`Events::next`] gives `None` once it has caught up with the feed; call it again later
/// to poll for what came since, or keep [`Events::cursor`] to resume in another process.
#[derive(Debug)]
pub struct Events {
    client: Client,
    types: Vec<EventType>,
    /// The cursor the page being given was read from.
    page_cursor: Option<String>,
    /// The page's `next_cursor`: where the feed goes on once the page is given.
    next_cursor: Option<String>,
    page: VecDeque<Event>,
}

impl Events {
    /// Events asked for per page: the feed's default (it allows up to 1,000), so a page held
    /// while it is given stays small.
    const PAGE: u32 = 100;

    /// The next event, or `None` when every event listed so far has been given.
    pub async fn next(&mut self) -> Result<Option<Event>, Error> {
        if self.page.is_empty() {
            let after = self.next_cursor.clone();
            let page = self
                .client
                .list_events(after.as_deref(), Some(Self::PAGE), &self.types)
                .await?;
            self.page = page.data.events.into();
            // The feed's next_cursor is always set, also on an empty page.
            self.next_cursor = page.next_cursor.or(after.clone());
            self.page_cursor = after;
        }
        Ok(self.page.pop_front())
    }

    /// A cursor to resume from with [`Client::events`]: past every event given, once the
    /// page being given is used up; before that, the start of that page, so resuming gives
    /// its events again rather than lose one (a receiver tells repeats by their `id`).
    /// `None` means the start of the feed.
    pub fn cursor(&self) -> Option<&str> {
        if self.page.is_empty() {
            self.next_cursor.as_deref()
        } else {
            self.page_cursor.as_deref()
        }
    }
}

/// Query of `GET /api/v1/contacts`; absent members are left out so the server's defaults
/// apply.
#[derive(Serialize)]
struct ListQuery<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    limit: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cursor: Option<&'a str>,
}

/// Query of `GET /api/v1/events`.
#[derive(Serialize)]
struct FeedQuery<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    after: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    limit: Option<u32>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    types: Option<String>,
}

impl Client {
    /// Creates a client for the server at `base_url` (such as `http://127.0.0.1:8080`)
    /// that authenticates every `/api/v1` call with `api_key`.
    ///
    /// A trailing slash on `base_url` is ignored.
    pub fn new(base_url: impl Into<String>, api_key: impl Into<String>) -> Client {
        Client {
            http: reqwest::Client::new(),
            base_url: base_url.into().trim_end_matches('/').to_owned(),
            api_key: api_key.into(),
            idempotency_key: None,
        }
    }

    /// This client, its writes (`POST`, `PATCH`, `DELETE`) sent with `Idempotency-Key: key`
    /// (docs/reference.md#idempotency): make one write with it, and repeat that write
    /// with it after a timeout or a lost connection. The write is done once; a repeat gets
    /// the first answer. A different write with the same key fails with
    /// `idempotency_key_reused`, and one made while the first still runs with
    /// [`Error::RetryLater`] of code `idempotency_in_progress`.
    pub fn idempotent(&self, key: impl Into<String>) -> Client {
        Client {
            idempotency_key: Some(key.into()),
            ..self.clone()
        }
    }

    /// Creates a contact (`POST /api/v1/contacts`).
    pub async fn create_contact(&self, body: &CreateContact) -> Result<Contact, Error> {
        send_json(self.api(Method::POST, "/contacts").json(body)).await
    }

    /// Fetches the contact named by `id`, in any identifier form
    /// (`GET /api/v1/contacts/{id}`).
    pub async fn get_contact(&self, id: &str) -> Result<Contact, Error> {
        send_json(self.api(Method::GET, &contact_path(id))).await
    }

    /// Fetches a contact with its version, to name in
    /// [`update_contact_if_match`](Self::update_contact_if_match) (docs/reference.md#etags).
    pub async fn get_contact_tagged(&self, id: &str) -> Result<Tagged<Contact>, Error> {
        send_tagged(self.api(Method::GET, &contact_path(id))).await
    }

    /// Updates the contact named by the body's `id` only if it is still at the version
    /// `etag` (`If-Match`): otherwise nothing is written and the call fails with
    /// [`Error::Api`] of code `precondition_failed`. A read-modify-write cycle that
    /// retries on it never loses another client's update.
    pub async fn update_contact_if_match(
        &self,
        body: &UpdateContact,
        etag: &str,
    ) -> Result<Tagged<Contact>, Error> {
        let request = self.api(Method::PATCH, "/contacts").json(body);
        send_tagged(request.header(reqwest::header::IF_MATCH, etag)).await
    }

    /// Deletes the contact named by `id` only if it is still at the version `etag`
    /// (`If-Match`), failing with `precondition_failed` otherwise.
    pub async fn delete_contact_if_match(
        &self,
        id: &str,
        etag: &str,
    ) -> Result<DeletedContact, Error> {
        let request = self.api(Method::DELETE, &contact_path(id));
        send_json(request.header(reqwest::header::IF_MATCH, etag)).await
    }

    /// Lists one page of contacts, newest first (`GET /api/v1/contacts`): [`Client::find_contacts`]
    /// with no filter.
    pub async fn list_contacts(
        &self,
        limit: Option<u32>,
        cursor: Option<&str>,
    ) -> Result<ContactList, Error> {
        self.find_contacts(&ContactFilter::new(), limit, cursor)
            .await
    }

    /// Lists one page of the contacts `filter` finds, in its order (`GET /api/v1/contacts`).
    ///
    /// `None` leaves `limit` to the server's default and starts from the first page; pass
    /// the previous page's `next_cursor` as `cursor`, with the same filter, to get the next.
    pub async fn find_contacts(
        &self,
        filter: &ContactFilter,
        limit: Option<u32>,
        cursor: Option<&str>,
    ) -> Result<ContactList, Error> {
        let query = ListQuery { limit, cursor };
        let request = self.api(Method::GET, "/contacts").query(&query);
        send_json(request.query(filter.pairs())).await
    }

    /// How many contacts `filter` finds (`GET /api/v1/contacts/count`).
    pub async fn count_contacts(&self, filter: &ContactFilter) -> Result<u64, Error> {
        let request = self
            .api(Method::GET, "/contacts/count")
            .query(filter.pairs());
        let counted: ContactCount = send_json(request).await?;
        Ok(counted.count)
    }

    /// Reads a page of the company's change events, oldest first, after the cursor `after`
    /// (from the oldest event kept when `None`), only of `types` when some are given
    /// (`GET /api/v1/events`). Its `next_cursor` is always set: pass it as `after` to poll.
    pub async fn list_events(
        &self,
        after: Option<&str>,
        limit: Option<u32>,
        types: &[EventType],
    ) -> Result<EventList, Error> {
        let names: Vec<&str> = types.iter().map(|kind| kind.as_str()).collect();
        let query = FeedQuery {
            after,
            limit,
            types: (!names.is_empty()).then(|| names.join(",")),
        };
        send_json(self.api(Method::GET, "/events").query(&query)).await
    }

    /// Reads a page of a contact's events, newest first
    /// (`GET /api/v1/contacts/{id}/history`); `next_cursor` is `None` on the last page.
    pub async fn contact_history(
        &self,
        id: &str,
        limit: Option<u32>,
        cursor: Option<&str>,
    ) -> Result<EventList, Error> {
        let query = ListQuery { limit, cursor };
        let path = format!("{}/history", contact_path(id));
        send_json(self.api(Method::GET, &path).query(&query)).await
    }

    /// Every event after the cursor `after` (from the oldest kept when `None`), only of
    /// `types` when some are given, one by one across pages; see [`Events`].
    pub fn events(&self, after: Option<&str>, types: &[EventType]) -> Events {
        Events {
            client: self.clone(),
            types: types.to_vec(),
            page_cursor: None,
            next_cursor: after.map(str::to_owned),
            page: VecDeque::new(),
        }
    }

    /// Creates a webhook endpoint (`POST /api/v1/webhooks`); the answer is the only one
    /// that carries its `secret`.
    pub async fn create_webhook(&self, body: &CreateWebhook) -> Result<Webhook, Error> {
        send_json(self.api(Method::POST, "/webhooks").json(body)).await
    }

    /// Lists the company's webhook endpoints (`GET /api/v1/webhooks`).
    pub async fn list_webhooks(&self) -> Result<WebhookList, Error> {
        send_json(self.api(Method::GET, "/webhooks")).await
    }

    /// Fetches one webhook endpoint (`GET /api/v1/webhooks/{id}`).
    pub async fn get_webhook(&self, id: &str) -> Result<Webhook, Error> {
        send_json(self.api(Method::GET, &webhook_path(id))).await
    }

    /// Changes the members given of an endpoint (`PATCH /api/v1/webhooks/{id}`).
    pub async fn update_webhook(&self, id: &str, body: &UpdateWebhook) -> Result<Webhook, Error> {
        send_json(self.api(Method::PATCH, &webhook_path(id)).json(body)).await
    }

    /// Gives an endpoint a new secret, in the answer only; the previous one keeps signing
    /// next to it for 24 hours (`POST /api/v1/webhooks/{id}/rotate-secret`).
    pub async fn rotate_webhook_secret(&self, id: &str) -> Result<Webhook, Error> {
        let path = format!("{}/rotate-secret", webhook_path(id));
        send_json(self.api(Method::POST, &path)).await
    }

    /// Deletes an endpoint and its pending deliveries (`DELETE /api/v1/webhooks/{id}`).
    pub async fn delete_webhook(&self, id: &str) -> Result<DeletedWebhook, Error> {
        send_json(self.api(Method::DELETE, &webhook_path(id))).await
    }

    /// Lists a page of an endpoint's delivery attempts, newest first
    /// (`GET /api/v1/webhooks/{id}/deliveries`); `next_cursor` is `None` on the last page.
    pub async fn list_deliveries(
        &self,
        id: &str,
        limit: Option<u32>,
        cursor: Option<&str>,
    ) -> Result<DeliveryAttemptList, Error> {
        let query = ListQuery { limit, cursor };
        let path = format!("{}/deliveries", webhook_path(id));
        send_json(self.api(Method::GET, &path).query(&query)).await
    }

    /// Sends an event to an endpoint again, now
    /// (`POST /api/v1/webhooks/{id}/deliveries/{event_id}/retry`).
    pub async fn retry_delivery(
        &self,
        id: &str,
        event_id: &str,
    ) -> Result<ScheduledDelivery, Error> {
        let path = format!(
            "{}/deliveries/{}/retry",
            webhook_path(id),
            encode_segment(event_id)
        );
        send_json(self.api(Method::POST, &path)).await
    }

    /// Updates the contact named by the body's `id` (`PATCH /api/v1/contacts`).
    pub async fn update_contact(&self, body: &UpdateContact) -> Result<Contact, Error> {
        send_json(self.api(Method::PATCH, "/contacts").json(body)).await
    }

    /// Updates the contact named by `id`, in any identifier form
    /// (`PATCH /api/v1/contacts/{id}`).
    ///
    /// If the body also carries an `id`, the server requires it to name the same contact.
    pub async fn update_contact_at(
        &self,
        id: &str,
        body: &UpdateContact,
    ) -> Result<Contact, Error> {
        send_json(self.api(Method::PATCH, &contact_path(id)).json(body)).await
    }

    /// Deletes the contact named by `id`, in any identifier form
    /// (`DELETE /api/v1/contacts/{id}`).
    pub async fn delete_contact(&self, id: &str) -> Result<DeletedContact, Error> {
        send_json(self.api(Method::DELETE, &contact_path(id))).await
    }

    /// Creates up to 1,000 contacts, each on its own (an array `POST /api/v1/contacts`).
    ///
    /// Each item is a create payload: a [`CreateContact`], or any JSON object, which the
    /// server checks item by item. Items that fail are in the summary's `failed_contacts`,
    /// with their index; the call itself fails only when the whole request is refused.
    pub async fn create_contacts<T: Serialize>(
        &self,
        contacts: &[T],
    ) -> Result<ImportSummary, Error> {
        send_json(self.api(Method::POST, "/contacts").json(contacts)).await
    }

    /// Updates or creates up to 1,000 contacts matched on `match_on`
    /// (`POST /api/v1/contacts/batch`); one result per item, in order.
    ///
    /// Each item is an [`contactd_api::UpsertContact`] or any JSON object, checked item by
    /// item as in [`Client::create_contacts`].
    pub async fn upsert_contacts<T: Serialize>(
        &self,
        match_on: MatchOn,
        contacts: &[T],
    ) -> Result<BatchResults, Error> {
        #[derive(Serialize)]
        struct Batch<'a, T> {
            match_on: MatchOn,
            contacts: &'a [T],
        }
        let body = Batch { match_on, contacts };
        send_json(self.api(Method::POST, "/contacts/batch").json(&body)).await
    }

    /// Starts an export of every contact of the company from one snapshot
    /// (`GET /api/v1/contacts/export`); read it with [`Export::chunk`].
    pub async fn export_contacts(&self, format: ExportFormat) -> Result<Export, Error> {
        let response = send(
            self.api(Method::GET, "/contacts/export")
                .query(&[("format", format.as_str())]),
        )
        .await?;
        let total = response
            .headers()
            .get(TOTAL_COUNT_HEADER)
            .and_then(|value| value.to_str().ok()?.parse().ok());
        Ok(Export { response, total })
    }

    /// Lists every custom field definition, ordered by key (`GET /api/v1/custom-fields`).
    pub async fn list_custom_fields(&self) -> Result<CustomFieldList, Error> {
        send_json(self.api(Method::GET, "/custom-fields")).await
    }

    /// Defines a custom field (`POST /api/v1/custom-fields`).
    pub async fn create_custom_field(
        &self,
        body: &CreateCustomField,
    ) -> Result<CustomField, Error> {
        send_json(self.api(Method::POST, "/custom-fields").json(body)).await
    }

    /// Fetches the custom field definition with this key
    /// (`GET /api/v1/custom-fields/{key}`).
    pub async fn get_custom_field(&self, key: &str) -> Result<CustomField, Error> {
        send_json(self.api(Method::GET, &custom_field_path(key))).await
    }

    /// Renames a custom field or adds options to a select field
    /// (`PATCH /api/v1/custom-fields/{key}`).
    pub async fn update_custom_field(
        &self,
        key: &str,
        body: &UpdateCustomField,
    ) -> Result<CustomField, Error> {
        send_json(self.api(Method::PATCH, &custom_field_path(key)).json(body)).await
    }

    /// Deletes a custom field definition and every value of it
    /// (`DELETE /api/v1/custom-fields/{key}`).
    pub async fn delete_custom_field(&self, key: &str) -> Result<(), Error> {
        // The acknowledgement body carries nothing the caller does not already know.
        send(self.api(Method::DELETE, &custom_field_path(key))).await?;
        Ok(())
    }

    /// Checks that the server process is alive (`GET /healthz`, no key needed).
    pub async fn health(&self) -> Result<(), Error> {
        send(self.http.get(format!("{}/healthz", self.base_url))).await?;
        Ok(())
    }

    /// Checks that the server can reach its database (`GET /readyz`, no key needed).
    pub async fn ready(&self) -> Result<(), Error> {
        send(self.http.get(format!("{}/readyz", self.base_url))).await?;
        Ok(())
    }

    /// Starts an authenticated request to `path` under `/api/v1`; `path` must already be
    /// encoded.
    fn api(&self, method: Method, path: &str) -> RequestBuilder {
        let is_write = matches!(method, Method::POST | Method::PATCH | Method::DELETE);
        let request = self
            .http
            .request(method, format!("{}/api/v1{path}", self.base_url))
            .bearer_auth(&self.api_key);
        match &self.idempotency_key {
            Some(key) if is_write => request.header("idempotency-key", key),
            _ => request,
        }
    }
}

/// Sends the request and decodes a success body as `T`.
async fn send_json<T: DeserializeOwned>(request: RequestBuilder) -> Result<T, Error> {
    Ok(send(request).await?.json().await?)
}

/// Sends the request and decodes a success body as `T`, with the response's `ETag`.
async fn send_tagged<T: DeserializeOwned>(request: RequestBuilder) -> Result<Tagged<T>, Error> {
    let response = send(request).await?;
    let etag = response
        .headers()
        .get(reqwest::header::ETAG)
        .and_then(|etag| etag.to_str().ok())
        .map(str::to_owned);
    let status = response.status().as_u16();
    let body = response.text().await?;
    match (etag, serde_json::from_str(&body)) {
        (Some(etag), Ok(value)) => Ok(Tagged { value, etag }),
        _ => Err(Error::UnexpectedResponse { status, body }),
    }
}

/// Sends the request and turns an error status into [`Error::Api`] when the body has the
/// API's error shape, or [`Error::UnexpectedResponse`] when it does not (a proxy's HTML
/// page, say).
async fn send(request: RequestBuilder) -> Result<Response, Error> {
    let response = request.send().await?;
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    // Seconds, as the server writes it (an HTTP date is not a form contactd sends).
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|value| value.to_str().ok()?.trim().parse().ok())
        .map(std::time::Duration::from_secs);
    let body = response.text().await?;
    Err(match serde_json::from_str::<ErrorBody>(&body) {
        Ok(body) => match retry_after {
            Some(retry_after) => Error::RetryLater { body, retry_after },
            None => Error::Api(body),
        },
        Err(_) => Error::UnexpectedResponse {
            status: status.as_u16(),
            body,
        },
    })
}

/// Path of one contact under `/api/v1`.
fn contact_path(id: &str) -> String {
    format!("/contacts/{}", encode_segment(id))
}

/// Path of one custom field definition under `/api/v1`.
fn custom_field_path(key: &str) -> String {
    format!("/custom-fields/{}", encode_segment(key))
}

/// Path of one webhook endpoint under `/api/v1`.
fn webhook_path(id: &str) -> String {
    format!("/webhooks/{}", encode_segment(id))
}

/// Percent-encodes `value` as a single URL path segment.
fn encode_segment(value: &str) -> String {
    utf8_percent_encode(value, PATH_SEGMENT).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_uuid_is_left_as_it_is() {
        let id = "0192f3a4-7b1c-7d2e-9f00-1234567890ab";
        assert_eq!(encode_segment(id), id);
    }

    #[test]
    fn an_alternate_identifier_stays_one_segment() {
        assert_eq!(encode_segment("alt:ext_id:a/b"), "alt%3Aext_id%3Aa%2Fb");
        assert_eq!(
            encode_segment("alt:email:jane+news@example.com"),
            "alt%3Aemail%3Ajane%2Bnews%40example.com"
        );
    }

    #[test]
    fn characters_that_would_end_or_alter_the_path_are_encoded() {
        assert_eq!(encode_segment("a?b#c%d e"), "a%3Fb%23c%25d%20e");
        assert_eq!(encode_segment("../x"), "..%2Fx");
    }

    #[test]
    fn non_ascii_is_encoded_as_utf8() {
        assert_eq!(encode_segment("é"), "%C3%A9");
    }

    #[test]
    fn requests_carry_the_encoded_identifier_the_query_and_the_key() {
        let client = Client::new("http://127.0.0.1:8080/", "cd_secret");
        let request = client
            .api(Method::GET, &contact_path("alt:ext_id:a/b?c"))
            .query(&ListQuery {
                limit: Some(5),
                cursor: None,
            })
            .build()
            .expect("the URL is valid");
        assert_eq!(
            request.url().as_str(),
            "http://127.0.0.1:8080/api/v1/contacts/alt%3Aext_id%3Aa%2Fb%3Fc?limit=5"
        );
        assert_eq!(
            request.headers()[reqwest::header::AUTHORIZATION],
            "Bearer cd_secret"
        );
    }

    #[test]
    fn the_debug_output_hides_the_api_key() {
        let client = Client::new("http://127.0.0.1:8080/", "cd_secret");
        let shown = format!("{client:?}");
        assert!(!shown.contains("cd_secret"));
        assert!(shown.contains("http://127.0.0.1:8080\""));
    }
}
