//! Reading an NDJSON file into rows to send: a create payload per line, which may be a
//! contact as exported.

use contactd_api::ErrorCode;
use std::io::BufRead;

use anyhow::anyhow;
use serde_json::Value;
use tokio::sync::mpsc;

use super::rows::{Batch, FailedRow, IGNORED_COLUMNS, ReadRow, Row, Source, hand_over, row_error};

/// Reads NDJSON lines into create payloads. A line may be a contact as exported: its `id`
/// and timestamps are dropped, and its custom fields keep only `key` and `value`. A line
/// that is not UTF-8 or not a JSON object fails alone; a read error ends the reading as in
/// [`read_csv`].
pub(super) fn read_ndjson(
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
                    error: row_error(
                        ErrorCode::UnreadableRow,
                        format!("the file could not be read from this line on: {error}"),
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
        error: row_error(code, message),
        source: Source::Ndjson(text),
    };
    let text = match std::str::from_utf8(bytes) {
        Ok(text) => text.trim_end_matches(['\n', '\r']).to_owned(),
        Err(error) => {
            return ReadRow::Failed(failed(
                ErrorCode::InvalidUtf8,
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
            ErrorCode::InvalidRow,
            "the line is not a JSON object".to_owned(),
            text,
        )),
        Err(error) => ReadRow::Failed(failed(
            ErrorCode::InvalidJson,
            format!("the line is not JSON: {error}"),
            text,
        )),
    }
}

#[cfg(test)]
mod tests {
    use std::io::BufReader;

    use super::*;
    use crate::transfer::rows::testing::{BreaksOff, lines_and_codes};

    #[test]
    fn a_read_error_fails_the_line_it_stopped_at_and_the_import() {
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
}
