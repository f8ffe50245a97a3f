//! Request extractors and the JSON response type, replacing axum's own so that every
//! rejection (bad JSON, wrong content type, too large, bad path or query) is an [`ApiError`]
//! naming the member at fault, and every JSON response says `charset=utf-8` and ends with a
//! line end.

use axum::body::{Body, Bytes};
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use contactd_api::ErrorCode;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::AppState;
use super::error::ApiError;
use crate::cursor;
use crate::store::Caller;

/// The `Content-Type` of every JSON response.
const JSON_CONTENT_TYPE: &str = "application/json; charset=utf-8";

/// A JSON request body (extractor) or response body.
#[derive(Debug)]
pub struct Json<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, ApiError> {
        if !is_json(request.headers().get(header::CONTENT_TYPE)) {
            return Err(ApiError::UnsupportedMediaType);
        }
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| body_rejection(rejection, state.body_limit))?;
        parse_json(&bytes).map(Json)
    }
}

/// A JSON request body not parsed yet, for the routes that take one contact or many: its
/// content type checked and its size held to the bulk limit.
#[derive(Debug)]
pub struct JsonBody(pub Bytes);

impl FromRequest<AppState> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, ApiError> {
        if !is_json(request.headers().get(header::CONTENT_TYPE)) {
            return Err(ApiError::UnsupportedMediaType);
        }
        Bytes::from_request(request, state)
            .await
            .map(JsonBody)
            .map_err(|rejection| body_rejection(rejection, state.bulk_body_limit))
    }
}

/// A value as a JSON response body: compact, then a line end, so that a response printed in
/// a terminal does not run into the prompt (docs/reference.md#2-wire-conventions).
pub fn json_body<T: Serialize>(value: &T) -> serde_json::Result<Vec<u8>> {
    let mut body = serde_json::to_vec(value)?;
    body.push(b'\n');
    Ok(body)
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        match json_body(&self.0) {
            Ok(body) => (
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static(JSON_CONTENT_TYPE),
                )],
                body,
            )
                .into_response(),
            Err(error) => {
                tracing::error!(%error, "response serialisation failed");
                StatusCode::INTERNAL_SERVER_ERROR.into_response()
            }
        }
    }
}

/// `application/json`, with or without parameters, in any case.
fn is_json(content_type: Option<&HeaderValue>) -> bool {
    content_type
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"))
}

fn body_rejection(rejection: BytesRejection, limit: usize) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::PayloadTooLarge(limit)
    } else if caused_by::<tower_http::timeout::TimeoutError>(&rejection) {
        ApiError::BodyTimeout
    } else {
        ApiError::bad_request(ErrorCode::InvalidBody, rejection.body_text(), None)
    }
}

/// A whole body of at most `limit` bytes, for a middleware that must read it before the
/// handler does; refused as the extractors refuse it.
pub async fn buffered_body(body: Body, limit: usize) -> Result<Bytes, ApiError> {
    axum::body::to_bytes(body, limit).await.map_err(|error| {
        if caused_by::<http_body_util::LengthLimitError>(&error) {
            ApiError::PayloadTooLarge(limit)
        } else if caused_by::<tower_http::timeout::TimeoutError>(&error) {
            ApiError::BodyTimeout
        } else {
            ApiError::bad_request(
                ErrorCode::InvalidBody,
                "the request body could not be read",
                None,
            )
        }
    })
}

/// Whether an error, or one of its causes, is an `E`.
fn caused_by<E: std::error::Error + 'static>(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(error) = cause {
        if error.is::<E>() {
            return true;
        }
        cause = error.source();
    }
    false
}

/// The most an error repeats of what the request said (a member name, a value), in
/// characters: enough to find it, never enough for one request to make a huge response.
const MAX_ECHO_CHARS: usize = 200;

fn bounded(text: String) -> String {
    match text.char_indices().nth(MAX_ECHO_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

/// Parses a JSON body, naming the member at fault when its shape or type is wrong.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = bounded(error.path().to_string());
        let inner = error.into_inner();
        if inner.is_data() {
            let field = (path != ".").then_some(path);
            let message = bounded(match &field {
                Some(field) => format!(
                    "invalid request member `{field}`: {}",
                    without_position(&inner)
                ),
                None => format!("invalid request body: {}", without_position(&inner)),
            });
            ApiError::bad_request(ErrorCode::InvalidRequest, message, field)
        } else {
            ApiError::bad_request(
                ErrorCode::InvalidJson,
                bounded(format!(
                    "the request body is not valid JSON: {}",
                    without_position(&inner)
                )),
                None,
            )
        }
    })?;
    deserializer.end().map_err(|error| {
        ApiError::bad_request(
            ErrorCode::InvalidJson,
            format!(
                "the request body is not valid JSON: {}",
                without_position(&error)
            ),
            None,
        )
    })?;
    Ok(value)
}

/// A JSON error's sentence without serde's "at line 1 column 8": the client sent one
/// body, and a position in it is the parser's, not a rule of the API.
fn without_position(error: &serde_json::Error) -> String {
    let text = error.to_string();
    let position = format!(" at line {} column {}", error.line(), error.column());
    text.strip_suffix(&position).unwrap_or(&text).to_owned()
}

/// Query parameters, each refused by name: an unknown one (the message lists those the
/// route takes), one given twice, or one whose value is not of its kind.
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or_default().as_bytes();
        let allowed = serde_aux::serde_introspection::serde_introspect::<T>();
        for (name, _) in query_pairs(query)? {
            if !allowed.contains(&name.as_str()) {
                return Err(query_error(&name, unknown_parameter(&name, allowed)));
            }
        }
        let deserializer = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query));
        serde_path_to_error::deserialize(deserializer)
            .map(ApiQuery)
            .map_err(|error| {
                let name = error.path().to_string();
                let message = format!("invalid query parameter `{name}`: {}", error.inner());
                query_error(&name, message)
            })
    }
}

/// A query string as its `name=value` pairs, percent-decoded, for a route whose names are
/// not all known in advance (the `cf.KEY` filters of a contact list); the route refuses the
/// names it does not take. A name given twice is refused here.
#[derive(Debug)]
pub struct QueryPairs(pub Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for QueryPairs {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        query_pairs(parts.uri.query().unwrap_or_default().as_bytes()).map(QueryPairs)
    }
}

/// The pairs of a query string; a name given twice is refused.
fn query_pairs(query: &[u8]) -> Result<Vec<(String, String)>, ApiError> {
    let mut pairs: Vec<(String, String)> = Vec::new();
    for (name, value) in form_urlencoded::parse(query) {
        if pairs.iter().any(|(seen, _)| *seen == name) {
            let message = format!("the query parameter `{name}` is given more than once");
            return Err(query_error(&name, message));
        }
        pairs.push((name.into_owned(), value.into_owned()));
    }
    Ok(pairs)
}

fn unknown_parameter(name: &str, allowed: &[&str]) -> String {
    let quoted: Vec<String> = allowed.iter().map(|name| format!("`{name}`")).collect();
    match quoted.as_slice() {
        [] => format!("unknown query parameter `{name}`: this route takes none"),
        [only] => format!("unknown query parameter `{name}`: this route takes {only}"),
        _ => format!(
            "unknown query parameter `{name}`: this route takes {}",
            quoted.join(", ")
        ),
    }
}

fn query_error(name: &str, message: String) -> ApiError {
    ApiError::bad_request(
        ErrorCode::InvalidQuery,
        bounded(message),
        Some(bounded(name.to_owned())),
    )
}

/// A page size from the query parameter `limit`: `default` when absent, else an integer
/// from 1 to `max`.
pub fn page_limit(text: Option<&str>, default: u32, max: u32) -> Result<u32, ApiError> {
    let Some(text) = text else {
        return Ok(default);
    };
    Some(text)
        .filter(|text| text.bytes().all(|byte| byte.is_ascii_digit()))
        .and_then(|text| text.parse::<u32>().ok())
        .filter(|limit| (1..=max).contains(limit))
        .ok_or_else(|| {
            ApiError::bad_request(
                ErrorCode::InvalidLimit,
                format!("limit must be an integer from 1 to {max}"),
                Some("limit".to_owned()),
            )
        })
}

/// A page cursor from the query parameter `name`, as [`cursor::encode`] made it for this
/// company, this list and this `query` (the list's filters and order; empty for a list
/// that has none).
pub fn page_cursor<P: cursor::Position>(
    text: Option<&str>,
    name: &str,
    caller: &Caller,
    query: &[u8],
) -> Result<Option<P>, ApiError> {
    text.map(|text| {
        cursor::decode(text, &caller.cursor_secret, query).ok_or_else(|| {
            let list = if query.is_empty() {
                "this list"
            } else {
                "this list with these filters and this sort"
            };
            ApiError::bad_request(
                ErrorCode::InvalidCursor,
                format!("{name} is not one this server gave you for {list}"),
                Some(name.to_owned()),
            )
        })
    })
    .transpose()
}

/// The `next_cursor` of a page: where the next page starts, encoded for this company and
/// `query` (as [`page_cursor`] takes it), or `None` on the last page.
pub fn next_cursor<P: cursor::Position>(
    next: Option<P>,
    caller: &Caller,
    query: &[u8],
) -> Option<String> {
    next.map(|next| cursor::encode(next, &caller.cursor_secret, query))
}

/// The single path parameter of a route (a contact identifier or a field key),
/// percent-decoded.
#[derive(Debug)]
pub struct PathParam(pub String);

impl<S: Send + Sync> FromRequestParts<S> for PathParam {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        path_segments(parts, state).await.map(PathParam)
    }
}

/// The two parameters of a route such as `/webhooks/{id}/deliveries/{event_id}/retry`,
/// each percent-decoded.
#[derive(Debug)]
pub struct PathParams(pub String, pub String);

impl<S: Send + Sync> FromRequestParts<S> for PathParams {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        path_segments(parts, state)
            .await
            .map(|(first, second)| PathParams(first, second))
    }
}

/// A route's parameters, or the API's error for a path that does not decode.
async fn path_segments<S: Send + Sync, T: DeserializeOwned + Send>(
    parts: &mut Parts,
    state: &S,
) -> Result<T, ApiError> {
    Path::from_request_parts(parts, state)
        .await
        .map(|Path(value)| value)
        .map_err(|rejection: PathRejection| {
            ApiError::bad_request(ErrorCode::InvalidPath, bounded(rejection.body_text()), None)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code, reason = "only deserialised")]
    struct Body {
        name: String,
    }

    fn refusal(json: &str) -> (String, Option<String>) {
        match parse_json::<Body>(json.as_bytes()) {
            Err(ApiError::BadRequest { code, field, .. }) => (code.as_str().to_owned(), field),
            other => panic!("expected a 400, got {other:?}"),
        }
    }

    #[test]
    fn unknown_members_are_named() {
        assert_eq!(
            refusal(r#"{"name": "a", "nmae": "b"}"#),
            ("invalid_request".to_owned(), Some("nmae".to_owned()))
        );
    }

    #[test]
    fn wrong_types_name_the_member() {
        assert_eq!(
            refusal(r#"{"name": 3}"#),
            ("invalid_request".to_owned(), Some("name".to_owned()))
        );
    }

    #[test]
    fn syntax_errors_and_trailing_data_are_invalid_json() {
        assert_eq!(refusal(r#"{"name": "#).0, "invalid_json");
        assert_eq!(refusal(r#"{"name": "a"} x"#).0, "invalid_json");
    }

    #[test]
    fn content_type_parameters_and_case_are_accepted() {
        assert!(is_json(Some(&HeaderValue::from_static(
            "Application/JSON; charset=utf-8"
        ))));
        assert!(!is_json(Some(&HeaderValue::from_static("text/plain"))));
        assert!(!is_json(None));
    }
}
