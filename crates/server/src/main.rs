//! The `contactd` binary: parse the command line, set up logging, run the command.

use std::io::{BufWriter, IsTerminal};
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};
use contactd::cli::{self, Cli};
use contactd::config::LogFormat;
use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    // The version line names the schema version, which is known at run time only.
    let matches = Cli::command()
        .version(contactd::version::describe())
        .get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|error| error.exit());
    let _flush_logs_at_exit = init_tracing(cli.log_format);
    match cli::execute(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("contactd: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Logs go to stderr (stdout is for command output), filtered by `RUST_LOG`, `info` by
/// default; sqlx's per-statement lines are kept at `warn` since statements carry values.
///
/// A thread of their own writes them, as many lines per write as have queued up, so that a
/// request never waits on stderr: writing one line per request from the request's thread
/// was a tenth of the cheapest request's CPU. No line is ever dropped; a request waits only
/// if 128,000 lines are already queued. The returned guard writes what is left at exit.
fn init_tracing(format: LogFormat) -> WorkerGuard {
    let (writer, guard) = NonBlockingBuilder::default()
        .lossy(false)
        .thread_name("log-writer")
        .finish(BufWriter::new(std::io::stderr()));
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_http=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(std::io::stderr().is_terminal());
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .init(),
    }
    guard
}
