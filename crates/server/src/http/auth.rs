//! Bearer authentication: every `/api/v1` route acts for the company of a valid API key.

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::Response;

use super::AppState;
use super::error::ApiError;
use crate::secret;

/// Resolves `Authorization: Bearer <key>` to its company and hands the request on with the
/// [`crate::store::Caller`] in its extensions; answers 401 otherwise.
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
        .caches
        .callers
        .get_or_fetch(hash, async {
            state
                .store
                .authenticate(&hash)
                .await?
                .ok_or(ApiError::Unauthorized("unknown or revoked API key"))
        })
        .await?;
    request.extensions_mut().insert(caller);
    Ok(next.run(request).await)
}
