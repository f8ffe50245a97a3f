//! The webhook endpoints (docs/reference.md#webhooks): endpoints and their settings,
//! secrets, the attempts made, and retries by hand.

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Extension, Router};
use contactd_api as api;
use contactd_api::ErrorCode;
use serde::Deserialize;
use uuid::Uuid;

use super::AppState;
use super::error::ApiError;
use super::extract::{ApiQuery, Json, PathParam, PathParams, next_cursor, page_cursor, page_limit};
use crate::store::Caller;
use crate::webhooks::{self, NewWebhookInput, WebhookChangeInput};

/// The largest page of attempts, and its size when none is asked for.
const MAX_ATTEMPT_PAGE: u32 = 100;
const DEFAULT_ATTEMPT_PAGE: u32 = 20;

/// Routes under `/api/v1`: `/webhooks` and below.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/webhooks", post(create_webhook).get(list_webhooks))
        .route(
            "/webhooks/{id}",
            get(get_webhook)
                .patch(update_webhook)
                .delete(delete_webhook),
        )
        .route("/webhooks/{id}/rotate-secret", post(rotate_secret))
        .route("/webhooks/{id}/deliveries", get(list_deliveries))
        .route(
            "/webhooks/{id}/deliveries/{event_id}/retry",
            post(retry_delivery),
        )
}

fn webhook_id(text: &str) -> Result<Uuid, ApiError> {
    Uuid::try_parse(text).map_err(|_| {
        ApiError::bad_request(
            ErrorCode::InvalidId,
            format!("{text:?} is not a webhook endpoint id: ids are UUIDs"),
            Some("id".to_owned()),
        )
    })
}

#[utoipa::path(
    post,
    path = "/api/v1/webhooks",
    tag = "webhooks",
    summary = "Create Webhook",
    description = "Adds an endpoint that receives the events listed from now on, signed per Standard Webhooks. The answer holds the endpoint's `secret`, shown here and on rotation only. The URL must be `http` or `https` on a public address (checked after DNS resolution) unless the server runs with `--webhook-allow-private`. A company has at most 50 endpoints.",
    request_body = api::CreateWebhook,
    responses(
        (status = 200, description = "The endpoint created, with its secret", body = api::Webhook),
        (status = 400, description = "A refused URL (`invalid_webhook_url`) or description", body = api::ErrorBody),
        (status = 409, description = "The company has 50 endpoints (`too_many_webhooks`)", body = api::ErrorBody),
    )
)]
pub(super) async fn create_webhook(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Json(body): Json<api::CreateWebhook>,
) -> Result<Json<api::Webhook>, ApiError> {
    let input = NewWebhookInput {
        url: body.url,
        event_types: body.event_types,
        description: body.description,
    };
    let created = webhooks::create(
        &state.directory,
        &state.webhook_destinations,
        caller.company_id,
        input,
    )
    .await?;
    Ok(Json(crate::wire::webhook_with_secret(created)))
}

#[utoipa::path(
    get,
    path = "/api/v1/webhooks",
    tag = "webhooks",
    summary = "List Webhooks",
    description = "Every endpoint of your company, oldest first, without their secrets.",
    responses((status = 200, description = "The endpoints", body = api::WebhookList))
)]
pub(super) async fn list_webhooks(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<api::WebhookList>, ApiError> {
    let list = webhooks::list(&state.directory, caller.company_id).await?;
    Ok(Json(api::WebhookList {
        data: api::WebhookListData {
            webhooks: list.into_iter().map(api::Webhook::from).collect(),
        },
    }))
}

#[utoipa::path(
    get,
    path = "/api/v1/webhooks/{id}",
    tag = "webhooks",
    summary = "Fetch Webhook",
    params(("id" = String, Path, description = "The endpoint's id")),
    responses(
        (status = 200, description = "The endpoint, without its secret", body = api::Webhook),
        (status = 400, description = "The id is not a UUID", body = api::ErrorBody),
        (status = 404, description = "No such endpoint in your company", body = api::ErrorBody),
    )
)]
pub(super) async fn get_webhook(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    PathParam(id): PathParam,
) -> Result<Json<api::Webhook>, ApiError> {
    let webhook = webhooks::find(&state.directory, caller.company_id, webhook_id(&id)?).await?;
    Ok(Json(webhook.into()))
}

#[utoipa::path(
    patch,
    path = "/api/v1/webhooks/{id}",
    tag = "webhooks",
    summary = "Update Webhook",
    description = "Changes the members given. `enabled: true` also resumes an endpoint the server disabled for failing, from the first event it had not delivered (as long as retention keeps it).",
    params(("id" = String, Path, description = "The endpoint's id")),
    request_body = api::UpdateWebhook,
    responses(
        (status = 200, description = "The endpoint changed, without its secret", body = api::Webhook),
        (status = 400, description = "A refused URL or description, or an id that is not a UUID", body = api::ErrorBody),
        (status = 404, description = "No such endpoint in your company", body = api::ErrorBody),
    )
)]
pub(super) async fn update_webhook(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    PathParam(id): PathParam,
    Json(body): Json<api::UpdateWebhook>,
) -> Result<Json<api::Webhook>, ApiError> {
    let id = webhook_id(&id)?;
    let input = WebhookChangeInput {
        url: body.url,
        event_types: body.event_types,
        enabled: body.enabled,
        description: body.description,
    };
    let updated = webhooks::update(
        &state.directory,
        &state.webhook_destinations,
        caller.company_id,
        id,
        input,
    )
    .await?;
    Ok(Json(updated.into()))
}

#[utoipa::path(
    delete,
    path = "/api/v1/webhooks/{id}",
    tag = "webhooks",
    summary = "Delete Webhook",
    description = "Deletes an endpoint with its attempts and the retries it waited for.",
    params(("id" = String, Path, description = "The endpoint's id")),
    responses(
        (status = 200, description = "The endpoint was deleted", body = api::DeletedWebhook),
        (status = 400, description = "The id is not a UUID", body = api::ErrorBody),
        (status = 404, description = "No such endpoint in your company", body = api::ErrorBody),
    )
)]
pub(super) async fn delete_webhook(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    PathParam(id): PathParam,
) -> Result<Json<api::DeletedWebhook>, ApiError> {
    let id = webhook_id(&id)?;
    webhooks::delete(&state.directory, caller.company_id, id).await?;
    Ok(Json(api::DeletedWebhook { id, deleted: true }))
}

#[utoipa::path(
    post,
    path = "/api/v1/webhooks/{id}/rotate-secret",
    tag = "webhooks",
    summary = "Rotate Webhook Secret",
    description = "Gives the endpoint a new secret, in the answer only. For 24 hours deliveries carry a signature by the old secret too, so receivers can switch without refusing one.",
    params(("id" = String, Path, description = "The endpoint's id")),
    responses(
        (status = 200, description = "The endpoint with its new secret", body = api::Webhook),
        (status = 400, description = "The id is not a UUID", body = api::ErrorBody),
        (status = 404, description = "No such endpoint in your company", body = api::ErrorBody),
    )
)]
pub(super) async fn rotate_secret(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    PathParam(id): PathParam,
) -> Result<Json<api::Webhook>, ApiError> {
    let rotated =
        webhooks::rotate_secret(&state.directory, caller.company_id, webhook_id(&id)?).await?;
    Ok(Json(crate::wire::webhook_with_secret(rotated)))
}

/// Query of `GET /webhooks/{id}/deliveries`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DeliveriesQuery {
    cursor: Option<String>,
    limit: Option<String>,
}

#[utoipa::path(
    get,
    path = "/api/v1/webhooks/{id}/deliveries",
    tag = "webhooks",
    summary = "List Webhook Deliveries",
    description = "The endpoint's delivery attempts, newest first: each with its event, its number, its outcome (`delivered`, `retrying` with `next_attempt_at`, or `failed`), the receiver's status or why there was none, and how long it took. Kept as long as events are.",
    params(
        ("id" = String, Path, description = "The endpoint's id"),
        ("cursor" = Option<String>, Query, description = "The `next_cursor` of the previous page"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 100, description = "Attempts per page, 1 to 100; 20 when omitted"),
    ),
    responses(
        (status = 200, description = "A page of attempts; `next_cursor` is `null` on the last", body = api::DeliveryAttemptList),
        (status = 400, description = "A bad limit or cursor, an unknown parameter, or an id that is not a UUID", body = api::ErrorBody),
        (status = 404, description = "No such endpoint in your company", body = api::ErrorBody),
    )
)]
pub(super) async fn list_deliveries(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    PathParam(id): PathParam,
    ApiQuery(query): ApiQuery<DeliveriesQuery>,
) -> Result<Json<api::DeliveryAttemptList>, ApiError> {
    let id = webhook_id(&id)?;
    let limit = page_limit(
        query.limit.as_deref(),
        DEFAULT_ATTEMPT_PAGE,
        MAX_ATTEMPT_PAGE,
    )?;
    let before = page_cursor(query.cursor.as_deref(), "cursor", &caller, &[])?;
    let page = webhooks::attempts(&state.directory, caller.company_id, id, before, limit).await?;
    Ok(Json(api::DeliveryAttemptList {
        data: api::DeliveryAttemptListData {
            deliveries: page.attempts.into_iter().map(Into::into).collect(),
        },
        next_cursor: next_cursor(page.next, &caller, &[]),
    }))
}

#[utoipa::path(
    post,
    path = "/api/v1/webhooks/{id}/deliveries/{event_id}/retry",
    tag = "webhooks",
    summary = "Retry Webhook Delivery",
    description = "Delivers an event to the endpoint again, now: also one whose delivery failed for good, or one the endpoint never had. An attempt after the end of the schedule is not retried if it fails.",
    params(
        ("id" = String, Path, description = "The endpoint's id"),
        ("event_id" = String, Path, description = "The event's id, `evt_…`"),
    ),
    responses(
        (status = 200, description = "The attempt is scheduled", body = api::ScheduledDelivery),
        (status = 400, description = "An id that is not a webhook or event id", body = api::ErrorBody),
        (status = 404, description = "No such endpoint (`webhook_not_found`) or event (`event_not_found`) in your company", body = api::ErrorBody),
    )
)]
pub(super) async fn retry_delivery(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    PathParams(id, event_id): PathParams,
) -> Result<Json<api::ScheduledDelivery>, ApiError> {
    let id = webhook_id(&id)?;
    let parsed = event_id
        .strip_prefix("evt_")
        .filter(|hex| hex.len() == 32)
        .and_then(|hex| Uuid::try_parse(hex).ok())
        .ok_or_else(|| {
            ApiError::bad_request(
                ErrorCode::InvalidEventId,
                format!(
                    "{:?} is not an event id: event ids are evt_ and 32 hex digits",
                    event_id
                ),
                Some("event_id".to_owned()),
            )
        })?;
    let scheduled = webhooks::retry(&state.directory, caller.company_id, id, parsed).await?;
    Ok(Json(api::ScheduledDelivery {
        event_id: format!("evt_{}", parsed.simple()),
        attempt: scheduled.attempt,
        next_attempt_at: chrono::DateTime::from_timestamp_millis(scheduled.due_at)
            .unwrap_or_default(),
    }))
}
