//! The embedded SQLite store: WAL, `synchronous=FULL`, foreign keys, one writer.
//!
//! SQLite runs in this process, so the store drives it synchronously (rusqlite): a read is a
//! few microseconds of work on the request's own thread, and the writer thread runs each
//! batch of writes without waiting on anything but the disk. sqlx only applies the
//! migrations, so SQLite and PostgreSQL share one migration mechanism.
//!
//! The operations themselves are the store's, written once (`store/database.rs`); this
//! backend says where they run: reads on read-only connections of their own, writes in the
//! group commit (`group_commit.rs`), exports on a snapshot held by a thread of their own.

pub mod backup;
pub(super) mod connection;
mod group_commit;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};
use sqlx::ConnectOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use uuid::Uuid;

use self::connection::{SqliteConnection, SqliteRow};
use self::group_commit::{GroupCommit, wal_bytes, wal_path};
use super::backend::{Backend, ItemOperation, Operation};
use super::connection::{Statement, run_to_end};
use super::export::{ExportPages, PageSender, export_channel, export_head};
use super::model::{Export, ExportPage, ItemResults};
use super::sql::TextIndex;
use super::{StoreError, schema, sql};
use crate::prometheus;

/// How long a statement waits for another connection's (or process's) write lock before
/// failing, and how long a write waits from when it is queued to when it runs: long enough
/// to ride out a burst, short enough that a stuck writer surfaces.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The most WAL an export's snapshot may keep from being reused before the export is
/// ended: below the bound of `docs/robustness.md#disk-the-sqlite-write-ahead-log` (64 MiB)
/// by what writers add between two looks and what one batch holds.
const WAL_LIMIT_BYTES: u64 = 48 * 1024 * 1024;

/// Idle read connections kept for reuse. Reads run on the threads that serve requests, so
/// no more than that many are ever open at once; this only bounds what a burst leaves.
const IDLE_READERS: usize = 16;

/// Distinct statements each connection keeps prepared: every statement in `sql.rs` fits.
const STATEMENT_CACHE: usize = 64;

/// The writer's settings: durable commits, foreign keys, checkpoints left to the
/// checkpointer thread, and a page cache of 16 MiB (SQLite's default is 2 MiB), since every
/// write reads its contact first and the writer is the one connection that never rests.
/// Savepoint journals are kept in memory: every write and every bulk item runs in a
/// savepoint, and SQLite otherwise copies each page it changes inside one to a temporary
/// file first (in a profile of a bulk import, those writes were a third of the writer's
/// time). They hold pages of the open transaction only, and a crash loses nothing the WAL
/// does not already protect. When the log starts again from its beginning, SQLite cuts the
/// WAL file back to 16 MiB (`journal_size_limit`; see `group_commit.rs`).
const WRITER_PRAGMAS: &str = "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; \
     PRAGMA wal_autocheckpoint = 0; PRAGMA cache_size = -16384; PRAGMA temp_store = MEMORY; \
     PRAGMA journal_size_limit = 16777216;";

/// The SQLite backend.
///
/// SQLite admits one writer at a time, so every write goes to the one connection of the
/// group commit writer (`group_commit.rs`), which runs concurrent writes in one `BEGIN IMMEDIATE`
/// transaction (so a write that reads first never fails to upgrade its lock, and another
/// process such as the admin CLI waits on the busy timeout instead of failing) and one
/// fsync. Reads run in parallel on their own read-only connections; under WAL they never
/// wait for the writer.
#[derive(Debug, Clone)]
pub struct SqliteBackend {
    readers: Arc<Readers>,
    writer: GroupCommit,
}

impl SqliteBackend {
    /// Opens (creating if missing) the database at a `sqlite://PATH` URL and migrates it.
    pub async fn open(database_url: &str) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(database_url)
            .map_err(migration_failed)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        let mut migrator = options.connect().await.map_err(migration_failed)?;
        schema::SQLITE_MIGRATIONS
            .run(&mut migrator)
            .await
            .map_err(schema::migration_failed)?;
        sqlx::Connection::close(migrator)
            .await
            .map_err(migration_failed)?;
        let path = options.get_filename().to_path_buf();
        let writer = open(&path, OpenFlags::SQLITE_OPEN_READ_WRITE)?;
        writer.execute_batch(WRITER_PRAGMAS)?;
        let checkpointer = open(&path, OpenFlags::SQLITE_OPEN_READ_WRITE)?;
        // A checkpoint syncs the database file before the WAL it copied may be reused. The
        // checkpointer never waits for a lock (see `run_checkpointer`).
        checkpointer.execute_batch("PRAGMA synchronous = FULL;")?;
        checkpointer.busy_timeout(Duration::ZERO)?;
        Ok(Self {
            readers: Arc::new(Readers {
                path,
                idle: Mutex::new(Vec::new()),
                scans: tokio::sync::Semaphore::new(scan_slots()),
            }),
            writer: GroupCommit::start(writer, checkpointer, BUSY_TIMEOUT).map_err(|error| {
                StoreError::Internal(format!("could not start the writer thread: {error}"))
            })?,
        })
    }
}

/// Why the database could not be opened and migrated, which sqlx does for SQLite too.
fn migration_failed(error: impl std::fmt::Display) -> StoreError {
    StoreError::Migration(error.to_string())
}

/// Opens a connection to the (existing, migrated) database file.
fn open(path: &Path, access: OpenFlags) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(path, access | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(conn)
}

impl Backend for SqliteBackend {
    const TEXT_INDEX: TextIndex = TextIndex::Fts5Trigram;

    async fn read<A, T>(&self, args: A, read: Operation<A, T>) -> Result<T, StoreError>
    where
        A: Send + Sync + 'static,
        T: Send + 'static,
    {
        self.readers
            .read(|conn| run_to_end(read(&mut SqliteConnection(conn), &args)))
    }

    async fn scan<A, T>(&self, args: A, read: Operation<A, T>) -> Result<T, StoreError>
    where
        A: Send + Sync + 'static,
        T: Send + 'static,
    {
        self.readers
            .scan(move |conn| run_to_end(read(&mut SqliteConnection(conn), &args)))
            .await
    }

    /// Every write of the group commit is a transaction's savepoint: one statement is no
    /// cheaper.
    async fn write_statement<A, T>(&self, args: A, write: Operation<A, T>) -> Result<T, StoreError>
    where
        A: Send + Sync + 'static,
        T: Send + 'static,
    {
        self.write(args, write).await
    }

    async fn write<A, T>(&self, args: A, write: Operation<A, T>) -> Result<T, StoreError>
    where
        A: Send + Sync + 'static,
        T: Send + 'static,
    {
        self.writer
            .write(move |conn| run_to_end(write(&mut SqliteConnection(conn), &args)))
            .await
    }

    async fn write_each<A, I, T>(
        &self,
        args: A,
        items: Vec<I>,
        write: ItemOperation<A, I, T>,
    ) -> Result<ItemResults<T>, StoreError>
    where
        A: Send + Sync + 'static,
        I: Send + Sync + 'static,
        T: Send + 'static,
    {
        self.writer
            .write_each(items, move |conn, item| {
                run_to_end(write(&mut SqliteConnection(conn), &args, item))
            })
            .await
    }

    async fn export(&self, company_id: Uuid, stall: Duration) -> Result<Export, StoreError> {
        let readers = self.readers.clone();
        let (fields_sent, fields) = tokio::sync::oneshot::channel();
        // The snapshot is a read transaction held on a connection of its own for the whole
        // export, on a thread that may block while the client is slow to take pages.
        let runtime = tokio::runtime::Handle::current();
        tokio::task::spawn_blocking(move || {
            let wal = wal_path(&readers.path);
            let outcome = readers.read(|conn| {
                conn.execute_batch("BEGIN")?;
                export_snapshot(
                    conn,
                    company_id,
                    fields_sent,
                    &Snapshot {
                        runtime,
                        stall,
                        wal,
                    },
                );
                Ok(conn.execute_batch("COMMIT")?)
            });
            if let Err(error) = outcome {
                tracing::error!(%error, "an export failed");
            }
        });
        fields.await.map_err(|_| {
            StoreError::Internal("the export reader stopped before it started".to_owned())
        })?
    }

    /// The WAL's size is one `stat` of its file: read at each scrape, it is exact then and
    /// costs nothing between scrapes, where a value kept up to date by the writer would cost
    /// every batch a `stat` more.
    fn record_gauges(&self) {
        let wal = wal_bytes(&wal_path(&self.readers.path));
        metrics::gauge!(prometheus::SQLITE_WAL_SIZE).set(wal as f64);
    }
}

/// The read-only connections, taken by one read at a time.
#[derive(Debug)]
struct Readers {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    /// Turns for reads whose cost grows with the company (see [`Readers::scan`]).
    scans: tokio::sync::Semaphore,
}

/// How many scans run at once: one per core, so that scans queue behind each other
/// rather than take every core from the requests that read one contact.
fn scan_slots() -> usize {
    std::thread::available_parallelism().map_or(2, std::num::NonZero::get)
}

impl Readers {
    /// Runs a read whose cost grows with the size of the company (a search that reads
    /// every contact, a count of a field's values) off the request threads: on tokio's
    /// worker threads it blocked every other request of the server meanwhile (eight
    /// searches over 100,000 contacts took `/healthz` from under 1 ms to 220 ms). See
    /// `docs/robustness.md#fair-sharing-exports-and-long-reads`.
    async fn scan<T: Send + 'static>(
        self: &Arc<Self>,
        read: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let _turn = self
            .scans
            .acquire()
            .await
            .map_err(|_| StoreError::Internal("the scan queue is closed".to_owned()))?;
        let readers = self.clone();
        tokio::task::spawn_blocking(move || readers.read(read))
            .await
            .map_err(|error| StoreError::Internal(format!("a scan failed: {error}")))?
    }

    /// Runs `read` on an idle connection, opening one if none is idle.
    fn read<T>(
        &self,
        read: impl FnOnce(&mut Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let idle = self.take();
        let mut conn = match idle {
            Some(conn) => conn,
            None => open(&self.path, OpenFlags::SQLITE_OPEN_READ_ONLY)?,
        };
        let result = read(&mut conn);
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < IDLE_READERS {
            idle.push(conn);
        }
        result
    }

    fn take(&self) -> Option<Connection> {
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop()
    }
}

/// What an export's reader needs to hand its pages over and to know when to let go of its
/// snapshot.
struct Snapshot {
    runtime: tokio::runtime::Handle,
    stall: Duration,
    wal: PathBuf,
}

impl Snapshot {
    /// Whether the snapshot keeps more WAL than [`WAL_LIMIT_BYTES`] from being reused:
    /// frames written since it began cannot be copied back until it ends.
    fn holds_too_much_wal(&self) -> bool {
        wal_bytes(&self.wal) > WAL_LIMIT_BYTES
    }

    /// Hands a page over, from the reader's blocking thread; `false` when the export is
    /// over: the client went away or stalled, or the snapshot held too much WAL meanwhile.
    fn hand_over(&self, pages_sent: &PageSender, page: ExportPage) -> bool {
        self.runtime.block_on(async {
            tokio::select! {
                taken = pages_sent.hand_over(page) => taken,
                () = async {
                    while !self.holds_too_much_wal() {
                        tokio::time::sleep(WAL_WATCH).await;
                    }
                } => false,
            }
        })
    }
}

/// How often an export waiting on its client looks at the WAL.
const WAL_WATCH: Duration = Duration::from_millis(100);

/// Reads an export inside the connection's open read transaction: the definitions and the
/// count first, answered on `fields_sent` with the receiving end of the pages, then every
/// page.
fn export_snapshot(
    conn: &mut Connection,
    company_id: Uuid,
    fields_sent: tokio::sync::oneshot::Sender<Result<Export, StoreError>>,
    snapshot: &Snapshot,
) {
    let (pages_sent, pages) = export_channel(snapshot.stall);
    let head = run_to_end(export_head(&mut SqliteConnection(conn), company_id));
    let started = head.map(|(fields, total)| Export {
        fields,
        total,
        pages,
    });
    let failed = started.is_err();
    if fields_sent.send(started).is_err() || failed {
        return;
    }
    if let Err(error) = send_pages(conn, company_id, &pages_sent, snapshot) {
        // The client sees the body end short; the reason is logged with the request.
        snapshot.hand_over(&pages_sent, Err(error));
    }
}

/// Reads every contact of the snapshot, sending a page at a time; stops early, without an
/// error, when the client went away or stalled, or when the snapshot holds too much WAL (an
/// export that writes cannot outrun must not make the WAL grow without bound, see
/// `docs/robustness.md#disk-the-sqlite-write-ahead-log`).
fn send_pages(
    conn: &Connection,
    company_id: Uuid,
    pages_sent: &PageSender,
    snapshot: &Snapshot,
) -> Result<(), StoreError> {
    let statement: Statement = sql::export_contacts(company_id);
    let mut prepared = connection::prepare(conn, &statement)?;
    let mut rows = prepared.raw_query();
    let mut pages = ExportPages::default();
    while let Some(row) = rows.next()? {
        if let Some(page) = pages.push(&SqliteRow(row))? {
            if snapshot.holds_too_much_wal() {
                tracing::warn!("an export was ended: writes made the WAL it holds pass its bound");
                return Ok(());
            }
            if !snapshot.hand_over(pages_sent, Ok(page)) {
                return Ok(());
            }
        }
    }
    if let Some(page) = pages.finish() {
        snapshot.hand_over(pages_sent, Ok(page));
    }
    Ok(())
}
