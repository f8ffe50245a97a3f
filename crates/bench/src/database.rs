//! The benchmark's own database: created fresh for each run, seeded directly with SQL in
//! contactd's schema (`crates/server/migrations`), and removed at the end.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use sqlx::migrate::MigrateDatabase;
use sqlx::postgres::PgConnectOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{
    ConnectOptions, Connection, Executor, PgConnection, Postgres, QueryBuilder, SqliteConnection,
};
use tempfile::TempDir;
use url::Url;
use uuid::Uuid;

/// How long a SQLite statement waits for another connection's write lock, as the server's.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Contacts per multi-row INSERT: 9 parameters each stays under both SQLite's (32,766) and
/// PostgreSQL's (65,535) limit on parameters per statement.
const SEED_BATCH: usize = 1_000;

/// The SQLite file's name in its directory.
pub const SQLITE_FILE: &str = "contactd.db";

/// Options of the select field `plan`; seeded contacts take them in turn.
pub const PLAN_OPTIONS: [&str; 3] = ["free", "pro", "team"];

/// A database made for one run.
#[derive(Debug)]
pub enum FreshDatabase {
    /// A new SQLite file in a directory removed with it.
    Sqlite { url: String, dir: TempDir },
    /// A new database, of a unique name, on a PostgreSQL server; dropped at the end.
    Postgres { url: String },
}

impl FreshDatabase {
    /// A new SQLite file in a fresh directory under `parent`.
    ///
    /// The parent is the cargo target directory rather than the system temp directory: on
    /// many systems `/tmp` is a tmpfs, where an fsync costs nothing and durable-write
    /// numbers would mean nothing.
    pub fn sqlite_in(parent: &Path) -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("contactd-bench-")
            .tempdir_in(parent)
            .with_context(|| format!("could not create a directory in {}", parent.display()))?;
        let url = format!("sqlite://{}", dir.path().join(SQLITE_FILE).display());
        Ok(Self::Sqlite { url, dir })
    }

    /// A database of a new, unique name on the PostgreSQL server of `url`, named after the
    /// database in the URL; `contactd migrate` creates it.
    pub fn postgres_beside(url: &str) -> anyhow::Result<Self> {
        let mut url = Url::parse(url).context("--database-url is not a URL")?;
        let base = url.path().trim_start_matches('/');
        let base = if base.is_empty() {
            "contactd_bench"
        } else {
            base
        };
        // PostgreSQL names hold at most 63 bytes; the suffix alone is 24.
        let millis = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis();
        let name = format!("{base:.38}_{millis}_{}", std::process::id());
        url.set_path(&name);
        Ok(Self::Postgres {
            url: url.to_string(),
        })
    }

    /// The URL contactd and the seeding connect to.
    pub fn url(&self) -> &str {
        match self {
            Self::Sqlite { url, .. } | Self::Postgres { url } => url,
        }
    }

    /// Connection options of the SQLite store's writer: WAL, `synchronous=FULL`, foreign
    /// keys, and its busy timeout.
    pub fn sqlite_options(url: &str) -> anyhow::Result<SqliteConnectOptions> {
        Ok(SqliteConnectOptions::from_str(url)?
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT))
    }

    /// Makes the database drop every change event the server writes (`discard`), or keep
    /// them again: a trigger that skips the row, so that one server, on one database, in
    /// one run, is measured with and without what storing its events costs. The server
    /// still builds each event; only the database's work for it (the row, its indexes,
    /// its share of the WAL) is left out.
    pub async fn discard_events(&self, discard: bool) -> anyhow::Result<()> {
        let statements: &[&str] = match (self, discard) {
            (Self::Sqlite { .. }, true) => &[
                "CREATE TRIGGER bench_discard_events BEFORE INSERT ON events \
                 BEGIN SELECT RAISE(IGNORE); END",
            ],
            (Self::Sqlite { .. }, false) => &["DROP TRIGGER bench_discard_events"],
            (Self::Postgres { .. }, true) => &[
                "CREATE FUNCTION bench_discard_event() RETURNS trigger LANGUAGE plpgsql \
                 AS $$ BEGIN RETURN NULL; END $$",
                "CREATE TRIGGER bench_discard_events BEFORE INSERT ON events \
                 FOR EACH ROW EXECUTE FUNCTION bench_discard_event()",
            ],
            (Self::Postgres { .. }, false) => &[
                "DROP TRIGGER bench_discard_events ON events",
                "DROP FUNCTION bench_discard_event()",
            ],
        };
        match self {
            Self::Sqlite { url, .. } => {
                let mut conn = Self::sqlite_options(url)?.connect().await?;
                for statement in statements {
                    conn.execute(*statement).await?;
                }
            }
            Self::Postgres { url } => {
                let mut conn = PgConnection::connect(url).await?;
                for statement in statements {
                    conn.execute(*statement).await?;
                }
            }
        }
        Ok(())
    }

    /// Removes the database: the directory of a SQLite file, or the PostgreSQL database
    /// (disconnecting whatever still uses it).
    pub async fn remove(self) -> anyhow::Result<()> {
        match self {
            Self::Sqlite { dir, .. } => Ok(dir.close()?),
            Self::Postgres { url } => Postgres::force_drop_database(&url)
                .await
                .context("could not drop the benchmark database"),
        }
    }
}

/// What the database takes on disk at one moment.
#[derive(Debug, Clone, Copy)]
pub struct DiskUse {
    /// The database itself: SQLite's main file, or `pg_database_size`.
    pub database_bytes: u64,
    /// SQLite's write-ahead log (`-wal`). PostgreSQL's WAL belongs to the whole server,
    /// every database's writes in one, so none is measured there.
    pub wal_bytes: Option<u64>,
}

/// Measures, as often as asked while a run goes on, what the database takes on disk.
#[derive(Debug)]
pub enum DiskProbe {
    Sqlite { file: PathBuf },
    Postgres { conn: PgConnection },
}

impl DiskProbe {
    /// A probe of this database: its file on SQLite, a connection of its own on PostgreSQL.
    pub async fn of(database: &FreshDatabase) -> anyhow::Result<Self> {
        Ok(match database {
            FreshDatabase::Sqlite { dir, .. } => Self::Sqlite {
                file: dir.path().join(SQLITE_FILE),
            },
            FreshDatabase::Postgres { url } => Self::Postgres {
                conn: PgConnectOptions::from_str(url)?.connect().await?,
            },
        })
    }

    pub async fn measure(&mut self) -> anyhow::Result<DiskUse> {
        match self {
            Self::Sqlite { file } => {
                let size = |path: &Path| match std::fs::metadata(path) {
                    Ok(metadata) => Ok(metadata.len()),
                    // SQLite removes the WAL when its last connection closes.
                    Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(0),
                    Err(error) => {
                        Err(error).with_context(|| format!("could not stat {}", path.display()))
                    }
                };
                let mut wal = file.clone().into_os_string();
                wal.push("-wal");
                Ok(DiskUse {
                    database_bytes: size(file)?,
                    wal_bytes: Some(size(Path::new(&wal))?),
                })
            }
            Self::Postgres { conn } => {
                let bytes: i64 = sqlx::query_scalar("SELECT pg_database_size(current_database())")
                    .fetch_one(conn)
                    .await
                    .context("could not read pg_database_size")?;
                Ok(DiskUse {
                    database_bytes: u64::try_from(bytes)?,
                    wal_bytes: None,
                })
            }
        }
    }
}

/// The custom fields the benchmark defines.
#[derive(Debug, Clone, Copy)]
pub struct Fields {
    /// `plan`, a select field of [`PLAN_OPTIONS`].
    pub plan: Uuid,
    /// `seats`, a number field.
    pub seats: Uuid,
    /// `note`, a text field.
    pub note: Uuid,
}

impl Fields {
    /// The `ordinal` the server stores with a value of the field (`FieldValue::ordinal`):
    /// a number field's value as a number, which its range filters compare.
    pub fn ordinal(&self, field_id: Uuid, value: &str) -> Option<f64> {
        (field_id == self.seats)
            .then(|| value.parse().ok())
            .flatten()
    }
}

/// One seeded contact, numbered `i`, as it is stored.
#[derive(Debug)]
struct SeedContact {
    id: Uuid,
    email: String,
    ext_id: String,
    first_name: String,
    created_at: i64,
    values: [(Uuid, String); 3],
}

impl SeedContact {
    fn new(i: u64, fields: &Fields, created_at: i64) -> Self {
        Self {
            // Generated in order, so ids and creation times sort alike.
            id: Uuid::now_v7(),
            email: format!("c{i}@bench.example"),
            ext_id: format!("ext-{i}"),
            first_name: format!("F{i}"),
            created_at,
            values: [
                (fields.plan, PLAN_OPTIONS[(i % 3) as usize].to_owned()),
                (fields.seats, (i % 50 + 1).to_string()),
                (fields.note, format!("seeded contact {i}")),
            ],
        }
    }
}

/// Runs `$body` with `$conn` bound to a connection to the database of `$url`, whichever
/// backend it is: the seeding SQL is the same text on both.
macro_rules! on_either_backend {
    ($url:expr, |$conn:ident| $body:expr) => {
        if $url.starts_with("sqlite:") {
            let mut $conn = SqliteConnection::connect_with(&FreshDatabase::sqlite_options($url)?)
                .await
                .context("could not connect to the SQLite database")?;
            $body
        } else {
            let mut $conn = PgConnectOptions::from_str($url)?
                .connect()
                .await
                .context("could not connect to the PostgreSQL database")?;
            $body
        }
    };
}

/// Reads the ids of the benchmark's fields back from `custom_fields`.
pub async fn read_fields(url: &str, company_id: Uuid) -> anyhow::Result<Fields> {
    let rows: Vec<(Uuid, String)> = on_either_backend!(url, |conn| {
        sqlx::query_as("SELECT id, key FROM custom_fields WHERE company_id = $1")
            .bind(company_id)
            .fetch_all(&mut conn)
            .await?
    });
    let id_of = |key: &str| {
        rows.iter()
            .find(|(_, found)| found == key)
            .map(|(id, _)| *id)
            .with_context(|| format!("no custom field {key} in the database"))
    };
    Ok(Fields {
        plan: id_of("plan")?,
        seats: id_of("seats")?,
        note: id_of("note")?,
    })
}

/// Inserts `count` contacts with a value for each field, in one transaction of multi-row
/// INSERTs, then settles the database as a long-running one would be (WAL checkpointed on
/// SQLite, vacuumed and analysed on PostgreSQL) and returns the ids of the company's
/// contacts as read back.
pub async fn seed(
    url: &str,
    company_id: Uuid,
    fields: &Fields,
    count: u64,
) -> anyhow::Result<Vec<Uuid>> {
    let now = i64::try_from(SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis())?;
    let count_i64 = i64::try_from(count)?;
    // One millisecond apart, the newest created just now.
    let contacts = (0..count).map(|i| SeedContact::new(i, fields, now - count_i64 + i as i64));
    let contacts: Vec<SeedContact> = contacts.collect();
    on_either_backend!(url, |conn| {
        let mut tx = conn.begin().await?;
        for batch in contacts.chunks(SEED_BATCH) {
            QueryBuilder::new(
                "INSERT INTO contacts (id, company_id, email, phone_number, ext_id, \
                 first_name, last_name, created_at, updated_at) ",
            )
            .push_values(batch, |mut row, contact| {
                row.push_bind(contact.id)
                    .push_bind(company_id)
                    .push_bind(&contact.email)
                    .push_bind(None::<String>)
                    .push_bind(&contact.ext_id)
                    .push_bind(&contact.first_name)
                    .push_bind("Bench")
                    .push_bind(contact.created_at)
                    .push_bind(contact.created_at);
            })
            .build()
            .execute(&mut *tx)
            .await
            .context("could not insert seed contacts")?;
            QueryBuilder::new(
                "INSERT INTO contact_field_values (contact_id, field_id, value, ordinal) ",
            )
            .push_values(
                batch.iter().flat_map(|contact| {
                    contact.values.iter().map(move |value| (contact.id, value))
                }),
                |mut row, (contact_id, (field_id, value))| {
                    row.push_bind(contact_id)
                        .push_bind(*field_id)
                        .push_bind(value)
                        .push_bind(fields.ordinal(*field_id, value));
                },
            )
            .build()
            .execute(&mut *tx)
            .await
            .context("could not insert seed custom field values")?;
        }
        tx.commit().await?;
        let settle = if url.starts_with("sqlite:") {
            "PRAGMA wal_checkpoint(TRUNCATE)"
        } else {
            "VACUUM ANALYZE"
        };
        sqlx::query(settle).execute(&mut conn).await?;
        let ids: Vec<Uuid> = sqlx::query_scalar("SELECT id FROM contacts WHERE company_id = $1")
            .bind(company_id)
            .fetch_all(&mut conn)
            .await?;
        if ids.len() as u64 != count {
            bail!("seeded {count} contacts but read back {}", ids.len());
        }
        Ok(ids)
    })
}
