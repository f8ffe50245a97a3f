//! The ceiling: what the database alone does with the SQL of one write request, and with
//! bare commits, without HTTP, JSON, validation or the server's own bookkeeping.
//!
//! Each write transaction is the one `crates/server/src/store/sqlite.rs` and `postgres.rs`
//! run for one request, statement for statement, with the statements of `store/sql.rs`
//! copied here (that module is private to the server). They are the one-commit-per-request
//! baseline the issue measures contactd against, so they stay as they are when the server
//! learns to do better.
//!
//! SQLite's ceiling runs on a plain synchronous connection ([`DirectWriter`]): sqlx sends
//! each statement to a thread of its own and waits for the answer, and with the CPU idle
//! between statements those round trips, not the database, would set the pace.
//! [`SqlxSqliteCommits`] measures what they cost.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use sqlx::{Connection, PgConnection, SqliteConnection};
use tokio::sync::oneshot;
use uuid::Uuid;

use crate::database::{BUSY_TIMEOUT, Fields, PLAN_OPTIONS};
use crate::load::Worker;

/// A contact row joined with one of its values, as the server's `ContactRow` reads it:
/// id, email, phone number, ext_id, first and last name, created and updated at, then the
/// field's id, key, display name and type, and the value.
type ContactRow = (
    Uuid,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    i64,
    i64,
    Option<Uuid>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

macro_rules! contact_by {
    ($column:literal) => {
        concat!(
            "SELECT c.id, c.email, c.phone_number, c.ext_id, c.first_name, c.last_name, \
             c.created_at, c.updated_at, f.id AS field_id, f.key AS field_key, \
             f.display_name AS field_display_name, f.field_type, v.value AS field_value \
             FROM contacts c \
             LEFT JOIN contact_field_values v ON v.contact_id = c.id \
             LEFT JOIN custom_fields f ON f.id = v.field_id \
             WHERE c.company_id = $1 AND c.",
            $column,
            " = $2 ORDER BY f.key"
        )
    };
}

/// `sql::contact_by_identifier` for a UUID and for `alt:ext_id:`.
const CONTACT_BY_ID: &str = contact_by!("id");
const CONTACT_BY_EXT_ID: &str = contact_by!("ext_id");

/// `postgres.rs`'s `lock_contact` for `alt:ext_id:`.
const LOCK_BY_EXT_ID: &str =
    "SELECT id FROM contacts WHERE company_id = $1 AND ext_id = $2 FOR UPDATE";

const INSERT_CONTACT: &str = "INSERT INTO contacts (id, company_id, email, phone_number, \
     ext_id, first_name, last_name, created_at, updated_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)";

/// The seed PATCH changes a name, not an identifier, so the store runs only this update.
const UPDATE_CONTACT: &str = "UPDATE contacts SET first_name = $2, last_name = $3, \
     updated_at = $4 WHERE id = $1";

const UPSERT_VALUE: &str = "INSERT INTO contact_field_values \
     (contact_id, field_id, value, ordinal) VALUES ($1, $2, $3, $4) \
     ON CONFLICT (contact_id, field_id) \
     DO UPDATE SET value = excluded.value, ordinal = excluded.ordinal";

/// The table of the bare-commit ceilings: nothing but a key and a short value.
pub const SQLITE_COMMITS_TABLE: &str =
    "CREATE TABLE IF NOT EXISTS bench_commits (id INTEGER PRIMARY KEY, value TEXT NOT NULL)";
pub const POSTGRES_COMMITS_TABLE: &str =
    "CREATE TABLE IF NOT EXISTS bench_commits (id BIGSERIAL PRIMARY KEY, value TEXT NOT NULL)";
const INSERT_COMMIT_ROW: &str = "INSERT INTO bench_commits (value) VALUES ($1)";

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
        })
}

/// What the write transactions need to know of the seeded database.
#[derive(Debug)]
pub struct Seeded {
    pub company_id: Uuid,
    pub fields: Fields,
    /// Contacts `ext-0` to `ext-{count - 1}` exist.
    pub count: u64,
    /// Numbers every write uniquely across workers.
    pub counter: AtomicU64,
}

/// One endpoint's transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transaction {
    /// The seed `PATCH /api/v1/contacts` by `alt:ext_id:` setting `first_name` and `seats`.
    Patch,
    /// `POST /api/v1/contacts` with three custom values.
    Create,
}

/// Commits `rows` one-row INSERTs into `bench_commits` through sqlx: alone (autocommit)
/// when `rows` is 1, in one transaction otherwise.
async fn commit_rows<C>(conn: &mut C, rows: usize) -> Result<(), sqlx::Error>
where
    C: Connection,
    for<'c> &'c mut C: sqlx::Executor<'c, Database = C::Database>,
    for<'q> &'q str: sqlx::Encode<'q, C::Database> + sqlx::Type<C::Database>,
    for<'q> <C::Database as sqlx::Database>::Arguments<'q>: sqlx::IntoArguments<'q, C::Database>,
{
    if rows == 1 {
        sqlx::query(INSERT_COMMIT_ROW)
            .bind("commit")
            .execute(&mut *conn)
            .await?;
        return Ok(());
    }
    let mut tx = conn.begin().await?;
    for _ in 0..rows {
        sqlx::query(INSERT_COMMIT_ROW)
            .bind("commit")
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await
}

/// The transactions of `postgres.rs`.
mod postgres {
    use super::*;

    /// The store's read of one contact by id, a row per custom value.
    async fn contact_rows(
        conn: &mut PgConnection,
        seeded: &Seeded,
        id: Uuid,
    ) -> Result<Vec<ContactRow>, sqlx::Error> {
        sqlx::query_as(CONTACT_BY_ID)
            .bind(seeded.company_id)
            .bind(id)
            .fetch_all(conn)
            .await
    }

    /// The server's `update_contact` for the seed PATCH of contact `ext-{index}`: the row
    /// is locked first, then read by id.
    pub async fn patch(
        conn: &mut PgConnection,
        seeded: &Seeded,
        index: u64,
    ) -> Result<(), sqlx::Error> {
        let n = seeded.counter.fetch_add(1, Ordering::Relaxed);
        let mut tx = conn.begin().await?;
        let id: Uuid = sqlx::query_scalar(LOCK_BY_EXT_ID)
            .bind(seeded.company_id)
            .bind(format!("ext-{index}"))
            .fetch_one(&mut *tx)
            .await?;
        let current = contact_rows(&mut tx, seeded, id).await?;
        let (.., last_name, _, updated_at, _, _, _, _, _) =
            current.into_iter().next().ok_or(sqlx::Error::RowNotFound)?;
        sqlx::query(UPDATE_CONTACT)
            .bind(id)
            .bind(format!("N{n}"))
            .bind(last_name)
            .bind(now_ms().max(updated_at))
            .execute(&mut *tx)
            .await?;
        sqlx::query(UPSERT_VALUE)
            .bind(id)
            .bind(seeded.fields.seats)
            .bind(n.to_string())
            .bind(n as f64)
            .execute(&mut *tx)
            .await?;
        contact_rows(&mut tx, seeded, id).await?;
        tx.commit().await
    }

    /// The server's `create_contact` for a new contact with three custom values.
    pub async fn create(conn: &mut PgConnection, seeded: &Seeded) -> Result<(), sqlx::Error> {
        let n = seeded.counter.fetch_add(1, Ordering::Relaxed);
        let id = Uuid::now_v7();
        let mut tx = conn.begin().await?;
        sqlx::query(INSERT_CONTACT)
            .bind(id)
            .bind(seeded.company_id)
            .bind(format!("ceiling{n}@bench.example"))
            .bind(None::<String>)
            .bind(format!("ceiling-{n}"))
            .bind("New")
            .bind("Bench")
            .bind(now_ms())
            .execute(&mut *tx)
            .await?;
        for (field_id, value) in new_contact_values(&seeded.fields, n) {
            sqlx::query(UPSERT_VALUE)
                .bind(id)
                .bind(field_id)
                .bind(&value)
                .bind(seeded.fields.ordinal(field_id, &value))
                .execute(&mut *tx)
                .await?;
        }
        contact_rows(&mut tx, seeded, id).await?;
        tx.commit().await
    }
}

/// The custom values of the `n`-th contact a ceiling creates, as the `create` scenario's.
fn new_contact_values(fields: &Fields, n: u64) -> [(Uuid, String); 3] {
    [
        (fields.plan, PLAN_OPTIONS[(n % 3) as usize].to_owned()),
        (fields.seats, (n % 50 + 1).to_string()),
        (fields.note, "created by the benchmark".to_owned()),
    ]
}

/// What a ceiling worker runs each time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// One endpoint's write transaction.
    Endpoint(Transaction),
    /// A commit of this many one-row INSERTs, each a statement of its own as requests
    /// sharing a commit would send them: alone (autocommit) when `rows` is 1.
    Commit { rows: usize },
}

impl Operation {
    /// How many rows one operation writes to `bench_commits`, or 1 for an endpoint's.
    pub fn rows(self) -> usize {
        match self {
            Self::Endpoint(_) => 1,
            Self::Commit { rows } => rows,
        }
    }
}

fn database_error(error: sqlx::Error) -> String {
    format!("database: {error}")
}

/// Bare commits on a SQLite connection of sqlx's, one statement per row: what a writer
/// that runs many requests' statements in one commit pays per statement in sqlx, which
/// sends each to the connection's own thread and waits for the answer.
#[derive(Debug)]
pub struct SqlxSqliteCommits {
    pub conn: SqliteConnection,
    pub rows: usize,
}

impl Worker for SqlxSqliteCommits {
    async fn call(&mut self) -> Result<(), String> {
        commit_rows(&mut self.conn, self.rows)
            .await
            .map_err(database_error)
    }
}

/// A worker with a PostgreSQL connection of its own, as each request of the server holds
/// one pooled connection for its transaction.
#[derive(Debug)]
pub struct PostgresWorker {
    pub conn: PgConnection,
    pub operation: Operation,
    pub seeded: Arc<Seeded>,
    pub rng: SmallRng,
}

impl Worker for PostgresWorker {
    async fn call(&mut self) -> Result<(), String> {
        let index = self.rng.random_range(0..self.seeded.count);
        let outcome = match self.operation {
            Operation::Endpoint(Transaction::Patch) => {
                postgres::patch(&mut self.conn, &self.seeded, index).await
            }
            Operation::Endpoint(Transaction::Create) => {
                postgres::create(&mut self.conn, &self.seeded).await
            }
            Operation::Commit { rows } => commit_rows(&mut self.conn, rows).await,
        };
        outcome.map_err(database_error)
    }
}

/// SQLite's one writer connection on a thread of its own, running each transaction a
/// client sends it from BEGIN IMMEDIATE to COMMIT on a synchronous connection, one commit
/// each, in arrival order: the database's own pace for one commit per request.
#[derive(Debug)]
pub struct DirectWriter {
    jobs: mpsc::Sender<DirectJob>,
    thread: std::thread::JoinHandle<()>,
}

/// One operation for the writer thread, and where to answer.
#[derive(Debug)]
struct DirectJob {
    operation: Operation,
    index: u64,
    done: oneshot::Sender<Result<(), String>>,
}

impl DirectWriter {
    /// Opens the SQLite file at `path` as the store's writer does (WAL, `synchronous=FULL`,
    /// foreign keys, busy timeout) and starts the writer thread.
    pub fn open(path: &Path, seeded: Arc<Seeded>) -> anyhow::Result<Self> {
        let mut conn = rusqlite::Connection::open(path)
            .with_context(|| format!("could not open {}", path.display()))?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        let journal_mode: String =
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
        if !journal_mode.eq_ignore_ascii_case("wal") {
            anyhow::bail!("SQLite refused WAL mode ({journal_mode})");
        }
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        let (jobs, received) = mpsc::channel::<DirectJob>();
        let thread = std::thread::spawn(move || {
            // Ends when every client, and the writer itself, has been dropped.
            for job in received {
                let outcome = match job.operation {
                    Operation::Endpoint(Transaction::Patch) => {
                        direct::patch(&mut conn, &seeded, job.index)
                    }
                    Operation::Endpoint(Transaction::Create) => direct::create(&mut conn, &seeded),
                    Operation::Commit { rows } => direct::commit_rows(&mut conn, rows),
                };
                let _unwaited = job
                    .done
                    .send(outcome.map_err(|error| format!("database: {error}")));
            }
        });
        Ok(Self { jobs, thread })
    }

    /// A client that sends `operation` to the writer thread, again and again.
    pub fn client(&self, operation: Operation, seeded: Arc<Seeded>, rng: SmallRng) -> DirectClient {
        DirectClient {
            jobs: self.jobs.clone(),
            operation,
            seeded,
            rng,
        }
    }

    /// Stops the writer thread once its clients are gone, closing the connection.
    pub fn close(self) -> anyhow::Result<()> {
        drop(self.jobs);
        self.thread
            .join()
            .map_err(|_| anyhow::anyhow!("the SQLite writer thread panicked"))
    }
}

/// A client of the [`DirectWriter`].
#[derive(Debug)]
pub struct DirectClient {
    jobs: mpsc::Sender<DirectJob>,
    operation: Operation,
    seeded: Arc<Seeded>,
    rng: SmallRng,
}

impl Worker for DirectClient {
    async fn call(&mut self) -> Result<(), String> {
        let (done, answer) = oneshot::channel();
        let job = DirectJob {
            operation: self.operation,
            index: self.rng.random_range(0..self.seeded.count),
            done,
        };
        self.jobs
            .send(job)
            .map_err(|_| "the SQLite writer thread is gone".to_owned())?;
        answer
            .await
            .map_err(|_| "the SQLite writer thread is gone".to_owned())?
    }
}

/// The transactions on a synchronous SQLite connection. Parameters are bound by name
/// (`$1`…), since the shared statements do not use them in order.
mod direct {
    use rusqlite::{Connection, TransactionBehavior, named_params};

    use super::*;

    /// The columns of [`ContactRow`], with ids as the 16 bytes sqlx stores a UUID as.
    type DirectContactRow = (
        Vec<u8>,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
        i64,
        i64,
        Option<Vec<u8>>,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
    );

    fn contact_rows(
        conn: &Connection,
        statement: &str,
        company_id: Uuid,
        value: &dyn rusqlite::ToSql,
    ) -> rusqlite::Result<Vec<DirectContactRow>> {
        let mut statement = conn.prepare_cached(statement)?;
        let rows = statement.query_map(
            named_params! { "$1": company_id.as_bytes(), "$2": value },
            |row| {
                Ok((
                    row.get(0)?,
                    row.get(1)?,
                    row.get(2)?,
                    row.get(3)?,
                    row.get(4)?,
                    row.get(5)?,
                    row.get(6)?,
                    row.get(7)?,
                    row.get(8)?,
                    row.get(9)?,
                    row.get(10)?,
                    row.get(11)?,
                    row.get(12)?,
                ))
            },
        )?;
        rows.collect()
    }

    fn upsert_value(
        conn: &Connection,
        fields: &Fields,
        contact_id: &[u8],
        field_id: Uuid,
        value: &str,
    ) -> rusqlite::Result<()> {
        conn.prepare_cached(UPSERT_VALUE)?.execute(named_params! {
            "$1": contact_id,
            "$2": field_id.as_bytes(),
            "$3": value,
            "$4": fields.ordinal(field_id, value),
        })?;
        Ok(())
    }

    /// The server's `update_contact` for the seed PATCH of contact `ext-{index}`.
    pub fn patch(conn: &mut Connection, seeded: &Seeded, index: u64) -> rusqlite::Result<()> {
        let n = seeded.counter.fetch_add(1, Ordering::Relaxed);
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let current = contact_rows(
            &tx,
            CONTACT_BY_EXT_ID,
            seeded.company_id,
            &format!("ext-{index}"),
        )?;
        let (id, .., last_name, _, updated_at, _, _, _, _, _) = current
            .into_iter()
            .next()
            .ok_or(rusqlite::Error::QueryReturnedNoRows)?;
        tx.prepare_cached(UPDATE_CONTACT)?.execute(named_params! {
            "$1": id,
            "$2": format!("N{n}"),
            "$3": last_name,
            "$4": now_ms().max(updated_at),
        })?;
        upsert_value(
            &tx,
            &seeded.fields,
            &id,
            seeded.fields.seats,
            &n.to_string(),
        )?;
        let id = Uuid::from_slice(&id).map_err(|_| rusqlite::Error::InvalidQuery)?;
        contact_rows(&tx, CONTACT_BY_ID, seeded.company_id, &id.as_bytes())?;
        tx.commit()
    }

    /// The server's `create_contact` for a new contact with three custom values.
    pub fn create(conn: &mut Connection, seeded: &Seeded) -> rusqlite::Result<()> {
        let n = seeded.counter.fetch_add(1, Ordering::Relaxed);
        let id = Uuid::now_v7();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.prepare_cached(INSERT_CONTACT)?.execute(named_params! {
            "$1": id.as_bytes(),
            "$2": seeded.company_id.as_bytes(),
            "$3": format!("ceiling{n}@bench.example"),
            "$4": None::<String>,
            "$5": format!("ceiling-{n}"),
            "$6": "New",
            "$7": "Bench",
            "$8": now_ms(),
        })?;
        let fields = &seeded.fields;
        upsert_value(
            &tx,
            fields,
            id.as_bytes(),
            fields.plan,
            PLAN_OPTIONS[(n % 3) as usize],
        )?;
        upsert_value(
            &tx,
            fields,
            id.as_bytes(),
            fields.seats,
            &(n % 50 + 1).to_string(),
        )?;
        upsert_value(
            &tx,
            fields,
            id.as_bytes(),
            fields.note,
            "created by the benchmark",
        )?;
        contact_rows(&tx, CONTACT_BY_ID, seeded.company_id, &id.as_bytes())?;
        tx.commit()
    }

    /// Runs [`Operation::Commit`].
    pub fn commit_rows(conn: &mut Connection, rows: usize) -> rusqlite::Result<()> {
        if rows == 1 {
            conn.prepare_cached(INSERT_COMMIT_ROW)?
                .execute(named_params! { "$1": "commit" })?;
            return Ok(());
        }
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        {
            let mut insert = tx.prepare_cached(INSERT_COMMIT_ROW)?;
            for _ in 0..rows {
                insert.execute(named_params! { "$1": "commit" })?;
            }
        }
        tx.commit()
    }
}

/// A random-number generator for worker `worker`, the same on every run.
pub fn worker_rng(worker: usize) -> SmallRng {
    SmallRng::seed_from_u64(worker as u64)
}
