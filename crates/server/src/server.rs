//! `contactd serve`: first-run bootstrap, the listeners (the API's and the metrics'), and graceful shutdown (docs/reference.md#8-operations, docs/reference.md#9-command-line).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;

use contactd_api::Scope;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceBuilder;
use tower_http::timeout::RequestBodyTimeoutLayer;

use crate::api_key;
use crate::config::ServeConfig;
use crate::connection;
use crate::domain::Email;
use crate::events;
use crate::http::error::ApiError;
use crate::http::export_budget::ExportBudget;
use crate::http::rate_limit::RateLimits;
use crate::http::{AppState, app, scrape};
use crate::password::Password;
use crate::prometheus::{self, HTTP_CONNECTIONS_REFUSED};
use crate::store::RateLimit;
use crate::store::{Store, StoreError};
use crate::webhooks::{Destinations, delivery};

/// The company the first run creates, so the README's first command gives a working API.
const DEFAULT_COMPANY: &str = "default";
/// The dashboard user the first run creates for it.
const DEFAULT_USER_EMAIL: &str = "admin@contactd.local";

/// Serves the API on `config.bind`, and the metrics on `config.metrics_bind` when it is
/// set, until SIGTERM or SIGINT, then finishes in-flight requests and returns.
///
/// The addresses are bound before the first run creates anything: a start that cannot
/// listen (a port is taken) must not consume the credentials that are shown only once
/// (docs/robustness.md#first-run). Connections that arrive meanwhile wait in the backlog.
pub async fn serve(store: Arc<dyn Store>, config: ServeConfig) -> anyhow::Result<()> {
    let listener = bind(config.bind, "the API").await?;
    let address = listener.local_addr()?;
    let metrics = match config.metrics_bind {
        Some(metrics_bind) => Some(metrics_listener(metrics_bind, store.clone()).await?),
        None => None,
    };
    tokio::spawn(events::keep_retention(
        store.clone(),
        config.event_retention,
    ));
    let destinations = Destinations {
        allow_private: config.webhook_allow_private,
    };
    tokio::spawn(delivery::deliver(store.clone(), destinations));
    tokio::spawn(crate::http::idempotency::keep_expiring(store.clone()));
    let mut state = AppState::new(store, config.default_phone_region, config.body_limit);
    state.webhook_destinations = destinations;
    state.bulk_body_limit = config.bulk_body_limit;
    state.stall_timeout = config.stall_timeout;
    state.rate_limits = Arc::new(RateLimits::new((config.rate_limit > 0).then(|| {
        RateLimit {
            per_second: config.rate_limit,
            burst: config.rate_burst.max(1),
        }
    })));
    state.exports = Arc::new(ExportBudget::new(
        config.max_exports,
        config.max_exports_per_company,
    ));
    if let Some(first_run) = bootstrap(&state).await? {
        first_run.announce(address);
    }
    let api = Listener {
        name: "api",
        tcp: listener,
        service: app(state),
        connections: connection_limit(config.max_connections),
    };
    tracing::info!(%address, "contactd is listening");
    serve_until_signal(api, metrics, &config).await;
    tracing::info!("contactd stopped");
    Ok(())
}

/// Binds an address, saying which one could not be had and for what.
async fn bind(address: SocketAddr, purpose: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(address)
        .await
        .with_context(|| format!("could not listen on {address} for {purpose}"))
}

/// Binds the metrics listener and installs the recorder it renders
/// (docs/reference.md#metrics). The recorder is installed here alone, once per process,
/// and before the first run, so that everything the server does is recorded.
async fn metrics_listener(
    address: SocketAddr,
    store: Arc<dyn Store>,
) -> anyhow::Result<(Listener, PrometheusHandle)> {
    let tcp = bind(address, "the metrics").await?;
    let handle = prometheus::install()?;
    tracing::info!(address = %tcp.local_addr()?, "serving metrics at /metrics");
    let listener = Listener {
        name: "metrics",
        tcp,
        service: scrape::router(handle.clone(), store),
        connections: METRICS_CONNECTIONS,
    };
    Ok((listener, handle))
}

/// The most hyper buffers of a request head, and the most headers it parses. Both are
/// above what the router accepts (`http::MAX_HEADER_BYTES`, `http::MAX_HEADERS`), so an
/// oversized head reaches the router and is refused there with a 431 that names the limits;
/// a head past these gets hyper's own 431, which `connection.rs` gives the same body. hyper
/// makes room for `MAX_HEAD_HEADERS` headers on every request it parses (at 10,000 that was
/// 7% of the server's CPU in a profile of `GET /contacts/{id}`; at 1,024 it is 4% of
/// `/healthz`, the cheapest request), so it stays a small multiple of the router's limit.
const MAX_HEAD_BYTES: usize = 2 * 1024 * 1024;
const MAX_HEAD_HEADERS: usize = 1024;

/// File descriptors kept for everything but client connections: the database files and
/// their read connections, the PostgreSQL pool, logs, the metrics listener's connections.
const RESERVED_FILES: usize = 128;

/// Connections the metrics listener serves at once: a scraper or two need one each, and a
/// flood of connections there takes no descriptor from the API's clients.
const METRICS_CONNECTIONS: usize = 8;

/// How often the histograms' recorded observations are folded into their buckets, so that
/// memory stays flat however long nothing scrapes.
const METRICS_UPKEEP: Duration = Duration::from_secs(5);

/// A listening socket and what its connections are served: the API, or the metrics.
struct Listener {
    /// Its name in logs and in the `listener` label of the refused connections.
    name: &'static str,
    tcp: TcpListener,
    service: Router,
    /// Connections it serves at once; more are answered 503 and closed.
    connections: usize,
}

/// Accepts connections until SIGTERM or SIGINT, then stops accepting, lets every in-flight
/// request finish (for `shutdown_timeout` at most), and returns. The metrics listener, when
/// there is one, stops with the API's.
async fn serve_until_signal(
    api: Listener,
    metrics: Option<(Listener, PrometheusHandle)>,
    config: &ServeConfig,
) {
    let connections = Connections::new(config);
    let metrics = async {
        match metrics {
            Some((listener, handle)) => tokio::select! {
                never = connections.accept(listener) => never,
                never = keep_up(handle) => never,
            },
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        never = connections.accept(api) => match never {},
        never = metrics => match never {},
        () = shutdown_signal() => {}
    }
    // The listeners are closed: they were dropped with the futures that accepted on them.
    if tokio::time::timeout(config.shutdown_timeout, connections.graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            timeout = ?config.shutdown_timeout,
            "shutting down with requests still in flight: they did not finish in time"
        );
    }
}

/// How every connection, of either listener, is served: held to the timeouts and limits of
/// `docs/robustness.md#timeouts-and-connection-limits`, and watched for a graceful shutdown.
struct Connections {
    http: http1::Builder,
    body_timeout: Duration,
    stall_timeout: Duration,
    /// The answer to a connection past its listener's limit.
    too_many: Vec<u8>,
    graceful: GracefulShutdown,
}

impl Connections {
    fn new(config: &ServeConfig) -> Self {
        let mut http = http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(config.header_timeout)
            .max_buf_size(MAX_HEAD_BYTES)
            .max_headers(MAX_HEAD_HEADERS);
        Self {
            http,
            body_timeout: config.body_timeout,
            stall_timeout: config.stall_timeout,
            too_many: connection::refusal(
                &ApiError::TooManyConnections,
                "HTTP/1.1 503 Service Unavailable\r\nretry-after: 1",
            ),
            graceful: GracefulShutdown::new(),
        }
    }

    /// Serves each connection of a listener on a task of its own, for as long as this
    /// future runs: dropping it closes the listener.
    async fn accept(&self, listener: Listener) -> Infallible {
        let service = ServiceBuilder::new()
            .layer(RequestBodyTimeoutLayer::new(self.body_timeout))
            .service(listener.service);
        let connections = Arc::new(Semaphore::new(listener.connections));
        loop {
            let stream = match listener.tcp.accept().await {
                Ok((stream, _)) => stream,
                Err(error) => {
                    // Out of file descriptors, say: wait a moment rather than spin.
                    tracing::warn!(%error, listener = listener.name, "could not accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let Ok(permit) = connections.clone().try_acquire_owned() else {
                metrics::counter!(HTTP_CONNECTIONS_REFUSED, "listener" => listener.name)
                    .increment(1);
                // Answered without reading the request, and closed at once: a full socket
                // buffer (a client that sends and never reads) only loses it the answer.
                let _ = stream.try_write(&self.too_many);
                continue;
            };
            // Responses are written whole; Nagle's delay would only add latency.
            if let Err(error) = stream.set_nodelay(true) {
                tracing::debug!(%error, "could not set TCP_NODELAY");
            }
            let io = connection::client_io(stream, self.stall_timeout);
            let connection = self
                .http
                .serve_connection(TokioIo::new(io), TowerToHyperService::new(service.clone()));
            let connection = self.graceful.watch(connection);
            tokio::spawn(async move {
                if let Err(error) = connection.await {
                    tracing::debug!(%error, "connection ended with an error");
                }
                drop(permit);
            });
        }
    }
}

/// Folds the recorded histograms into their buckets every [`METRICS_UPKEEP`], for as long
/// as the server runs.
async fn keep_up(handle: PrometheusHandle) -> Infallible {
    let mut every = tokio::time::interval(METRICS_UPKEEP);
    loop {
        every.tick().await;
        handle.run_upkeep();
    }
}

/// The connections served at once: `wanted`, or fewer when the file limit leaves no room
/// for them. The soft file limit is raised to the hard one first, as most servers do.
fn connection_limit(wanted: usize) -> usize {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let files = match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) => {
            if soft < hard && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
                hard
            } else {
                soft
            }
        }
        Err(error) => {
            tracing::warn!(%error, "could not read the file limit");
            return wanted;
        }
    };
    let room = usize::try_from(files)
        .unwrap_or(usize::MAX)
        .saturating_sub(RESERVED_FILES)
        .max(1);
    if wanted > room {
        tracing::warn!(
            wanted,
            room,
            "--max-connections lowered to what the file limit leaves room for"
        );
    }
    wanted.min(room)
}

/// What the first run made: shown once, then never again.
struct FirstRun {
    api_key: String,
    email: Email,
    password: Password,
}

impl FirstRun {
    /// Prints the key and the dashboard login to stderr, with the address to open.
    fn announce(&self, address: SocketAddr) {
        eprintln!(
            "contactd: first run: created company \"{DEFAULT_COMPANY}\" with an API key and a \
             dashboard user. They are shown only this once, so keep them now:\n\n    \
             API key:    {}\n    dashboard:  http://{address}/dashboard\n    \
             email:      {}\n    password:   {}\n",
            self.api_key,
            self.email.as_str(),
            self.password.expose()
        );
    }
}

/// On an empty database, creates the default company, one API key and one dashboard user
/// for it; their secrets are returned to be shown once. The secrets are made (and the
/// password hashed) before the first write, so only three short statements separate the
/// writes from the announcement.
async fn bootstrap(state: &AppState) -> anyhow::Result<Option<FirstRun>> {
    let store = state.store().as_ref();
    if !store.list_companies().await?.is_empty() {
        return Ok(None);
    }
    let key = api_key::generate(Some("bootstrap".to_owned()), &Scope::ALL);
    let email = Email::parse(DEFAULT_USER_EMAIL)?;
    let password = Password::generate();
    let hash = state
        .password_checker
        .turn()
        .await?
        .hash(password.clone())
        .await?;
    let company = match store.create_company(DEFAULT_COMPANY).await {
        Ok(company) => company,
        // Another process bootstrapped the same database first.
        Err(StoreError::DuplicateCompanyName) => return Ok(None),
        Err(error) => return Err(error.into()),
    };
    store.create_api_key(company.id, &key.record).await?;
    store.create_user(company.id, &email, &hash).await?;
    Ok(Some(FirstRun {
        api_key: key.secret,
        email,
        password,
    }))
}

async fn shutdown_signal() {
    let interrupt = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "could not listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "could not listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
    tracing::info!("shutting down: finishing in-flight requests");
}
