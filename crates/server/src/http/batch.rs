//! The batch upsert (docs/reference.md#11-bulk-batch-writes-import-and-export): `POST /contacts/batch`, up to 1,000 contacts each matched on one
//! member, each applied and answered on its own.

use axum::extract::{DefaultBodyLimit, State};
use axum::routing::post;
use axum::{Extension, Router};
use contactd_api as api;

use super::AppState;
use super::bulk_items::{bulk_items, read_each};
use super::error::ApiError;
use super::extract::{Json, JsonBody, parse_json};
use crate::contacts::{self, UpsertInput};
use crate::store::{Caller, UpsertOutcome};

/// `POST /api/v1/contacts/batch`, which admits bodies up to `bulk_body_limit`.
pub fn router(bulk_body_limit: usize) -> Router<AppState> {
    Router::new().route(
        "/contacts/batch",
        post(upsert_contacts).layer(DefaultBodyLimit::max(bulk_body_limit)),
    )
}

#[utoipa::path(
    post,
    path = "/api/v1/contacts/batch",
    tag = "contacts",
    summary = "Upsert Contacts",
    description = "Up to 1,000 contacts, each matched on its `match_on` member (which it must carry): one that names an existing contact updates it (an omitted member is kept, `null` clears it, `custom_fields` sets the keys it names), any other creates a contact. Each item is applied on its own and answered in `results`, in request order; an item whose `match_on` value repeats an earlier item's fails with 409 `duplicate_in_batch`.",
    request_body = api::BatchUpsert,
    responses(
        (status = 200, description = "One result per item", body = api::BatchResults),
    )
)]
pub(super) async fn upsert_contacts(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    JsonBody(body): JsonBody,
) -> Result<Json<api::BatchResults>, ApiError> {
    let body: api::BatchUpsert = parse_json(&body)?;
    let items = bulk_items(body.contacts, "contacts")?;
    let (read, unreadable) = read_each::<api::UpsertContact>(&items);
    let mut results: Vec<Option<api::BatchResult>> = vec![None; items.len()];
    for (index, error) in unreadable {
        results[index] = Some(failed_result(index, &error));
    }
    let inputs = read
        .into_iter()
        .map(|(index, item)| (index, UpsertInput::from(item)))
        .collect();
    let outcomes = contacts::upsert_many(
        &state.directory,
        caller.company_id,
        &caller.actor,
        body.match_on.into(),
        inputs,
    )
    .await?;
    for (index, outcome) in outcomes {
        results[index] = Some(match outcome {
            Ok(upserted) => api::BatchResult {
                index,
                status: 200,
                created: Some(upserted.outcome == UpsertOutcome::Created),
                changed: Some(upserted.outcome != UpsertOutcome::Unchanged),
                contact: Some(upserted.contact.into()),
                error: None,
            },
            Err(failure) => failed_result(index, &failure.into()),
        });
    }
    Ok(Json(api::BatchResults {
        results: results.into_iter().flatten().collect(),
    }))
}

fn failed_result(index: usize, error: &ApiError) -> api::BatchResult {
    let error = error.body();
    api::BatchResult {
        index,
        status: error.error,
        created: None,
        changed: None,
        contact: None,
        error: Some(error),
    }
}
