//! The webhook use cases (docs/reference.md#webhooks): endpoints and their settings, their
//! secrets, the attempts made and retries asked for by hand; what the API and the
//! dashboard do to endpoints. The deliveries themselves are made by [`delivery`].

pub mod delivery;
pub mod destination;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use contactd_api::ErrorCode;
use contactd_api::EventType;
use contactd_client::webhooks::SECRET_PREFIX;
use rand::RngCore;
use uuid::Uuid;

use crate::cursor;
use crate::directory::Directory;
use crate::failure::{Failure, Field};
use crate::store::{
    DeliveryAttempt, NewWebhook, ScheduledRetry, StoreError, Webhook, WebhookChange, now_ms,
};
pub use destination::Destinations;

/// The longest description an endpoint may have, in characters.
pub const MAX_DESCRIPTION: usize = 500;

/// How long the secret an endpoint had before a rotation still signs deliveries, next to
/// the new one, so that receivers can switch without losing one.
pub const ROTATION_OVERLAP_MS: i64 = 24 * 60 * 60 * 1000;

/// An endpoint to create, as received.
#[derive(Debug, Clone)]
pub struct NewWebhookInput {
    pub url: String,
    pub event_types: Option<Vec<EventType>>,
    pub description: Option<String>,
}

/// A change of an endpoint's settings, as received: `None` keeps a member.
#[derive(Debug, Clone, Default)]
pub struct WebhookChangeInput {
    pub url: Option<String>,
    pub event_types: Option<Vec<EventType>>,
    pub enabled: Option<bool>,
    /// An empty description removes it.
    pub description: Option<String>,
}

/// A page of an endpoint's attempts, newest first.
#[derive(Debug)]
pub struct AttemptPage {
    pub attempts: Vec<DeliveryAttempt>,
    /// The position the next page starts before, when there is one.
    pub next: Option<i64>,
}

/// Creates an endpoint with a new secret, which the result holds (and only it shows).
pub async fn create(
    directory: &Directory,
    destinations: &Destinations,
    company_id: Uuid,
    input: NewWebhookInput,
) -> Result<Webhook, Failure> {
    // What needs no network first: the URL's check may resolve its host.
    let description = checked_description(input.description)?;
    let webhook = NewWebhook {
        url: checked_url(destinations, &input.url).await?,
        event_types: distinct(input.event_types.unwrap_or_default()),
        description,
        secret: new_secret(),
    };
    Ok(directory.store.create_webhook(company_id, &webhook).await?)
}

/// Every endpoint of the company, oldest first.
pub async fn list(directory: &Directory, company_id: Uuid) -> Result<Vec<Webhook>, Failure> {
    Ok(directory.store.list_webhooks(company_id).await?)
}

/// One endpoint of the company.
pub async fn find(directory: &Directory, company_id: Uuid, id: Uuid) -> Result<Webhook, Failure> {
    directory
        .store
        .get_webhook(company_id, id)
        .await?
        .ok_or_else(|| webhook_not_found(id))
}

/// Changes an endpoint's settings; enabling one disabled for failing resumes its deliveries
/// from where they stopped.
pub async fn update(
    directory: &Directory,
    destinations: &Destinations,
    company_id: Uuid,
    id: Uuid,
    input: WebhookChangeInput,
) -> Result<Webhook, Failure> {
    let description = match input.description {
        Some(text) => Some(checked_description(Some(text))?),
        None => None,
    };
    let url = match input.url {
        Some(url) => Some(checked_url(destinations, &url).await?),
        None => None,
    };
    let change = WebhookChange {
        url,
        event_types: input.event_types.map(distinct),
        enabled: input.enabled,
        description,
    };
    not_found_as_webhook(
        directory
            .store
            .update_webhook(company_id, id, &change)
            .await,
        id,
    )
}

/// Gives an endpoint a new secret, which the result holds; the old one signs deliveries
/// too for [`ROTATION_OVERLAP_MS`].
pub async fn rotate_secret(
    directory: &Directory,
    company_id: Uuid,
    id: Uuid,
) -> Result<Webhook, Failure> {
    let previous_until = now_ms() + ROTATION_OVERLAP_MS;
    let rotated = directory
        .store
        .rotate_webhook_secret(company_id, id, &new_secret(), previous_until)
        .await;
    not_found_as_webhook(rotated, id)
}

/// Deletes an endpoint, its attempts and its retries; a delivery being made finishes.
pub async fn delete(directory: &Directory, company_id: Uuid, id: Uuid) -> Result<(), Failure> {
    not_found_as_webhook(directory.store.delete_webhook(company_id, id).await, id)
}

/// A page of an endpoint's attempts, newest first, before the attempt at `before`.
pub async fn attempts(
    directory: &Directory,
    company_id: Uuid,
    id: Uuid,
    before: Option<i64>,
    limit: u32,
) -> Result<AttemptPage, Failure> {
    find(directory, company_id, id).await?;
    let mut attempts = directory
        .store
        .list_delivery_attempts(id, before, cursor::rows_for_page(limit))
        .await?;
    let next = cursor::next_page(&mut attempts, limit, |attempt| attempt.position);
    Ok(AttemptPage { attempts, next })
}

/// Asks for another attempt to deliver an event to an endpoint, now: also for an event
/// whose delivery failed for good, or one the endpoint never had.
pub async fn retry(
    directory: &Directory,
    company_id: Uuid,
    id: Uuid,
    event_id: Uuid,
) -> Result<ScheduledRetry, Failure> {
    find(directory, company_id, id).await?;
    let now = now_ms();
    match directory
        .store
        .schedule_delivery(company_id, id, event_id, now)
        .await
    {
        Err(StoreError::NotFound) => Err(Failure::NotFound {
            code: ErrorCode::EventNotFound,
            message: format!(
                "no event evt_{} in your company: it never existed or retention deleted it",
                event_id.simple()
            ),
        }),
        other => Ok(other?),
    }
}

/// `whsec_` and the base64 of 32 random bytes, as Standard Webhooks secrets are.
fn new_secret() -> String {
    let mut key = [0u8; 32];
    rand::rng().fill_bytes(&mut key);
    format!("{SECRET_PREFIX}{}", STANDARD.encode(key))
}

async fn checked_url(destinations: &Destinations, url: &str) -> Result<String, Failure> {
    match destinations.check(url).await {
        Ok(url) => Ok(url.to_string()),
        Err(message) => Err(Failure::Invalid {
            field: Some(Field::Url),
            code: ErrorCode::InvalidWebhookUrl,
            message,
        }),
    }
}

/// A description as stored: `None` for none or an empty one.
fn checked_description(text: Option<String>) -> Result<Option<String>, Failure> {
    match text {
        Some(text) if text.chars().count() > MAX_DESCRIPTION => Err(Failure::Invalid {
            field: Some(Field::Description),
            code: ErrorCode::InvalidDescription,
            message: format!("description is longer than {MAX_DESCRIPTION} characters"),
        }),
        Some(text) if text.trim().is_empty() => Ok(None),
        other => Ok(other),
    }
}

/// The types without repeats, in the order the reference lists them.
fn distinct(types: Vec<EventType>) -> Vec<EventType> {
    EventType::ALL
        .into_iter()
        .filter(|kind| types.contains(kind))
        .collect()
}

fn webhook_not_found(id: Uuid) -> Failure {
    Failure::NotFound {
        code: ErrorCode::WebhookNotFound,
        message: format!("no webhook endpoint {id} in your company"),
    }
}

fn not_found_as_webhook<T>(result: Result<T, StoreError>, id: Uuid) -> Result<T, Failure> {
    match result {
        Err(StoreError::NotFound) => Err(webhook_not_found(id)),
        other => Ok(other?),
    }
}
