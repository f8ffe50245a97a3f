//! What every handler of the API and the dashboard shares.

use std::sync::Arc;
use std::time::Duration;

use crate::cache::TtlCache;
use crate::config::DEFAULT_BULK_BODY_LIMIT;
use crate::directory::Directory;
use crate::domain::DefaultRegion;
use crate::password::PasswordChecker;
use crate::store::{Caller, Store};
use crate::webhooks::Destinations;

use super::export_budget::ExportBudget;
use super::rate_limit::RateLimits;

/// What every handler shares.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The contacts and custom fields the use cases act on.
    pub directory: Directory,
    /// The largest request body accepted, in bytes (docs/reference.md#body-limits).
    pub body_limit: usize,
    /// The largest body of the routes that take many contacts at once (docs/reference.md#11-bulk-batch-writes-import-and-export), in bytes.
    pub bulk_body_limit: usize,
    /// How long an export waits for its client to take the next page before it is
    /// abandoned, releasing its snapshot (`docs/robustness.md`).
    pub stall_timeout: Duration,
    /// How many exports may run at once.
    pub exports: Arc<ExportBudget>,
    /// The one queue every password hash and check of the server goes through.
    pub password_checker: PasswordChecker,
    /// Known API keys (by hash) and their callers; unknown keys are never cached, so
    /// guessing cannot fill the cache.
    pub callers: Arc<TtlCache<[u8; 32], Caller>>,
    /// Where webhook endpoints may point (docs/reference.md#webhook-safety).
    pub webhook_destinations: Destinations,
    /// Each API key's token bucket (docs/reference.md#rate-limits).
    pub rate_limits: Arc<RateLimits>,
}

/// The default of [`AppState::stall_timeout`] and of the server's write stall timeout.
const DEFAULT_STALL_TIMEOUT: Duration = Duration::from_secs(60);

impl AppState {
    /// The state of a server on `store`, its caches empty, with the default bulk limit, a
    /// password checker sized to this machine and no rate limit.
    pub fn new(store: Arc<dyn Store>, default_region: DefaultRegion, body_limit: usize) -> Self {
        Self {
            directory: Directory::new(store, default_region),
            body_limit,
            bulk_body_limit: DEFAULT_BULK_BODY_LIMIT,
            stall_timeout: DEFAULT_STALL_TIMEOUT,
            exports: Arc::default(),
            password_checker: PasswordChecker::for_this_machine(),
            callers: Arc::default(),
            webhook_destinations: Destinations {
                allow_private: false,
            },
            rate_limits: Arc::new(RateLimits::new(None)),
        }
    }

    /// The store beneath the directory, for what is not a use case: API keys, dashboard
    /// users and sessions, the readiness probe.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.directory.store
    }
}
