//! Per-key rate limits (docs/reference.md#rate-limits): a token bucket per API key, held
//! in this process, with the `RateLimit-*` headers on every answer to a key.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue};
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use uuid::Uuid;

use crate::store::RateLimit;

type Bucket = RateLimiter<NotKeyed, InMemoryState, DefaultClock, StateInformationMiddleware>;

/// Every key's bucket, made at its first request. A key's limit never changes, so its
/// bucket lives as long as the process; there is one per key that has been used, and keys
/// are few (each is made by an admin).
#[derive(Debug)]
pub struct RateLimits {
    /// The server's limit, for keys without their own; `None`: no limit.
    default: Option<RateLimit>,
    clock: DefaultClock,
    buckets: Mutex<HashMap<Uuid, (RateLimit, Arc<Bucket>)>>,
}

/// How a request fared against its key's bucket.
#[derive(Debug)]
pub enum Admission {
    /// Not limited: no bucket, no headers.
    Unlimited,
    /// Let through, with what is left.
    Admitted(RateHeaders),
    /// Over the limit: retry after this long.
    Refused {
        headers: RateHeaders,
        retry_after: Duration,
    },
}

/// The `RateLimit-*` headers of one answer.
#[derive(Debug)]
pub struct RateHeaders {
    limit: u32,
    remaining: u32,
    /// Seconds until the bucket is full again.
    reset: u64,
}

impl RateHeaders {
    /// Sets `RateLimit-Limit` (the burst), `RateLimit-Remaining` and `RateLimit-Reset`.
    pub fn apply(&self, headers: &mut HeaderMap) {
        for (name, value) in [
            ("ratelimit-limit", u64::from(self.limit)),
            ("ratelimit-remaining", u64::from(self.remaining)),
            ("ratelimit-reset", self.reset),
        ] {
            headers.insert(name, HeaderValue::from(value));
        }
    }
}

impl RateLimits {
    /// Limits with `default` for every key without its own; `None` limits nothing.
    pub fn new(default: Option<RateLimit>) -> Self {
        Self {
            default,
            clock: DefaultClock::default(),
            buckets: Mutex::default(),
        }
    }

    /// Takes one token of `key_id`'s bucket, at `own` (the key's limit) or the server's.
    pub fn admit(&self, key_id: Uuid, own: Option<RateLimit>) -> Admission {
        let Some(limit) = own.or(self.default) else {
            return Admission::Unlimited;
        };
        let bucket = self.bucket(key_id, limit);
        let full_in = |remaining: u32| {
            // A token comes back every 1/per_second seconds.
            u64::from(limit.burst - remaining.min(limit.burst))
                .div_ceil(u64::from(limit.per_second))
        };
        match bucket.check() {
            Ok(snapshot) => {
                let remaining = snapshot.remaining_burst_capacity();
                Admission::Admitted(RateHeaders {
                    limit: limit.burst,
                    remaining,
                    reset: full_in(remaining),
                })
            }
            Err(not_until) => Admission::Refused {
                headers: RateHeaders {
                    limit: limit.burst,
                    remaining: 0,
                    reset: full_in(0),
                },
                retry_after: not_until.wait_time_from(self.clock.now()),
            },
        }
    }

    fn bucket(&self, key_id: Uuid, limit: RateLimit) -> Arc<Bucket> {
        let mut buckets = self.buckets.lock().expect("no holder of the lock panics");
        let entry = buckets
            .entry(key_id)
            .or_insert_with(|| (limit, new_bucket(limit)));
        if entry.0 != limit {
            *entry = (limit, new_bucket(limit));
        }
        Arc::clone(&entry.1)
    }
}

fn new_bucket(limit: RateLimit) -> Arc<Bucket> {
    let at_least_one = |value: u32| NonZeroU32::new(value).unwrap_or(NonZeroU32::MIN);
    let quota =
        Quota::per_second(at_least_one(limit.per_second)).allow_burst(at_least_one(limit.burst));
    Arc::new(RateLimiter::direct(quota).with_middleware())
}
