//! The Prometheus metrics of `contactd serve --metrics-bind` (docs/reference.md#metrics):
//! the name of every family, its help text and its buckets, and the recorder they go to.
//!
//! Metrics are recorded through the `metrics` facade wherever the thing measured happens
//! (the request layer, the group commit, the connection and export limits). Without a
//! recorder, which only `serve` with `--metrics-bind` installs, each of those calls does
//! nothing, so the tests' many in-process servers and the admin commands record nothing.

use metrics::{Unit, counter, describe_counter, describe_gauge, describe_histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Requests answered, by `route`, `method` and `status`.
pub const HTTP_REQUESTS: &str = "contactd_http_requests_total";
/// How long requests took until their response head was ready, by `route` and `method`.
pub const HTTP_REQUEST_DURATION: &str = "contactd_http_request_duration_seconds";
/// Requests being answered now.
pub const HTTP_REQUESTS_IN_FLIGHT: &str = "contactd_http_requests_in_flight";
/// Connections refused at their listener's limit, by `listener`.
pub const HTTP_CONNECTIONS_REFUSED: &str = "contactd_http_connections_refused_total";
/// Exports refused (429), by the `limit` they met.
pub const EXPORTS_REFUSED: &str = "contactd_exports_refused_total";
/// Requests refused (429) by their key's rate limit.
pub const RATE_LIMITED: &str = "contactd_rate_limited_total";
/// Writes (requests' writes, not rows) each SQLite group commit carried.
pub const SQLITE_GROUP_COMMIT_WRITES: &str = "contactd_sqlite_group_commit_writes";
/// How long each SQLite group commit took, from its first write to the end of its fsync.
pub const SQLITE_GROUP_COMMIT_DURATION: &str = "contactd_sqlite_group_commit_duration_seconds";
/// The size of the SQLite write-ahead log.
pub const SQLITE_WAL_SIZE: &str = "contactd_sqlite_wal_size_bytes";
/// The PostgreSQL pool's open connections, by `state`: `in_use` or `idle`.
pub const POSTGRES_POOL_CONNECTIONS: &str = "contactd_postgres_pool_connections";
/// The most connections the PostgreSQL pool opens (`--database-max-connections`).
pub const POSTGRES_POOL_MAX_CONNECTIONS: &str = "contactd_postgres_pool_max_connections";

/// Delivery attempts made, by `outcome`: `delivered`, `retrying` or `failed`.
pub const WEBHOOK_ATTEMPTS: &str = "contactd_webhook_attempts_total";
/// How long each delivery attempt took, from sending the request to the end of its answer.
pub const WEBHOOK_ATTEMPT_DURATION: &str = "contactd_webhook_attempt_duration_seconds";
/// Attempts scheduled again and not yet made, of every endpoint.
pub const WEBHOOK_RETRIES_PENDING: &str = "contactd_webhook_retries_pending";
/// Webhook endpoints, by `state`: `enabled` or `disabled`.
pub const WEBHOOK_ENDPOINTS: &str = "contactd_webhook_endpoints";
/// How long ago the oldest event an enabled endpoint has not yet had a first attempt of
/// occurred; 0 when every endpoint is caught up.
pub const WEBHOOK_BACKLOG_AGE: &str = "contactd_webhook_backlog_age_seconds";

/// The route label of a request that matched no route: never its raw path, which may hold
/// an email address or a phone number, and which a client could vary without end.
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// Latency buckets, in seconds: most requests take about a millisecond, so the buckets are
/// finest from a quarter of one to a few tens of them, and reach the 5 s a write may wait
/// for the database's lock (and beyond, for slow bulk writes).
const REQUEST_SECONDS: &[f64] = &[
    0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
    10.0,
];

/// Writes per group commit: powers of two up to the most one commit carries (256).
const COMMIT_WRITES: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0];

/// Group commit durations, in seconds: an fsync takes from a fraction of a millisecond
/// (a disk with a write cache) to tens of them, and a commit of bulk writes longer.
const COMMIT_SECONDS: &[f64] = &[
    0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0,
];

/// Installs the process's one recorder, with every family described and its histograms'
/// buckets, and returns the handle that renders what it holds.
///
/// Its histograms keep each observation until they are rendered or until
/// [`PrometheusHandle::run_upkeep`] folds them into their buckets: the caller runs the
/// upkeep every few seconds, so that memory stays flat when nothing scrapes.
pub fn install() -> anyhow::Result<PrometheusHandle> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full(HTTP_REQUEST_DURATION.into()), REQUEST_SECONDS)?
        .set_buckets_for_metric(
            Matcher::Full(SQLITE_GROUP_COMMIT_WRITES.into()),
            COMMIT_WRITES,
        )?
        .set_buckets_for_metric(
            Matcher::Full(SQLITE_GROUP_COMMIT_DURATION.into()),
            COMMIT_SECONDS,
        )?
        .set_buckets_for_metric(
            Matcher::Full(WEBHOOK_ATTEMPT_DURATION.into()),
            REQUEST_SECONDS,
        )?
        .install_recorder()
        .map_err(|error| anyhow::anyhow!("could not start recording metrics: {error}"))?;
    describe();
    // The counters of a known set of labels are shown from the start, at zero, so that a
    // rate over them means something before their first refusal.
    for listener in ["api", "metrics"] {
        counter!(HTTP_CONNECTIONS_REFUSED, "listener" => listener).absolute(0);
    }
    for limit in ["company", "server"] {
        counter!(EXPORTS_REFUSED, "limit" => limit).absolute(0);
    }
    counter!(RATE_LIMITED).absolute(0);
    for outcome in ["delivered", "retrying", "failed"] {
        counter!(WEBHOOK_ATTEMPTS, "outcome" => outcome).absolute(0);
    }
    Ok(handle)
}

/// The help text of every family, as a scrape shows it.
fn describe() {
    describe_counter!(
        HTTP_REQUESTS,
        "Requests answered, by route template (`unmatched` for none), method and status."
    );
    describe_histogram!(
        HTTP_REQUEST_DURATION,
        Unit::Seconds,
        "Time from a request's arrival to its response head, by route template and method."
    );
    describe_gauge!(HTTP_REQUESTS_IN_FLIGHT, "Requests being answered now.");
    describe_counter!(
        HTTP_CONNECTIONS_REFUSED,
        "Connections answered 503 and closed at once, by listener: `api` served \
         --max-connections already, or `metrics` its few."
    );
    describe_counter!(
        EXPORTS_REFUSED,
        "Exports answered 429, by the limit met: `company` (--max-exports-per-company) or \
         `server` (--max-exports)."
    );
    describe_counter!(
        RATE_LIMITED,
        "Requests answered 429 because their API key was past its rate limit (--rate-limit)."
    );
    describe_histogram!(
        SQLITE_GROUP_COMMIT_WRITES,
        "Writes one SQLite transaction and fsync carried (group commit)."
    );
    describe_histogram!(
        SQLITE_GROUP_COMMIT_DURATION,
        Unit::Seconds,
        "Time one SQLite group commit took, from its first write to the end of its fsync."
    );
    describe_gauge!(
        SQLITE_WAL_SIZE,
        Unit::Bytes,
        "Size of the SQLite write-ahead log file, when scraped."
    );
    describe_gauge!(
        POSTGRES_POOL_CONNECTIONS,
        "Open connections of the PostgreSQL pool, by state (`in_use`, `idle`), when scraped."
    );
    describe_counter!(
        WEBHOOK_ATTEMPTS,
        "Webhook delivery attempts made by this instance, by outcome (`delivered`, \
         `retrying`, `failed`)."
    );
    describe_histogram!(
        WEBHOOK_ATTEMPT_DURATION,
        Unit::Seconds,
        "Time of one webhook delivery attempt, from sending it to the end of its answer."
    );
    describe_gauge!(
        WEBHOOK_RETRIES_PENDING,
        "Webhook attempts scheduled again and not yet made, of every endpoint, when scraped."
    );
    describe_gauge!(
        WEBHOOK_ENDPOINTS,
        "Webhook endpoints, by state (`enabled`, `disabled`), when scraped."
    );
    describe_gauge!(
        WEBHOOK_BACKLOG_AGE,
        Unit::Seconds,
        "Age of the oldest event an enabled webhook endpoint has not yet been sent, when \
         scraped; 0 when every endpoint is caught up."
    );
    describe_gauge!(
        POSTGRES_POOL_MAX_CONNECTIONS,
        "The most connections the PostgreSQL pool opens (--database-max-connections)."
    );
}
