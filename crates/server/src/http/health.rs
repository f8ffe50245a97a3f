//! Liveness and readiness probes (docs/reference.md#health-probes); neither needs a key.

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use contactd_api as api;

use super::AppState;
use super::error::ApiError;
use super::extract::Json;
use crate::{store, version};

/// `/healthz` and `/readyz`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(alive))
        .route("/readyz", get(ready))
}

/// The process is up and serving.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    summary = "Liveness",
    security(()),
    responses((status = 200, description = "The process is up", body = api::Status))
)]
pub(super) async fn alive() -> Json<api::Status> {
    Json(status("ok"))
}

/// The database answers; 503 otherwise, so a load balancer stops sending traffic here.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    summary = "Readiness",
    security(()),
    responses(
        (status = 200, description = "The database answers", body = api::Status),
        (status = 503, description = "The database cannot be reached", body = api::ErrorBody),
    )
)]
pub(super) async fn ready(State(state): State<AppState>) -> Result<Json<api::Status>, ApiError> {
    state.store().ping().await.map_err(|error| {
        tracing::warn!(%error, "readiness check failed");
        ApiError::Unavailable
    })?;
    Ok(Json(status("ready")))
}

/// A probe's answer: what it found, and what this server is (docs/reference.md#version).
fn status(status: &str) -> api::Status {
    api::Status {
        status: status.to_owned(),
        version: version::RELEASE.to_owned(),
        commit: version::COMMIT.map(str::to_owned),
        schema_version: store::schema_version(),
    }
}
