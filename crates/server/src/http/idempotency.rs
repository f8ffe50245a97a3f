//! Idempotency keys (docs/reference.md#idempotency): a `POST`, `PATCH` or `DELETE` sent
//! with `Idempotency-Key` runs once per company and key; a repeat of the same request gets
//! the first answer again, marked `Idempotent-Replayed: true`, and changes nothing.
//!
//! The claim, the answer and the expiry are rows of the store, so they hold across
//! instances of one PostgreSQL database and across restarts.

use contactd_api::ErrorCode;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{OriginalUri, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::AppState;
use super::error::ApiError;
use super::extract::buffered_body;
use crate::store::{
    Caller, IdempotencyClaim, IdempotentRequest, Store, StoreError, StoredResponse, now_ms,
};

/// The request header naming the key.
pub const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
/// The response header of an answer given again.
pub const IDEMPOTENT_REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");

/// How long a key and its answer are kept.
pub const RETENTION: Duration = Duration::from_secs(24 * 60 * 60);
/// How long a claim holds a key without an answer. A request runs for seconds at most
/// (writes wait 5 s for the database, bodies arrive before the claim); a claim this old
/// belongs to a process that died, and a repeat takes it over.
pub const LEASE: Duration = Duration::from_secs(60);
/// The longest key accepted, in bytes.
pub const MAX_KEY_LEN: usize = 255;
/// How many expired keys one delete removes.
const EXPIRY_BATCH: u32 = 1_000;
/// How often expired keys are deleted.
const EXPIRY_INTERVAL: Duration = Duration::from_secs(60);

/// The response headers kept with an answer: those that describe it. The others (the
/// request id, the rate-limit headers) belong to each repeat.
const KEPT_HEADERS: [HeaderName; 3] = [header::CONTENT_TYPE, header::ETAG, header::LOCATION];

/// Runs a write sent with an `Idempotency-Key` once: claims the key, runs the request on a
/// task of its own and records its answer; answers a repeat from the record. Runs after
/// authentication, which gives the company; every other request passes straight through.
pub async fn idempotent(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let Some(value) = request.headers().get(&IDEMPOTENCY_KEY) else {
        return Ok(next.run(request).await);
    };
    if !matches!(
        *request.method(),
        Method::POST | Method::PATCH | Method::DELETE
    ) {
        return Ok(next.run(request).await);
    }
    let key = parse_key(value)?;
    let company_id = request
        .extensions()
        .get::<Caller>()
        .ok_or_else(|| internal("an idempotent request reached no caller"))?
        .company_id;
    let (parts, body) = request.into_parts();
    let body = buffered_body(body, state.bulk_body_limit).await?;
    let claim = IdempotentRequest {
        company_id,
        key,
        fingerprint: fingerprint(&parts, &body),
        claim: Uuid::new_v4(),
        lease: LEASE,
        retention: RETENTION,
    };
    let store = state.store().clone();
    // A task of its own, so that a client going away mid-request cannot stop it between
    // its claim, its write and the record of its answer: it runs to the end either way.
    tokio::spawn(async move {
        match store.claim_idempotency_key(&claim).await? {
            IdempotencyClaim::Claimed => {}
            IdempotencyClaim::Answered(answer) => return Ok(replay(answer)),
            IdempotencyClaim::InProgress => return Err(ApiError::IdempotencyInProgress),
            IdempotencyClaim::Reused => return Err(ApiError::IdempotencyKeyReused),
        }
        let response = next.run(Request::from_parts(parts, Body::from(body))).await;
        Ok(settle(store, &claim, response).await)
    })
    .await
    .map_err(|error| internal(&format!("an idempotent request failed: {error}")))?
}

/// Reads an `Idempotency-Key`: 1 to 255 printable ASCII characters.
fn parse_key(value: &HeaderValue) -> Result<String, ApiError> {
    let bytes = value.as_bytes();
    let printable = bytes.iter().all(|byte| (b' '..=b'~').contains(byte));
    if bytes.is_empty() || bytes.len() > MAX_KEY_LEN || !printable {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidIdempotencyKey,
            format!("Idempotency-Key must be 1 to {MAX_KEY_LEN} printable ASCII characters"),
            Some("Idempotency-Key".to_owned()),
        ));
    }
    Ok(String::from_utf8_lossy(bytes).into_owned())
}

/// What makes two requests the same one: method, path with query, `If-Match` and body,
/// byte for byte.
fn fingerprint(parts: &Parts, body: &[u8]) -> [u8; 32] {
    let uri = parts
        .extensions
        .get::<OriginalUri>()
        .map_or(&parts.uri, |original| &original.0);
    let path = uri.path_and_query().map_or("", |path| path.as_str());
    let if_match = parts
        .headers
        .get(header::IF_MATCH)
        .map_or(&[][..], HeaderValue::as_bytes);
    let mut digest = Sha256::new();
    // Each part is length-prefixed, so that no two requests give one byte sequence.
    for part in [
        parts.method.as_str().as_bytes(),
        path.as_bytes(),
        if_match,
        body,
    ] {
        digest.update((part.len() as u64).to_le_bytes());
        digest.update(part);
    }
    digest.finalize().into()
}

/// Records the answer of a claimed request, or frees its key when the answer says nothing
/// was done that a repeat should not do again: a 429 or a 5xx. Answers the client either
/// way; a failure to record is logged, and the key then waits out its lease.
async fn settle(store: Arc<dyn Store>, claim: &IdempotentRequest, response: Response) -> Response {
    let (parts, body) = response.into_parts();
    let body = match buffered_body(body, usize::MAX).await {
        Ok(body) => body,
        Err(error) => {
            release(store.as_ref(), claim).await;
            return error.into_response();
        }
    };
    let status = parts.status;
    if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
        release(store.as_ref(), claim).await;
    } else {
        let answer = StoredResponse {
            status: status.as_u16(),
            headers: kept_headers(&parts.headers),
            body: body.to_vec(),
        };
        let recorded = store
            .answer_idempotency_key(claim.company_id, &claim.key, claim.claim, &answer)
            .await;
        if let Err(error) = recorded {
            tracing::warn!(%error, "could not record the answer of an idempotent request");
        }
    }
    Response::from_parts(parts, Body::from(body))
}

async fn release(store: &dyn Store, claim: &IdempotentRequest) {
    let released = store
        .release_idempotency_key(claim.company_id, &claim.key, claim.claim)
        .await;
    if let Err(error) = released {
        tracing::warn!(%error, "could not free the key of a failed idempotent request");
    }
}

fn kept_headers(headers: &HeaderMap) -> Vec<(String, String)> {
    KEPT_HEADERS
        .iter()
        .filter_map(|name| {
            let value = headers.get(name)?.to_str().ok()?;
            Some((name.as_str().to_owned(), value.to_owned()))
        })
        .collect()
}

/// A recorded answer, given again.
fn replay(answer: StoredResponse) -> Response {
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::OK);
    let mut response = (status, Bytes::from(answer.body)).into_response();
    let headers = response.headers_mut();
    for (name, value) in answer.headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::try_from(name),
            HeaderValue::try_from(value.as_str()),
        ) {
            headers.insert(name, value);
        }
    }
    headers.insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
    response
}

fn internal(message: &str) -> ApiError {
    ApiError::Internal(StoreError::Internal(message.to_owned()))
}

/// Deletes keys past their retention, a batch at a time, every minute, for as long as the
/// server runs.
pub async fn keep_expiring(store: Arc<dyn Store>) {
    loop {
        match delete_expired(store.as_ref(), RETENTION).await {
            Ok(0) => {}
            Ok(deleted) => tracing::info!(deleted, "deleted expired idempotency keys"),
            Err(error) => tracing::warn!(%error, "could not delete expired idempotency keys"),
        }
        tokio::time::sleep(EXPIRY_INTERVAL).await;
    }
}

/// Deletes every key claimed more than `retention` ago, a batch at a time, letting other
/// writes in between; returns how many it deleted.
pub async fn delete_expired(store: &dyn Store, retention: Duration) -> Result<u64, StoreError> {
    let cutoff = now_ms() - crate::store::duration_ms(retention);
    let mut deleted = 0;
    loop {
        let batch = store
            .delete_expired_idempotency_keys(cutoff, EXPIRY_BATCH)
            .await?;
        deleted += batch;
        if batch < u64::from(EXPIRY_BATCH) {
            return Ok(deleted);
        }
        tokio::task::yield_now().await;
    }
}
