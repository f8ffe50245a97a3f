//! The HTTP edge: the router, its middleware, and one module per resource.
//!
//! A request flows one way: handlers parse the wire types into domain types, call the
//! store, and map the result (or the [`ApiError`]) back to the wire.

mod auth;
mod bulk;
mod cache;
mod contacts;
mod cursor;
mod custom_fields;
mod dashboard;
pub mod error;
pub mod exports;
mod extract;
mod health;
pub mod openapi;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::Response;
use axum::middleware::Next;
use tower_http::request_id::{
    MakeRequestUuid, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::trace::TraceLayer;
use tracing::Span;

use crate::domain::DefaultRegion;
use crate::password::PasswordChecker;
use crate::store::Store;
pub use custom_fields::{field_body, parse_new_field};
use error::ApiError;

/// What every handler shares.
#[derive(Debug, Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    /// The region numbers without a `+`/`00` prefix are read in (docs/reference.md#phone-numbers).
    pub default_region: DefaultRegion,
    /// The largest request body accepted, in bytes (docs/reference.md#body-limits).
    pub body_limit: usize,
    /// The largest body of the routes that take many contacts at once (docs/reference.md#11-bulk-batch-writes-import-and-export), in bytes.
    pub bulk_body_limit: usize,
    /// How long an export waits for its client to take the next page before it is
    /// abandoned, releasing its snapshot (`docs/robustness.md`).
    pub stall_timeout: Duration,
    /// How many exports may run at once.
    pub exports: Arc<exports::ExportBudget>,
    /// The one queue every password hash and check of the server goes through.
    pub password_checker: PasswordChecker,
    caches: Arc<cache::Caches>,
}

/// The default of [`AppState::stall_timeout`] and of the server's write stall timeout.
pub const DEFAULT_STALL_TIMEOUT: Duration = Duration::from_secs(60);

/// The default of [`AppState::bulk_body_limit`]: 1,000 contacts of 16 KiB each.
pub const DEFAULT_BULK_BODY_LIMIT: usize = 16 * 1024 * 1024;

impl AppState {
    /// The state of a server on `store`, its caches empty, with the default bulk limit and
    /// a password checker sized to this machine.
    pub fn new(store: Arc<dyn Store>, default_region: DefaultRegion, body_limit: usize) -> Self {
        Self {
            store,
            default_region,
            body_limit,
            bulk_body_limit: DEFAULT_BULK_BODY_LIMIT,
            stall_timeout: DEFAULT_STALL_TIMEOUT,
            exports: Arc::default(),
            password_checker: PasswordChecker::for_this_machine(),
            caches: Arc::default(),
        }
    }
}

/// The whole application: every route, its middleware, and the error fallbacks.
pub fn app(state: AppState) -> Router {
    let api = Router::new()
        .merge(contacts::router(state.bulk_body_limit))
        .merge(custom_fields::router())
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_api_key,
        ));
    Router::new()
        .nest("/api/v1", api)
        .merge(health::router())
        .merge(openapi::router())
        .merge(dashboard::router(state.clone()))
        .fallback(route_not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(state.body_limit))
        .layer(axum::middleware::from_fn(limit_headers))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(request_span)
                .on_request(())
                .on_response(log_response)
                .on_failure(()),
        )
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .with_state(state)
}

/// The largest request head accepted, and the most headers: generous for any real client
/// (a browser sends a few KiB), small enough that headers cannot be used to make the server
/// hold megabytes per request.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;
pub const MAX_HEADERS: usize = 200;

/// Refuses (431) a request whose headers are too large or too many, before anything else
/// reads them.
async fn limit_headers(request: Request, next: Next) -> Result<Response<Body>, ApiError> {
    let headers = request.headers();
    let size: usize = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if headers.len() > MAX_HEADERS || size > MAX_HEADER_BYTES {
        return Err(ApiError::HeadersTooLarge);
    }
    Ok(next.run(request).await)
}

/// The span every request's log line carries: method, route template (never the raw path,
/// which may hold an email or phone number), and request id. Headers are never recorded:
/// they carry the API key.
fn request_span(request: &Request) -> Span {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("(unmatched)", MatchedPath::as_str);
    let request_id = request
        .extensions()
        .get::<RequestId>()
        .and_then(|id| id.header_value().to_str().ok())
        .unwrap_or_default();
    tracing::info_span!("request", method = %request.method(), route, request_id)
}

/// The one log line of a request.
fn log_response<B>(response: &Response<B>, latency: Duration, _span: &Span) {
    tracing::info!(status = response.status().as_u16(), ?latency, "request");
}

async fn route_not_found() -> ApiError {
    ApiError::NotFound {
        code: "route_not_found",
        message: "no route matches this path".to_owned(),
    }
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}
