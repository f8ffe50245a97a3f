//! The embedded SQLite store: WAL, `synchronous=FULL`, foreign keys, one writer.
//!
//! SQLite runs in this process, so the store drives it synchronously (rusqlite): a read is a
//! few microseconds of work on the request's own thread, and the writer thread runs each
//! batch of writes without waiting on anything but the disk. sqlx only applies the
//! migrations, so SQLite and PostgreSQL share one migration mechanism.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use rand::RngCore;
use rusqlite::types::ToSql;
use rusqlite::{Connection, OpenFlags, Row, Statement};
use sqlx::ConnectOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use uuid::Uuid;

use super::group_commit::{GroupCommit, wal_bytes, wal_path};
use super::{
    ApiKey, ApiKeyRow, Caller, Company, CompanyRow, Contact, ContactRow, ContactUpsert,
    CredentialsRow, EmailTable, Export, ExportPage, ExportPages, FieldDefinition,
    FieldDefinitionChange, FieldRow, IdentifierMatch, ItemResults, KeyUse, ListPosition,
    LoginAttempt, NewApiKey, NewFieldDefinition, NewSession, PageSender, ReservedKeyField,
    SessionRow, SessionUser, Store, StoreError, StoredEmail, UniqueMember, Upserted, User,
    UserCredentials, UserRow, contacts_from_rows, contains_pattern, export_channel,
    field_write_error, identifiers_change, now_ms, options_json, sql, stored_options, unique_or,
    unique_value, values_change, window_ms,
};
use crate::domain::contact::{ContactMembers, ContactPatch, FieldWrite, NewContact};
use crate::domain::custom_field::RESERVED_KEYS;
use crate::domain::{ContactIdentifier, Email, FieldKey};

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

/// The SQLite store.
///
/// SQLite admits one writer at a time, so every write goes to the one connection of the
/// [`GroupCommit`] writer, which runs concurrent writes in one `BEGIN IMMEDIATE`
/// transaction (so a write that reads first never fails to upgrade its lock, and another
/// process such as the admin CLI waits on the busy timeout instead of failing) and one
/// fsync. Reads run in parallel on their own read-only connections; under WAL they never
/// wait for the writer.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    readers: Arc<Readers>,
    writer: GroupCommit,
}

impl SqliteStore {
    /// Opens (creating if missing) the database at a `sqlite://PATH` URL and migrates it.
    pub async fn connect(database_url: &str) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(database_url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        let mut migrator = options.connect().await?;
        sqlx::migrate!("./migrations/sqlite")
            .run(&mut migrator)
            .await?;
        sqlx::Connection::close(migrator).await?;
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
                StoreError::WriteFailed(format!("could not start the writer thread: {error}"))
            })?,
        })
    }
}

/// Opens a connection to the (existing, migrated) database file.
fn open(path: &Path, access: OpenFlags) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(path, access | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(conn)
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
        read: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let _turn = self
            .scans
            .acquire()
            .await
            .map_err(|_| StoreError::WriteFailed("the scan queue is closed".to_owned()))?;
        let readers = self.clone();
        tokio::task::spawn_blocking(move || readers.read(read))
            .await
            .map_err(|error| StoreError::WriteFailed(format!("a scan failed: {error}")))?
    }

    /// Runs `read` on an idle connection, opening one if none is idle.
    fn read<T>(
        &self,
        read: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let idle = self.take();
        let conn = match idle {
            Some(conn) => conn,
            None => open(&self.path, OpenFlags::SQLITE_OPEN_READ_ONLY)?,
        };
        let result = read(&conn);
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

/// Binds `args` to a statement's `$1`, `$2`, …. SQLite numbers `$N` parameters in the order
/// they first appear, not by N, so each is looked up by its name.
fn bind(statement: &mut Statement<'_>, args: &[&dyn ToSql]) -> rusqlite::Result<()> {
    for index in 1..=statement.parameter_count() {
        let arg = statement
            .parameter_name(index)
            .and_then(|name| name.strip_prefix('$')?.parse::<usize>().ok())
            .and_then(|number| args.get(number.checked_sub(1)?))
            .ok_or(rusqlite::Error::InvalidParameterCount(
                args.len(),
                statement.parameter_count(),
            ))?;
        statement.raw_bind_parameter(index, arg)?;
    }
    Ok(())
}

/// Runs a statement of `sql.rs` and maps every row it returns.
fn query<T>(
    conn: &Connection,
    sql: &str,
    args: &[&dyn ToSql],
    mut map: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<Vec<T>> {
    let mut statement = conn.prepare_cached(sql)?;
    bind(&mut statement, args)?;
    let mut rows = statement.raw_query();
    let mut mapped = Vec::new();
    while let Some(row) = rows.next()? {
        mapped.push(map(row)?);
    }
    Ok(mapped)
}

/// Runs a statement of `sql.rs` and maps the first row it returns, if any.
fn query_optional<T>(
    conn: &Connection,
    sql: &str,
    args: &[&dyn ToSql],
    map: impl FnOnce(&Row<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<Option<T>> {
    let mut statement = conn.prepare_cached(sql)?;
    bind(&mut statement, args)?;
    let mut rows = statement.raw_query();
    rows.next()?.map(map).transpose()
}

/// Runs a statement of `sql.rs` that returns no rows; the number of rows it changed.
fn execute(conn: &Connection, sql: &str, args: &[&dyn ToSql]) -> rusqlite::Result<usize> {
    let mut statement = conn.prepare_cached(sql)?;
    bind(&mut statement, args)?;
    statement.raw_execute()
}

/// Reads the rows of a contact read (`contact_columns!` in `sql.rs`) by position: a contact
/// read returns a row per custom value, and looking each column up by name was 5% of the
/// writer's time in a profile. A test checks every contact read against this order.
///
/// A contact's own members repeat on each of its rows; they are read from its first row
/// only (the rows of one contact come together), which saved an export most of its
/// allocations.
#[derive(Debug, Default)]
struct ContactRows {
    /// The contact of the row read last.
    last: Option<Uuid>,
}

impl ContactRows {
    fn read(&mut self, row: &Row<'_>) -> rusqlite::Result<ContactRow> {
        let id: Uuid = row.get(0)?;
        let first = self.last.replace(id) != Some(id);
        let member = |index| -> rusqlite::Result<Option<String>> {
            if first { row.get(index) } else { Ok(None) }
        };
        Ok(ContactRow {
            id,
            email: member(1)?,
            phone_number: member(2)?,
            ext_id: member(3)?,
            first_name: member(4)?,
            last_name: member(5)?,
            created_at: row.get(6)?,
            updated_at: row.get(7)?,
            field_id: row.get(8)?,
            field_key: row.get(9)?,
            field_display_name: row.get(10)?,
            field_type: row.get(11)?,
            field_value: row.get(12)?,
        })
    }
}

fn field_row(row: &Row<'_>) -> rusqlite::Result<FieldRow> {
    Ok(FieldRow {
        id: row.get("id")?,
        key: row.get("key")?,
        display_name: row.get("display_name")?,
        field_type: row.get("field_type")?,
        options: row.get("options")?,
        created_at: row.get("created_at")?,
    })
}

fn key_row(row: &Row<'_>) -> rusqlite::Result<ApiKeyRow> {
    Ok(ApiKeyRow {
        id: row.get("id")?,
        company_id: row.get("company_id")?,
        name: row.get("name")?,
        prefix: row.get("prefix")?,
        created_at: row.get("created_at")?,
        last_used_at: row.get("last_used_at")?,
        revoked_at: row.get("revoked_at")?,
    })
}

fn user_row(row: &Row<'_>) -> rusqlite::Result<UserRow> {
    Ok(UserRow {
        id: row.get("id")?,
        company_id: row.get("company_id")?,
        email: row.get("email")?,
        created_at: row.get("created_at")?,
    })
}

fn company_row(row: &Row<'_>) -> rusqlite::Result<CompanyRow> {
    Ok(CompanyRow {
        id: row.get("id")?,
        name: row.get("name")?,
        created_at: row.get("created_at")?,
    })
}

/// The argument an identifier matches its column on.
fn identifier_arg<'a>(id: &'a IdentifierMatch<'a>) -> &'a dyn ToSql {
    match id {
        IdentifierMatch::Id(uuid) => uuid,
        IdentifierMatch::Unique { value, .. } => value,
    }
}

/// Reads one contact by any identifier form, on the given connection.
fn fetch_contact(
    conn: &Connection,
    company_id: Uuid,
    id: &ContactIdentifier,
) -> Result<Option<Contact>, StoreError> {
    let id = IdentifierMatch::from(id);
    let mut contact_rows = ContactRows::default();
    let rows = query(
        conn,
        sql::contact_by_identifier(&id),
        &[&company_id, identifier_arg(&id)],
        |row| contact_rows.read(row),
    )?;
    Ok(contacts_from_rows(rows)?.pop())
}

/// Turns a unique-index violation into [`StoreError::DuplicateContact`], naming the contact
/// that holds the value (read on the same connection, inside the failed transaction:
/// SQLite undoes only the failed statement).
fn duplicate_contact(
    conn: &Connection,
    company_id: Uuid,
    members: &ContactMembers,
    error: rusqlite::Error,
) -> StoreError {
    // SQLite names the columns of the violated index: "UNIQUE constraint failed:
    // contacts.company_id, contacts.email".
    let member = match &error {
        rusqlite::Error::SqliteFailure(failure, Some(message))
            if failure.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE =>
        {
            [
                UniqueMember::Email,
                UniqueMember::PhoneNumber,
                UniqueMember::ExtId,
            ]
            .into_iter()
            .find(|member| message.ends_with(&format!("contacts.{}", member.as_str())))
        }
        _ => None,
    };
    let Some(member) = member else {
        return StoreError::from(error);
    };
    let conflicting_contact_id = query_optional(
        conn,
        sql::contact_holding(member),
        &[&company_id, &unique_value(members, member)],
        |row| row.get(0),
    )
    .ok()
    .flatten();
    StoreError::DuplicateContact {
        member,
        conflicting_contact_id,
    }
}

fn write_field_values(
    conn: &Connection,
    contact_id: Uuid,
    values: &[FieldWrite],
) -> Result<(), StoreError> {
    for write in values {
        execute(
            conn,
            sql::UPSERT_VALUE,
            &[&contact_id, &write.field_id, &write.value.to_storage()],
        )
        .map_err(field_write_error)?;
    }
    Ok(())
}

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> Result<(), StoreError> {
        self.readers
            .read(|conn| Ok(conn.query_row("SELECT 1", [], |_| Ok(()))?))
    }

    async fn create_company(&self, name: &str) -> Result<Company, StoreError> {
        let mut cursor_secret = [0u8; 32];
        rand::rng().fill_bytes(&mut cursor_secret);
        let name = name.to_owned();
        let row = self
            .writer
            .write(move |conn| {
                query_optional(
                    conn,
                    sql::INSERT_COMPANY,
                    &[&Uuid::now_v7(), &name, &&cursor_secret[..], &now_ms()],
                    company_row,
                )
                .map_err(unique_or(StoreError::DuplicateCompanyName))?
                .ok_or(StoreError::NotFound)
            })
            .await?;
        Ok(row.into())
    }

    async fn list_companies(&self) -> Result<Vec<Company>, StoreError> {
        let rows = self
            .readers
            .read(|conn| Ok(query(conn, sql::LIST_COMPANIES, &[], company_row)?))?;
        Ok(rows.into_iter().map(Company::from).collect())
    }

    async fn find_company(&self, id_or_name: &str) -> Result<Option<Company>, StoreError> {
        let row = self.readers.read(|conn| {
            Ok(query_optional(
                conn,
                sql::FIND_COMPANY,
                &[&Uuid::try_parse(id_or_name).ok(), &id_or_name],
                company_row,
            )?)
        })?;
        Ok(row.map(Company::from))
    }

    async fn create_api_key(
        &self,
        company_id: Uuid,
        key: &NewApiKey,
    ) -> Result<ApiKey, StoreError> {
        let key = key.clone();
        let row = self
            .writer
            .write(move |conn| {
                query_optional(
                    conn,
                    sql::INSERT_KEY,
                    &[
                        &Uuid::now_v7(),
                        &company_id,
                        &key.name,
                        &key.prefix,
                        &&key.key_hash[..],
                        &now_ms(),
                    ],
                    key_row,
                )?
                .ok_or(StoreError::NotFound)
            })
            .await?;
        Ok(row.into())
    }

    async fn list_api_keys(&self, company_id: Uuid) -> Result<Vec<ApiKey>, StoreError> {
        let rows = self
            .readers
            .read(|conn| Ok(query(conn, sql::LIST_KEYS, &[&company_id], key_row)?))?;
        Ok(rows.into_iter().map(ApiKey::from).collect())
    }

    async fn revoke_api_key(&self, key_id: Uuid) -> Result<ApiKey, StoreError> {
        let row = self
            .writer
            .write(move |conn| {
                Ok(query_optional(
                    conn,
                    sql::REVOKE_KEY,
                    &[&key_id, &now_ms()],
                    key_row,
                )?)
            })
            .await?;
        row.map(ApiKey::from).ok_or(StoreError::NotFound)
    }

    async fn authenticate(&self, key_hash: &[u8; 32]) -> Result<Option<KeyUse>, StoreError> {
        self.readers.read(|conn| {
            Ok(query_optional(
                conn,
                sql::AUTHENTICATE,
                &[&&key_hash[..]],
                |row| {
                    Ok(KeyUse {
                        key_id: row.get(0)?,
                        caller: Caller {
                            company_id: row.get(1)?,
                            cursor_secret: row.get(2)?,
                        },
                        last_used_at: row.get(3)?,
                    })
                },
            )?)
        })
    }

    async fn touch_api_key(&self, key_id: Uuid, at: i64) -> Result<(), StoreError> {
        self.writer
            .write(move |conn| {
                execute(conn, sql::TOUCH_KEY, &[&key_id, &at])?;
                Ok(())
            })
            .await
    }

    async fn create_user(
        &self,
        company_id: Uuid,
        email: &Email,
        password_hash: &str,
    ) -> Result<User, StoreError> {
        let email = email.as_str().to_owned();
        let password_hash = password_hash.to_owned();
        let row = self
            .writer
            .write(move |conn| {
                query_optional(
                    conn,
                    sql::INSERT_USER,
                    &[
                        &Uuid::now_v7(),
                        &company_id,
                        &email,
                        &password_hash,
                        &now_ms(),
                    ],
                    user_row,
                )
                .map_err(unique_or(StoreError::DuplicateUserEmail))?
                .ok_or(StoreError::NotFound)
            })
            .await?;
        Ok(row.into())
    }

    async fn list_users(&self, company_id: Uuid) -> Result<Vec<User>, StoreError> {
        let rows = self
            .readers
            .read(|conn| Ok(query(conn, sql::LIST_USERS, &[&company_id], user_row)?))?;
        Ok(rows.into_iter().map(User::from).collect())
    }

    async fn set_password(&self, email: &Email, password_hash: &str) -> Result<(), StoreError> {
        let email = email.as_str().to_owned();
        let password_hash = password_hash.to_owned();
        self.writer
            .write(move |conn| {
                let user_id: Uuid =
                    query_optional(conn, sql::SET_PASSWORD, &[&email, &password_hash], |row| {
                        row.get(0)
                    })?
                    .ok_or(StoreError::NotFound)?;
                execute(conn, sql::DELETE_USER_SESSIONS, &[&user_id])?;
                execute(conn, sql::CLEAR_LOGIN_ATTEMPTS, &[&email])?;
                Ok(())
            })
            .await
    }

    async fn delete_user(&self, email: &Email) -> Result<(), StoreError> {
        let email = email.as_str().to_owned();
        self.writer
            .write(
                move |conn| match execute(conn, sql::DELETE_USER, &[&email])? {
                    0 => Err(StoreError::NotFound),
                    _ => Ok(()),
                },
            )
            .await
    }

    async fn user_credentials(&self, email: &Email) -> Result<Option<UserCredentials>, StoreError> {
        let row = self.readers.read(|conn| {
            Ok(query_optional(
                conn,
                sql::USER_CREDENTIALS,
                &[&email.as_str()],
                |row| {
                    Ok(CredentialsRow {
                        id: row.get("id")?,
                        password_hash: row.get("password_hash")?,
                    })
                },
            )?)
        })?;
        Ok(row.map(UserCredentials::from))
    }

    async fn reserve_login_attempt(
        &self,
        email: &Email,
        limit: u32,
        window: Duration,
    ) -> Result<LoginAttempt, StoreError> {
        let email = email.as_str().to_owned();
        self.writer
            .write(move |conn| {
                let now = now_ms();
                let ended = now - window_ms(window);
                execute(conn, sql::PURGE_LOGIN_ATTEMPTS, &[&ended])?;
                let counted = query_optional(
                    conn,
                    sql::RESERVE_LOGIN_ATTEMPT,
                    &[&email, &now, &ended, &i64::from(limit)],
                    |row| row.get::<_, i64>(0),
                )?;
                if counted.is_some() {
                    return Ok(LoginAttempt::Granted);
                }
                let started =
                    query_optional(conn, sql::LOGIN_WINDOW_START, &[&email], |row| row.get(0))?;
                Ok(LoginAttempt::refused(started, window))
            })
            .await
    }

    async fn create_session(&self, session: &NewSession) -> Result<(), StoreError> {
        let session = session.clone();
        self.writer
            .write(move |conn| {
                let now = now_ms();
                execute(conn, sql::DELETE_EXPIRED_SESSIONS, &[&now])?;
                execute(conn, sql::CLEAR_USER_LOGIN_ATTEMPTS, &[&session.user_id])?;
                execute(
                    conn,
                    sql::INSERT_SESSION,
                    &[
                        &&session.token_hash[..],
                        &session.user_id,
                        &session.csrf_token,
                        &now,
                        &session.expires_at.timestamp_millis(),
                    ],
                )?;
                Ok(())
            })
            .await
    }

    async fn find_session(&self, token_hash: &[u8; 32]) -> Result<Option<SessionUser>, StoreError> {
        let row = self.readers.read(|conn| {
            Ok(query_optional(
                conn,
                sql::FIND_SESSION,
                &[&&token_hash[..], &now_ms()],
                |row| {
                    Ok(SessionRow {
                        user_id: row.get("user_id")?,
                        email: row.get("email")?,
                        company_id: row.get("company_id")?,
                        company_name: row.get("company_name")?,
                        cursor_secret: row.get("cursor_secret")?,
                        csrf_token: row.get("csrf_token")?,
                    })
                },
            )?)
        })?;
        Ok(row.map(SessionUser::from))
    }

    async fn delete_session(&self, token_hash: &[u8; 32]) -> Result<(), StoreError> {
        let token_hash = *token_hash;
        self.writer
            .write(move |conn| {
                execute(conn, sql::DELETE_SESSION, &[&&token_hash[..]])?;
                Ok(())
            })
            .await
    }

    async fn create_field(
        &self,
        company_id: Uuid,
        field: &NewFieldDefinition,
    ) -> Result<FieldDefinition, StoreError> {
        let field = field.clone();
        let row = self
            .writer
            .write(move |conn| {
                query_optional(
                    conn,
                    sql::INSERT_FIELD,
                    &[
                        &Uuid::now_v7(),
                        &company_id,
                        &field.key.as_str(),
                        &field.display_name.as_str(),
                        &field.field_type.as_str(),
                        &field
                            .options
                            .as_ref()
                            .map(|options| options_json(options.as_slice())),
                        &now_ms(),
                    ],
                    field_row,
                )
                .map_err(unique_or(StoreError::DuplicateFieldKey))?
                .ok_or(StoreError::NotFound)
            })
            .await?;
        row.try_into()
    }

    async fn list_fields(&self, company_id: Uuid) -> Result<Vec<FieldDefinition>, StoreError> {
        let rows = self
            .readers
            .read(|conn| Ok(query(conn, sql::LIST_FIELDS, &[&company_id], field_row)?))?;
        rows.into_iter().map(FieldDefinition::try_from).collect()
    }

    async fn get_field(
        &self,
        company_id: Uuid,
        key: &FieldKey,
    ) -> Result<Option<FieldDefinition>, StoreError> {
        let row = self.readers.read(|conn| {
            Ok(query_optional(
                conn,
                sql::GET_FIELD,
                &[&company_id, &key.as_str()],
                field_row,
            )?)
        })?;
        row.map(FieldDefinition::try_from).transpose()
    }

    async fn update_field(
        &self,
        company_id: Uuid,
        key: &FieldKey,
        change: &FieldDefinitionChange,
    ) -> Result<FieldDefinition, StoreError> {
        let (key, change) = (key.clone(), change.clone());
        // The writer runs one closure at a time, so nothing changes the row between the
        // read and the write here.
        self.writer
            .write(move |conn| {
                let stored: FieldDefinition = query_optional(
                    conn,
                    sql::GET_FIELD,
                    &[&company_id, &key.as_str()],
                    field_row,
                )?
                .ok_or(StoreError::NotFound)?
                .try_into()?;
                let updated = change.apply_to(stored)?;
                execute(
                    conn,
                    sql::UPDATE_FIELD,
                    &[
                        &updated.id,
                        &updated.display_name,
                        &stored_options(&updated),
                    ],
                )?;
                Ok(updated)
            })
            .await
    }

    async fn delete_field(&self, company_id: Uuid, key: &FieldKey) -> Result<(), StoreError> {
        let key = key.clone();
        self.writer
            .write(move |conn| {
                let deleted = execute(conn, sql::DELETE_FIELD, &[&company_id, &key.as_str()])?;
                if deleted == 0 {
                    return Err(StoreError::NotFound);
                }
                Ok(())
            })
            .await
    }

    async fn count_field_values(
        &self,
        company_id: Uuid,
        key: &FieldKey,
    ) -> Result<u64, StoreError> {
        let key = key.as_str().to_owned();
        let count = self
            .readers
            .scan(move |conn| {
                Ok(query_optional(
                    conn,
                    sql::COUNT_FIELD_VALUES,
                    &[&company_id, &key],
                    |row| row.get::<_, i64>(0),
                )?)
            })
            .await?;
        Ok(count.map_or(0, |count| count.unsigned_abs()))
    }

    async fn create_contact(
        &self,
        company_id: Uuid,
        contact: &NewContact,
    ) -> Result<Contact, StoreError> {
        let contact = contact.clone();
        self.writer
            .write(move |conn| {
                let id = insert_contact(conn, company_id, &contact)?;
                fetch_contact(conn, company_id, &ContactIdentifier::Id(id))?
                    .ok_or(StoreError::NotFound)
            })
            .await
    }

    async fn get_contact(
        &self,
        company_id: Uuid,
        id: &ContactIdentifier,
    ) -> Result<Option<Contact>, StoreError> {
        self.readers
            .read(|conn| fetch_contact(conn, company_id, id))
    }

    async fn list_contacts(
        &self,
        company_id: Uuid,
        after: Option<ListPosition>,
        limit: u32,
    ) -> Result<Vec<Contact>, StoreError> {
        let after = after.unwrap_or(ListPosition::START);
        self.readers
            .read(|conn| list_page(conn, company_id, after, limit))
    }

    async fn search_contacts_by_name(
        &self,
        company_id: Uuid,
        text: &str,
        limit: u32,
    ) -> Result<Vec<Contact>, StoreError> {
        let pattern = contains_pattern(text);
        self.readers
            .scan(move |conn| {
                let mut contact_rows = ContactRows::default();
                let rows = query(
                    conn,
                    sql::SEARCH_CONTACTS_BY_NAME,
                    &[&company_id, &pattern, &i64::from(limit)],
                    |row| contact_rows.read(row),
                )?;
                contacts_from_rows(rows)
            })
            .await
    }

    async fn update_contact(
        &self,
        company_id: Uuid,
        id: &ContactIdentifier,
        patch: &ContactPatch,
    ) -> Result<Contact, StoreError> {
        let (id, patch) = (id.clone(), patch.clone());
        self.writer
            .write(move |conn| {
                let current = fetch_contact(conn, company_id, &id)?.ok_or(StoreError::NotFound)?;
                apply_patch(conn, company_id, current, &patch)
            })
            .await
    }

    async fn delete_contact(
        &self,
        company_id: Uuid,
        id: &ContactIdentifier,
    ) -> Result<Uuid, StoreError> {
        let id = id.clone();
        self.writer
            .write(move |conn| {
                let id = IdentifierMatch::from(&id);
                query_optional(
                    conn,
                    sql::delete_contact(&id),
                    &[&company_id, identifier_arg(&id)],
                    |row| row.get(0),
                )?
                .ok_or(StoreError::NotFound)
            })
            .await
    }

    async fn create_contacts(
        &self,
        company_id: Uuid,
        contacts: Vec<NewContact>,
    ) -> Result<ItemResults<Uuid>, StoreError> {
        self.writer
            .write_each(contacts, move |conn, contact| {
                insert_contact(conn, company_id, contact)
            })
            .await
    }

    async fn upsert_contacts(
        &self,
        company_id: Uuid,
        items: Vec<ContactUpsert>,
    ) -> Result<ItemResults<Upserted>, StoreError> {
        self.writer
            .write_each(items, move |conn, item| {
                upsert_contact(conn, company_id, item)
            })
            .await
    }

    async fn export_contacts(
        &self,
        company_id: Uuid,
        stall: Duration,
    ) -> Result<Export, StoreError> {
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
            StoreError::WriteFailed("the export reader stopped before it started".to_owned())
        })?
    }

    async fn fields_with_reserved_keys(&self) -> Result<Vec<ReservedKeyField>, StoreError> {
        let keys: Vec<&dyn ToSql> = RESERVED_KEYS.iter().map(|key| key as &dyn ToSql).collect();
        self.readers.read(|conn| {
            Ok(query(conn, sql::FIELDS_WITH_RESERVED_KEYS, &keys, |row| {
                Ok(ReservedKeyField {
                    company_id: row.get("company_id")?,
                    company_name: row.get("company_name")?,
                    key: row.get("key")?,
                })
            })?)
        })
    }

    async fn data_check_version(&self, check: &str) -> Result<Option<i64>, StoreError> {
        self.readers.read(|conn| {
            Ok(query_optional(
                conn,
                sql::DATA_CHECK_VERSION,
                &[&check],
                |row| row.get(0),
            )?)
        })
    }

    async fn record_data_check(&self, check: &str, version: i64) -> Result<(), StoreError> {
        let check = check.to_owned();
        self.writer
            .write(move |conn| {
                execute(conn, sql::RECORD_DATA_CHECK, &[&check, &version, &now_ms()])?;
                Ok(())
            })
            .await
    }

    async fn stored_emails(
        &self,
        table: EmailTable,
        after: Uuid,
        limit: u32,
    ) -> Result<Vec<StoredEmail>, StoreError> {
        self.readers.read(|conn| {
            Ok(query(
                conn,
                sql::stored_emails(table),
                &[&after, &limit],
                |row| {
                    Ok(StoredEmail {
                        id: row.get("id")?,
                        company_id: row.get("company_id")?,
                        email: row.get("email")?,
                    })
                },
            )?)
        })
    }

    async fn rewrite_email(
        &self,
        table: EmailTable,
        stored: &StoredEmail,
        email: &Email,
    ) -> Result<bool, StoreError> {
        let stored = stored.clone();
        let email = email.as_str().to_owned();
        self.writer
            .write(move |conn| {
                let args: [&dyn ToSql; 4] = [&stored.id, &stored.email, &email, &now_ms()];
                match execute(conn, sql::rewrite_email(table), &args)
                    .map_err(unique_or(table.duplicate()))
                {
                    Err(StoreError::DuplicateContact { member, .. }) => {
                        Err(StoreError::DuplicateContact {
                            member,
                            conflicting_contact_id: query_optional(
                                conn,
                                sql::contact_holding(member),
                                &[&stored.company_id, &email],
                                |row| row.get(0),
                            )?,
                        })
                    }
                    outcome => Ok(outcome? > 0),
                }
            })
            .await
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
    conn: &Connection,
    company_id: Uuid,
    fields_sent: tokio::sync::oneshot::Sender<Result<Export, StoreError>>,
    snapshot: &Snapshot,
) {
    let (pages_sent, pages) = export_channel(snapshot.stall);
    let started = export_head(conn, company_id).map(|(fields, total)| Export {
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

/// The definitions and the number of contacts an export's snapshot holds.
fn export_head(
    conn: &Connection,
    company_id: Uuid,
) -> Result<(Vec<FieldDefinition>, u64), StoreError> {
    let fields = query(conn, sql::LIST_FIELDS, &[&company_id], field_row)?
        .into_iter()
        .map(FieldDefinition::try_from)
        .collect::<Result<_, _>>()?;
    let total: i64 = conn.query_row(sql::COUNT_CONTACTS, [&company_id], |row| row.get(0))?;
    Ok((fields, total.unsigned_abs()))
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
    let mut statement = conn.prepare_cached(sql::EXPORT_CONTACTS)?;
    bind(&mut statement, &[&company_id])?;
    let mut rows = statement.raw_query();
    let mut pages = ExportPages::default();
    let mut contact_rows = ContactRows::default();
    while let Some(row) = rows.next()? {
        if let Some(page) = pages.push(contact_rows.read(row)?)? {
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

/// A page of contacts, newest first, after `after`.
fn list_page(
    conn: &Connection,
    company_id: Uuid,
    after: ListPosition,
    limit: u32,
) -> Result<Vec<Contact>, StoreError> {
    let mut contact_rows = ContactRows::default();
    let rows = query(
        conn,
        sql::LIST_CONTACTS,
        &[
            &company_id,
            &after.created_at_ms,
            &after.id,
            &i64::from(limit),
        ],
        |row| contact_rows.read(row),
    )?;
    contacts_from_rows(rows)
}

/// Inserts a contact and its values, returning its new id.
fn insert_contact(
    conn: &Connection,
    company_id: Uuid,
    contact: &NewContact,
) -> Result<Uuid, StoreError> {
    let id = Uuid::now_v7();
    let members = &contact.members;
    let inserted = execute(
        conn,
        sql::INSERT_CONTACT,
        &[
            &id,
            &company_id,
            &members.email,
            &members.phone_number,
            &members.ext_id,
            &members.first_name,
            &members.last_name,
            &now_ms(),
        ],
    );
    if let Err(error) = inserted {
        return Err(duplicate_contact(conn, company_id, members, error));
    }
    write_field_values(conn, id, &contact.field_values)?;
    Ok(id)
}

/// Applies an update to a contact as read on this connection; an update that changes
/// nothing writes nothing.
fn apply_patch(
    conn: &Connection,
    company_id: Uuid,
    current: Contact,
    patch: &ContactPatch,
) -> Result<Contact, StoreError> {
    let members = patch.apply(&current.members)?;
    if members == current.members && !values_change(patch, &current.custom_fields) {
        return Ok(current);
    }
    if identifiers_change(&current.members, &members) {
        let updated = execute(
            conn,
            sql::UPDATE_CONTACT_IDENTIFIERS,
            &[
                &current.id,
                &members.email,
                &members.phone_number,
                &members.ext_id,
            ],
        );
        if let Err(error) = updated {
            return Err(duplicate_contact(conn, company_id, &members, error));
        }
    }
    execute(
        conn,
        sql::UPDATE_CONTACT,
        &[
            &current.id,
            &members.first_name,
            &members.last_name,
            &now_ms().max(current.updated_at.timestamp_millis()),
        ],
    )?;
    write_field_values(conn, current.id, &patch.set_values)?;
    for field_id in &patch.remove_fields {
        execute(conn, sql::DELETE_VALUE, &[&current.id, field_id])?;
    }
    fetch_contact(conn, company_id, &ContactIdentifier::Id(current.id))?.ok_or(StoreError::NotFound)
}

/// Updates the contact an upsert's key names, or creates it. The writer runs one write at a
/// time, so nothing can take the key between the read and the insert.
fn upsert_contact(
    conn: &Connection,
    company_id: Uuid,
    item: &ContactUpsert,
) -> Result<Upserted, StoreError> {
    if let Some(current) = fetch_contact(conn, company_id, &item.key)? {
        let contact = apply_patch(conn, company_id, current, &item.patch)?;
        return Ok(Upserted {
            contact,
            created: false,
        });
    }
    let id = insert_contact(conn, company_id, &item.patch.to_new_contact()?)?;
    let contact =
        fetch_contact(conn, company_id, &ContactIdentifier::Id(id))?.ok_or(StoreError::NotFound)?;
    Ok(Upserted {
        contact,
        created: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::UniqueMember;

    /// The columns every contact read returns, in the order [`ContactRows`] reads them.
    const CONTACT_COLUMNS: [&str; 13] = [
        "id",
        "email",
        "phone_number",
        "ext_id",
        "first_name",
        "last_name",
        "created_at",
        "updated_at",
        "field_id",
        "field_key",
        "field_display_name",
        "field_type",
        "field_value",
    ];

    /// [`ContactRows`] reads by position, so every contact read must return
    /// [`CONTACT_COLUMNS`] in that order.
    #[test]
    fn every_contact_read_returns_the_columns_contact_rows_reads() {
        let conn = Connection::open_in_memory().expect("open");
        conn.execute_batch(include_str!("../../migrations/sqlite/0001_initial.sql"))
            .expect("schema");
        let reads = [
            sql::contact_by_identifier(&IdentifierMatch::Id(Uuid::nil())),
            sql::LIST_CONTACTS,
            sql::SEARCH_CONTACTS_BY_NAME,
            sql::EXPORT_CONTACTS,
        ]
        .into_iter()
        .chain(
            [
                UniqueMember::Email,
                UniqueMember::PhoneNumber,
                UniqueMember::ExtId,
            ]
            .map(|member| {
                sql::contact_by_identifier(&IdentifierMatch::Unique { member, value: "" })
            }),
        );
        for read in reads {
            let statement = conn.prepare(read).expect("prepare");
            assert_eq!(statement.column_names(), CONTACT_COLUMNS, "{read}");
        }
    }
}
