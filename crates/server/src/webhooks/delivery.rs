//! Deliveries (docs/reference.md#delivery): each endpoint reads its company's feed after its
//! own position and POSTs each event it wants, signed, one at a time, so first attempts go
//! out in feed order; failed ones are retried on the schedule of [`RETRY_DELAYS`].
//!
//! Nothing is kept in memory that is not in the database. An instance takes an endpoint's
//! lease (`Store::claim_webhooks`), keeps it alive every [`LEASE_RENEWAL`], makes a batch
//! of attempts, and records them with the endpoint's new position in one write, if it
//! still holds the lease. A process that dies mid-batch recorded nothing of that batch:
//! once its lease runs out, [`LEASE`] after its last renewal, another instance (or the same
//! one restarted) makes those attempts again. At least once, then, and never two instances
//! at once: an instance sends nothing once its lease may have run out.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use contactd_api as api;
use contactd_client::webhooks::{ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, sign};
use tokio::sync::Semaphore;
use uuid::Uuid;

use super::destination::{DELIVERY_TIMEOUT, Destinations, MAX_RESPONSE_BYTES};
use crate::prometheus;
use crate::store::{
    AttemptMade, DeliveryAttempt, DeliveryBatch, DeliveryOutcome, Event, Store, Webhook,
    duration_ms, now_ms,
};

/// The wait before each attempt after the first, as the Standard Webhooks specification
/// suggests: an event is tried 8 times over about 28 hours, then marked failed.
pub const RETRY_DELAYS: [Duration; 7] = [
    Duration::from_secs(5),
    Duration::from_secs(5 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(2 * 60 * 60),
    Duration::from_secs(5 * 60 * 60),
    Duration::from_secs(10 * 60 * 60),
    Duration::from_secs(10 * 60 * 60),
];

/// How long an endpoint may fail every attempt before the server disables it.
pub const DISABLE_AFTER: Duration = Duration::from_secs(5 * 24 * 60 * 60);

/// How long a lease lasts without a renewal, and how often leases are renewed.
pub const LEASE: Duration = Duration::from_secs(10);
pub const LEASE_RENEWAL: Duration = Duration::from_secs(2);

/// How often an instance looks for endpoints with deliveries to make.
const POLL: Duration = Duration::from_millis(500);

/// The most endpoints one instance delivers to at once.
const ENDPOINTS_AT_ONCE: usize = 16;

/// The most attempts of one batch, and how long a batch goes on making new ones before it
/// is recorded: a crash repeats at most one batch.
const BATCH: u32 = 100;
const BATCH_TIME: Duration = Duration::from_secs(2);

/// The attempt that follows a failed one numbered `attempt`: when it is due, or `None`
/// when that was the last of the schedule.
pub fn next_attempt_delay(attempt: u32) -> Option<Duration> {
    let index = usize::try_from(attempt).ok()?.checked_sub(1)?;
    RETRY_DELAYS.get(index).copied()
}

/// Delivers, for as long as the server runs, every company's events to its endpoints.
pub async fn deliver(store: Arc<dyn Store>, destinations: Destinations) {
    let instance = Instance {
        store,
        owner: Uuid::now_v7(),
        client: destinations.client(),
        destinations,
        leases: Arc::default(),
    };
    let instance = Arc::new(instance);
    tokio::spawn(renew_leases(instance.clone()));
    let running = Arc::new(Semaphore::new(ENDPOINTS_AT_ONCE));
    loop {
        let free = running.available_permits();
        if free > 0 {
            let now = now_ms();
            let until = now + duration_ms(LEASE);
            let limit = u32::try_from(free).unwrap_or(u32::MAX);
            match instance
                .store
                .claim_webhooks(instance.owner, now, until, limit)
                .await
            {
                Ok(claimed) => {
                    for webhook in claimed {
                        let Ok(permit) = running.clone().try_acquire_owned() else {
                            break;
                        };
                        instance.leases.held(webhook.id);
                        tracing::debug!(webhook = %webhook.id, "delivering to a webhook endpoint");
                        let instance = instance.clone();
                        tokio::spawn(async move {
                            instance.serve_endpoint(webhook).await;
                            drop(permit);
                        });
                    }
                }
                Err(error) => tracing::warn!(%error, "could not look for webhook deliveries"),
            }
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Sets the webhook gauges (docs/reference.md#metrics) from the database, for a scrape; a
/// failed read is logged and leaves them as they were.
pub async fn record_gauges(store: &dyn Store) {
    let gauges = match store.delivery_gauges().await {
        Ok(gauges) => gauges,
        Err(error) => {
            tracing::warn!(%error, "could not read the webhook gauges");
            return;
        }
    };
    metrics::gauge!(prometheus::WEBHOOK_RETRIES_PENDING).set(gauges.retries_pending as f64);
    metrics::gauge!(prometheus::WEBHOOK_ENDPOINTS, "state" => "enabled")
        .set(gauges.endpoints_enabled as f64);
    metrics::gauge!(prometheus::WEBHOOK_ENDPOINTS, "state" => "disabled")
        .set(gauges.endpoints_disabled as f64);
    let age_ms = gauges
        .oldest_undelivered_at
        .map_or(0, |at| (now_ms() - at).max(0));
    metrics::gauge!(prometheus::WEBHOOK_BACKLOG_AGE).set(age_ms as f64 / 1000.0);
}

/// One instance's deliveries.
#[derive(Debug)]
struct Instance {
    store: Arc<dyn Store>,
    /// Names this instance's leases.
    owner: Uuid,
    client: reqwest::Client,
    destinations: Destinations,
    leases: Arc<Leases>,
}

/// When each lease this instance holds was last confirmed by the database.
#[derive(Debug, Default)]
struct Leases(Mutex<HashMap<Uuid, Instant>>);

impl Leases {
    fn held(&self, webhook_id: Uuid) {
        self.lock().insert(webhook_id, Instant::now());
    }

    /// Whether the lease surely has not run out: confirmed less than [`LEASE`] ago, with
    /// a renewal's time to spare (clocks of instances differ a little).
    fn is_safe(&self, webhook_id: Uuid) -> bool {
        self.lock()
            .get(&webhook_id)
            .is_some_and(|confirmed| confirmed.elapsed() < LEASE - 2 * LEASE_RENEWAL)
    }

    fn renewed(&self, confirmed: &[Uuid], at: Instant) {
        let mut leases = self.lock();
        for id in confirmed {
            if let Some(last) = leases.get_mut(id) {
                *last = at;
            }
        }
    }

    fn forget(&self, webhook_id: Uuid) {
        self.lock().remove(&webhook_id);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, Instant>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Renews this instance's leases for as long as it runs.
async fn renew_leases(instance: Arc<Instance>) {
    loop {
        tokio::time::sleep(LEASE_RENEWAL).await;
        let asked = Instant::now();
        let now = now_ms();
        match instance
            .store
            .renew_webhook_leases(instance.owner, now, now + duration_ms(LEASE))
            .await
        {
            Ok(confirmed) => instance.leases.renewed(&confirmed, asked),
            Err(error) => tracing::warn!(%error, "could not renew webhook leases"),
        }
    }
}

impl Instance {
    /// Makes an endpoint's deliveries, batch after batch, until it has none to make now,
    /// then gives up its lease.
    async fn serve_endpoint(&self, mut webhook: Webhook) {
        let id = webhook.id;
        loop {
            match self.deliver_batch(&webhook).await {
                Ok(Some(updated)) if updated.disabled.is_none() => webhook = updated,
                Ok(_) => break,
                Err(error) => {
                    tracing::warn!(%error, webhook = %id, "webhook deliveries stopped");
                    break;
                }
            }
        }
        self.leases.forget(id);
        if let Err(error) = self.store.release_webhook(id, self.owner).await {
            tracing::warn!(%error, webhook = %id, "could not release a webhook lease");
        }
    }

    /// Makes one batch of attempts and records it: the endpoint as it is after, or `None`
    /// when it had nothing to deliver or the lease was lost.
    async fn deliver_batch(
        &self,
        webhook: &Webhook,
    ) -> Result<Option<Webhook>, crate::store::StoreError> {
        let work = self.store.delivery_work(webhook, now_ms(), BATCH).await?;
        if work.retries.is_empty() && work.first_attempts.is_empty() {
            return Ok(None);
        }
        let mut batch = DeliveryBatch {
            webhook_id: webhook.id,
            owner: self.owner,
            attempts: Vec::new(),
            feed: webhook.feed,
            failing_since: webhook.failing_since,
            disable_at: None,
        };
        let started = Instant::now();
        let first_attempts = work
            .first_attempts
            .into_iter()
            .map(|event| (event, 1, true));
        let retries = work
            .retries
            .into_iter()
            .map(|(event, attempt)| (event, attempt, false));
        for (event, attempt, is_first) in retries.chain(first_attempts) {
            if started.elapsed() > BATCH_TIME
                || batch.disable_at.is_some()
                || !self.leases.is_safe(webhook.id)
            {
                break;
            }
            if !is_first || webhook.wants(event.event_type) {
                let made = self.attempt(webhook, &event, attempt).await;
                track_failures(&mut batch, &made.attempt);
                batch.attempts.push(made);
            }
            if is_first {
                batch.feed = event.at;
            }
        }
        if batch.attempts.is_empty() && batch.feed == webhook.feed {
            return Ok(None);
        }
        self.store.record_deliveries(&batch).await
    }

    /// Sends one attempt and says how it went.
    async fn attempt(&self, webhook: &Webhook, event: &Event, attempt: u32) -> AttemptMade {
        let attempted_at = chrono::Utc::now();
        let started = Instant::now();
        let result = self.send(webhook, event).await;
        let took_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let (status, error) = match result {
            Ok(status) if (200..300).contains(&status) => (Some(status), None),
            Ok(status) => (
                Some(status),
                Some(format!("the receiver answered {status}")),
            ),
            Err(error) => (None, Some(error)),
        };
        let outcome = match (&error, next_attempt_delay(attempt)) {
            (None, _) => DeliveryOutcome::Delivered,
            (Some(_), Some(delay)) => {
                DeliveryOutcome::Retrying(attempted_at.timestamp_millis() + duration_ms(delay))
            }
            (Some(_), None) => DeliveryOutcome::Failed,
        };
        metrics::counter!(prometheus::WEBHOOK_ATTEMPTS, "outcome" => outcome.as_str()).increment(1);
        metrics::histogram!(prometheus::WEBHOOK_ATTEMPT_DURATION).record(started.elapsed());
        AttemptMade {
            event_position: event.at.position,
            attempt: DeliveryAttempt {
                position: 0,
                event_id: event.id,
                event_type: event.event_type,
                attempt,
                outcome,
                status,
                error,
                duration_ms: took_ms,
                attempted_at,
            },
        }
    }

    /// POSTs an event to an endpoint, signed, reading at most [`MAX_RESPONSE_BYTES`] of
    /// the answer within [`DELIVERY_TIMEOUT`]: its status, or why there was none.
    async fn send(&self, webhook: &Webhook, event: &Event) -> Result<u16, String> {
        // The URL was checked when it was set; a check again here refuses what the rules
        // refuse now (an address literal needs no resolving, so the resolver never sees it).
        let url = self.destinations.parse(&webhook.url)?;
        let body = serde_json::to_vec(&api::Event::from(event.clone()))
            .map_err(|error| format!("the event could not be written: {error}"))?;
        let id = format!("evt_{}", event.id.simple());
        let timestamp = chrono::Utc::now().timestamp();
        let signatures = signatures(webhook, &id, timestamp, &body)?;
        let request = self
            .client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(ID_HEADER, &id)
            .header(TIMESTAMP_HEADER, timestamp.to_string())
            .header(SIGNATURE_HEADER, signatures)
            .body(body);
        let exchange = async {
            let mut response = request.send().await.map_err(describe)?;
            let status = response.status().as_u16();
            let mut read = 0;
            while let Some(chunk) = response.chunk().await.map_err(describe)? {
                read += chunk.len();
                if read >= MAX_RESPONSE_BYTES {
                    break;
                }
            }
            Ok(status)
        };
        tokio::time::timeout(DELIVERY_TIMEOUT, exchange)
            .await
            .unwrap_or_else(|_| Err(format!("no answer within {} s", DELIVERY_TIMEOUT.as_secs())))
    }
}

/// The `webhook-signature` of a delivery: one signature per secret in use.
fn signatures(webhook: &Webhook, id: &str, timestamp: i64, body: &[u8]) -> Result<String, String> {
    let now = now_ms();
    let previous = webhook
        .previous_secret
        .iter()
        .filter(|(_, until)| *until > now)
        .map(|(secret, _)| secret);
    std::iter::once(&webhook.secret)
        .chain(previous)
        .map(|secret| sign(secret, id, timestamp, body).map_err(|error| error.to_string()))
        .collect::<Result<Vec<_>, _>>()
        .map(|signatures| signatures.join(" "))
}

/// Counts an attempt in the endpoint's run of failures, and disables the endpoint when
/// that run has gone on for [`DISABLE_AFTER`].
fn track_failures(batch: &mut DeliveryBatch, attempt: &DeliveryAttempt) {
    if attempt.outcome == DeliveryOutcome::Delivered {
        batch.failing_since = None;
        return;
    }
    let at = attempt.attempted_at.timestamp_millis();
    let since = *batch.failing_since.get_or_insert(at);
    if at - since >= duration_ms(DISABLE_AFTER) {
        batch.disable_at = Some(at);
    }
}

/// A failed request in a sentence, with what caused it.
fn describe(error: reqwest::Error) -> String {
    let mut text = if error.is_timeout() {
        "no answer in time".to_owned()
    } else if error.is_connect() {
        "could not connect".to_owned()
    } else {
        "the request failed".to_owned()
    };
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_retries_seven_times_then_gives_up() {
        let waits: Vec<u64> = (1..=7)
            .map(|attempt| next_attempt_delay(attempt).expect("a retry").as_secs())
            .collect();
        assert_eq!(waits, [5, 300, 1800, 7200, 18000, 36000, 36000]);
        assert_eq!(next_attempt_delay(8), None);
        assert_eq!(next_attempt_delay(0), None);
    }
}
