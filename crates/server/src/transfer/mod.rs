//! `contactd import` and `contactd export` (docs/reference.md#11-bulk-batch-writes-import-and-export): moving contacts between files and a running
//! server, through the client crate, so they work against any deployment.
//!
//! An import streams its file: a reader thread turns rows into create payloads and hands
//! them over in batches, several of which are in flight at once; memory holds a few batches,
//! however large the file. Every row that fails is reported with its line number, and so is
//! every record the reader could not read whole (docs/robustness.md#import-never-reports-success-for-a-file-it-did-not-read):
//! an import never reports success for a file it did not read completely and correctly.

mod csv_file;
mod errors_file;
mod export;
mod import;
mod ndjson_file;
mod progress;
mod quote_tracker;
mod rows;

use std::path::Path;

use clap::Args;
use contactd_api::ExportFormat;

pub use export::{ExportArgs, export};
pub use import::{ImportArgs, import};

/// Where the server is and which key to act with.
#[derive(Debug, Clone, Args)]
pub struct ServerArgs {
    /// Base URL of the contactd server.
    #[arg(long, env = "CONTACTD_URL", default_value = "http://127.0.0.1:8080")]
    pub url: String,

    /// API key of the company to import into or export from.
    #[arg(long, env = "CONTACTD_KEY", hide_env_values = true)]
    pub key: String,
}

fn parse_format(name: &str) -> Result<ExportFormat, String> {
    [ExportFormat::Csv, ExportFormat::Ndjson]
        .into_iter()
        .find(|format| format.as_str() == name)
        .ok_or_else(|| "expected csv or ndjson".to_owned())
}

/// The format a file's extension names.
fn format_of(path: &Path) -> Option<ExportFormat> {
    match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
        "csv" => Some(ExportFormat::Csv),
        "ndjson" | "jsonl" => Some(ExportFormat::Ndjson),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_format_follows_the_extension() {
        assert_eq!(format_of(Path::new("a/b.CSV")), Some(ExportFormat::Csv));
        assert_eq!(format_of(Path::new("b.jsonl")), Some(ExportFormat::Ndjson));
        assert_eq!(format_of(Path::new("b.txt")), None);
    }
}
