//! The HTTP edge: the router, its middleware, and one module per resource.
//!
//! A request flows one way: handlers read the wire types into the use cases' inputs
//! (`crate::wire`), call the use cases ([`crate::contacts`], [`crate::custom_fields`]), and
//! map the result (or the [`ApiError`]) back to the wire.

mod auth;
mod batch;
mod bulk_items;
mod contacts;
mod custom_fields;
mod dashboard;
pub mod error;
mod events;
mod export;
pub mod export_budget;
mod extract;
mod health;
pub mod idempotency;
pub mod openapi;
mod preconditions;
pub mod rate_limit;
mod request_metrics;
mod scopes;
pub mod scrape;
mod state;
mod webhooks;

use contactd_api::ErrorCode;
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

use error::ApiError;
pub(crate) use extract::json_body;
use request_metrics::RequestMetrics;
pub use state::AppState;

/// The whole application: every route, its middleware, and the error fallbacks.
pub fn app(state: AppState) -> Router {
    let api = Router::new()
        .merge(contacts::router(state.bulk_body_limit))
        .merge(batch::router(state.bulk_body_limit))
        .merge(export::router())
        .merge(custom_fields::router())
        .merge(events::router())
        .merge(webhooks::router())
        // Layers run last added first: the key is authenticated before its company's
        // idempotency keys are looked up.
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            idempotency::idempotent,
        ))
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
        .layer(axum::middleware::from_fn_with_state(
            RequestMetrics::new(),
            request_metrics::record_request,
        ))
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
        code: ErrorCode::RouteNotFound,
        message: "no route matches this path".to_owned(),
    }
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}
