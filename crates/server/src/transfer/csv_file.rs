//! Reading a CSV file into rows to send: its header checked against the export's columns
//! and the company's custom fields, then a create payload per record.

use contactd_api::ErrorCode;
use std::io::Read;

use anyhow::{Context, anyhow, bail};
use contactd_api::CSV_COLUMNS;
use serde_json::{Map, Value, json};
use tokio::sync::mpsc;

use super::quote_tracker::QuoteTracker;
use super::rows::{Batch, FailedRow, IGNORED_COLUMNS, ReadRow, Row, Source, hand_over, row_error};

/// Reads the header row, refusing (before anything is sent) columns that are neither an
/// export column nor a custom field of the company, and columns given twice.
pub(super) fn check_header<R: Read>(
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

/// Reads CSV rows into create payloads: a member per non-empty cell, and a custom field
/// value per non-empty cell of a field's column. An empty cell sets nothing (a CSV cannot
/// tell an empty value from none).
///
/// A record with more or fewer cells than the header, one that is not UTF-8, and one that
/// opens a quote it never closes fail alone, by line. A read error ends the reading: the
/// record it stopped at fails, and the error is returned, so the import fails too.
pub(super) fn read_csv<R: Read>(
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
                    error: row_error(
                        ErrorCode::InvalidRow,
                        format!("the row has {len} cells where the header has {expected_len}"),
                    ),
                    source: Source::Csv(record.clone()),
                }),
                _ => {
                    let stopped = FailedRow {
                        line,
                        error: row_error(
                            ErrorCode::UnreadableRow,
                            format!("the file could not be read from this line on: {error}"),
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
            error: row_error(
                ErrorCode::UnterminatedQuote,
                "the row opens a quoted cell that is never closed: it ran to the end of the \
                 file, so every line after it was read as part of this cell",
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
                error: row_error(
                    ErrorCode::InvalidUtf8,
                    format!(
                        "cell {}{column} is not valid UTF-8: save the file as UTF-8 and import it again",
                        error.utf8_error().field() + 1
                    ),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transfer::rows::testing::{BreaksOff, lines_and_codes};

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
    }

    #[test]
    fn a_header_that_never_closes_its_quote_ends_the_import() {
        let (rows, failed, outcome) = read_csv_of("ext_id,\"plan".as_bytes());
        assert!(rows.is_empty() && failed.is_empty());
        assert!(format!("{:#}", outcome.expect_err("refused")).contains("header"));
    }
}
