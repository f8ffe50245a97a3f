//! Bearer authentication: every `/api/v1` route acts for the company of a valid API key.

use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::error::ApiError;
use super::rate_limit::Admission;
use super::scopes::required_scope;
use crate::store::{Actor, KeyUse, StoreError};
use crate::{prometheus, secret};

/// Resolves `Authorization: Bearer <key>` to its company and hands the request on with the
/// [`crate::store::Caller`] in its extensions; answers 401 otherwise, and 403 when the key
/// lacks the scope the route needs.
pub async fn require_api_key(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let header = request
        .headers()
        .get(header::AUTHORIZATION)
        .ok_or(ApiError::Unauthorized(
            "missing API key: send Authorization: Bearer <key>",
        ))?;
    let key = header
        .to_str()
        .ok()
        .and_then(|value| value.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, key)| key.trim())
        .filter(|key| !key.is_empty())
        .ok_or(ApiError::Unauthorized(
            "malformed Authorization header: expected Bearer <key>",
        ))?;
    let hash = secret::hash(key);
    // Unknown keys fail the fetch and are never cached, so guessing cannot fill the cache.
    let caller = state
        .callers
        .get_or_fetch(hash, async {
            let found = state
                .store()
                .authenticate(&hash)
                .await?
                .ok_or(ApiError::Unauthorized("unknown or revoked API key"))?;
            record_use(&state, &found);
            Ok::<_, ApiError>(found.caller)
        })
        .await?;
    // Every request of a key counts against its bucket, also one its scopes refuse.
    let rate = match caller.actor {
        Actor::ApiKey(key_id) => state.rate_limits.admit(key_id, caller.rate_limit),
        _ => Admission::Unlimited,
    };
    let rate_headers = match rate {
        Admission::Unlimited => None,
        Admission::Admitted(headers) => Some(headers),
        Admission::Refused {
            headers,
            retry_after,
        } => {
            metrics::counter!(prometheus::RATE_LIMITED).increment(1);
            let mut response = ApiError::RateLimited { retry_after }.into_response();
            headers.apply(response.headers_mut());
            return Ok(response);
        }
    };
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("", MatchedPath::as_str);
    let needed = required_scope(request.method(), route).ok_or_else(|| {
        ApiError::Internal(StoreError::Internal(format!(
            "the route {route} names no scope"
        )))
    })?;
    let mut response = if caller.scopes.contains(&needed) {
        request.extensions_mut().insert(caller);
        next.run(request).await
    } else {
        ApiError::InsufficientScope { needed }.into_response()
    };
    if let Some(headers) = rate_headers {
        headers.apply(response.headers_mut());
    }
    Ok(response)
}

/// How often a key's `last_used_at` is rewritten: often enough for a listing to be
/// useful, rarely enough that reads do not all turn into writes.
const LAST_USED_RESOLUTION_MS: i64 = 60_000;

/// Records the key's use when its `last_used_at` is older than the resolution, without
/// making the request wait for it: a read must never wait for the SQLite writer, which
/// another process may hold for seconds (`docs/robustness.md`). A lost update of this
/// bookkeeping is only logged; the next request a minute on writes it again.
fn record_use(state: &AppState, found: &KeyUse) {
    let now = crate::store::now_ms();
    if found
        .last_used_at
        .is_some_and(|at| now - at < LAST_USED_RESOLUTION_MS)
    {
        return;
    }
    let store = state.store().clone();
    let key_id = found.key_id;
    tokio::spawn(async move {
        if let Err(error) = store.touch_api_key(key_id, now).await {
            tracing::warn!(%error, "could not record an API key's use");
        }
    });
}
