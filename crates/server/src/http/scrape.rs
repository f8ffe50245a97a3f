//! The metrics listener's router (docs/reference.md#metrics): `GET /metrics` in the Prometheus
//! text format, and 404 for every other path. It is served on `--metrics-bind`, never on the
//! API's address, and its requests are not counted in the request metrics.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusHandle;

use crate::store::Store;

/// The content type of the Prometheus text exposition format.
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What a scrape reads: the recorder, and the store whose gauges are read at each scrape.
#[derive(Debug, Clone)]
struct Scrape {
    handle: PrometheusHandle,
    store: Arc<dyn Store>,
}

/// `GET /metrics`, rendering what `handle` recorded and the store's gauges of the moment,
/// the webhook gauges among them.
pub fn router(handle: PrometheusHandle, store: Arc<dyn Store>) -> Router {
    Router::new()
        .route("/metrics", get(scrape))
        .fallback(super::route_not_found)
        .method_not_allowed_fallback(super::method_not_allowed)
        .layer(axum::middleware::from_fn(super::limit_headers))
        .with_state(Scrape { handle, store })
}

async fn scrape(State(scrape): State<Scrape>) -> impl IntoResponse {
    scrape.store.record_gauges();
    crate::webhooks::delivery::record_gauges(scrape.store.as_ref()).await;
    ([(CONTENT_TYPE, PROMETHEUS_TEXT)], scrape.handle.render())
}
