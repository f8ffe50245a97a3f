//! Configuration of `contactd serve`; each `///` doubles as its `--help` text, and each
//! option also reads the `CONTACTD_*` variable of its name (§9).

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Args, ValueEnum};

use crate::domain::DefaultRegion;
use crate::store::PostgresSettings;

/// Which database to use and how; accepted by every command.
#[derive(Debug, Clone, Args)]
pub struct DatabaseConfig {
    /// Database: `sqlite://PATH` (created if missing) or `postgres://USER@HOST:PORT/NAME`.
    #[arg(
        long,
        env = "CONTACTD_DATABASE_URL",
        default_value = "sqlite://contactd.db",
        global = true
    )]
    pub database_url: String,

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
    #[arg(long, env = "CONTACTD_DATABASE_PGBOUNCER", global = true)]
    pub database_pgbouncer: bool,
}

impl DatabaseConfig {
    /// The PostgreSQL store's settings.
    pub fn postgres(&self) -> PostgresSettings {
        PostgresSettings {
            max_connections: self.database_max_connections,
            acquire_timeout: Duration::from_millis(self.database_acquire_timeout_ms),
            pgbouncer: self.database_pgbouncer,
        }
    }
}

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
        default_value_t = crate::http::DEFAULT_BULK_BODY_LIMIT
    )]
    pub bulk_body_limit: usize,
}

/// How log lines are written to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One human-readable line per event, fields as key=value.
    Text,
    /// One JSON object per event, for log collectors.
    Json,
}
