//! An export's pages: how a backend's reader hands a company's contacts over, a page at a
//! time, to the response that streams them.

use std::time::Duration;

use tokio::sync::mpsc::error::SendTimeoutError;
use uuid::Uuid;

use super::StoreError;
use super::connection::{Connection, Row, fetch_all, fetch_one};
use super::model::{Contact, ExportPage, FieldDefinition};
use super::rows::{self, ContactRows};
use super::sql;

/// Contacts an export hands over at a time: few enough that a page is small in memory,
/// enough that handing over costs little.
const EXPORT_PAGE: usize = 500;

/// The channel an export's reader sends its pages on; a page not taken within `stall` ends
/// the export.
pub fn export_channel(stall: Duration) -> (PageSender, tokio::sync::mpsc::Receiver<ExportPage>) {
    let (sender, receiver) = tokio::sync::mpsc::channel(2);
    (PageSender { sender, stall }, receiver)
}

/// The reading end's side of an export's pages.
#[derive(Debug)]
pub struct PageSender {
    sender: tokio::sync::mpsc::Sender<ExportPage>,
    stall: Duration,
}

impl PageSender {
    /// Hands a page over; `false` when the export is over, because the client went away or
    /// took nothing for `stall`. An export that stops early sends fewer contacts than its
    /// `total`, which the HTTP layer turns into a broken transfer, never a short file (see
    /// `docs/robustness.md#timeouts-and-connection-limits`).
    pub async fn hand_over(&self, page: ExportPage) -> bool {
        match self.sender.send_timeout(page, self.stall).await {
            Ok(()) => true,
            Err(SendTimeoutError::Timeout(_)) => {
                tracing::warn!(
                    stall = ?self.stall,
                    "an export was abandoned: its client took nothing for too long"
                );
                false
            }
            Err(SendTimeoutError::Closed(_)) => false,
        }
    }
}

/// The definitions and the number of contacts of a company, read first, in the export's
/// snapshot.
pub async fn export_head(
    conn: &mut dyn Connection,
    company_id: Uuid,
) -> Result<(Vec<FieldDefinition>, u64), StoreError> {
    let fields = fetch_all(conn, &sql::list_fields(company_id), rows::field_definition).await?;
    let total = fetch_one(conn, &sql::count_contacts(company_id), rows::integer).await?;
    Ok((fields, total.unsigned_abs()))
}

/// Gathers the rows of an export's read, as they stream in, into pages of whole contacts.
#[derive(Debug, Default)]
pub struct ExportPages {
    rows: ContactRows,
}

impl ExportPages {
    /// Adds a row; returns a full page once the row of a contact after it arrives (the
    /// last contact of the page is only whole then).
    pub fn push(&mut self, row: &dyn Row) -> Result<Option<Vec<Contact>>, StoreError> {
        let full = self.rows.len() >= EXPORT_PAGE && !self.rows.continues(row)?;
        let page = full.then(|| self.rows.take());
        self.rows.add(row)?;
        Ok(page)
    }

    /// The last page, when there is one.
    pub fn finish(mut self) -> Option<Vec<Contact>> {
        let page = self.rows.take();
        (!page.is_empty()).then_some(page)
    }
}
