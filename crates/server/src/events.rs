//! The change events use cases (docs/reference.md#13-change-events-history-and-webhooks):
//! the company's feed and a contact's history. The events themselves are written by the
//! store, in the transaction of each change.

use std::sync::Arc;
use std::time::Duration;

use contactd_api::EventType;
use uuid::Uuid;

use crate::contacts::contact_not_found;
use crate::cursor;
use crate::directory::Directory;
use crate::domain::ContactIdentifier;
use crate::failure::Failure;
use crate::store::{Event, EventPage, EventPosition, Store, StoreError, retention_cutoff};

/// A page of the feed after `after` (from the oldest event kept when `None`): up to `limit`
/// events of `types` (all when empty), and where the next page starts, also when it is
/// empty.
pub async fn feed(
    directory: &Directory,
    company_id: Uuid,
    after: Option<EventPosition>,
    limit: u32,
    types: &[EventType],
) -> Result<EventPage, Failure> {
    Ok(directory
        .store
        .list_events(company_id, after, limit, types)
        .await?)
}

/// A page of a contact's history, newest first.
#[derive(Debug)]
pub struct HistoryPage {
    pub events: Vec<Event>,
    /// The position the next page starts before, when there is one.
    pub next: Option<i64>,
}

/// The events of the contact `identifier` names, newest first, before the event at
/// `before`. A UUID names a deleted contact too, as long as its events are kept; the other
/// forms name a contact that exists now.
pub async fn history(
    directory: &Directory,
    company_id: Uuid,
    identifier: &ContactIdentifier,
    before: Option<i64>,
    limit: u32,
) -> Result<HistoryPage, Failure> {
    let store = &directory.store;
    let contact_id = match identifier {
        ContactIdentifier::Id(id) => *id,
        other => {
            let contact = store.get_contact(company_id, other).await?;
            contact.ok_or_else(|| contact_not_found(identifier))?.id
        }
    };
    let mut events = store
        .contact_history(company_id, contact_id, before, cursor::rows_for_page(limit))
        .await?;
    if events.is_empty()
        && before.is_none()
        && store.get_contact(company_id, identifier).await?.is_none()
    {
        return Err(contact_not_found(identifier));
    }
    let next = cursor::next_page(&mut events, limit, |event| event.at.position);
    Ok(HistoryPage { events, next })
}

/// Events retention deletes in one write: small, so that a write waiting behind it waits
/// for milliseconds, never for the whole backlog.
const RETENTION_BATCH: u32 = 500;

/// How often retention looks for events past the retention.
const RETENTION_INTERVAL: Duration = Duration::from_secs(60);

/// Deletes, for as long as the server runs, the events older than `retention`.
pub async fn keep_retention(store: Arc<dyn Store>, retention: Duration) {
    loop {
        match delete_expired(store.as_ref(), retention).await {
            Ok(0) => {}
            Ok(deleted) => tracing::info!(deleted, "deleted events past the retention"),
            Err(error) => tracing::warn!(%error, "could not delete events past the retention"),
        }
        tokio::time::sleep(RETENTION_INTERVAL).await;
    }
}

/// Deletes every company's events older than `retention`, a batch at a time, letting
/// other work in between batches; returns how many it deleted.
pub async fn delete_expired(store: &dyn Store, retention: Duration) -> Result<u64, StoreError> {
    let cutoff = retention_cutoff(retention);
    let mut deleted = 0;
    for company in store.list_companies().await? {
        loop {
            let batch = store
                .delete_expired_events(company.id, cutoff, RETENTION_BATCH)
                .await?;
            deleted += batch;
            if batch < u64::from(RETENTION_BATCH) {
                break;
            }
            tokio::task::yield_now().await;
        }
    }
    Ok(deleted)
}
