//! Telling whether a CSV file ends inside a quoted cell, which the csv crate's reader does
//! not report.

use std::io::{self, Read};

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
pub(super) struct QuoteTracker<R> {
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
    pub(super) fn new(inner: R) -> Self {
        Self {
            inner,
            state: QuoteState::CellStart,
        }
    }

    /// Whether the bytes read so far end inside a quoted cell: once the reader has reached
    /// the end of the file, whether its last record opened a quote it never closed.
    pub(super) fn ends_in_quotes(&self) -> bool {
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

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

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
}
