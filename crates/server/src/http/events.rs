//! The change event endpoints (docs/reference.md#13-change-events-history-and-webhooks): the
//! company's feed and a contact's history.

use axum::extract::State;
use axum::routing::get;
use axum::{Extension, Router};
use contactd_api::ErrorCode;
use contactd_api::{self as api, EventType};
use serde::Deserialize;

use super::AppState;
use super::contacts::parse_identifier;
use super::error::ApiError;
use super::extract::{ApiQuery, Json, PathParam, next_cursor, page_cursor, page_limit};
use crate::cursor;
use crate::events;
use crate::store::Caller;

/// The largest page of the feed, and its size when none is asked for.
const MAX_FEED_PAGE: u32 = 1000;
const DEFAULT_FEED_PAGE: u32 = 100;
/// The largest page of a history, and its size when none is asked for.
const MAX_HISTORY_PAGE: u32 = 100;
const DEFAULT_HISTORY_PAGE: u32 = 20;

/// Routes under `/api/v1`: `/events` and `/contacts/{id}/history`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/events", get(list_events))
        .route("/contacts/{id}/history", get(contact_history))
}

/// Query of `GET /events`; unknown parameters are refused, not ignored.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FeedQuery {
    after: Option<String>,
    limit: Option<String>,
    #[serde(rename = "type")]
    types: Option<String>,
}

#[utoipa::path(
    get,
    path = "/api/v1/events",
    tag = "events",
    summary = "List Events",
    description = "Every change of your company, oldest first, each exactly once: poll with `next_cursor` as `after`, which is always given, also on an empty page. Without `after` the feed starts at the oldest event kept.",
    params(
        ("after" = Option<String>, Query, description = "The `next_cursor` of the previous page"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 1000, description = "Events per page, 1 to 1,000; 100 when omitted"),
        ("type" = Option<String>, Query, description = "Only these types, comma-separated, such as `contact.created,contact.updated`"),
    ),
    responses(
        (status = 200, description = "A page of events", body = api::EventList),
        (status = 400, description = "A bad limit or type, a cursor this server did not give this company, or an unknown parameter", body = api::ErrorBody),
        (status = 410, description = "The cursor is older than the event retention (`cursor_expired`)", body = api::ErrorBody),
    )
)]
pub(super) async fn list_events(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiQuery(query): ApiQuery<FeedQuery>,
) -> Result<Json<api::EventList>, ApiError> {
    let limit = page_limit(query.limit.as_deref(), DEFAULT_FEED_PAGE, MAX_FEED_PAGE)?;
    let after = page_cursor(query.after.as_deref(), "after", &caller, &[])?;
    let types = event_types(query.types.as_deref())?;
    let page = events::feed(&state.directory, caller.company_id, after, limit, &types).await?;
    Ok(Json(api::EventList {
        data: api::EventListData {
            events: page.events.into_iter().map(api::Event::from).collect(),
        },
        next_cursor: Some(cursor::encode(page.next, &caller.cursor_secret, &[])),
    }))
}

/// The types of `type=T1,T2`: none for every type.
fn event_types(text: Option<&str>) -> Result<Vec<EventType>, ApiError> {
    let Some(text) = text else {
        return Ok(Vec::new());
    };
    text.split(',')
        .map(|name| {
            EventType::from_name(name.trim()).ok_or_else(|| {
                let known: Vec<&str> = EventType::ALL.iter().map(|kind| kind.as_str()).collect();
                ApiError::bad_request(
                    ErrorCode::InvalidEventType,
                    format!(
                        "unknown event type {:?}: use one or more of {}, comma-separated",
                        name.trim(),
                        known.join(", ")
                    ),
                    Some("type".to_owned()),
                )
            })
        })
        .collect()
}

/// Query of `GET /contacts/{id}/history`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct HistoryQuery {
    cursor: Option<String>,
    limit: Option<String>,
}

#[utoipa::path(
    get,
    path = "/api/v1/contacts/{id}/history",
    tag = "events",
    summary = "Contact History",
    description = "A contact's events, newest first: who changed what, when. A deleted contact's history stays readable by its UUID for as long as its events are kept.",
    params(
        ("id" = String, Path, description = "The contact: its UUID, `alt:ext_id:<ext_id>`, `alt:email:<email>` or `alt:phone_number:<phone number>`, percent-encoded as one path segment"),
        ("cursor" = Option<String>, Query, description = "The `next_cursor` of the previous page"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 100, description = "Events per page, 1 to 100; 20 when omitted"),
    ),
    responses(
        (status = 200, description = "A page of the contact's events; `next_cursor` is `null` on the last", body = api::EventList),
        (status = 400, description = "A malformed identifier, a bad limit or cursor, or an unknown parameter", body = api::ErrorBody),
        (status = 404, description = "No contact of your company matches the identifier, and none with this UUID had events", body = api::ErrorBody),
    )
)]
pub(super) async fn contact_history(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    PathParam(id): PathParam,
    ApiQuery(query): ApiQuery<HistoryQuery>,
) -> Result<Json<api::EventList>, ApiError> {
    let identifier = parse_identifier(&state, &id, None)?;
    let limit = page_limit(
        query.limit.as_deref(),
        DEFAULT_HISTORY_PAGE,
        MAX_HISTORY_PAGE,
    )?;
    let before = page_cursor(query.cursor.as_deref(), "cursor", &caller, &[])?;
    let page = events::history(
        &state.directory,
        caller.company_id,
        &identifier,
        before,
        limit,
    )
    .await?;
    Ok(Json(api::EventList {
        data: api::EventListData {
            events: page.events.into_iter().map(api::Event::from).collect(),
        },
        next_cursor: next_cursor(page.next, &caller, &[]),
    }))
}
