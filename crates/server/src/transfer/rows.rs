//! What the file readers hand the importer: rows to send, and rows they could not read,
//! each with its line and the row as it was in the file.

use contactd_api::ErrorBody;
use contactd_api::ErrorCode;
use serde_json::Value;
use tokio::sync::mpsc;

/// One row of the file, ready to send.
#[derive(Debug)]
pub(super) struct Row {
    /// Where the row starts in the file, from 1.
    pub(super) line: u64,
    /// The create payload.
    pub(super) item: Value,
    /// The row as read, for the errors file.
    pub(super) source: Source,
}

/// A row as it was in the file.
#[derive(Debug)]
pub(super) enum Source {
    /// The record's cells as bytes, so that the errors file repeats even a row that is not
    /// UTF-8 as it was.
    Csv(csv::ByteRecord),
    Ndjson(String),
}

/// A row the file reader could not turn into a payload, or the server refused.
#[derive(Debug)]
pub(super) struct FailedRow {
    pub(super) line: u64,
    pub(super) error: ErrorBody,
    pub(super) source: Source,
}

/// What the reader thread hands over: a batch of rows, or rows it could not read.
#[derive(Debug, Default)]
pub(super) struct Batch {
    pub(super) rows: Vec<Row>,
    pub(super) unreadable: Vec<FailedRow>,
}

/// What the reader made of one row of the file.
#[derive(Debug)]
pub(super) enum ReadRow {
    /// A payload to send.
    Row(Row),
    /// A row the reader could not turn into a payload.
    Failed(FailedRow),
}

impl Batch {
    /// Adds a row to send, or one the reader could not turn into a payload.
    pub(super) fn add(&mut self, read: ReadRow) {
        match read {
            ReadRow::Row(row) => self.rows.push(row),
            ReadRow::Failed(failed) => self.unreadable.push(failed),
        }
    }
}

/// The CSV columns a row may not set: the server assigns them.
pub(super) const IGNORED_COLUMNS: [&str; 3] = ["id", "created_at", "updated_at"];

/// Sends the batch so far to the importer; `false` when the importer has stopped.
pub(super) fn hand_over(batches: &mpsc::Sender<Batch>, batch: &mut Batch) -> bool {
    if batch.rows.is_empty() && batch.unreadable.is_empty() {
        return true;
    }
    batches.blocking_send(std::mem::take(batch)).is_ok()
}

/// A row the importer refused itself, in the API's error shape (status 400).
pub(super) fn row_error(code: ErrorCode, message: impl Into<String>) -> ErrorBody {
    ErrorBody {
        error: 400,
        message: message.into(),
        code: Some(code.as_str().to_owned()),
        field: None,
        conflicting_contact_id: None,
    }
}

#[cfg(test)]
pub(super) mod testing {
    //! Input for the readers' tests.

    use std::io::{self, Read};

    use super::FailedRow;

    /// A file that breaks off with an I/O error after `good` bytes.
    pub struct BreaksOff {
        pub good: &'static [u8],
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

    /// The line and error code of each failed row.
    pub fn lines_and_codes(failed: &[FailedRow]) -> Vec<(u64, &str)> {
        failed
            .iter()
            .map(|row| (row.line, row.error.code.as_deref().unwrap_or_default()))
            .collect()
    }
}
