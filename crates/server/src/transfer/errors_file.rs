//! Where failed rows go: a file in the input's format, with each row's line and error, or
//! stderr.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use anyhow::Context;
use serde_json::{Value, json};

use super::rows::{FailedRow, Source};

/// Where failed rows go: a file in the input's format, or stderr.
pub(super) enum ErrorsFile {
    Csv(Box<csv::Writer<File>>),
    Ndjson(BufWriter<File>),
    Stderr,
}

impl ErrorsFile {
    /// A CSV errors file: `line`, the error's `code`, `field` and `message`, then the
    /// row's own cells under the file's header.
    pub(super) fn csv(path: Option<&Path>, header: &[String]) -> anyhow::Result<Self> {
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
    pub(super) fn ndjson(path: Option<&Path>) -> anyhow::Result<Self> {
        let Some(path) = path else {
            return Ok(Self::Stderr);
        };
        let file =
            File::create(path).with_context(|| format!("could not create {}", path.display()))?;
        Ok(Self::Ndjson(BufWriter::new(file)))
    }

    pub(super) fn write(&mut self, row: &FailedRow) -> anyhow::Result<()> {
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

    pub(super) fn finish(self) -> anyhow::Result<()> {
        match self {
            Self::Csv(mut writer) => writer.flush()?,
            Self::Ndjson(mut writer) => writer.flush()?,
            Self::Stderr => {}
        }
        Ok(())
    }
}
