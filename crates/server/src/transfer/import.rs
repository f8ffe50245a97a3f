//! `contactd import FILE`: a reader thread turns the file's rows into create payloads and
//! hands them over in batches, several of which are in flight at once; every row that fails
//! is reported with its line number.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use clap::Args;
use contactd_api::{ErrorBody, ExportFormat, MAX_BULK_ITEMS, MatchOn};
use contactd_client::Client;
use futures_util::{StreamExt, stream};
use serde_json::Value;
use tokio::sync::mpsc;

use super::csv_file::{check_header, read_csv};
use super::errors_file::ErrorsFile;
use super::ndjson_file::read_ndjson;
use super::progress::Progress;
use super::quote_tracker::QuoteTracker;
use super::rows::{Batch, FailedRow, Row};
use super::{ServerArgs, format_of, parse_format};

/// Options of `contactd import`.
#[derive(Debug, Clone, Args)]
pub struct ImportArgs {
    #[command(flatten)]
    pub server: ServerArgs,

    /// The file: CSV with a header row (the columns of an export), or NDJSON (one contact
    /// object per line).
    pub file: PathBuf,

    /// Update the contact whose ext_id, email or phone_number matches a row's, creating only
    /// rows that match none; without it every row creates a contact.
    #[arg(long, env = "CONTACTD_MATCH_ON", value_parser = parse_match_on)]
    pub match_on: Option<MatchOn>,

    /// Write every failed row here, with its line number and error (CSV for a CSV file,
    /// NDJSON for an NDJSON file); without it they are listed on stderr.
    #[arg(long, env = "CONTACTD_ERRORS")]
    pub errors: Option<PathBuf>,

    /// `csv` or `ndjson`; by default taken from the file's extension.
    #[arg(long, env = "CONTACTD_FORMAT", value_parser = parse_format)]
    pub format: Option<ExportFormat>,

    /// Rows per request, at most 1,000.
    #[arg(long, env = "CONTACTD_BATCH_SIZE", default_value_t = MAX_BULK_ITEMS,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1000))]
    pub batch_size: usize,

    /// Requests in flight at once.
    #[arg(long, env = "CONTACTD_CONCURRENCY", default_value_t = 4,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=64))]
    pub concurrency: usize,
}

fn parse_match_on(name: &str) -> Result<MatchOn, String> {
    [MatchOn::ExtId, MatchOn::Email, MatchOn::PhoneNumber]
        .into_iter()
        .find(|match_on| match_on.as_str() == name)
        .ok_or_else(|| "expected one of ext_id, email, phone_number".to_owned())
}

/// Tallies of an import.
#[derive(Debug, Default)]
struct Tally {
    created: u64,
    updated: u64,
    /// Rows matched to a contact that already held every value they carried.
    unchanged: u64,
    failed: u64,
}

/// `contactd import FILE`: sends the file's rows in batches and reports each failed row.
pub async fn import(args: ImportArgs) -> anyhow::Result<()> {
    let format = args.format.or_else(|| format_of(&args.file)).ok_or_else(|| {
        anyhow!(
            "cannot tell the format of {} from its extension: pass --format csv or --format ndjson",
            args.file.display()
        )
    })?;
    let client = Client::new(&args.server.url, &args.server.key);
    let file = File::open(&args.file)
        .with_context(|| format!("could not open {}", args.file.display()))?;
    let size = file.metadata().map(|meta| meta.len()).unwrap_or_default();
    let read = Arc::new(AtomicU64::new(0));
    let input = BufReader::with_capacity(
        1 << 16,
        CountingReader {
            inner: file,
            read: read.clone(),
        },
    );
    let (batches_sent, batches) = mpsc::channel(args.concurrency * 2);
    let (mut errors, reader): (_, std::thread::JoinHandle<anyhow::Result<()>>) = match format {
        ExportFormat::Csv => {
            let fields = client
                .list_custom_fields()
                .await
                .context("could not read the custom fields to check the CSV columns against")?;
            let keys: Vec<String> = fields
                .data
                .custom_fields
                .into_iter()
                .map(|field| field.key)
                .collect();
            let mut csv = csv::ReaderBuilder::new()
                .flexible(false)
                .from_reader(QuoteTracker::new(input));
            let header = check_header(&mut csv, &keys)?;
            let errors = ErrorsFile::csv(args.errors.as_deref(), &header)?;
            let batch_size = args.batch_size;
            let reader = std::thread::spawn(move || {
                read_csv(csv, &header, &keys, batch_size, &batches_sent)
            });
            (errors, reader)
        }
        ExportFormat::Ndjson => {
            let errors = ErrorsFile::ndjson(args.errors.as_deref())?;
            let batch_size = args.batch_size;
            let reader = std::thread::spawn(move || read_ndjson(input, batch_size, &batches_sent));
            (errors, reader)
        }
    };

    let mut progress = Progress::new(Some(size), "{bar:30} {percent:>3}% {msg} ETA {eta}");
    let mut tally = Tally::default();
    let match_on = args.match_on;
    let sent = stream::unfold(batches, |mut batches| async move {
        batches.recv().await.map(|batch| (batch, batches))
    })
    .map(|batch: Batch| {
        let client = client.clone();
        async move {
            let outcome = send_batch(&client, match_on, &batch.rows).await;
            (batch, outcome)
        }
    })
    .buffered(args.concurrency);
    let mut sent = std::pin::pin!(sent);
    // A batch refused as a whole ends the import at once: its rows' fate is unknown.
    let mut rows_done = 0;
    while let Some((batch, outcome)) = sent.next().await {
        let first_line = batch.rows.first().map_or(0, |row| row.line);
        let outcome = outcome.with_context(|| {
            format!("the batch starting at line {first_line} was refused as a whole")
        })?;
        rows_done += (batch.rows.len() + batch.unreadable.len()) as u64;
        tally.created += outcome.created;
        tally.updated += outcome.updated;
        tally.unchanged += outcome.unchanged;
        let mut rows: Vec<Option<Row>> = batch.rows.into_iter().map(Some).collect();
        let failed = outcome.failed.into_iter().filter_map(|(index, error)| {
            let row = rows.get_mut(index)?.take()?;
            Some(FailedRow {
                line: row.line,
                error,
                source: row.source,
            })
        });
        for row in batch.unreadable.into_iter().chain(failed) {
            tally.failed += 1;
            errors.write(&row)?;
        }
        progress.update(read.load(Ordering::Relaxed), rows_done, tally.failed);
    }
    // A reader that could not go on (an I/O error) has already handed over the record it
    // stopped at, as a failed row: the summary and the errors file count it before the
    // import fails.
    let read = reader
        .join()
        .map_err(|_| anyhow!("the file reader stopped unexpectedly"))?;
    errors.finish()?;
    progress.finish();
    println!(
        "{}: {} created, {} updated, {} unchanged, {} failed",
        args.file.display(),
        tally.created,
        tally.updated,
        tally.unchanged,
        tally.failed
    );
    read.with_context(|| format!("{} was not read to its end", args.file.display()))?;
    if tally.failed > 0 {
        bail!(
            "{} failed{}",
            match tally.failed {
                1 => "1 row".to_owned(),
                count => format!("{count} rows"),
            },
            args.errors
                .as_ref()
                .map_or_else(String::new, |path| format!(
                    "; see {} for each with its line number",
                    path.display()
                ))
        );
    }
    Ok(())
}

/// Counts the bytes read through it, for the progress bar.
struct CountingReader<R> {
    inner: R,
    read: Arc<AtomicU64>,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let count = self.inner.read(buf)?;
        self.read.fetch_add(count as u64, Ordering::Relaxed);
        Ok(count)
    }
}

/// What the server made of a batch: counts, and each failed item by its index.
#[derive(Debug, Default)]
struct BatchOutcome {
    created: u64,
    updated: u64,
    unchanged: u64,
    failed: Vec<(usize, ErrorBody)>,
}

/// How often a batch answered 503 (nothing written) is tried before the import stops.
const ATTEMPTS: u32 = 5;

/// Sends one batch: an array create, or a batch upsert with `--match-on`. A 429 (the key's
/// rate limit) or 503 means nothing of it was written, so it is tried again after the
/// answer's `Retry-After`: as often as it takes for a 429, up to [`ATTEMPTS`] times, with
/// a pause that doubles, for a 503.
async fn send_batch(
    client: &Client,
    match_on: Option<MatchOn>,
    rows: &[Row],
) -> Result<BatchOutcome, contactd_client::Error> {
    if rows.is_empty() {
        return Ok(BatchOutcome::default());
    }
    let items: Vec<&Value> = rows.iter().map(|row| &row.item).collect();
    let mut pause = Duration::from_millis(200);
    let mut attempt = 1;
    loop {
        let outcome = match match_on {
            None => client
                .create_contacts(&items)
                .await
                .map(|summary| BatchOutcome {
                    created: summary.successful_imports_count,
                    failed: summary
                        .failed_contacts
                        .into_iter()
                        .map(|failed| (failed.index, failed.error))
                        .collect(),
                    ..BatchOutcome::default()
                }),
            Some(match_on) => client
                .upsert_contacts(match_on, &items)
                .await
                .map(|results| {
                    let mut outcome = BatchOutcome::default();
                    for result in results.results {
                        match (result.error, result.created, result.changed) {
                            (Some(error), _, _) => outcome.failed.push((result.index, error)),
                            (None, Some(true), _) => outcome.created += 1,
                            (None, _, Some(false)) => outcome.unchanged += 1,
                            (None, _, _) => outcome.updated += 1,
                        }
                    }
                    outcome
                }),
        };
        match outcome {
            // The key's rate limit lets the batch through once its bucket has a token
            // again, which Retry-After says: waiting it always makes progress.
            Err(contactd_client::Error::RetryLater { body, retry_after }) if body.error == 429 => {
                tokio::time::sleep(retry_after).await;
            }
            // The server's Retry-After is the least wait: sooner would be refused again.
            Err(contactd_client::Error::RetryLater { retry_after, .. }) if attempt < ATTEMPTS => {
                tokio::time::sleep(pause.max(retry_after)).await;
                pause *= 2;
                attempt += 1;
            }
            outcome => return outcome,
        }
    }
}
