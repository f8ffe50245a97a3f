//! Group commit for SQLite: concurrent writes share one transaction and one fsync.
//!
//! SQLite with `synchronous=FULL` pays an fsync per commit, which caps one commit per request
//! at a few thousand requests a second however fast the rest is. Here one task owns the
//! write connection; writes queue to it, and it runs everything queued in one `BEGIN
//! IMMEDIATE … COMMIT`, each write inside a savepoint of its own. A write that fails (a
//! duplicate, a deleted field) rolls back its savepoint only, so it never fails or changes
//! the others in its batch; and no write is answered before the commit that made it durable.

use std::future::Future;
use std::pin::Pin;

use sqlx::{Connection, SqliteConnection};
use tokio::sync::{mpsc, oneshot};

use super::StoreError;

/// A write's work on the shared connection, inside its savepoint.
pub type WriteFuture<'c, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'c>>;

/// The most writes one commit carries: enough to amortise the fsync, few enough that the
/// last write of a batch does not wait long behind the others.
const MAX_BATCH: usize = 256;

/// How many writes may wait for the writer before callers wait to queue.
const QUEUE_DEPTH: usize = 4096;

/// The queue into the writer task.
#[derive(Debug, Clone)]
pub struct GroupCommit {
    queue: mpsc::Sender<Box<dyn QueuedWrite>>,
}

impl GroupCommit {
    /// Starts the writer task on `conn`, which it owns from then on; it stops when the last
    /// `GroupCommit` is dropped.
    pub fn start(conn: SqliteConnection) -> Self {
        let (queue, receiver) = mpsc::channel(QUEUE_DEPTH);
        tokio::spawn(run_writer(conn, receiver));
        Self { queue }
    }

    /// Runs `work` in the next batch and returns its result once the batch is on disk.
    pub async fn write<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut SqliteConnection) -> WriteFuture<'c, T> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let write = PendingWrite {
            work: Some(work),
            result: None,
            reply,
        };
        self.queue
            .send(Box::new(write))
            .await
            .map_err(|_| writer_gone())?;
        answer.await.map_err(|_| writer_gone())?
    }
}

fn writer_gone() -> StoreError {
    StoreError::WriteFailed("the database writer has stopped".to_owned())
}

/// A write in the queue, its result type erased so writes of every kind share the queue.
trait QueuedWrite: Send {
    /// Runs the write on the shared connection; `true` when it succeeded and is kept.
    fn run<'c>(
        &'c mut self,
        conn: &'c mut SqliteConnection,
    ) -> Pin<Box<dyn Future<Output = bool> + Send + 'c>>;

    /// Answers the caller: its result if the batch committed, else why it did not.
    fn answer(self: Box<Self>, committed: Result<(), String>);
}

struct PendingWrite<T, F> {
    work: Option<F>,
    result: Option<Result<T, StoreError>>,
    reply: oneshot::Sender<Result<T, StoreError>>,
}

impl<T, F> QueuedWrite for PendingWrite<T, F>
where
    T: Send + 'static,
    F: for<'c> FnOnce(&'c mut SqliteConnection) -> WriteFuture<'c, T> + Send + 'static,
{
    fn run<'c>(
        &'c mut self,
        conn: &'c mut SqliteConnection,
    ) -> Pin<Box<dyn Future<Output = bool> + Send + 'c>> {
        Box::pin(async move {
            let Some(work) = self.work.take() else {
                return false;
            };
            let result = work(conn).await;
            let succeeded = result.is_ok();
            self.result = Some(result);
            succeeded
        })
    }

    fn answer(self: Box<Self>, committed: Result<(), String>) {
        let result = match (committed, self.result) {
            // A failed write's own error stands whether or not the batch committed.
            (_, Some(Err(error))) => Err(error),
            (Ok(()), Some(Ok(value))) => Ok(value),
            (Err(reason), _) => Err(StoreError::WriteFailed(reason)),
            (Ok(()), None) => Err(StoreError::WriteFailed("the write never ran".to_owned())),
        };
        // The caller may have gone (its request was cancelled); the write stands regardless.
        let _ = self.reply.send(result);
    }
}

async fn run_writer(mut conn: SqliteConnection, mut queue: mpsc::Receiver<Box<dyn QueuedWrite>>) {
    let mut batch: Vec<Box<dyn QueuedWrite>> = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = queue.recv().await {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(write) => batch.push(write),
                Err(_) => break,
            }
        }
        let committed = commit_batch(&mut conn, &mut batch).await;
        if committed.is_err() {
            // Leave the connection clean for the next batch whatever state the failure left.
            let _ = sqlx::query("ROLLBACK").execute(&mut conn).await;
        }
        for write in batch.drain(..) {
            write.answer(committed.clone());
        }
        if committed.is_err() && conn.ping().await.is_err() {
            tracing::error!("the database write connection is broken; writes will fail");
        }
    }
}

/// Runs a batch in one transaction, each write in a savepoint, and commits it.
async fn commit_batch(
    conn: &mut SqliteConnection,
    batch: &mut [Box<dyn QueuedWrite>],
) -> Result<(), String> {
    let fail = |error: sqlx::Error| {
        tracing::error!(%error, "a batch of writes failed");
        error.to_string()
    };
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut *conn)
        .await
        .map_err(fail)?;
    for write in batch.iter_mut() {
        sqlx::query("SAVEPOINT write")
            .execute(&mut *conn)
            .await
            .map_err(fail)?;
        if !write.run(conn).await {
            sqlx::query("ROLLBACK TO write")
                .execute(&mut *conn)
                .await
                .map_err(fail)?;
        }
        sqlx::query("RELEASE write")
            .execute(&mut *conn)
            .await
            .map_err(fail)?;
    }
    sqlx::query("COMMIT")
        .execute(&mut *conn)
        .await
        .map_err(fail)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use sqlx::ConnectOptions;
    use sqlx::sqlite::SqliteConnectOptions;

    use super::*;

    /// Writes that each insert two rows, every third one failing on its second insert:
    /// queued together they share batches, and exactly the failing writes leave nothing.
    #[tokio::test]
    async fn a_failed_write_rolls_back_alone_and_the_rest_of_its_batch_commits() {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("batch.db").display());
        let options = SqliteConnectOptions::from_str(&url)
            .expect("URL")
            .create_if_missing(true);
        let mut conn = options.connect().await.expect("open");
        sqlx::query("CREATE TABLE t (x INTEGER NOT NULL UNIQUE)")
            .execute(&mut conn)
            .await
            .expect("create table");
        let writer = GroupCommit::start(conn);
        let writes: Vec<_> = (0..60_i64)
            .map(|i| {
                let writer = writer.clone();
                tokio::spawn(async move {
                    writer
                        .write(move |conn| {
                            Box::pin(async move {
                                sqlx::query("INSERT INTO t (x) VALUES ($1)")
                                    .bind(i)
                                    .execute(&mut *conn)
                                    .await?;
                                // Every third write collides with the first row of write 0.
                                let second = if i % 3 == 2 { 0 } else { 1000 + i };
                                sqlx::query("INSERT INTO t (x) VALUES ($1)")
                                    .bind(second)
                                    .execute(&mut *conn)
                                    .await?;
                                Ok(i)
                            })
                        })
                        .await
                })
            })
            .collect();
        for (i, write) in (0_i64..).zip(writes) {
            let outcome = write.await.expect("task");
            assert_eq!(outcome.is_ok(), i % 3 != 2, "write {i}: {outcome:?}");
        }
        let mut check = options.connect().await.expect("open");
        let stored: Vec<i64> = sqlx::query_scalar("SELECT x FROM t ORDER BY x")
            .fetch_all(&mut check)
            .await
            .expect("read");
        let expected: Vec<i64> = (0..60)
            .filter(|i| i % 3 != 2)
            .chain((0..60).filter(|i| i % 3 != 2).map(|i| 1000 + i))
            .collect();
        assert_eq!(stored, expected);
    }
}
