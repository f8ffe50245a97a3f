//! `contactd export`: every contact of a company, from one snapshot, to stdout or a file.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use contactd_api::ExportFormat;
use contactd_client::Client;

use super::progress::Progress;
use super::{ServerArgs, format_of, parse_format};

/// Options of `contactd export`.
#[derive(Debug, Clone, Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub server: ServerArgs,

    /// `csv` or `ndjson`; by default taken from the output file's extension, else CSV.
    #[arg(long, env = "CONTACTD_FORMAT", value_parser = parse_format)]
    pub format: Option<ExportFormat>,

    /// Write to this file instead of stdout.
    #[arg(short = 'o', long, env = "CONTACTD_OUTPUT")]
    pub output: Option<PathBuf>,
}

/// `contactd export`: writes every contact of the key's company, from one snapshot, to
/// stdout or a file.
pub async fn export(args: ExportArgs) -> anyhow::Result<()> {
    let format = args
        .format
        .or_else(|| args.output.as_deref().and_then(format_of))
        .unwrap_or(ExportFormat::Csv);
    let client = Client::new(&args.server.url, &args.server.key);
    let mut export = client
        .export_contacts(format)
        .await
        .context("the export was refused")?;
    let mut out: Box<dyn Write> = match &args.output {
        Some(path) => {
            Box::new(BufWriter::new(File::create(path).with_context(|| {
                format!("could not create {}", path.display())
            })?))
        }
        None => Box::new(BufWriter::new(io::stdout().lock())),
    };
    let mut progress = Progress::new(export.total(), "{bar:30} {pos}/{len} {msg} ETA {eta}");
    let mut rows = RowCounter::new(format);
    while let Some(chunk) = export
        .chunk()
        .await
        .context("the export broke off before its end")?
    {
        out.write_all(&chunk)?;
        rows.count(&chunk);
        progress.update(rows.rows, rows.rows, 0);
    }
    out.flush()?;
    progress.finish();
    eprintln!("exported {} contacts", rows.rows);
    Ok(())
}

/// Counts the contacts in an export as it streams: NDJSON lines, or CSV records after the
/// header (a line end inside a quoted cell is not a record's end).
struct RowCounter {
    csv: bool,
    in_quotes: bool,
    header_seen: bool,
    rows: u64,
}

impl RowCounter {
    fn new(format: ExportFormat) -> Self {
        let csv = format == ExportFormat::Csv;
        Self {
            csv,
            in_quotes: false,
            header_seen: !csv,
            rows: 0,
        }
    }

    fn count(&mut self, chunk: &[u8]) {
        for &byte in chunk {
            match byte {
                b'"' if self.csv => self.in_quotes = !self.in_quotes,
                b'\n' if !self.in_quotes => {
                    if self.header_seen {
                        self.rows += 1;
                    }
                    self.header_seen = true;
                }
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_records_are_counted_past_quoted_line_ends() {
        let mut counter = RowCounter::new(ExportFormat::Csv);
        counter.count(b"id,first_name\r\n1,\"a\r\nb\"\r\n2,\"say \"\"hi");
        counter.count(b"\"\"\"\r\n");
        assert_eq!(counter.rows, 2);
        let mut counter = RowCounter::new(ExportFormat::Ndjson);
        counter.count(b"{\"a\":\"x\\ny\"}\n{}\n");
        assert_eq!(counter.rows, 2);
    }
}
