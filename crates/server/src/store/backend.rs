//! What a database backend provides: connections, and the transactions operations run in.
//!
//! Every operation of the store is written once (`database.rs`), as a function over
//! `&mut dyn Connection`; a backend only decides where it runs: on which connection, in
//! which transaction, retried or not, batched with others or not. It also sets the gauges
//! that only it can read, such as the SQLite WAL's size or the PostgreSQL pool's connections.

use std::future::Future;
use std::time::Duration;

use uuid::Uuid;

use super::StoreError;
use super::connection::{BoxFuture, Connection};
use super::model::{Export, ItemResults};
use super::sql::TextIndex;

/// An operation of the store, run on a connection with its arguments. A plain function
/// (not a closure), so that a backend can run it again on another attempt, and on a thread
/// of its own, with the arguments it was given.
pub type Operation<A, T> =
    for<'a> fn(&'a mut dyn Connection, &'a A) -> BoxFuture<'a, Result<T, StoreError>>;

/// An operation run on each item of a bulk write, with arguments all items share.
pub type ItemOperation<A, I, T> =
    for<'a> fn(&'a mut dyn Connection, &'a A, &'a I) -> BoxFuture<'a, Result<T, StoreError>>;

/// A database contactd can run on.
pub trait Backend: Send + Sync + std::fmt::Debug + 'static {
    /// The index that serves a contact list's `q` on this database.
    const TEXT_INDEX: TextIndex;

    /// Runs a read outside any transaction: each statement sees what was committed when it
    /// began.
    fn read<A, T>(
        &self,
        args: A,
        read: Operation<A, T>,
    ) -> impl Future<Output = Result<T, StoreError>> + Send
    where
        A: Send + Sync + 'static,
        T: Send + 'static;

    /// Runs a read whose cost grows with the size of the company (a search that reads every
    /// contact, a count of a field's values), so that such reads cannot take every thread
    /// from the reads that cost one contact.
    fn scan<A, T>(
        &self,
        args: A,
        read: Operation<A, T>,
    ) -> impl Future<Output = Result<T, StoreError>> + Send
    where
        A: Send + Sync + 'static,
        T: Send + 'static;

    /// Runs a write of one statement, which is atomic on its own, and answers once it is
    /// durable.
    fn write_statement<A, T>(
        &self,
        args: A,
        write: Operation<A, T>,
    ) -> impl Future<Output = Result<T, StoreError>> + Send
    where
        A: Send + Sync + 'static,
        T: Send + 'static;

    /// Runs a write in a transaction, inside a savepoint named `write` (see
    /// `sql::roll_back_write`), and answers once it is committed and durable: all of it is
    /// stored, or none of it.
    fn write<A, T>(
        &self,
        args: A,
        write: Operation<A, T>,
    ) -> impl Future<Output = Result<T, StoreError>> + Send
    where
        A: Send + Sync + 'static,
        T: Send + 'static;

    /// Runs `write` on each item, in order, in one transaction, each item inside a
    /// savepoint named `write` of its own: an item that fails undoes itself alone and never
    /// fails another. The outer error means nothing at all was stored.
    fn write_each<A, I, T>(
        &self,
        args: A,
        items: Vec<I>,
        write: ItemOperation<A, I, T>,
    ) -> impl Future<Output = Result<ItemResults<T>, StoreError>> + Send
    where
        A: Send + Sync + 'static,
        I: Send + Sync + 'static,
        T: Send + 'static;

    /// Starts reading every contact of a company from one snapshot (see
    /// [`Export`]), which is released when the last page is taken, when the pages are
    /// dropped, or when a page waits `stall` to be taken.
    fn export(
        &self,
        company_id: Uuid,
        stall: Duration,
    ) -> impl Future<Output = Result<Export, StoreError>> + Send;

    /// Sets the gauges of this backend's state now (docs/reference.md#metrics): cheap reads
    /// of what the process already knows, made when metrics are scraped, so that they cost
    /// nothing between scrapes and are never stale.
    fn record_gauges(&self);
}
