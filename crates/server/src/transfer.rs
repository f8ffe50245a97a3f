//! `contactd import` and `contactd export` (docs/reference.md#11-bulk-batch-writes-import-and-export): moving contacts between files and a running
//! server, through the client crate, so they work against any deployment.
//!
//! An import streams its file: a reader thread turns rows into create payloads and hands
//! them over in batches, several of which are in flight at once; memory holds a few batches,
//! however large the file. Every row that fails is reported with its line number, and so is
//! every record the reader could not read whole (docs/robustness.md#import-never-reports-success-for-a-file-it-did-not-read):
//! an import never reports success for a file it did not read completely and correctly.

use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use clap::Args;
use contactd_api::{CSV_COLUMNS, ErrorBody, ExportFormat, MAX_BULK_ITEMS, MatchOn};
use contactd_client::Client;
use futures_util::{StreamExt, stream};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Map, Value, json};
use tokio::sync::mpsc;

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

fn parse_match_on(name: &str) -> Result<MatchOn, String> {
    [MatchOn::ExtId, MatchOn::Email, MatchOn::PhoneNumber]
        .into_iter()
        .find(|match_on| match_on.as_str() == name)
        .ok_or_else(|| "expected one of ext_id, email, phone_number".to_owned())
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

/// One row of the file, ready to send.
#[derive(Debug)]
struct Row {
    /// Where the row starts in the file, from 1.
    line: u64,
    /// The create payload.
    item: Value,
    /// The row as read, for the errors file.
    source: Source,
}

/// A row as it was in the file.
#[derive(Debug)]
enum Source {
    /// The record's cells as bytes, so that the errors file repeats even a row that is not
    /// UTF-8 as it was.
    Csv(csv::ByteRecord),
    Ndjson(String),
}

/// A row the file reader could not turn into a payload, or the server refused.
#[derive(Debug)]
struct FailedRow {
    line: u64,
    error: ErrorBody,
    source: Source,
}

/// What the reader thread hands over: a batch of rows, or rows it could not read.
#[derive(Debug, Default)]
struct Batch {
    rows: Vec<Row>,
    unreadable: Vec<FailedRow>,
}

/// What the reader made of one row of the file.
#[derive(Debug)]
enum ReadRow {
    /// A payload to send.
    Row(Row),
    /// A row the reader could not turn into a payload.
    Failed(FailedRow),
}

impl Batch {
    /// Adds a row to send, or one the reader could not turn into a payload.
    fn add(&mut self, read: ReadRow) {
        match read {
            ReadRow::Row(row) => self.rows.push(row),
            ReadRow::Failed(failed) => self.unreadable.push(failed),
        }
    }
}

/// Tallies of an import.
#[derive(Debug, Default)]
struct Tally {
    created: u64,
    updated: u64,
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
        "{}: {} created, {} updated, {} failed",
        args.file.display(),
        tally.created,
        tally.updated,
        tally.failed
    );
    read.with_context(|| format!("{} was not read to its end", args.file.display()))?;
    if tally.failed > 0 {
        bail!(
            "{} rows failed{}",
            tally.failed,
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

/// The CSV columns a row may not set: the server assigns them.
const IGNORED_COLUMNS: [&str; 3] = ["id", "created_at", "updated_at"];

/// Reads the header row, refusing (before anything is sent) columns that are neither an
/// export column nor a custom field of the company, and columns given twice.
fn check_header<R: Read>(
    csv: &mut csv::Reader<R>,
    field_keys: &[String],
) -> anyhow::Result<Vec<String>> {
    let header: Vec<String> = csv
        .headers()
        .context("could not read the CSV header row")?
        .iter()
        .map(|column| column.trim().to_owned())
        .collect();
    let unknown: Vec<&str> = header
        .iter()
        .map(String::as_str)
        .filter(|column| {
            !CSV_COLUMNS.contains(column) && !field_keys.iter().any(|key| key == column)
        })
        .collect();
    if !unknown.is_empty() {
        bail!(
            "unknown CSV columns: {}; the columns are {} and the keys of your custom fields{}",
            unknown.join(", "),
            CSV_COLUMNS.join(", "),
            if field_keys.is_empty() {
                " (none are defined)".to_owned()
            } else {
                format!(" ({})", field_keys.join(", "))
            }
        );
    }
    if let Some((_, twice)) = header
        .iter()
        .enumerate()
        .find(|(index, column)| header[..*index].contains(column))
    {
        if is_member_column(twice) && field_keys.contains(twice) {
            // An export of a company holding a field under a reserved key (defined before
            // keys were reserved) repeats the member's column: which cell is which cannot
            // be told from the file.
            bail!(
                "the CSV column {twice} is given twice: the company has a custom field with \
                 the reserved key `{twice}`, so a CSV cannot tell it from the contact's own \
                 {twice}; import the NDJSON export instead, or move the field's values to a \
                 field with another key"
            );
        }
        bail!("the CSV column {twice} is given twice");
    }
    Ok(header)
}

/// Whether a CSV column is a contact's own (a member, its id or a timestamp): such a column
/// always means the contact's member, never a custom field of the same key, which only a
/// database from before keys were reserved can hold.
fn is_member_column(column: &str) -> bool {
    CSV_COLUMNS.contains(&column)
}

/// Passes a CSV through, running the quote states of the csv crate's reader over its bytes,
/// to tell at the end whether the file ended inside a quoted cell.
///
/// The csv crate does not report an unterminated quote: at the end of its input, csv-core
/// ends a quoted cell as if it had been closed (its final transition from
/// `InQuotedField` is `EndRecord`), so a stray `"` makes the rest of the file one cell and
/// the reader reports one good record. Nothing of its state is public, so the same states
/// run here, over every byte exactly once as the reader takes it: with the reader's
/// settings used here (RFC 4180: `,`, `"` that opens a quoted cell only at a cell's start,
/// `""` for a quote inside one, no escape character, no comments) these are its states
/// for quoting, and line ends only end a record outside quotes, which is all that decides
/// where a quoted cell ends. A quote that is never closed runs to the end of the file, so
/// it can only be in the file's last record; the reader keeps that record back until the
/// end, and fails it when [`QuoteTracker::ends_in_quotes`] says so.
#[derive(Debug)]
struct QuoteTracker<R> {
    inner: R,
    state: QuoteState,
}

/// Where the bytes read so far leave a CSV reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum QuoteState {
    /// At the start of a cell (or of a record): a `"` here opens a quoted cell.
    CellStart,
    /// In a cell that did not start with `"`: quotes are plain characters.
    Unquoted,
    /// In a quoted cell.
    Quoted,
    /// Just after a `"` in a quoted cell: a second `"` is a quote character, anything else
    /// has closed the cell.
    QuoteInQuoted,
}

impl<R> QuoteTracker<R> {
    fn new(inner: R) -> Self {
        Self {
            inner,
            state: QuoteState::CellStart,
        }
    }

    /// Whether the bytes read so far end inside a quoted cell: once the reader has reached
    /// the end of the file, whether its last record opened a quote it never closed.
    fn ends_in_quotes(&self) -> bool {
        self.state == QuoteState::Quoted
    }

    fn track(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.state = match (self.state, byte) {
                (QuoteState::CellStart, b'"') => QuoteState::Quoted,
                (QuoteState::Quoted, b'"') => QuoteState::QuoteInQuoted,
                (QuoteState::Quoted, _) => QuoteState::Quoted,
                (QuoteState::QuoteInQuoted, b'"') => QuoteState::Quoted,
                (_, b',' | b'\r' | b'\n') => QuoteState::CellStart,
                _ => QuoteState::Unquoted,
            };
        }
    }
}

impl<R: Read> Read for QuoteTracker<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let count = self.inner.read(buf)?;
        self.track(&buf[..count]);
        Ok(count)
    }
}

/// Reads CSV rows into create payloads: a member per non-empty cell, and a custom field
/// value per non-empty cell of a field's column. An empty cell sets nothing (a CSV cannot
/// tell an empty value from none).
///
/// A record with more or fewer cells than the header, one that is not UTF-8, and one that
/// opens a quote it never closes fail alone, by line. A read error ends the reading: the
/// record it stopped at fails, and the error is returned, so the import fails too.
fn read_csv<R: Read>(
    mut csv: csv::Reader<QuoteTracker<R>>,
    header: &[String],
    field_keys: &[String],
    batch_size: usize,
    batches: &mpsc::Sender<Batch>,
) -> anyhow::Result<()> {
    let mut batch = Batch::default();
    let mut record = csv::ByteRecord::new();
    // The last record read waits here until the next read shows it was not the file's
    // last: only the last can hold an unterminated quote, known once the file has ended.
    let mut held: Option<ReadRow> = None;
    loop {
        let line = csv.position().line();
        let read = match csv.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => csv_row(line, &record, header, field_keys),
            Err(error) => match error.kind() {
                csv::ErrorKind::UnequalLengths {
                    expected_len, len, ..
                } => ReadRow::Failed(FailedRow {
                    line,
                    error: client_error(
                        "invalid_row",
                        format!("the row has {len} cells where the header has {expected_len}"),
                        None,
                    ),
                    source: Source::Csv(record.clone()),
                }),
                _ => {
                    let stopped = FailedRow {
                        line,
                        error: client_error(
                            "unreadable_row",
                            format!("the file could not be read from this line on: {error}"),
                            None,
                        ),
                        source: Source::Csv(csv::ByteRecord::new()),
                    };
                    for read in held.take().into_iter().chain([ReadRow::Failed(stopped)]) {
                        batch.add(read);
                    }
                    hand_over(batches, &mut batch);
                    return Err(anyhow!(error).context(format!("could not read line {line}")));
                }
            },
        };
        if let Some(previous) = held.replace(read) {
            batch.add(previous);
            if batch.rows.len() >= batch_size && !hand_over(batches, &mut batch) {
                return Ok(());
            }
        }
    }
    if csv.get_ref().ends_in_quotes() {
        let Some(last) = held.take() else {
            bail!("the header row opens a quote that is never closed");
        };
        let (line, source) = match last {
            ReadRow::Row(row) => (row.line, row.source),
            ReadRow::Failed(failed) => (failed.line, failed.source),
        };
        held = Some(ReadRow::Failed(FailedRow {
            line,
            error: client_error(
                "unterminated_quote",
                "the row opens a quoted cell that is never closed: it ran to the end of the \
                 file, so every line after it was read as part of this cell",
                None,
            ),
            source,
        }));
    }
    if let Some(last) = held {
        batch.add(last);
    }
    hand_over(batches, &mut batch);
    Ok(())
}

/// Turns a CSV record into a row to send, or a failed row when it is not UTF-8.
fn csv_row(
    line: u64,
    record: &csv::ByteRecord,
    header: &[String],
    field_keys: &[String],
) -> ReadRow {
    let cells = match csv::StringRecord::from_byte_record(record.clone()) {
        Ok(cells) => cells,
        Err(error) => {
            let column = header
                .get(error.utf8_error().field())
                .map_or_else(String::new, |column| format!(" (column {column})"));
            return ReadRow::Failed(FailedRow {
                line,
                error: client_error(
                    "invalid_utf8",
                    format!(
                        "cell {}{column} is not valid UTF-8: save the file as UTF-8 and import it again",
                        error.utf8_error().field() + 1
                    ),
                    None,
                ),
                source: Source::Csv(error.into_byte_record()),
            });
        }
    };
    let mut item = Map::new();
    let mut custom_fields = Vec::new();
    for (column, cell) in header.iter().zip(cells.iter()) {
        if cell.is_empty() || IGNORED_COLUMNS.contains(&column.as_str()) {
            continue;
        }
        if !is_member_column(column) && field_keys.contains(column) {
            custom_fields.push(json!({"key": column, "value": cell}));
        } else {
            item.insert(column.clone(), Value::from(cell));
        }
    }
    if !custom_fields.is_empty() {
        item.insert("custom_fields".to_owned(), Value::Array(custom_fields));
    }
    ReadRow::Row(Row {
        line,
        item: Value::Object(item),
        source: Source::Csv(record.clone()),
    })
}

/// Reads NDJSON lines into create payloads. A line may be a contact as exported: its `id`
/// and timestamps are dropped, and its custom fields keep only `key` and `value`. A line
/// that is not UTF-8 or not a JSON object fails alone; a read error ends the reading as in
/// [`read_csv`].
fn read_ndjson(
    mut input: impl BufRead,
    batch_size: usize,
    batches: &mpsc::Sender<Batch>,
) -> anyhow::Result<()> {
    let mut batch = Batch::default();
    let mut bytes = Vec::new();
    for line in 1.. {
        bytes.clear();
        match input.read_until(b'\n', &mut bytes) {
            Ok(0) => break,
            Ok(_) => {}
            Err(error) => {
                batch.add(ReadRow::Failed(FailedRow {
                    line,
                    error: client_error(
                        "unreadable_row",
                        format!("the file could not be read from this line on: {error}"),
                        None,
                    ),
                    source: Source::Ndjson(String::from_utf8_lossy(&bytes).into_owned()),
                }));
                hand_over(batches, &mut batch);
                return Err(anyhow!(error).context(format!("could not read line {line}")));
            }
        }
        if bytes.trim_ascii().is_empty() {
            continue;
        }
        batch.add(ndjson_row(line, &bytes));
        if batch.rows.len() >= batch_size && !hand_over(batches, &mut batch) {
            return Ok(());
        }
    }
    hand_over(batches, &mut batch);
    Ok(())
}

/// Turns a (not blank) NDJSON line into a row to send, or a failed row.
fn ndjson_row(line: u64, bytes: &[u8]) -> ReadRow {
    let failed = |code, message: String, text: String| FailedRow {
        line,
        error: client_error(code, message, None),
        source: Source::Ndjson(text),
    };
    let text = match std::str::from_utf8(bytes) {
        Ok(text) => text.trim_end_matches(['\n', '\r']).to_owned(),
        Err(error) => {
            return ReadRow::Failed(failed(
                "invalid_utf8",
                format!(
                    "the line is not valid UTF-8 (at byte {}): save the file as UTF-8 and import it again",
                    error.valid_up_to() + 1
                ),
                String::from_utf8_lossy(bytes).trim_end().to_owned(),
            ));
        }
    };
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(mut item)) => {
            for member in IGNORED_COLUMNS {
                item.remove(member);
            }
            if let Some(Value::Array(fields)) = item.get_mut("custom_fields") {
                for field in fields.iter_mut().filter_map(Value::as_object_mut) {
                    field.retain(|member, _| member == "key" || member == "value");
                }
            }
            ReadRow::Row(Row {
                line,
                item: Value::Object(item),
                source: Source::Ndjson(text),
            })
        }
        Ok(_) => ReadRow::Failed(failed(
            "invalid_row",
            "the line is not a JSON object".to_owned(),
            text,
        )),
        Err(error) => ReadRow::Failed(failed(
            "invalid_json",
            format!("the line is not JSON: {error}"),
            text,
        )),
    }
}

/// Sends the batch so far to the importer; `false` when the importer has stopped.
fn hand_over(batches: &mpsc::Sender<Batch>, batch: &mut Batch) -> bool {
    if batch.rows.is_empty() && batch.unreadable.is_empty() {
        return true;
    }
    batches.blocking_send(std::mem::take(batch)).is_ok()
}

/// An error found by the importer itself, in the API's error shape (status 400).
fn client_error(code: &str, message: impl Into<String>, field: Option<String>) -> ErrorBody {
    ErrorBody {
        error: 400,
        message: message.into(),
        code: Some(code.to_owned()),
        field,
        conflicting_contact_id: None,
    }
}

/// What the server made of a batch: counts, and each failed item by its index.
#[derive(Debug, Default)]
struct BatchOutcome {
    created: u64,
    updated: u64,
    failed: Vec<(usize, ErrorBody)>,
}

/// How often a batch answered 503 (nothing written) is tried before the import stops.
const ATTEMPTS: u32 = 5;

/// Sends one batch: an array create, or a batch upsert with `--match-on`. A 503 means
/// nothing of it was written, so it is tried again after a pause.
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
                    updated: 0,
                    failed: summary
                        .failed_contacts
                        .into_iter()
                        .map(|failed| (failed.index, failed.error))
                        .collect(),
                }),
            Some(match_on) => client
                .upsert_contacts(match_on, &items)
                .await
                .map(|results| {
                    let mut outcome = BatchOutcome::default();
                    for result in results.results {
                        match (result.created, result.error) {
                            (_, Some(error)) => outcome.failed.push((result.index, error)),
                            (Some(true), None) => outcome.created += 1,
                            _ => outcome.updated += 1,
                        }
                    }
                    outcome
                }),
        };
        match outcome {
            Err(contactd_client::Error::Api(error)) if error.error == 503 && attempt < ATTEMPTS => {
                tokio::time::sleep(pause).await;
                pause *= 2;
                attempt += 1;
            }
            outcome => return outcome,
        }
    }
}

/// Where failed rows go: a file in the input's format, or stderr.
enum ErrorsFile {
    Csv(Box<csv::Writer<File>>),
    Ndjson(BufWriter<File>),
    Stderr,
}

impl ErrorsFile {
    /// A CSV errors file: `line`, the error's `code`, `field` and `message`, then the
    /// row's own cells under the file's header.
    fn csv(path: Option<&Path>, header: &[String]) -> anyhow::Result<Self> {
        let Some(path) = path else {
            return Ok(Self::Stderr);
        };
        let mut writer = csv::WriterBuilder::new()
            .flexible(true)
            .from_path(path)
            .with_context(|| format!("could not create {}", path.display()))?;
        let columns = ["line", "error_code", "error_field", "error_message"]
            .into_iter()
            .chain(header.iter().map(String::as_str));
        writer.write_record(columns)?;
        Ok(Self::Csv(Box::new(writer)))
    }

    /// An NDJSON errors file: `{"line", "error", "contact"}` per failed row.
    fn ndjson(path: Option<&Path>) -> anyhow::Result<Self> {
        let Some(path) = path else {
            return Ok(Self::Stderr);
        };
        let file =
            File::create(path).with_context(|| format!("could not create {}", path.display()))?;
        Ok(Self::Ndjson(BufWriter::new(file)))
    }

    fn write(&mut self, row: &FailedRow) -> anyhow::Result<()> {
        let error = &row.error;
        match (self, &row.source) {
            (Self::Csv(writer), Source::Csv(record)) => {
                let line = row.line.to_string();
                let cells = [
                    line.as_str(),
                    error.code.as_deref().unwrap_or_default(),
                    error.field.as_deref().unwrap_or_default(),
                    error.message.as_str(),
                ];
                writer.write_record(cells.into_iter().map(str::as_bytes).chain(record.iter()))?;
            }
            (Self::Ndjson(writer), Source::Ndjson(text)) => {
                let contact =
                    serde_json::from_str(text).unwrap_or_else(|_| Value::from(text.as_str()));
                let entry = json!({"line": row.line, "error": error, "contact": contact});
                serde_json::to_writer(&mut *writer, &entry)?;
                writer.write_all(b"\n")?;
            }
            _ => eprintln!(
                "line {}: {}{}",
                row.line,
                error.message,
                error
                    .field
                    .as_deref()
                    .map_or_else(String::new, |field| format!(" (at {field})"))
            ),
        }
        Ok(())
    }

    fn finish(self) -> anyhow::Result<()> {
        match self {
            Self::Csv(mut writer) => writer.flush()?,
            Self::Ndjson(mut writer) => writer.flush()?,
            Self::Stderr => {}
        }
        Ok(())
    }
}

/// Progress on stderr: a bar on a terminal (rows done, rows/s, ETA), otherwise a plain
/// line every few seconds, so a log of a scripted run shows it is alive.
struct Progress {
    bar: Option<ProgressBar>,
    started: Instant,
    last_line: Instant,
}

/// How often a plain progress line is written when stderr is not a terminal.
const PROGRESS_LINE_EVERY: Duration = Duration::from_secs(5);

impl Progress {
    /// `total` is the work the bar counts (bytes of the file, or contacts), when known;
    /// `template` is how indicatif shows it.
    fn new(total: Option<u64>, template: &str) -> Self {
        let bar = io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(total.unwrap_or_default());
            if let Ok(style) = ProgressStyle::with_template(template) {
                bar.set_style(style);
            }
            bar
        });
        let now = Instant::now();
        Self {
            bar,
            started: now,
            last_line: now,
        }
    }

    /// Reports `position` (in the bar's unit), the rows done and failed so far.
    fn update(&mut self, position: u64, rows: u64, failed: u64) {
        let rate = rows as f64 / self.started.elapsed().as_secs_f64().max(1e-3);
        let message = format!("{rows} rows, {rate:.0} rows/s, {failed} failed");
        match &self.bar {
            Some(bar) => {
                bar.set_position(position);
                bar.set_message(message);
            }
            None if self.last_line.elapsed() >= PROGRESS_LINE_EVERY => {
                self.last_line = Instant::now();
                eprintln!("{message}");
            }
            None => {}
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
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
    use proptest::prelude::*;

    use super::*;

    /// The rows and failures `read_csv` hands over for `input` (with its header row), and
    /// what it returned.
    fn read_csv_of(input: impl Read) -> (Vec<Row>, Vec<FailedRow>, anyhow::Result<()>) {
        let mut csv = csv::ReaderBuilder::new()
            .flexible(false)
            .from_reader(QuoteTracker::new(input));
        let header: Vec<String> = csv
            .headers()
            .expect("a header row")
            .iter()
            .map(str::to_owned)
            .collect();
        let (sender, mut receiver) = mpsc::channel(64);
        let outcome = read_csv(csv, &header, &["plan".to_owned()], 2, &sender);
        drop(sender);
        let (mut rows, mut failed) = (Vec::new(), Vec::new());
        while let Ok(batch) = receiver.try_recv() {
            rows.extend(batch.rows);
            failed.extend(batch.unreadable);
        }
        (rows, failed, outcome)
    }

    fn lines_and_codes(failed: &[FailedRow]) -> Vec<(u64, &str)> {
        failed
            .iter()
            .map(|row| (row.line, row.error.code.as_deref().unwrap_or_default()))
            .collect()
    }

    #[test]
    fn an_unterminated_quote_fails_the_row_that_swallowed_the_rest_of_the_file() {
        let input = "ext_id,last_name\ncrm-1,One\ncrm-2,\"Two\ncrm-3,Three\ncrm-4,Four\n";
        let (rows, failed, outcome) = read_csv_of(input.as_bytes());
        assert!(outcome.is_ok());
        assert_eq!(rows.iter().map(|row| row.line).collect::<Vec<_>>(), [2]);
        assert_eq!(lines_and_codes(&failed), [(3, "unterminated_quote")]);

        // Closed quotes, doubled quotes and quotes inside a plain cell are no such thing.
        let input = "ext_id,last_name\ncrm-1,\"a \"\"b\"\"\"\ncrm-2,x\"y\ncrm-3,\"\"\n";
        let (rows, failed, _) = read_csv_of(input.as_bytes());
        assert_eq!(rows.len(), 3);
        assert!(failed.is_empty());
    }

    #[test]
    fn rows_with_the_wrong_cell_count_or_not_utf8_fail_alone() {
        let input = b"ext_id,plan\ncrm-1,pro,extra\ncrm-2\ncrm-3,fr\xffee\ncrm-4,pro\n";
        let (rows, failed, outcome) = read_csv_of(&input[..]);
        assert!(outcome.is_ok());
        assert_eq!(rows.iter().map(|row| row.line).collect::<Vec<_>>(), [5]);
        assert_eq!(
            lines_and_codes(&failed),
            [(2, "invalid_row"), (3, "invalid_row"), (4, "invalid_utf8")]
        );
        assert!(
            failed[2].error.message.contains("column plan"),
            "{}",
            failed[2].error.message
        );
        let Source::Csv(record) = &failed[2].source else {
            panic!("a CSV row");
        };
        assert_eq!(
            &record[1], b"fr\xffee",
            "the errors file gets the bytes as they were"
        );
        assert_eq!(rows[0].item["custom_fields"][0]["value"], "pro");
    }

    /// A file that breaks off with an I/O error after `good` bytes.
    struct BreaksOff {
        good: &'static [u8],
    }

    impl Read for BreaksOff {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.good.is_empty() {
                return Err(io::Error::other("the disk went away"));
            }
            let count = self.good.len().min(buf.len());
            buf[..count].copy_from_slice(&self.good[..count]);
            self.good = &self.good[count..];
            Ok(count)
        }
    }

    #[test]
    fn a_read_error_fails_the_record_it_stopped_at_and_the_import() {
        let (rows, failed, outcome) = read_csv_of(BreaksOff {
            good: b"ext_id,plan\ncrm-1,pro\ncrm-2,fr",
        });
        let error = format!("{:#}", outcome.expect_err("the import fails"));
        assert!(
            error.contains("line 3") && error.contains("disk went away"),
            "{error}"
        );
        assert_eq!(rows.iter().map(|row| row.line).collect::<Vec<_>>(), [2]);
        assert_eq!(lines_and_codes(&failed), [(3, "unreadable_row")]);

        let (sender, mut receiver) = mpsc::channel(64);
        let outcome = read_ndjson(
            BufReader::new(BreaksOff {
                good: b"{\"ext_id\": \"a\"}\n{\"ext",
            }),
            10,
            &sender,
        );
        assert!(outcome.is_err());
        let batch = receiver.try_recv().expect("a batch");
        assert_eq!(batch.rows.len(), 1);
        assert_eq!(lines_and_codes(&batch.unreadable), [(2, "unreadable_row")]);
    }

    #[test]
    fn a_header_that_never_closes_its_quote_ends_the_import() {
        let (rows, failed, outcome) = read_csv_of("ext_id,\"plan".as_bytes());
        assert!(rows.is_empty() && failed.is_empty());
        assert!(format!("{:#}", outcome.expect_err("refused")).contains("header"));
    }

    proptest! {
        /// The tracker agrees with the csv crate's reader on whether a file ends inside a
        /// quoted cell: when it does, a line end and a letter appended go into that cell;
        /// otherwise they end the record and start another.
        #[test]
        fn the_quote_tracker_agrees_with_the_csv_reader(input in "[a\",\r\n]{0,40}") {
            let mut tracker = QuoteTracker::new(input.as_bytes());
            io::copy(&mut tracker, &mut io::sink()).expect("read from memory");
            let appended = format!("{input}\na");
            let last_cell_grew = csv::ReaderBuilder::new()
                .has_headers(false)
                .flexible(true)
                .from_reader(appended.as_bytes())
                .byte_records()
                .last()
                .and_then(Result::ok)
                .and_then(|record| record.iter().next_back().map(|cell| cell.ends_with(b"\na")))
                .unwrap_or(false);
            prop_assert_eq!(tracker.ends_in_quotes(), last_cell_grew);
        }

        /// Whatever the cells, what a CSV writer writes never ends inside a quote.
        #[test]
        fn written_csv_never_ends_inside_a_quote(
            rows in proptest::collection::vec(proptest::collection::vec("[a\",\r\n ]{0,6}", 1..4), 0..6),
        ) {
            let mut writer = csv::WriterBuilder::new().flexible(true).from_writer(Vec::new());
            for row in &rows {
                writer.write_record(row).expect("write to memory");
            }
            let written = writer.into_inner().expect("flush to memory");
            let mut tracker = QuoteTracker::new(&written[..]);
            io::copy(&mut tracker, &mut io::sink()).expect("read from memory");
            prop_assert!(!tracker.ends_in_quotes());
        }
    }

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

    #[test]
    fn the_format_follows_the_extension() {
        assert_eq!(format_of(Path::new("a/b.CSV")), Some(ExportFormat::Csv));
        assert_eq!(format_of(Path::new("b.jsonl")), Some(ExportFormat::Ndjson));
        assert_eq!(format_of(Path::new("b.txt")), None);
    }
}
