//! Configuration of `contactd serve`; each `///` doubles as its `--help` text, and each
//! option also reads the `CONTACTD_*` variable of its name (§9).

use std::net::SocketAddr;

use clap::{Args, ValueEnum};

use crate::domain::DefaultRegion;

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
}

/// How log lines are written to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One human-readable line per event, fields as key=value.
    Text,
    /// One JSON object per event, for log collectors.
    Json,
}
