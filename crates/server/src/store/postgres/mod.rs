//! The PostgreSQL backend: the scale-out backend that any number of `contactd serve`
//! processes share.
//!
//! Correctness lives in the database, never in one process's memory: uniqueness is the
//! unique indexes, and every write is one short transaction. An update first locks its
//! contact's row, so concurrent updates of one contact, from any number of processes, queue
//! in the database and each applies to the state the previous one left: none is lost, and
//! none fails for having waited. What contention still surfaces as an error (a deadlock, or
//! a serialization failure on the PostgreSQL-compatible distributed engines, which run every
//! transaction serializable) is retried by [`retrying`].
//!
//! The operations themselves are the store's, written once (`store/database.rs`); this
//! backend says where they run: on a pooled connection, or in a transaction with a
//! savepoint per write, retried whole on contention.

pub(super) mod connection;

use std::future::Future;
use std::str::FromStr;
use std::time::Duration;

use futures_util::TryStreamExt;
use rand::Rng;
use sqlx::migrate::MigrateDatabase;
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgConnection, PgPool, Postgres, Transaction};
use uuid::Uuid;

use self::connection::{PgRowReader, PgSession, bind};
use super::backend::{Backend, ItemOperation, Operation};
use super::connection::{Connection, Statement};
use super::export::{ExportPages, PageSender, export_channel, export_head};
use super::model::{Export, ItemResults};
use super::sql::TextIndex;
use super::{StoreError, schema, sql};
use crate::prometheus;

/// How the PostgreSQL store uses its server; the SQLite store has no such choices.
#[derive(Debug, Clone)]
pub struct PostgresSettings {
    /// Connections this process keeps open at most.
    pub max_connections: u32,
    /// How long a request waits for a connection before failing (503), so an unreachable
    /// database is reported at once instead of piling requests up.
    pub acquire_timeout: Duration,
    /// Statements are sent unnamed, never prepared and kept, as PgBouncer's transaction
    /// mode requires.
    pub pgbouncer: bool,
}

/// How often a write that keeps losing to contention is tried before its failure is
/// returned (as a 500: the client may retry later).
const MAX_ATTEMPTS: u32 = 8;
/// The first backoff, doubled after each failure up to [`MAX_BACKOFF`], each one jittered
/// to between half and all of it, so that racing writers do not collide again in step.
const FIRST_BACKOFF: Duration = Duration::from_millis(2);
const MAX_BACKOFF: Duration = Duration::from_millis(200);

/// Runs a write, again after a serialization failure (SQLSTATE 40001) or a deadlock
/// (40P01), with capped, jittered exponential backoff. Any other outcome is returned as is.
pub async fn retrying<T, F, Fut>(mut attempt: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, StoreError>>,
{
    let mut backoff = FIRST_BACKOFF;
    for _ in 1..MAX_ATTEMPTS {
        match attempt().await {
            Err(error) if is_retryable(&error) => {
                let pause = rand::rng().random_range(backoff / 2..=backoff);
                tracing::debug!(?pause, "retrying a write after a serialization failure");
                tokio::time::sleep(pause).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
            outcome => return outcome,
        }
    }
    attempt().await
}

/// Whether an error is a serialization failure or deadlock, which a retry can resolve.
pub fn is_retryable(error: &StoreError) -> bool {
    error.is_contention()
}

/// A connection held for one operation that needs no transaction of its own. Behind
/// PgBouncer in transaction mode a client keeps one server connection only within a
/// transaction, and sqlx prepares and then executes an unnamed statement in two round
/// trips, so there even such an operation runs in a transaction.
enum HeldConnection {
    Pooled(PoolConnection<Postgres>),
    Pinned(Transaction<'static, Postgres>),
}

impl HeldConnection {
    fn conn(&mut self) -> &mut PgConnection {
        match self {
            Self::Pooled(conn) => conn,
            Self::Pinned(tx) => tx,
        }
    }

    /// Ends the operation: commits its transaction, if it has one.
    async fn release(self) -> Result<(), StoreError> {
        if let Self::Pinned(tx) = self {
            tx.commit().await?;
        }
        Ok(())
    }
}

/// Creates the database a URL names when it does not exist, as SQLite creates its file, so
/// one command starts contactd on a fresh server. Another process creating it at the same
/// moment is fine.
async fn create_database_if_missing(database_url: &str) -> Result<(), StoreError> {
    if Postgres::database_exists(database_url).await? {
        return Ok(());
    }
    match Postgres::create_database(database_url).await {
        Err(sqlx::Error::Database(db)) if db.code().as_deref() == Some("42P04") => Ok(()),
        outcome => Ok(outcome?),
    }
}

/// The PostgreSQL backend.
#[derive(Debug, Clone)]
pub struct PostgresBackend {
    pool: PgPool,
    /// Whether statements are prepared once per connection and reused (named), or sent
    /// unnamed each time, as PgBouncer's transaction mode requires.
    persistent: bool,
}

impl PostgresBackend {
    /// Connects to the database at a `postgres://` URL, creating the database if it is
    /// missing, and migrates it.
    ///
    /// Behind PgBouncer (`settings.pgbouncer`) neither happens: creating a database and the
    /// migrator's session lock need a direct connection, so `contactd migrate` is run
    /// against PostgreSQL itself before the servers start.
    pub async fn connect(
        database_url: &str,
        settings: &PostgresSettings,
    ) -> Result<Self, StoreError> {
        let mut options = PgConnectOptions::from_str(database_url)?;
        if settings.pgbouncer {
            options = options.statement_cache_capacity(0);
        } else {
            create_database_if_missing(database_url).await?;
        }
        let pool = PgPoolOptions::new()
            .max_connections(settings.max_connections)
            .acquire_timeout(settings.acquire_timeout)
            .connect_with(options)
            .await?;
        if !settings.pgbouncer {
            // Concurrent starts are safe: sqlx holds an advisory lock while it migrates.
            schema::POSTGRES_MIGRATIONS
                .run(&pool)
                .await
                .map_err(schema::migration_failed)?;
        }
        Ok(Self {
            pool,
            persistent: !settings.pgbouncer,
        })
    }

    fn session<'c>(&self, conn: &'c mut PgConnection) -> PgSession<'c> {
        PgSession {
            conn,
            persistent: self.persistent,
        }
    }

    /// Runs an operation on a [`HeldConnection`] of its own.
    async fn on_held_connection<A, T>(
        &self,
        args: &A,
        operation: Operation<A, T>,
    ) -> Result<T, StoreError>
    where
        A: Sync,
    {
        let mut held = if self.persistent {
            HeldConnection::Pooled(self.pool.acquire().await?)
        } else {
            HeldConnection::Pinned(self.pool.begin().await?)
        };
        let outcome = operation(&mut self.session(held.conn()), args).await?;
        held.release().await?;
        Ok(outcome)
    }
}

/// Ends the savepoint of one write that ended with `outcome`: undoes it when the write
/// failed with anything but contention, which undoes the whole transaction instead (and is
/// the outer error, for the transaction to be retried).
async fn end_savepoint<T>(
    session: &mut PgSession<'_>,
    outcome: Result<T, StoreError>,
) -> Result<Result<T, StoreError>, StoreError> {
    match &outcome {
        Err(error) if is_retryable(error) => return outcome.map(Ok),
        Err(_) => {
            session.execute(&sql::roll_back_write()).await?;
        }
        Ok(_) => {}
    }
    session.execute(&Statement::new(RELEASE_SAVEPOINT)).await?;
    Ok(outcome)
}

/// The savepoint each write runs in, which `sql::roll_back_write` returns to.
const SAVEPOINT: &str = "SAVEPOINT write";
const RELEASE_SAVEPOINT: &str = "RELEASE SAVEPOINT write";

impl Backend for PostgresBackend {
    const TEXT_INDEX: TextIndex = TextIndex::PgTrgm;

    async fn read<A, T>(&self, args: A, read: Operation<A, T>) -> Result<T, StoreError>
    where
        A: Send + Sync + 'static,
        T: Send + 'static,
    {
        self.on_held_connection(&args, read).await
    }

    /// PostgreSQL serves every read from its own pool of backends: a long one takes one
    /// connection of the pool, not a thread of this process.
    async fn scan<A, T>(&self, args: A, read: Operation<A, T>) -> Result<T, StoreError>
    where
        A: Send + Sync + 'static,
        T: Send + 'static,
    {
        self.on_held_connection(&args, read).await
    }

    /// One statement needs no transaction: it runs alone, in one round trip.
    async fn write_statement<A, T>(&self, args: A, write: Operation<A, T>) -> Result<T, StoreError>
    where
        A: Send + Sync + 'static,
        T: Send + 'static,
    {
        retrying(|| self.on_held_connection(&args, write)).await
    }

    async fn write<A, T>(&self, args: A, write: Operation<A, T>) -> Result<T, StoreError>
    where
        A: Send + Sync + 'static,
        T: Send + 'static,
    {
        retrying(|| async {
            let mut tx = self.pool.begin().await?;
            let mut session = self.session(&mut tx);
            session.execute(&Statement::new(SAVEPOINT)).await?;
            let outcome = write(&mut session, &args).await;
            let outcome = end_savepoint(&mut session, outcome).await??;
            tx.commit().await?;
            Ok(outcome)
        })
        .await
    }

    /// The items run in one transaction, each in a savepoint of its own, so that an item
    /// that fails undoes itself alone and the rest commit together. A serialization failure
    /// or deadlock undoes the whole transaction, which is then retried.
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
        retrying(|| async {
            let mut tx = self.pool.begin().await?;
            let mut results = Vec::with_capacity(items.len());
            for item in &items {
                let mut session = self.session(&mut tx);
                session.execute(&Statement::new(SAVEPOINT)).await?;
                let outcome = write(&mut session, &args, item).await;
                results.push(end_savepoint(&mut session, outcome).await?);
            }
            tx.commit().await?;
            Ok(results)
        })
        .await
    }

    async fn export(&self, company_id: Uuid, stall: Duration) -> Result<Export, StoreError> {
        let mut tx = self.pool.begin().await?;
        let mut session = self.session(&mut tx);
        session
            .execute(&Statement::new(
                "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY",
            ))
            .await?;
        let (fields, total) = export_head(&mut session, company_id).await?;
        let (pages_sent, pages) = export_channel(stall);
        let persistent = self.persistent;
        tokio::spawn(async move {
            if let Err(error) = send_pages(&mut tx, persistent, company_id, &pages_sent).await {
                // The client sees the body end short; the reason is logged with the request.
                pages_sent.hand_over(Err(error)).await;
            }
            if let Err(error) = tx.rollback().await {
                tracing::warn!(%error, "could not end an export's snapshot");
            }
        });
        Ok(Export {
            fields,
            total,
            pages,
        })
    }

    /// The pool counts its connections itself: reading them at each scrape is exact then.
    fn record_gauges(&self) {
        let open = self.pool.size();
        let idle = u32::try_from(self.pool.num_idle())
            .unwrap_or(u32::MAX)
            .min(open);
        let connections = |state: &'static str, count: u32| {
            metrics::gauge!(prometheus::POSTGRES_POOL_CONNECTIONS, "state" => state)
                .set(f64::from(count));
        };
        connections("in_use", open - idle);
        connections("idle", idle);
        metrics::gauge!(prometheus::POSTGRES_POOL_MAX_CONNECTIONS)
            .set(f64::from(self.pool.options().get_max_connections()));
    }
}

/// Reads every contact of the export's snapshot, row by row as PostgreSQL sends them,
/// sending a page at a time; stops early, without an error, when the receiver is gone
/// (the client went away) or stalled.
async fn send_pages(
    conn: &mut PgConnection,
    persistent: bool,
    company_id: Uuid,
    pages_sent: &PageSender,
) -> Result<(), StoreError> {
    let export = sql::export_contacts(company_id);
    let mut rows = bind(&export, persistent).fetch(conn);
    let mut pages = ExportPages::default();
    while let Some(row) = rows.try_next().await? {
        if let Some(page) = pages.push(&PgRowReader(&row))?
            && !pages_sent.hand_over(Ok(page)).await
        {
            return Ok(());
        }
    }
    if let Some(page) = pages.finish() {
        pages_sent.hand_over(Ok(page)).await;
    }
    Ok(())
}
