//! Configuration of `contactd serve`; each `///` doubles as its `--help` text, and each
//! option also reads the `CONTACTD_*` variable of its name (docs/reference.md#9-command-line).

use std::net::SocketAddr;
use std::time::Duration;

use clap::builder::BoolishValueParser;
use clap::{Args, ValueEnum};

use crate::domain::DefaultRegion;
use crate::store::PostgresSettings;

/// The database when none is given: a SQLite file in the working directory.
const DEFAULT_DATABASE_URL: &str = "sqlite://contactd.db";

/// Which database to use and how; accepted by every command.
#[derive(Debug, Clone, Args)]
pub struct DatabaseConfig {
    /// Database: `sqlite://PATH` (created if missing) or `postgres://USER@HOST:PORT/NAME`
    /// [default: sqlite://contactd.db].
    #[arg(long, env = "CONTACTD_DATABASE_URL", global = true)]
    pub database_url: Option<String>,

    /// A file holding the database URL, for a URL with a password that should not sit in
    /// the environment or the command line (a trailing line end is dropped). Not with
    /// `--database-url`.
    #[arg(long, env = "CONTACTD_DATABASE_URL_FILE", global = true)]
    pub database_url_file: Option<std::path::PathBuf>,

    /// PostgreSQL only: connections this process keeps open at most. The default suits a
    /// 2-core database server shared by a few processes: PostgreSQL is fastest with about
    /// two busy connections per core in all, and more only queue inside it.
    #[arg(
        long,
        env = "CONTACTD_DATABASE_MAX_CONNECTIONS",
        default_value_t = 8,
        global = true
    )]
    pub database_max_connections: u32,

    /// PostgreSQL only: milliseconds a request waits for a free connection before it is
    /// answered 503; also how long an unreachable database takes to be reported.
    #[arg(
        long,
        env = "CONTACTD_DATABASE_ACQUIRE_TIMEOUT_MS",
        default_value_t = 3000,
        global = true
    )]
    pub database_acquire_timeout_ms: u64,

    /// PostgreSQL only: the URL points at PgBouncer in transaction mode, so statements are
    /// sent unnamed instead of prepared once per connection.
    #[arg(long, env = "CONTACTD_DATABASE_PGBOUNCER", global = true, value_parser = BoolishValueParser::new())]
    pub database_pgbouncer: bool,
}

impl DatabaseConfig {
    /// The database URL: given, read from its file, or the default SQLite file.
    pub fn url(&self) -> anyhow::Result<String> {
        match (&self.database_url, &self.database_url_file) {
            (Some(_), Some(_)) => anyhow::bail!(
                "give the database URL once: --database-url (CONTACTD_DATABASE_URL) or \
                 --database-url-file (CONTACTD_DATABASE_URL_FILE), not both"
            ),
            (Some(url), None) => Ok(url.clone()),
            (None, Some(path)) => {
                let url = std::fs::read_to_string(path).map_err(|error| {
                    anyhow::anyhow!(
                        "could not read the database URL from {}: {error}",
                        path.display()
                    )
                })?;
                Ok(url.trim_end_matches(['\n', '\r']).to_owned())
            }
            (None, None) => Ok(DEFAULT_DATABASE_URL.to_owned()),
        }
    }

    /// The PostgreSQL store's settings.
    pub fn postgres(&self) -> PostgresSettings {
        PostgresSettings {
            max_connections: self.database_max_connections,
            acquire_timeout: Duration::from_millis(self.database_acquire_timeout_ms),
            pgbouncer: self.database_pgbouncer,
        }
    }
}

/// The default of `--bulk-body-limit`: 1,000 contacts of 16 KiB each.
pub const DEFAULT_BULK_BODY_LIMIT: usize = 16 * 1024 * 1024;

/// The default of `--max-exports`: half the default PostgreSQL pool, so exports never hold
/// every connection.
pub const DEFAULT_MAX_EXPORTS: usize = 4;

/// The default of `--max-exports-per-company`.
pub const DEFAULT_MAX_EXPORTS_PER_COMPANY: usize = 2;

/// Options of `contactd serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeConfig {
    /// Address and port to listen on.
    #[arg(long, env = "CONTACTD_BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,

    /// Region (ISO 3166 code) that phone numbers without a `+` or `00` prefix are read in.
    #[arg(long, env = "CONTACTD_DEFAULT_PHONE_REGION", default_value = "US")]
    pub default_phone_region: DefaultRegion,

    /// Largest request body accepted, in bytes; larger ones are answered 413.
    #[arg(long, env = "CONTACTD_BODY_LIMIT", default_value_t = 256 * 1024)]
    pub body_limit: usize,

    /// Largest body of the routes that take up to 1,000 contacts at once (an array
    /// `POST /api/v1/contacts`, `POST /api/v1/contacts/batch`), in bytes.
    #[arg(
        long,
        env = "CONTACTD_BULK_BODY_LIMIT",
        default_value_t = DEFAULT_BULK_BODY_LIMIT
    )]
    pub bulk_body_limit: usize,

    /// How long a request head may take to arrive, counted from when the server starts
    /// waiting for it: on a kept-alive connection, from the end of the previous response, so
    /// an idle connection is closed after this long too.
    #[arg(long, env = "CONTACTD_HEADER_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    pub header_timeout: Duration,

    /// The longest gap allowed while a request body arrives; a body that stops for longer
    /// is answered 408.
    #[arg(long, env = "CONTACTD_BODY_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    pub body_timeout: Duration,

    /// How long a response may wait for the client to read it (an export included) before
    /// the connection is closed and what the response held (an export's snapshot and its
    /// database connection) is released.
    #[arg(long, env = "CONTACTD_STALL_TIMEOUT", default_value = "60s", value_parser = humantime::parse_duration)]
    pub stall_timeout: Duration,

    /// Connections served at once; more are answered 503 and closed at once. Lowered at
    /// start-up to what the process's file limit leaves room for.
    #[arg(long, env = "CONTACTD_MAX_CONNECTIONS", default_value_t = 1024)]
    pub max_connections: usize,

    /// How long a shutdown (SIGTERM, SIGINT) waits for in-flight requests before exiting.
    #[arg(long, env = "CONTACTD_SHUTDOWN_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    pub shutdown_timeout: Duration,

    /// Exports running at once, in all; more are answered 429. On PostgreSQL each holds a
    /// database connection, so this must stay below `--database-max-connections`.
    #[arg(long, env = "CONTACTD_MAX_EXPORTS", default_value_t = DEFAULT_MAX_EXPORTS)]
    pub max_exports: usize,

    /// Exports one company runs at once; more are answered 429.
    #[arg(long, env = "CONTACTD_MAX_EXPORTS_PER_COMPANY", default_value_t = DEFAULT_MAX_EXPORTS_PER_COMPANY)]
    pub max_exports_per_company: usize,

    /// Requests a second each API key may make on average: a token bucket per key, in
    /// this process (docs/reference.md#rate-limits). 0 turns the limit off. A key made with
    /// its own limit (`contactd key create --rate-limit`) keeps that one.
    #[arg(long, env = "CONTACTD_RATE_LIMIT", default_value_t = 100)]
    pub rate_limit: u32,

    /// Requests each API key may make at once, in a burst, before the average applies.
    #[arg(long, env = "CONTACTD_RATE_BURST", default_value_t = 200)]
    pub rate_burst: u32,

    /// How long change events are kept (the feed, contact histories); older ones are
    /// deleted in the background, and a feed cursor older than this is answered 410.
    #[arg(long, env = "CONTACTD_EVENT_RETENTION", default_value = "30days", value_parser = humantime::parse_duration)]
    pub event_retention: Duration,

    /// Lets webhook endpoints point at loopback, private, link-local and other internal
    /// addresses, which are refused otherwise (docs/reference.md#webhook-safety): for tests
    /// and receivers on the same network.
    #[arg(long, env = "CONTACTD_WEBHOOK_ALLOW_PRIVATE", value_parser = BoolishValueParser::new())]
    pub webhook_allow_private: bool,

    /// Address and port to serve Prometheus metrics on, at `GET /metrics`, apart from the
    /// API; off when not given.
    #[arg(long, env = "CONTACTD_METRICS_BIND")]
    pub metrics_bind: Option<SocketAddr>,
}

impl ServeConfig {
    /// Refuses options that cannot work together, before anything is opened.
    pub fn check(&self) -> anyhow::Result<()> {
        if let Some(metrics) = self.metrics_bind
            && overlap(metrics, self.bind)
        {
            anyhow::bail!(
                "--metrics-bind ({metrics}) must be another address than --bind ({}): the \
                 metrics are served by a listener of their own, apart from the API",
                self.bind
            );
        }
        Ok(())
    }
}

/// Whether two listeners could not both bind: the same port, on the same address or with
/// either on every address. Port 0 asks for any free port, so it never collides.
fn overlap(a: SocketAddr, b: SocketAddr) -> bool {
    a.port() == b.port()
        && a.port() != 0
        && (a.ip() == b.ip() || a.ip().is_unspecified() || b.ip().is_unspecified())
}

/// How log lines are written to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One human-readable line per event, fields as key=value.
    Text,
    /// One JSON object per event, for log collectors.
    Json,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listeners_overlap_only_where_both_could_not_bind() {
        let address = |text: &str| text.parse::<SocketAddr>().expect("an address");
        for (a, b) in [
            ("127.0.0.1:8080", "127.0.0.1:8080"),
            ("0.0.0.0:8080", "127.0.0.1:8080"),
            ("[::1]:9090", "[::]:9090"),
        ] {
            assert!(overlap(address(a), address(b)), "{a} and {b}");
            assert!(overlap(address(b), address(a)), "{b} and {a}");
        }
        for (a, b) in [
            ("127.0.0.1:8080", "127.0.0.1:9090"),
            ("127.0.0.1:0", "127.0.0.1:0"),
            ("127.0.0.1:8080", "127.0.0.2:8080"),
        ] {
            assert!(!overlap(address(a), address(b)), "{a} and {b}");
        }
    }
}
