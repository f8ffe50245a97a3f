//! The webhook pages: the company's endpoints with the form to add one, and an endpoint's
//! page with its settings, its recent delivery attempts and what can be done to it (disable
//! or enable, rotate its secret, delete, retry a delivery). Every change goes through the
//! webhook use cases ([`crate::webhooks`]), so the rules of docs/reference.md#webhooks and
//! the sentences are the API's. A secret is shown on the one page that answers its
//! endpoint's creation or rotation, as the key page shows a new key, and never again.

use std::collections::{HashMap, HashSet};

use askama::Template;
use axum::Extension;
use axum::extract::{Path, State};
use axum::response::Response;
use contactd_api::{self as api, EventType};
use uuid::Uuid;

use super::extract::{FormBody, PageQuery};
use super::form::{FormInput, InputKind, Problem, filled, member, refused};
use super::nav::{Nav, Notice, NoticeQuery, Section};
use super::page::{Confirm, PageError, render, render_with, show_time};
use crate::failure::Field;
use crate::http::AppState;
use crate::store::{DeliveryAttempt, DeliveryOutcome, SessionUser, Webhook};
use crate::webhooks::{self, MAX_DESCRIPTION, NewWebhookInput, WebhookChangeInput, delivery};

/// The endpoint list's path.
pub const LIST: &str = "/dashboard/webhooks";
/// The attempts an endpoint's page shows; the API lists them all.
const SHOWN_ATTEMPTS: u32 = 20;
/// The form member of an event type's checkbox: this prefix, then the type's name.
const EVENT_TYPE_INPUT: &str = "event_type.";

fn webhook_url(id: Uuid) -> String {
    format!("{LIST}/{id}")
}

fn event_type_input(event_type: EventType) -> String {
    format!("{EVENT_TYPE_INPUT}{event_type}")
}

/// An endpoint as the list and its page show it; never with its secret.
#[derive(Debug)]
struct WebhookRow {
    id: Uuid,
    page: String,
    url: String,
    description: String,
    event_types: String,
    enabled: bool,
    state: String,
    created_at: String,
    updated_at: String,
}

impl From<&Webhook> for WebhookRow {
    fn from(webhook: &Webhook) -> Self {
        let event_types = if webhook.event_types.is_empty() {
            "all".to_owned()
        } else {
            let names: Vec<_> = webhook
                .event_types
                .iter()
                .map(|kind| kind.as_str())
                .collect();
            names.join(", ")
        };
        Self {
            id: webhook.id,
            page: webhook_url(webhook.id),
            url: webhook.url.clone(),
            description: webhook.description.clone().unwrap_or_default(),
            event_types,
            enabled: webhook.disabled.is_none(),
            state: shown_state(webhook),
            created_at: show_time(&webhook.created_at),
            updated_at: show_time(&webhook.updated_at),
        }
    }
}

/// "enabled", or since when it is disabled and why.
fn shown_state(webhook: &Webhook) -> String {
    let Some((at, reason)) = &webhook.disabled else {
        return "enabled".to_owned();
    };
    let since = format!("disabled since {}", show_time(at));
    match reason.as_deref() {
        None => since,
        // The one reason the server disables for (docs/reference.md#delivery).
        Some("failing") => format!(
            "{since}: every attempt failed for {} days",
            delivery::DISABLE_AFTER.as_secs() / (24 * 60 * 60)
        ),
        Some(other) => format!("{since}: {other}"),
    }
}

/// One checkbox of the event types.
#[derive(Debug)]
struct EventTypeChoice {
    input: String,
    name: &'static str,
    checked: bool,
}

#[derive(Template)]
#[template(path = "dashboard/webhooks.html")]
struct WebhooksPage {
    nav: Option<Nav>,
    webhooks: Vec<WebhookRow>,
    /// The secret of the endpoint just created: shown on this response only.
    new_secret: Option<String>,
    inputs: Vec<FormInput>,
    event_types: Vec<EventTypeChoice>,
    problem: Option<Problem>,
}

/// The create form's inputs, filled from `values`.
fn create_inputs(values: impl Fn(&str) -> String) -> Vec<FormInput> {
    vec![
        FormInput::new("url", "URL", InputKind::Text)
            .value(values("url"))
            .hint(
                "Where events are POSTed: an http or https URL, on a public address unless \
                 this server allows private ones.",
            )
            .required(),
        FormInput::new("description", "Description", InputKind::Text)
            .value(values("description"))
            .hint(format!(
                "Optional: what it is for, up to {MAX_DESCRIPTION} characters."
            )),
    ]
}

/// The event type checkboxes, ticked where `checked` says.
fn event_type_choices(checked: impl Fn(&str) -> bool) -> Vec<EventTypeChoice> {
    EventType::ALL
        .into_iter()
        .map(|kind| {
            let input = event_type_input(kind);
            EventTypeChoice {
                checked: checked(&input),
                input,
                name: kind.as_str(),
            }
        })
        .collect()
}

/// The list, with the create form filled from `form` (empty for a fresh form).
async fn webhooks_page(
    state: &AppState,
    user: &SessionUser,
    form: &HashMap<String, String>,
) -> Result<WebhooksPage, PageError> {
    let webhooks = webhooks::list(&state.directory, user.caller.company_id).await?;
    Ok(WebhooksPage {
        nav: Some(Nav::new(user, Section::Webhooks)),
        webhooks: webhooks.iter().map(WebhookRow::from).collect(),
        new_secret: None,
        inputs: create_inputs(|name| member(form, name).to_owned()),
        event_types: event_type_choices(|input| form.contains_key(input)),
        problem: None,
    })
}

/// `GET /dashboard/webhooks`: the company's endpoints, oldest first, and the form to add one.
pub async fn list_webhooks(
    State(state): State<AppState>,
    Extension(user): Extension<SessionUser>,
    PageQuery(notice): PageQuery<NoticeQuery>,
) -> Result<Response, PageError> {
    let mut page = webhooks_page(&state, &user, &HashMap::new()).await?;
    page.nav = page.nav.map(|nav| nav.with_notice(&notice));
    Ok(render(&page))
}

/// `POST /dashboard/webhooks`: adds an endpoint and shows its secret, once; or shows the
/// form again, as sent, with the sentence next to the input at fault. The page is
/// answered directly (not redirected to), so the secret is never in a URL or a later page.
pub async fn create_webhook(
    State(state): State<AppState>,
    Extension(user): Extension<SessionUser>,
    FormBody(form): FormBody<HashMap<String, String>>,
) -> Result<Response, PageError> {
    // No box ticked is every type, as an empty list is in the API.
    let event_types = EventType::ALL
        .into_iter()
        .filter(|kind| form.contains_key(&event_type_input(*kind)))
        .collect();
    let input = NewWebhookInput {
        url: member(&form, "url").trim().to_owned(),
        event_types: Some(event_types),
        description: filled(&form, "description"),
    };
    let created = webhooks::create(
        &state.directory,
        &state.webhook_destinations,
        user.caller.company_id,
        input,
    )
    .await;
    match created {
        Ok(webhook) => {
            let mut page = webhooks_page(&state, &user, &HashMap::new()).await?;
            page.new_secret = Some(webhook.secret);
            Ok(render(&page))
        }
        Err(failure) => {
            let mut page = webhooks_page(&state, &user, &form).await?;
            let input_of = |field: &Field| {
                let name = match field {
                    Field::Url => "url",
                    Field::Description => "description",
                    _ => return None,
                };
                Some(name.to_owned())
            };
            let (status, problem) = refused(&mut page.inputs, failure, input_of)?;
            page.problem = Some(problem);
            Ok(render_with(status, &page))
        }
    }
}

/// One attempt as the endpoint's page shows it.
#[derive(Debug)]
struct AttemptRow {
    event_id: String,
    event_type: &'static str,
    attempt: u32,
    outcome: String,
    status: String,
    error: String,
    duration: String,
    attempted_at: String,
    /// Where the retry form posts: on the latest attempt of an event not delivered.
    retry: Option<String>,
}

/// The attempts, newest first; each event's latest attempt is the first of it in the list.
fn attempt_rows(webhook_id: Uuid, attempts: Vec<DeliveryAttempt>) -> Vec<AttemptRow> {
    let mut seen = HashSet::new();
    attempts
        .into_iter()
        .map(|attempt| {
            let latest = seen.insert(attempt.event_id);
            let outcome = attempt.outcome;
            let retry = (latest && outcome != DeliveryOutcome::Delivered).then(|| {
                format!(
                    "{}/deliveries/{}/retry",
                    webhook_url(webhook_id),
                    attempt.event_id
                )
            });
            let shown = api::DeliveryAttempt::from(attempt);
            let outcome = match shown.next_attempt_at {
                Some(next) => format!("{}, next at {}", outcome.as_str(), show_time(&next)),
                None => outcome.as_str().to_owned(),
            };
            AttemptRow {
                event_id: shown.event_id,
                event_type: shown.event_type.as_str(),
                attempt: shown.attempt,
                outcome,
                status: shown
                    .status
                    .map(|status| status.to_string())
                    .unwrap_or_default(),
                error: shown.error.unwrap_or_default(),
                duration: format!("{} ms", shown.duration_ms),
                attempted_at: show_time(&shown.attempted_at),
                retry,
            }
        })
        .collect()
}

#[derive(Template)]
#[template(path = "dashboard/webhook.html")]
struct WebhookPage {
    nav: Option<Nav>,
    webhook: WebhookRow,
    /// The secret the endpoint was just given: shown on this response only.
    new_secret: Option<String>,
    attempts: Vec<AttemptRow>,
    /// Whether older attempts were left out.
    more_attempts: bool,
}

async fn webhook_page(
    state: &AppState,
    user: &SessionUser,
    webhook: &Webhook,
    new_secret: Option<String>,
) -> Result<WebhookPage, PageError> {
    let company_id = user.caller.company_id;
    let page = webhooks::attempts(
        &state.directory,
        company_id,
        webhook.id,
        None,
        SHOWN_ATTEMPTS,
    )
    .await?;
    Ok(WebhookPage {
        nav: Some(Nav::new(user, Section::Webhooks)),
        webhook: WebhookRow::from(webhook),
        new_secret,
        more_attempts: page.next.is_some(),
        attempts: attempt_rows(webhook.id, page.attempts),
    })
}

/// The endpoint id of a path; 404 for anything but a UUID.
fn webhook_id(id: &str) -> Result<Uuid, PageError> {
    Uuid::try_parse(id).map_err(|_| PageError::NotFound)
}

/// The endpoint a path names, in the user's company; 404 for any other.
async fn find_webhook(
    state: &AppState,
    user: &SessionUser,
    id: &str,
) -> Result<Webhook, PageError> {
    let id = webhook_id(id)?;
    Ok(webhooks::find(&state.directory, user.caller.company_id, id).await?)
}

/// `GET /dashboard/webhooks/{id}`: the endpoint's settings, its actions and its recent
/// attempts, newest first.
pub async fn show_webhook(
    State(state): State<AppState>,
    Extension(user): Extension<SessionUser>,
    Path(id): Path<String>,
    PageQuery(notice): PageQuery<NoticeQuery>,
) -> Result<Response, PageError> {
    let webhook = find_webhook(&state, &user, &id).await?;
    let mut page = webhook_page(&state, &user, &webhook, None).await?;
    page.nav = page.nav.map(|nav| nav.with_notice(&notice));
    Ok(render(&page))
}

/// Enables or disables an endpoint, then shows its page saying so.
async fn set_enabled(
    state: &AppState,
    user: &SessionUser,
    id: &str,
    enabled: bool,
) -> Result<Response, PageError> {
    let id = webhook_id(id)?;
    let change = WebhookChangeInput {
        enabled: Some(enabled),
        ..WebhookChangeInput::default()
    };
    webhooks::update(
        &state.directory,
        &state.webhook_destinations,
        user.caller.company_id,
        id,
        change,
    )
    .await?;
    let notice = if enabled {
        Notice::WebhookEnabled
    } else {
        Notice::WebhookDisabled
    };
    Ok(notice.redirect(&webhook_url(id)))
}

/// `POST /dashboard/webhooks/{id}/enable`: resumes deliveries, also to an endpoint the
/// server disabled for failing, from the first event it had not tried.
pub async fn enable_webhook(
    State(state): State<AppState>,
    Extension(user): Extension<SessionUser>,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    set_enabled(&state, &user, &id, true).await
}

/// `POST /dashboard/webhooks/{id}/disable`: stops deliveries until it is enabled again.
pub async fn disable_webhook(
    State(state): State<AppState>,
    Extension(user): Extension<SessionUser>,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    set_enabled(&state, &user, &id, false).await
}

/// `GET /dashboard/webhooks/{id}/rotate-secret`: asks before giving the endpoint a new
/// secret, which its receiver must then be given.
pub async fn confirm_rotation(
    State(state): State<AppState>,
    Extension(user): Extension<SessionUser>,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let webhook = find_webhook(&state, &user, &id).await?;
    let url = webhook_url(webhook.id);
    let overlap_hours = webhooks::ROTATION_OVERLAP_MS / (60 * 60 * 1000);
    let page = Confirm {
        nav: Some(Nav::new(&user, Section::Webhooks)),
        title: format!("Rotate the secret of {}?", webhook.url),
        paragraphs: vec![
            "Deliveries are signed with a new secret from now on. It is shown once, on the \
             next page: give it to the receiver."
                .to_owned(),
            format!(
                "For {overlap_hours} hours they also carry a signature by the current secret, \
                 so the receiver can switch without refusing one; after that, the current \
                 secret signs nothing. This cannot be undone."
            ),
        ],
        action: format!("{url}/rotate-secret"),
        url,
        button: "Rotate secret",
    };
    Ok(render(&page))
}

/// `POST /dashboard/webhooks/{id}/rotate-secret`: gives the endpoint a new secret and shows
/// it, once, on the endpoint's page, answered directly as a new endpoint's secret is.
pub async fn rotate_secret(
    State(state): State<AppState>,
    Extension(user): Extension<SessionUser>,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let id = webhook_id(&id)?;
    let rotated = webhooks::rotate_secret(&state.directory, user.caller.company_id, id).await?;
    let secret = rotated.secret.clone();
    let page = webhook_page(&state, &user, &rotated, Some(secret)).await?;
    Ok(render(&page))
}

/// `GET /dashboard/webhooks/{id}/delete`: asks before deleting.
pub async fn confirm_delete(
    State(state): State<AppState>,
    Extension(user): Extension<SessionUser>,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let webhook = find_webhook(&state, &user, &id).await?;
    let url = webhook_url(webhook.id);
    let page = Confirm {
        nav: Some(Nav::new(&user, Section::Webhooks)),
        title: format!("Delete the endpoint {}?", webhook.url),
        paragraphs: vec![
            "No event is sent to it any more, and its delivery attempts and waiting retries \
             are deleted with it; a delivery being made finishes. This cannot be undone."
                .to_owned(),
        ],
        action: format!("{url}/delete"),
        url,
        button: "Delete endpoint",
    };
    Ok(render(&page))
}

/// `POST /dashboard/webhooks/{id}/delete`: deletes the endpoint, then shows the list.
pub async fn delete_webhook(
    State(state): State<AppState>,
    Extension(user): Extension<SessionUser>,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let id = webhook_id(&id)?;
    webhooks::delete(&state.directory, user.caller.company_id, id).await?;
    Ok(Notice::WebhookDeleted.redirect(LIST))
}

/// `POST /dashboard/webhooks/{id}/deliveries/{event_id}/retry`: schedules another attempt
/// to deliver the event now, then shows the endpoint's page.
pub async fn retry_delivery(
    State(state): State<AppState>,
    Extension(user): Extension<SessionUser>,
    Path((id, event_id)): Path<(String, String)>,
) -> Result<Response, PageError> {
    let id = webhook_id(&id)?;
    let event_id = Uuid::try_parse(&event_id).map_err(|_| PageError::NotFound)?;
    webhooks::retry(&state.directory, user.caller.company_id, id, event_id).await?;
    Ok(Notice::DeliveryRetried.redirect(&webhook_url(id)))
}
