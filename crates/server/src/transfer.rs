//! `contactd import` and `contactd export` (§11): moving contacts between files and a running
//! server, through the client crate, so they work against any deployment.
//!
//! An import streams its file: a reader thread turns rows into create payloads and hands
//! them over in batches, several of which are in flight at once; memory holds a few batches,
//! however large the file. Every row that fails is reported with its line number.

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
    Csv(csv::StringRecord),
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
    let (mut errors, reader) = match format {
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
            let mut csv = csv::ReaderBuilder::new().flexible(false).from_reader(input);
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
    reader
        .join()
        .map_err(|_| anyhow!("the file reader stopped unexpectedly"))??;
    errors.finish()?;
    progress.finish();
    println!(
        "{}: {} created, {} updated, {} failed",
        args.file.display(),
        tally.created,
        tally.updated,
        tally.failed
    );
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
    if let Some(twice) = header
        .iter()
        .enumerate()
        .find(|(index, column)| header[..*index].contains(column))
    {
        bail!("the CSV column {} is given twice", twice.1);
    }
    Ok(header)
}

/// Reads CSV rows into create payloads: a member per non-empty cell, and a custom field
/// value per non-empty cell of a field's column. An empty cell sets nothing (a CSV cannot
/// tell an empty value from none).
fn read_csv<R: Read>(
    mut csv: csv::Reader<R>,
    header: &[String],
    field_keys: &[String],
    batch_size: usize,
    batches: &mpsc::Sender<Batch>,
) -> anyhow::Result<()> {
    let mut batch = Batch::default();
    let mut record = csv::StringRecord::new();
    loop {
        let line = csv.position().line();
        match csv.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(error) => match error.kind() {
                // A row with the wrong number of cells fails alone; anything else (bad
                // UTF-8, a read error) ends the import, since the rest cannot be trusted.
                csv::ErrorKind::UnequalLengths { .. } => {
                    batch.unreadable.push(FailedRow {
                        line,
                        error: client_error("invalid_row", error.to_string(), None),
                        source: Source::Csv(record.clone()),
                    });
                    continue;
                }
                _ => return Err(anyhow!(error).context(format!("could not read line {line}"))),
            },
        }
        let mut item = Map::new();
        let mut custom_fields = Vec::new();
        for (column, cell) in header.iter().zip(record.iter()) {
            if cell.is_empty() || IGNORED_COLUMNS.contains(&column.as_str()) {
                continue;
            }
            if field_keys.contains(column) {
                custom_fields.push(json!({"key": column, "value": cell}));
            } else {
                item.insert(column.clone(), Value::from(cell));
            }
        }
        if !custom_fields.is_empty() {
            item.insert("custom_fields".to_owned(), Value::Array(custom_fields));
        }
        batch.rows.push(Row {
            line,
            item: Value::Object(item),
            source: Source::Csv(record.clone()),
        });
        if batch.rows.len() == batch_size && !hand_over(batches, &mut batch) {
            return Ok(());
        }
    }
    hand_over(batches, &mut batch);
    Ok(())
}

/// Reads NDJSON lines into create payloads. A line may be a contact as exported: its `id`
/// and timestamps are dropped, and its custom fields keep only `key` and `value`.
fn read_ndjson(
    input: impl BufRead,
    batch_size: usize,
    batches: &mpsc::Sender<Batch>,
) -> anyhow::Result<()> {
    let mut batch = Batch::default();
    for (line, text) in (1..).zip(input.lines()) {
        let text = text.with_context(|| format!("could not read line {line}"))?;
        if text.trim().is_empty() {
            continue;
        }
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
                batch.rows.push(Row {
                    line,
                    item: Value::Object(item),
                    source: Source::Ndjson(text),
                });
            }
            Ok(_) => batch.unreadable.push(FailedRow {
                line,
                error: client_error("invalid_row", "the line is not a JSON object", None),
                source: Source::Ndjson(text),
            }),
            Err(error) => batch.unreadable.push(FailedRow {
                line,
                error: client_error(
                    "invalid_json",
                    format!("the line is not JSON: {error}"),
                    None,
                ),
                source: Source::Ndjson(text),
            }),
        }
        if batch.rows.len() == batch_size && !hand_over(batches, &mut batch) {
            return Ok(());
        }
    }
    hand_over(batches, &mut batch);
    Ok(())
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
                writer.write_record(cells.into_iter().chain(record.iter()))?;
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

    #[test]
    fn the_format_follows_the_extension() {
        assert_eq!(format_of(Path::new("a/b.CSV")), Some(ExportFormat::Csv));
        assert_eq!(format_of(Path::new("b.jsonl")), Some(ExportFormat::Ndjson));
        assert_eq!(format_of(Path::new("b.txt")), None);
    }
}
