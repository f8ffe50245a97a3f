//! Group commit for SQLite: concurrent writes share one transaction and one fsync.
//!
//! SQLite with `synchronous=FULL` pays an fsync per commit, which caps one commit per request
//! at a few thousand requests a second however fast the rest is. Here one thread owns the
//! write connection and drives it synchronously, so no statement waits on a hand-off between
//! threads. Writes queue to it, and it runs everything queued in one `BEGIN IMMEDIATE …
//! COMMIT`, each write inside a savepoint of its own. A write that fails (a duplicate, a
//! deleted field) rolls back its savepoint only, so it never fails or changes the others in
//! its batch; and no write is answered before the commit that made it durable.
//!
//! Copying the WAL back into the database file (a checkpoint) is mostly left to a thread of
//! its own. SQLite would otherwise run it inside a commit every thousand pages, and in a
//! profile of the seed PATCH that was a sixth of the writer's time, with every write of the
//! next batch waiting on it. A passive checkpoint never blocks the writer or the readers.
//!
//! But a checkpoint that runs beside the writer never catches up with it, and SQLite only
//! starts the WAL again from its beginning when a write transaction begins on a log that is
//! wholly copied back: under back-to-back commits that never happened, and the WAL grew by
//! gigabytes. So once the WAL passes [`WAL_CHECKPOINT_BYTES`] the writer itself, between two
//! batches, finishes the copy (a passive checkpoint with no write beside it copies every
//! frame no reader still needs, and the checkpointer thread has already copied most), and
//! its next batch starts the log again; `journal_size_limit` then cuts the file back. When
//! writes pause, the checkpointer truncates the WAL to nothing. See
//! `docs/robustness.md#disk-the-sqlite-write-ahead-log`.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel};
use std::time::{Duration, Instant};

use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

use crate::prometheus;
use crate::store::StoreError;
use crate::store::model::ItemResults;

/// The most writes one commit carries: enough to amortise the fsync, few enough that the
/// last write of a batch does not wait long behind the others.
const MAX_BATCH: usize = 256;

/// The most items (contacts of bulk writes, one for any other write) one commit carries
/// beyond its first write: every frame of a transaction stays in the WAL until it commits,
/// so 256 bulk writes of 1,000 contacts in one batch would take the WAL past its bound.
const MAX_BATCH_ITEMS: usize = 2_000;

/// The WAL size past which the writer finishes the checkpoint itself between two batches,
/// so that the next batch starts the log again from its beginning.
pub const WAL_CHECKPOINT_BYTES: u64 = 16 * 1024 * 1024;

/// How long writes must pause before the checkpointer truncates the WAL to nothing.
const IDLE_BEFORE_TRUNCATE: Duration = Duration::from_secs(1);

/// How many writes may wait for the writer before callers wait to queue.
const QUEUE_DEPTH: usize = 4096;

/// How long the checkpointer rests after a checkpoint, so that a stream of commits is
/// checkpointed ten times a second at most rather than after every one.
const CHECKPOINT_REST: Duration = Duration::from_millis(100);

/// The queue into the writer thread.
#[derive(Debug, Clone)]
pub struct GroupCommit {
    queue: mpsc::Sender<Queued>,
    /// How long a write may wait, from when it is queued, for its batch to get the
    /// database's write lock (which another process, such as the admin CLI, may hold).
    lock_wait: Duration,
}

/// A write in the queue, with the moment past which it is refused rather than run.
struct Queued {
    write: Box<dyn QueuedWrite>,
    deadline: Instant,
}

impl GroupCommit {
    /// Starts the writer thread on `writer` and the checkpointer thread on `checkpointer`,
    /// which they own from then on; both stop when the last `GroupCommit` is dropped. The
    /// writer connection should have automatic checkpoints turned off. A write still
    /// waiting `lock_wait` after it was queued fails as busy (a 503) and writes nothing, so
    /// that no request waits longer, however many batches wait before it.
    pub fn start(
        writer: Connection,
        checkpointer: Connection,
        lock_wait: Duration,
    ) -> std::io::Result<Self> {
        let wal = writer
            .path()
            .map(|path| wal_path(Path::new(path)))
            .ok_or_else(|| {
                std::io::Error::other("the writer's database must be a file, for its WAL")
            })?;
        let (queue, receiver) = mpsc::channel(QUEUE_DEPTH);
        let (committed, commits) = sync_channel(1);
        let checkpointer_wal = wal.clone();
        std::thread::Builder::new()
            .name("sqlite-checkpoint".to_owned())
            .spawn(move || run_checkpointer(checkpointer, &checkpointer_wal, commits))?;
        std::thread::Builder::new()
            .name("sqlite-writer".to_owned())
            .spawn(move || run_writer(writer, &wal, receiver, committed))?;
        Ok(Self { queue, lock_wait })
    }

    /// Runs `work` in the next batch and returns its result once the batch is on disk.
    pub async fn write<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let write = PendingWrite {
            work: Some(work),
            result: None,
            reply,
        };
        self.queue_and_wait(Box::new(write), answer).await
    }

    /// Runs `work` on each item, in order and in the same batch, each in a savepoint of its
    /// own, and returns each item's result once the batch is on disk. The outer error means
    /// the batch did not commit, and nothing of any item was stored.
    pub async fn write_each<I, T, F>(
        &self,
        items: Vec<I>,
        work: F,
    ) -> Result<ItemResults<T>, StoreError>
    where
        I: Send + 'static,
        T: Send + 'static,
        F: Fn(&mut Connection, &I) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let write = PendingItems {
            results: Vec::with_capacity(items.len()),
            items,
            work,
            reply,
        };
        self.queue_and_wait(Box::new(write), answer).await
    }

    /// Queues a write and waits for its answer.
    async fn queue_and_wait<R>(
        &self,
        write: Box<dyn QueuedWrite>,
        answer: oneshot::Receiver<Result<R, StoreError>>,
    ) -> Result<R, StoreError> {
        let queued = Queued {
            write,
            deadline: Instant::now() + self.lock_wait,
        };
        self.queue.send(queued).await.map_err(|_| writer_gone())?;
        answer.await.map_err(|_| writer_gone())?
    }
}

fn writer_gone() -> StoreError {
    StoreError::Internal("the database writer has stopped".to_owned())
}

/// A write in the queue, its result type erased so writes of every kind share the queue.
trait QueuedWrite: Send {
    /// Runs the write on the shared connection, each of its parts in a savepoint of its own
    /// (see [`in_savepoint`]). An error means a savepoint statement itself failed, and the
    /// batch cannot commit.
    fn run(&mut self, conn: &mut Connection) -> rusqlite::Result<()>;

    /// Answers the caller: its result if the batch committed, else why it did not.
    fn answer(self: Box<Self>, committed: Result<(), &rusqlite::Error>);

    /// How many items the write carries, against [`MAX_BATCH_ITEMS`].
    fn items(&self) -> usize {
        1
    }
}

/// Runs one write, or one item of a write, in a savepoint, so that its failure undoes it
/// alone. Each is a savepoint of the batch's transaction itself, never nested in another:
/// SQLite releases a nested savepoint by walking its journal from the outer savepoint's
/// start, which made the items of a 1,000-contact write cost quadratic time.
fn in_savepoint<T>(
    conn: &mut Connection,
    work: impl FnOnce(&mut Connection) -> Result<T, StoreError>,
) -> rusqlite::Result<Result<T, StoreError>> {
    let run =
        |conn: &Connection, statement: &str| conn.prepare_cached(statement)?.execute([]).map(drop);
    run(conn, "SAVEPOINT write")?;
    let outcome = work(conn);
    if outcome.is_err() {
        run(conn, "ROLLBACK TO write")?;
    }
    run(conn, "RELEASE write")?;
    Ok(outcome)
}

struct PendingWrite<T, F> {
    work: Option<F>,
    result: Option<Result<T, StoreError>>,
    reply: oneshot::Sender<Result<T, StoreError>>,
}

impl<T, F> QueuedWrite for PendingWrite<T, F>
where
    T: Send + 'static,
    F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
{
    fn run(&mut self, conn: &mut Connection) -> rusqlite::Result<()> {
        if let Some(work) = self.work.take() {
            self.result = Some(in_savepoint(conn, work)?);
        }
        Ok(())
    }

    fn answer(self: Box<Self>, committed: Result<(), &rusqlite::Error>) {
        let result = match (committed, self.result) {
            // A failed write's own error stands whether or not the batch committed.
            (_, Some(Err(error))) => Err(error),
            (Ok(()), Some(Ok(value))) => Ok(value),
            (Err(error), _) => Err(batch_error(error)),
            (Ok(()), None) => Err(StoreError::Internal("the write never ran".to_owned())),
        };
        // The caller may have gone (its request was cancelled); the write stands regardless.
        let _ = self.reply.send(result);
    }
}

struct PendingItems<I, T, F> {
    items: Vec<I>,
    work: F,
    results: ItemResults<T>,
    reply: oneshot::Sender<Result<ItemResults<T>, StoreError>>,
}

impl<I, T, F> QueuedWrite for PendingItems<I, T, F>
where
    I: Send + 'static,
    T: Send + 'static,
    F: Fn(&mut Connection, &I) -> Result<T, StoreError> + Send + 'static,
{
    fn run(&mut self, conn: &mut Connection) -> rusqlite::Result<()> {
        for item in &self.items {
            let outcome = in_savepoint(conn, |conn| (self.work)(conn, item))?;
            self.results.push(outcome);
        }
        Ok(())
    }

    fn items(&self) -> usize {
        self.items.len()
    }

    fn answer(self: Box<Self>, committed: Result<(), &rusqlite::Error>) {
        let result = match committed {
            Ok(()) if self.results.len() == self.items.len() => Ok(self.results),
            Ok(()) => Err(StoreError::Internal("the write never ran".to_owned())),
            Err(error) => Err(batch_error(error)),
        };
        let _ = self.reply.send(result);
    }
}

fn run_writer(
    mut conn: Connection,
    wal: &Path,
    mut queue: mpsc::Receiver<Queued>,
    committed: SyncSender<()>,
) {
    let mut batch: Vec<Queued> = Vec::with_capacity(MAX_BATCH);
    // A write taken from the queue that did not fit the last batch: it starts the next.
    let mut held_over = None;
    while let Some(first) = held_over.take().or_else(|| queue.blocking_recv()) {
        let mut items = first.write.items();
        batch.push(first);
        while batch.len() < MAX_BATCH && items < MAX_BATCH_ITEMS {
            let Ok(queued) = queue.try_recv() else { break };
            if items + queued.write.items() > MAX_BATCH_ITEMS {
                held_over = Some(queued);
                break;
            }
            items += queued.write.items();
            batch.push(queued);
        }
        let outcome =
            lock_for(&conn, &mut batch).and_then(|()| commit_batch(&mut conn, &mut batch));
        if let Err(error) = &outcome {
            tracing::error!(%error, "a batch of writes failed");
        }
        // Leave the connection clean for the next batch whatever state a failure left.
        if !conn.is_autocommit()
            && let Err(error) = conn.execute_batch("ROLLBACK")
        {
            tracing::error!(%error, "the database write connection is broken");
        }
        if outcome.is_ok() {
            // Full means a checkpoint is already due; nothing to add.
            let _ = committed.try_send(());
        }
        for queued in batch.drain(..) {
            queued.write.answer(outcome.as_ref().map(drop));
        }
        if wal_bytes(wal) > WAL_CHECKPOINT_BYTES {
            // Nothing else writes now, so this copies every frame that no reader's snapshot
            // still needs; the next batch then starts the log again from its beginning.
            checkpoint(&conn, "PASSIVE");
        }
    }
}

/// What a write refused for waiting too long is answered: SQLite's busy error, a 503.
fn lock_timeout() -> rusqlite::Error {
    rusqlite::Error::SqliteFailure(
        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
        Some("the write waited too long for the database's write lock".to_owned()),
    )
}

/// The WAL file of the database at `path`.
pub fn wal_path(path: &Path) -> PathBuf {
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    PathBuf::from(wal)
}

/// The size of a WAL file, 0 when there is none.
pub fn wal_bytes(wal: &Path) -> u64 {
    std::fs::metadata(wal).map_or(0, |metadata| metadata.len())
}

/// Runs a checkpoint of the given mode; a failure is logged, since the next one may succeed.
fn checkpoint(conn: &Connection, mode: &str) {
    let pragma = format!("PRAGMA wal_checkpoint({mode})");
    if let Err(error) = conn.query_row(&pragma, [], |_| Ok(())) {
        tracing::warn!(%error, mode, "could not checkpoint the WAL");
    }
}

/// What each write of a batch that failed to commit is told: SQLite's own error where it
/// gave one, so that a database another process keeps locked past the busy timeout is
/// reported as busy (a 503), not as a failure.
fn batch_error(error: &rusqlite::Error) -> StoreError {
    match error {
        rusqlite::Error::SqliteFailure(failure, message) => {
            StoreError::from(rusqlite::Error::SqliteFailure(*failure, message.clone()))
        }
        other => StoreError::WriteFailed(other.to_string()),
    }
}

/// Checkpoints the WAL after commits, at most once per [`CHECKPOINT_REST`], and truncates it
/// once commits have paused for [`IDLE_BEFORE_TRUNCATE`].
///
/// The connection must not wait on locks (a busy timeout of zero): a truncating checkpoint
/// takes the write lock and then waits for readers, and waiting there would hold up every
/// write behind a long read; without waiting it gives up at once and tries again later.
fn run_checkpointer(conn: Connection, wal: &Path, commits: Receiver<()>) {
    loop {
        match commits.recv_timeout(IDLE_BEFORE_TRUNCATE) {
            Ok(()) => {
                checkpoint(&conn, "PASSIVE");
                std::thread::sleep(CHECKPOINT_REST);
            }
            Err(RecvTimeoutError::Timeout) => {
                if wal_bytes(wal) > 0 {
                    checkpoint(&conn, "TRUNCATE");
                }
            }
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

/// Begins the batch's transaction, waiting for the write lock (which another process may
/// hold) until the earliest deadline of its writes: each write that reaches its deadline
/// first is answered busy and taken out of the batch, and the rest wait on, until the lock
/// is had or no write is left (then the batch is empty and nothing is begun).
fn lock_for(conn: &Connection, batch: &mut Vec<Queued>) -> rusqlite::Result<()> {
    loop {
        let now = Instant::now();
        let (expired, waiting): (Vec<_>, Vec<_>) =
            batch.drain(..).partition(|queued| queued.deadline <= now);
        *batch = waiting;
        let refusal = lock_timeout();
        for queued in expired {
            queued.write.answer(Err(&refusal));
        }
        let Some(earliest) = batch.iter().map(|queued| queued.deadline).min() else {
            return Ok(());
        };
        conn.busy_timeout(earliest.saturating_duration_since(now))?;
        match conn.prepare_cached("BEGIN IMMEDIATE")?.execute([]) {
            Ok(_) => return Ok(()),
            Err(rusqlite::Error::SqliteFailure(failure, _))
                if failure.code == rusqlite::ErrorCode::DatabaseBusy => {}
            Err(error) => return Err(error),
        }
    }
}

/// Runs a batch inside the transaction [`lock_for`] began, and commits it; a committed
/// batch is measured (docs/reference.md#metrics) from its first write, so the wait for the
/// lock, which another process may hold, is not counted.
fn commit_batch(conn: &mut Connection, batch: &mut [Queued]) -> rusqlite::Result<()> {
    if batch.is_empty() {
        return Ok(());
    }
    let started = Instant::now();
    for queued in batch.iter_mut() {
        queued.write.run(conn)?;
    }
    conn.prepare_cached("COMMIT")?.execute([])?;
    metrics::histogram!(prometheus::SQLITE_GROUP_COMMIT_WRITES).record(batch.len() as f64);
    metrics::histogram!(prometheus::SQLITE_GROUP_COMMIT_DURATION).record(started.elapsed());
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    /// A writer on a new database at `path` with one table `t` of unique integers `x`.
    fn writer_on_table(path: &Path) -> GroupCommit {
        let conn = Connection::open(path).expect("open");
        conn.execute_batch("CREATE TABLE t (x INTEGER NOT NULL UNIQUE)")
            .expect("create table");
        let checkpointer = Connection::open(path).expect("open");
        GroupCommit::start(conn, checkpointer, Duration::from_secs(5)).expect("writer")
    }

    /// Every `x` of table `t`, in order, as committed.
    fn stored_rows(path: &Path) -> Vec<i64> {
        Connection::open(path)
            .expect("open")
            .prepare("SELECT x FROM t ORDER BY x")
            .expect("prepare")
            .query_map([], |row| row.get(0))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("read")
    }

    /// Writes that each insert two rows, every third one failing on its second insert:
    /// queued together they share batches, and exactly the failing writes leave nothing.
    #[tokio::test]
    async fn a_failed_write_rolls_back_alone_and_the_rest_of_its_batch_commits() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("t.db");
        let writer = writer_on_table(&path);
        let writes: Vec<_> = (0..60_i64)
            .map(|i| {
                let writer = writer.clone();
                tokio::spawn(async move {
                    writer
                        .write(move |conn| {
                            conn.execute("INSERT INTO t (x) VALUES (?1)", [i])?;
                            // Every third write collides with the first row of write 0.
                            let second = if i % 3 == 2 { 0 } else { 1000 + i };
                            conn.execute("INSERT INTO t (x) VALUES (?1)", [second])?;
                            Ok(i)
                        })
                        .await
                })
            })
            .collect();
        for (i, write) in (0_i64..).zip(writes) {
            let outcome = write.await.expect("task");
            assert_eq!(outcome.is_ok(), i % 3 != 2, "write {i}: {outcome:?}");
        }
        let stored = stored_rows(&path);
        let expected: Vec<i64> = (0..60)
            .filter(|i| i % 3 != 2)
            .chain((0..60).filter(|i| i % 3 != 2).map(|i| 1000 + i))
            .collect();
        assert_eq!(stored, expected);
    }

    /// The items of one write each stand alone: the failing ones leave nothing, the others
    /// commit, and each gets its own result in order.
    #[tokio::test]
    async fn each_item_of_a_write_fails_or_commits_on_its_own() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("t.db");
        let writer = writer_on_table(&path);
        // Each item inserts x and x + 100; item 3 repeats item 1's x.
        let results = writer
            .write_each(vec![1_i64, 2, 1, 3], |conn, &x| {
                conn.execute("INSERT INTO t (x) VALUES (?1)", [x])?;
                conn.execute("INSERT INTO t (x) VALUES (?1)", [x + 100])?;
                Ok(x)
            })
            .await
            .expect("the batch commits");
        let outcomes: Vec<bool> = results.iter().map(Result::is_ok).collect();
        assert_eq!(outcomes, [true, true, false, true]);
        let stored = stored_rows(&path);
        assert_eq!(stored, [1, 2, 3, 101, 102, 103]);
    }
}
