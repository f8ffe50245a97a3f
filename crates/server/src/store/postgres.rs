//! The PostgreSQL store: the scale-out backend that any number of `contactd serve`
//! processes share.
//!
//! Correctness lives in the database, never in one process's memory: uniqueness is the
//! unique indexes, and every write is one short transaction. An update first locks its
//! contact's row, so concurrent updates of one contact, from any number of processes, queue
//! in the database and each applies to the state the previous one left: none is lost, and
//! none fails for having waited. What contention still surfaces as an error (a deadlock, or
//! a serialization failure on the PostgreSQL-compatible distributed engines, which run every
//! transaction serializable) is retried by [`retrying`].

use std::future::Future;
use std::ops::{Deref, DerefMut};
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::TryStreamExt;
use rand::{Rng, RngCore};
use sqlx::migrate::MigrateDatabase;
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgConnection, PgPool, Postgres, Transaction};
use uuid::Uuid;

use super::{
    ApiKey, ApiKeyRow, Caller, Company, CompanyRow, Contact, ContactRow, ContactUpsert,
    CredentialsRow, EmailTable, Export, ExportPages, FieldDefinition, FieldDefinitionChange,
    FieldRow, IdentifierMatch, ItemResults, KeyUse, ListPosition, LoginAttempt, NewApiKey,
    NewFieldDefinition, NewSession, PageSender, PostgresSettings, ReservedKeyField, SessionRow,
    SessionUser, Store, StoreError, StoredEmail, UniqueMember, Upserted, User, UserCredentials,
    UserRow, contacts_from_rows, contains_pattern, export_channel, field_write_error,
    identifiers_change, now_ms, options_json, sql, stored_options, unique_or, unique_value,
    values_change, window_ms,
};
use crate::domain::contact::{ContactMembers, ContactPatch, FieldWrite, NewContact};
use crate::domain::custom_field::RESERVED_KEYS;
use crate::domain::{ContactIdentifier, Email, FieldKey};

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
    match error {
        StoreError::Database(sqlx::Error::Database(db)) => {
            matches!(db.code().as_deref(), Some("40001" | "40P01"))
        }
        _ => false,
    }
}

/// A connection for one operation. Behind PgBouncer in transaction mode a client keeps one
/// server connection only within a transaction, and sqlx prepares and then executes an
/// unnamed statement in two round trips, so there every operation runs in a transaction.
enum Session {
    Pooled(PoolConnection<Postgres>),
    Pinned(Transaction<'static, Postgres>),
}

impl Session {
    /// Ends the operation: commits its transaction, if it has one.
    async fn finish(self) -> Result<(), StoreError> {
        if let Session::Pinned(tx) = self {
            tx.commit().await?;
        }
        Ok(())
    }
}

impl Deref for Session {
    type Target = PgConnection;

    fn deref(&self) -> &PgConnection {
        match self {
            Session::Pooled(conn) => conn,
            Session::Pinned(tx) => tx,
        }
    }
}

impl DerefMut for Session {
    fn deref_mut(&mut self) -> &mut PgConnection {
        match self {
            Session::Pooled(conn) => conn,
            Session::Pinned(tx) => tx,
        }
    }
}

/// Locks the row of the contact an identifier names (`$1` company, `$2` value) until the
/// transaction ends, returning its id. A concurrent update of the same contact waits here;
/// one that changed the identifier meanwhile makes it match nothing (404), as it should.
fn lock_contact(id: &IdentifierMatch<'_>) -> &'static str {
    match id.column() {
        None => "SELECT id FROM contacts WHERE company_id = $1 AND id = $2 FOR UPDATE",
        Some(UniqueMember::Email) => {
            "SELECT id FROM contacts WHERE company_id = $1 AND email = $2 FOR UPDATE"
        }
        Some(UniqueMember::PhoneNumber) => {
            "SELECT id FROM contacts WHERE company_id = $1 AND phone_number = $2 FOR UPDATE"
        }
        Some(UniqueMember::ExtId) => {
            "SELECT id FROM contacts WHERE company_id = $1 AND ext_id = $2 FOR UPDATE"
        }
    }
}

/// Reads a definition (`$1` company, `$2` key) and locks its row until the transaction
/// ends, so a change is judged against what it overwrites.
const LOCK_FIELD: &str = "SELECT id, key, display_name, field_type, options, created_at \
     FROM custom_fields WHERE company_id = $1 AND key = $2 FOR UPDATE";

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

/// The PostgreSQL store.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
    /// Whether statements are prepared once per connection and reused (named), or sent
    /// unnamed each time, as PgBouncer's transaction mode requires.
    persistent: bool,
}

impl PostgresStore {
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
            sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        }
        Ok(Self {
            pool,
            persistent: !settings.pgbouncer,
        })
    }

    async fn session(&self) -> Result<Session, StoreError> {
        Ok(if self.persistent {
            Session::Pooled(self.pool.acquire().await?)
        } else {
            Session::Pinned(self.pool.begin().await?)
        })
    }

    /// Runs one operation on a [`Session`] of its own.
    async fn with_session<T>(
        &self,
        operation: impl AsyncFnOnce(&mut PgConnection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut session = self.session().await?;
        let outcome = operation(&mut session).await?;
        session.finish().await?;
        Ok(outcome)
    }

    async fn fetch_contact(
        &self,
        conn: &mut PgConnection,
        company_id: Uuid,
        id: &ContactIdentifier,
    ) -> Result<Option<Contact>, StoreError> {
        let id = IdentifierMatch::from(id);
        let query = sqlx::query_as(sql::contact_by_identifier(&id))
            .persistent(self.persistent)
            .bind(company_id);
        let query = match id {
            IdentifierMatch::Id(uuid) => query.bind(uuid),
            IdentifierMatch::Unique { value, .. } => query.bind(value),
        };
        let rows: Vec<ContactRow> = query.fetch_all(conn).await?;
        Ok(contacts_from_rows(rows)?.pop())
    }

    /// Runs one statement that returns nothing.
    async fn run(
        &self,
        conn: &mut PgConnection,
        statement: &'static str,
    ) -> Result<(), StoreError> {
        sqlx::query(statement)
            .persistent(self.persistent)
            .execute(conn)
            .await?;
        Ok(())
    }

    /// Runs the items of a write in one transaction, each in a savepoint of its own, so that
    /// an item that fails undoes itself alone and the rest commit together. A serialization
    /// failure or deadlock undoes the whole transaction, which is then retried.
    async fn write_items<I: WriteItem>(
        &self,
        company_id: Uuid,
        items: &[I],
    ) -> Result<ItemResults<I::Written>, StoreError> {
        retrying(|| async {
            let mut tx = self.pool.begin().await?;
            let mut results = Vec::with_capacity(items.len());
            for item in items {
                self.run(&mut tx, SAVEPOINT).await?;
                let outcome = item.write(self, &mut tx, company_id).await;
                match outcome {
                    Err(error) if is_retryable(&error) => return Err(error),
                    Err(_) => self.run(&mut tx, ROLLBACK_TO_SAVEPOINT).await?,
                    Ok(_) => {}
                }
                self.run(&mut tx, RELEASE_SAVEPOINT).await?;
                results.push(outcome);
            }
            tx.commit().await?;
            Ok(results)
        })
        .await
    }

    /// Turns a unique-index violation into [`StoreError::DuplicateContact`], naming the
    /// contact that holds the value. PostgreSQL refuses every statement after an error until
    /// the item's savepoint is rolled back, so it is rolled back here before the read (which
    /// then sees the transaction's own earlier items too).
    async fn duplicate_contact(
        &self,
        conn: &mut PgConnection,
        company_id: Uuid,
        members: &ContactMembers,
        error: sqlx::Error,
    ) -> StoreError {
        let member = match &error {
            sqlx::Error::Database(db) if db.is_unique_violation() => match db.constraint() {
                Some("contacts_email") => Some(UniqueMember::Email),
                Some("contacts_phone_number") => Some(UniqueMember::PhoneNumber),
                Some("contacts_ext_id") => Some(UniqueMember::ExtId),
                _ => None,
            },
            _ => None,
        };
        let Some(member) = member else {
            return StoreError::from(error);
        };
        if let Err(rollback) = self.run(conn, ROLLBACK_TO_SAVEPOINT).await {
            return rollback;
        }
        let conflicting_contact_id = sqlx::query_scalar(sql::contact_holding(member))
            .persistent(self.persistent)
            .bind(company_id)
            .bind(unique_value(members, member))
            .fetch_optional(conn)
            .await
            .ok()
            .flatten();
        StoreError::DuplicateContact {
            member,
            conflicting_contact_id,
        }
    }

    async fn write_field_values(
        &self,
        conn: &mut PgConnection,
        contact_id: Uuid,
        values: &[FieldWrite],
    ) -> Result<(), StoreError> {
        for write in values {
            sqlx::query(sql::UPSERT_VALUE)
                .persistent(self.persistent)
                .bind(contact_id)
                .bind(write.field_id)
                .bind(write.value.to_storage())
                .execute(&mut *conn)
                .await
                .map_err(field_write_error)?;
        }
        Ok(())
    }

    /// Inserts a contact and its values, returning its new id.
    async fn insert_contact(
        &self,
        conn: &mut PgConnection,
        company_id: Uuid,
        contact: &NewContact,
    ) -> Result<Uuid, StoreError> {
        let id = Uuid::now_v7();
        let members = &contact.members;
        let inserted = sqlx::query(sql::INSERT_CONTACT)
            .persistent(self.persistent)
            .bind(id)
            .bind(company_id)
            .bind(&members.email)
            .bind(&members.phone_number)
            .bind(&members.ext_id)
            .bind(&members.first_name)
            .bind(&members.last_name)
            .bind(now_ms())
            .execute(&mut *conn)
            .await;
        if let Err(error) = inserted {
            return Err(self
                .duplicate_contact(conn, company_id, members, error)
                .await);
        }
        self.write_field_values(conn, id, &contact.field_values)
            .await?;
        Ok(id)
    }

    /// Reads a contact just written, by its id.
    async fn written_contact(
        &self,
        conn: &mut PgConnection,
        company_id: Uuid,
        id: Uuid,
    ) -> Result<Contact, StoreError> {
        self.fetch_contact(conn, company_id, &ContactIdentifier::Id(id))
            .await?
            .ok_or(StoreError::NotFound)
    }

    /// Locks the row of the contact an identifier names until the transaction ends,
    /// returning its id.
    async fn lock_contact(
        &self,
        conn: &mut PgConnection,
        company_id: Uuid,
        id: &ContactIdentifier,
    ) -> Result<Option<Uuid>, StoreError> {
        let id = IdentifierMatch::from(id);
        let query = sqlx::query_scalar(lock_contact(&id))
            .persistent(self.persistent)
            .bind(company_id);
        let query = match id {
            IdentifierMatch::Id(uuid) => query.bind(uuid),
            IdentifierMatch::Unique { value, .. } => query.bind(value),
        };
        Ok(query.fetch_optional(conn).await?)
    }

    /// Applies an update to a contact whose row this transaction has locked; an update that
    /// changes nothing writes nothing.
    async fn update_locked(
        &self,
        conn: &mut PgConnection,
        company_id: Uuid,
        id: Uuid,
        patch: &ContactPatch,
    ) -> Result<Contact, StoreError> {
        let current = self.written_contact(conn, company_id, id).await?;
        let members = patch.apply(&current.members)?;
        if members == current.members && !values_change(patch, &current.custom_fields) {
            return Ok(current);
        }
        if identifiers_change(&current.members, &members) {
            let updated = sqlx::query(sql::UPDATE_CONTACT_IDENTIFIERS)
                .persistent(self.persistent)
                .bind(current.id)
                .bind(&members.email)
                .bind(&members.phone_number)
                .bind(&members.ext_id)
                .execute(&mut *conn)
                .await;
            if let Err(error) = updated {
                return Err(self
                    .duplicate_contact(conn, company_id, &members, error)
                    .await);
            }
        }
        sqlx::query(sql::UPDATE_CONTACT)
            .persistent(self.persistent)
            .bind(current.id)
            .bind(&members.first_name)
            .bind(&members.last_name)
            .bind(now_ms().max(current.updated_at.timestamp_millis()))
            .execute(&mut *conn)
            .await?;
        self.write_field_values(conn, current.id, &patch.set_values)
            .await?;
        for field_id in &patch.remove_fields {
            sqlx::query(sql::DELETE_VALUE)
                .persistent(self.persistent)
                .bind(current.id)
                .bind(field_id)
                .execute(&mut *conn)
                .await?;
        }
        self.written_contact(conn, company_id, current.id).await
    }

    /// Updates the contact an upsert's key names, or creates it. When another transaction
    /// creates the key between the lock (which found nothing) and the insert, the insert
    /// waits for it, fails on the unique index, and the item updates that contact instead.
    async fn upsert_contact(
        &self,
        conn: &mut PgConnection,
        company_id: Uuid,
        item: &ContactUpsert,
    ) -> Result<Upserted, StoreError> {
        let updated = async |conn: &mut PgConnection, id| {
            Ok(Upserted {
                contact: self
                    .update_locked(conn, company_id, id, &item.patch)
                    .await?,
                created: false,
            })
        };
        if let Some(id) = self.lock_contact(conn, company_id, &item.key).await? {
            return updated(conn, id).await;
        }
        let key_member = IdentifierMatch::from(&item.key).column();
        match self
            .insert_contact(conn, company_id, &item.patch.to_new_contact()?)
            .await
        {
            Ok(id) => Ok(Upserted {
                contact: self.written_contact(conn, company_id, id).await?,
                created: true,
            }),
            Err(StoreError::DuplicateContact { member, .. }) if Some(member) == key_member => {
                let id = self
                    .lock_contact(conn, company_id, &item.key)
                    .await?
                    .ok_or(StoreError::NotFound)?;
                updated(conn, id).await
            }
            Err(error) => Err(error),
        }
    }

    /// A page of contacts, newest first, after `after`.
    async fn list_page(
        &self,
        conn: &mut PgConnection,
        company_id: Uuid,
        after: ListPosition,
        limit: u32,
    ) -> Result<Vec<Contact>, StoreError> {
        let rows: Vec<ContactRow> = sqlx::query_as(sql::LIST_CONTACTS)
            .persistent(self.persistent)
            .bind(company_id)
            .bind(after.created_at_ms)
            .bind(after.id)
            .bind(i64::from(limit))
            .fetch_all(conn)
            .await?;
        contacts_from_rows(rows)
    }

    /// Reads every contact of the export's snapshot, row by row as PostgreSQL sends them,
    /// sending a page at a time; stops early, without an error, when the receiver is gone
    /// (the client went away).
    async fn send_pages(
        &self,
        conn: &mut PgConnection,
        company_id: Uuid,
        pages_sent: &PageSender,
    ) -> Result<(), StoreError> {
        let mut rows = sqlx::query_as::<_, ContactRow>(sql::EXPORT_CONTACTS)
            .persistent(self.persistent)
            .bind(company_id)
            .fetch(conn);
        let mut pages = ExportPages::default();
        while let Some(row) = rows.try_next().await? {
            if let Some(page) = pages.push(row)?
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

    async fn fields_of(
        &self,
        conn: &mut PgConnection,
        company_id: Uuid,
    ) -> Result<Vec<FieldDefinition>, StoreError> {
        let rows: Vec<FieldRow> = sqlx::query_as(sql::LIST_FIELDS)
            .persistent(self.persistent)
            .bind(company_id)
            .fetch_all(conn)
            .await?;
        rows.into_iter().map(FieldDefinition::try_from).collect()
    }
}

/// The savepoint each item of a write runs in.
const SAVEPOINT: &str = "SAVEPOINT item";
const ROLLBACK_TO_SAVEPOINT: &str = "ROLLBACK TO SAVEPOINT item";
const RELEASE_SAVEPOINT: &str = "RELEASE SAVEPOINT item";

/// The one result of a write of one item.
fn single<T>(mut results: ItemResults<T>) -> Result<T, StoreError> {
    results.pop().unwrap_or(Err(StoreError::NotFound))
}

/// What one item of a write does, inside its savepoint.
trait WriteItem {
    type Written;

    async fn write(
        &self,
        store: &PostgresStore,
        conn: &mut PgConnection,
        company_id: Uuid,
    ) -> Result<Self::Written, StoreError>;
}

/// An item of an array create: the new contact's id.
impl WriteItem for NewContact {
    type Written = Uuid;

    async fn write(
        &self,
        store: &PostgresStore,
        conn: &mut PgConnection,
        company_id: Uuid,
    ) -> Result<Uuid, StoreError> {
        store.insert_contact(conn, company_id, self).await
    }
}

impl WriteItem for ContactUpsert {
    type Written = Upserted;

    async fn write(
        &self,
        store: &PostgresStore,
        conn: &mut PgConnection,
        company_id: Uuid,
    ) -> Result<Upserted, StoreError> {
        store.upsert_contact(conn, company_id, self).await
    }
}

/// A single create: the contact as created.
struct CreateOne<'a>(&'a NewContact);

impl WriteItem for CreateOne<'_> {
    type Written = Contact;

    async fn write(
        &self,
        store: &PostgresStore,
        conn: &mut PgConnection,
        company_id: Uuid,
    ) -> Result<Contact, StoreError> {
        let id = store.insert_contact(conn, company_id, self.0).await?;
        store.written_contact(conn, company_id, id).await
    }
}

/// A single update: the contact as updated.
struct UpdateOne<'a> {
    id: &'a ContactIdentifier,
    patch: &'a ContactPatch,
}

impl WriteItem for UpdateOne<'_> {
    type Written = Contact;

    async fn write(
        &self,
        store: &PostgresStore,
        conn: &mut PgConnection,
        company_id: Uuid,
    ) -> Result<Contact, StoreError> {
        let locked = store
            .lock_contact(conn, company_id, self.id)
            .await?
            .ok_or(StoreError::NotFound)?;
        store
            .update_locked(conn, company_id, locked, self.patch)
            .await
    }
}

#[async_trait]
impl Store for PostgresStore {
    async fn ping(&self) -> Result<(), StoreError> {
        self.with_session(async |conn| {
            sqlx::query("SELECT 1")
                .persistent(self.persistent)
                .execute(conn)
                .await?;
            Ok(())
        })
        .await
    }

    async fn create_company(&self, name: &str) -> Result<Company, StoreError> {
        let mut cursor_secret = [0u8; 32];
        rand::rng().fill_bytes(&mut cursor_secret);
        let id = Uuid::now_v7();
        let row: CompanyRow = retrying(|| {
            self.with_session(async |conn| {
                sqlx::query_as(sql::INSERT_COMPANY)
                    .persistent(self.persistent)
                    .bind(id)
                    .bind(name)
                    .bind(&cursor_secret[..])
                    .bind(now_ms())
                    .fetch_one(conn)
                    .await
                    .map_err(unique_or(StoreError::DuplicateCompanyName))
            })
        })
        .await?;
        Ok(row.into())
    }

    async fn list_companies(&self) -> Result<Vec<Company>, StoreError> {
        let rows: Vec<CompanyRow> = self
            .with_session(async |conn| {
                Ok(sqlx::query_as(sql::LIST_COMPANIES)
                    .persistent(self.persistent)
                    .fetch_all(conn)
                    .await?)
            })
            .await?;
        Ok(rows.into_iter().map(Company::from).collect())
    }

    async fn find_company(&self, id_or_name: &str) -> Result<Option<Company>, StoreError> {
        let row: Option<CompanyRow> = self
            .with_session(async |conn| {
                Ok(sqlx::query_as(sql::FIND_COMPANY)
                    .persistent(self.persistent)
                    .bind(Uuid::try_parse(id_or_name).ok())
                    .bind(id_or_name)
                    .fetch_optional(conn)
                    .await?)
            })
            .await?;
        Ok(row.map(Company::from))
    }

    async fn create_api_key(
        &self,
        company_id: Uuid,
        key: &NewApiKey,
    ) -> Result<ApiKey, StoreError> {
        let id = Uuid::now_v7();
        let row: ApiKeyRow = retrying(|| {
            self.with_session(async |conn| {
                Ok(sqlx::query_as(sql::INSERT_KEY)
                    .persistent(self.persistent)
                    .bind(id)
                    .bind(company_id)
                    .bind(&key.name)
                    .bind(&key.prefix)
                    .bind(&key.key_hash[..])
                    .bind(now_ms())
                    .fetch_one(conn)
                    .await?)
            })
        })
        .await?;
        Ok(row.into())
    }

    async fn list_api_keys(&self, company_id: Uuid) -> Result<Vec<ApiKey>, StoreError> {
        let rows: Vec<ApiKeyRow> = self
            .with_session(async |conn| {
                Ok(sqlx::query_as(sql::LIST_KEYS)
                    .persistent(self.persistent)
                    .bind(company_id)
                    .fetch_all(conn)
                    .await?)
            })
            .await?;
        Ok(rows.into_iter().map(ApiKey::from).collect())
    }

    async fn revoke_api_key(&self, key_id: Uuid) -> Result<ApiKey, StoreError> {
        let row: Option<ApiKeyRow> = retrying(|| {
            self.with_session(async |conn| {
                Ok(sqlx::query_as(sql::REVOKE_KEY)
                    .persistent(self.persistent)
                    .bind(key_id)
                    .bind(now_ms())
                    .fetch_optional(conn)
                    .await?)
            })
        })
        .await?;
        row.map(ApiKey::from).ok_or(StoreError::NotFound)
    }

    async fn authenticate(&self, key_hash: &[u8; 32]) -> Result<Option<KeyUse>, StoreError> {
        let found: Option<(Uuid, Uuid, Vec<u8>, Option<i64>)> = self
            .with_session(async |conn| {
                Ok(sqlx::query_as(sql::AUTHENTICATE)
                    .persistent(self.persistent)
                    .bind(&key_hash[..])
                    .fetch_optional(conn)
                    .await?)
            })
            .await?;
        Ok(
            found.map(|(key_id, company_id, cursor_secret, last_used_at)| KeyUse {
                key_id,
                caller: Caller {
                    company_id,
                    cursor_secret,
                },
                last_used_at,
            }),
        )
    }

    async fn touch_api_key(&self, key_id: Uuid, at: i64) -> Result<(), StoreError> {
        retrying(|| {
            self.with_session(async |conn| {
                sqlx::query(sql::TOUCH_KEY)
                    .persistent(self.persistent)
                    .bind(key_id)
                    .bind(at)
                    .execute(conn)
                    .await?;
                Ok(())
            })
        })
        .await
    }

    async fn create_user(
        &self,
        company_id: Uuid,
        email: &Email,
        password_hash: &str,
    ) -> Result<User, StoreError> {
        let id = Uuid::now_v7();
        let row: UserRow = retrying(|| {
            self.with_session(async |conn| {
                sqlx::query_as(sql::INSERT_USER)
                    .persistent(self.persistent)
                    .bind(id)
                    .bind(company_id)
                    .bind(email.as_str())
                    .bind(password_hash)
                    .bind(now_ms())
                    .fetch_one(conn)
                    .await
                    .map_err(unique_or(StoreError::DuplicateUserEmail))
            })
        })
        .await?;
        Ok(row.into())
    }

    async fn list_users(&self, company_id: Uuid) -> Result<Vec<User>, StoreError> {
        let rows: Vec<UserRow> = self
            .with_session(async |conn| {
                Ok(sqlx::query_as(sql::LIST_USERS)
                    .persistent(self.persistent)
                    .bind(company_id)
                    .fetch_all(conn)
                    .await?)
            })
            .await?;
        Ok(rows.into_iter().map(User::from).collect())
    }

    async fn set_password(&self, email: &Email, password_hash: &str) -> Result<(), StoreError> {
        retrying(|| async {
            let mut tx = self.pool.begin().await?;
            let user_id: Uuid = sqlx::query_scalar(sql::SET_PASSWORD)
                .persistent(self.persistent)
                .bind(email.as_str())
                .bind(password_hash)
                .fetch_optional(&mut *tx)
                .await?
                .ok_or(StoreError::NotFound)?;
            sqlx::query(sql::DELETE_USER_SESSIONS)
                .persistent(self.persistent)
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
            sqlx::query(sql::CLEAR_LOGIN_ATTEMPTS)
                .persistent(self.persistent)
                .bind(email.as_str())
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    async fn delete_user(&self, email: &Email) -> Result<(), StoreError> {
        let deleted = retrying(|| {
            self.with_session(async |conn| {
                Ok(sqlx::query(sql::DELETE_USER)
                    .persistent(self.persistent)
                    .bind(email.as_str())
                    .execute(conn)
                    .await?)
            })
        })
        .await?;
        if deleted.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn user_credentials(&self, email: &Email) -> Result<Option<UserCredentials>, StoreError> {
        let row: Option<CredentialsRow> = self
            .with_session(async |conn| {
                Ok(sqlx::query_as(sql::USER_CREDENTIALS)
                    .persistent(self.persistent)
                    .bind(email.as_str())
                    .fetch_optional(conn)
                    .await?)
            })
            .await?;
        Ok(row.map(UserCredentials::from))
    }

    async fn reserve_login_attempt(
        &self,
        email: &Email,
        limit: u32,
        window: Duration,
    ) -> Result<LoginAttempt, StoreError> {
        // Three statements, no transaction: the purge is housekeeping, the count is atomic
        // on its own (the upsert locks the email's row), and the window's start is read
        // only to say when a refused login may try again.
        retrying(|| {
            self.with_session(async |conn| {
                let now = now_ms();
                let ended = now - window_ms(window);
                sqlx::query(sql::PURGE_LOGIN_ATTEMPTS)
                    .persistent(self.persistent)
                    .bind(ended)
                    .execute(&mut *conn)
                    .await?;
                let counted: Option<i32> = sqlx::query_scalar(sql::RESERVE_LOGIN_ATTEMPT)
                    .persistent(self.persistent)
                    .bind(email.as_str())
                    .bind(now)
                    .bind(ended)
                    .bind(i32::try_from(limit).unwrap_or(i32::MAX))
                    .fetch_optional(&mut *conn)
                    .await?;
                if counted.is_some() {
                    return Ok(LoginAttempt::Granted);
                }
                let started: Option<i64> = sqlx::query_scalar(sql::LOGIN_WINDOW_START)
                    .persistent(self.persistent)
                    .bind(email.as_str())
                    .fetch_optional(&mut *conn)
                    .await?;
                Ok(LoginAttempt::refused(started, window))
            })
        })
        .await
    }

    async fn create_session(&self, session: &NewSession) -> Result<(), StoreError> {
        retrying(|| async {
            let mut tx = self.pool.begin().await?;
            let now = now_ms();
            sqlx::query(sql::DELETE_EXPIRED_SESSIONS)
                .persistent(self.persistent)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            sqlx::query(sql::CLEAR_USER_LOGIN_ATTEMPTS)
                .persistent(self.persistent)
                .bind(session.user_id)
                .execute(&mut *tx)
                .await?;
            sqlx::query(sql::INSERT_SESSION)
                .persistent(self.persistent)
                .bind(&session.token_hash[..])
                .bind(session.user_id)
                .bind(&session.csrf_token)
                .bind(now)
                .bind(session.expires_at.timestamp_millis())
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    async fn find_session(&self, token_hash: &[u8; 32]) -> Result<Option<SessionUser>, StoreError> {
        let row: Option<SessionRow> = self
            .with_session(async |conn| {
                Ok(sqlx::query_as(sql::FIND_SESSION)
                    .persistent(self.persistent)
                    .bind(&token_hash[..])
                    .bind(now_ms())
                    .fetch_optional(conn)
                    .await?)
            })
            .await?;
        Ok(row.map(SessionUser::from))
    }

    async fn delete_session(&self, token_hash: &[u8; 32]) -> Result<(), StoreError> {
        retrying(|| {
            self.with_session(async |conn| {
                sqlx::query(sql::DELETE_SESSION)
                    .persistent(self.persistent)
                    .bind(&token_hash[..])
                    .execute(conn)
                    .await?;
                Ok(())
            })
        })
        .await
    }

    async fn create_field(
        &self,
        company_id: Uuid,
        field: &NewFieldDefinition,
    ) -> Result<FieldDefinition, StoreError> {
        let id = Uuid::now_v7();
        let row: FieldRow = retrying(|| {
            self.with_session(async |conn| {
                sqlx::query_as(sql::INSERT_FIELD)
                    .persistent(self.persistent)
                    .bind(id)
                    .bind(company_id)
                    .bind(field.key.as_str())
                    .bind(field.display_name.as_str())
                    .bind(field.field_type.as_str())
                    .bind(
                        field
                            .options
                            .as_ref()
                            .map(|options| options_json(options.as_slice())),
                    )
                    .bind(now_ms())
                    .fetch_one(conn)
                    .await
                    .map_err(unique_or(StoreError::DuplicateFieldKey))
            })
        })
        .await?;
        row.try_into()
    }

    async fn list_fields(&self, company_id: Uuid) -> Result<Vec<FieldDefinition>, StoreError> {
        self.with_session(async |conn| self.fields_of(conn, company_id).await)
            .await
    }

    async fn get_field(
        &self,
        company_id: Uuid,
        key: &FieldKey,
    ) -> Result<Option<FieldDefinition>, StoreError> {
        let row: Option<FieldRow> = self
            .with_session(async |conn| {
                Ok(sqlx::query_as(sql::GET_FIELD)
                    .persistent(self.persistent)
                    .bind(company_id)
                    .bind(key.as_str())
                    .fetch_optional(conn)
                    .await?)
            })
            .await?;
        row.map(FieldDefinition::try_from).transpose()
    }

    async fn update_field(
        &self,
        company_id: Uuid,
        key: &FieldKey,
        change: &FieldDefinitionChange,
    ) -> Result<FieldDefinition, StoreError> {
        retrying(|| async {
            let mut tx = self.pool.begin().await?;
            // The row stays locked until the commit: a concurrent change of the same field,
            // from any process, waits here and then reads what this one wrote.
            let stored: Option<FieldRow> = sqlx::query_as(LOCK_FIELD)
                .persistent(self.persistent)
                .bind(company_id)
                .bind(key.as_str())
                .fetch_optional(&mut *tx)
                .await?;
            let stored = FieldDefinition::try_from(stored.ok_or(StoreError::NotFound)?)?;
            let updated = change.apply_to(stored)?;
            sqlx::query(sql::UPDATE_FIELD)
                .persistent(self.persistent)
                .bind(updated.id)
                .bind(&updated.display_name)
                .bind(stored_options(&updated))
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(updated)
        })
        .await
    }

    async fn delete_field(&self, company_id: Uuid, key: &FieldKey) -> Result<(), StoreError> {
        let deleted = retrying(|| {
            self.with_session(async |conn| {
                Ok(sqlx::query(sql::DELETE_FIELD)
                    .persistent(self.persistent)
                    .bind(company_id)
                    .bind(key.as_str())
                    .execute(conn)
                    .await?)
            })
        })
        .await?;
        if deleted.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn count_field_values(
        &self,
        company_id: Uuid,
        key: &FieldKey,
    ) -> Result<u64, StoreError> {
        let count: i64 = self
            .with_session(async |conn| {
                Ok(sqlx::query_scalar(sql::COUNT_FIELD_VALUES)
                    .persistent(self.persistent)
                    .bind(company_id)
                    .bind(key.as_str())
                    .fetch_one(conn)
                    .await?)
            })
            .await?;
        Ok(count.unsigned_abs())
    }

    async fn create_contact(
        &self,
        company_id: Uuid,
        contact: &NewContact,
    ) -> Result<Contact, StoreError> {
        single(self.write_items(company_id, &[CreateOne(contact)]).await?)
    }

    async fn get_contact(
        &self,
        company_id: Uuid,
        id: &ContactIdentifier,
    ) -> Result<Option<Contact>, StoreError> {
        self.with_session(async |conn| self.fetch_contact(conn, company_id, id).await)
            .await
    }

    async fn list_contacts(
        &self,
        company_id: Uuid,
        after: Option<ListPosition>,
        limit: u32,
    ) -> Result<Vec<Contact>, StoreError> {
        let after = after.unwrap_or(ListPosition::START);
        self.with_session(async |conn| self.list_page(conn, company_id, after, limit).await)
            .await
    }

    async fn search_contacts_by_name(
        &self,
        company_id: Uuid,
        text: &str,
        limit: u32,
    ) -> Result<Vec<Contact>, StoreError> {
        let rows: Vec<ContactRow> = self
            .with_session(async |conn| {
                Ok(sqlx::query_as(sql::SEARCH_CONTACTS_BY_NAME)
                    .persistent(self.persistent)
                    .bind(company_id)
                    .bind(contains_pattern(text))
                    .bind(i64::from(limit))
                    .fetch_all(conn)
                    .await?)
            })
            .await?;
        contacts_from_rows(rows)
    }

    async fn update_contact(
        &self,
        company_id: Uuid,
        id: &ContactIdentifier,
        patch: &ContactPatch,
    ) -> Result<Contact, StoreError> {
        single(
            self.write_items(company_id, &[UpdateOne { id, patch }])
                .await?,
        )
    }

    async fn delete_contact(
        &self,
        company_id: Uuid,
        id: &ContactIdentifier,
    ) -> Result<Uuid, StoreError> {
        let id = IdentifierMatch::from(id);
        let deleted: Option<Uuid> = retrying(|| {
            self.with_session(async |conn| {
                let query = sqlx::query_scalar(sql::delete_contact(&id))
                    .persistent(self.persistent)
                    .bind(company_id);
                let query = match id {
                    IdentifierMatch::Id(uuid) => query.bind(uuid),
                    IdentifierMatch::Unique { value, .. } => query.bind(value),
                };
                Ok(query.fetch_optional(conn).await?)
            })
        })
        .await?;
        deleted.ok_or(StoreError::NotFound)
    }

    async fn create_contacts(
        &self,
        company_id: Uuid,
        contacts: Vec<NewContact>,
    ) -> Result<ItemResults<Uuid>, StoreError> {
        self.write_items(company_id, &contacts).await
    }

    async fn upsert_contacts(
        &self,
        company_id: Uuid,
        items: Vec<ContactUpsert>,
    ) -> Result<ItemResults<Upserted>, StoreError> {
        self.write_items(company_id, &items).await
    }

    async fn export_contacts(
        &self,
        company_id: Uuid,
        stall: Duration,
    ) -> Result<Export, StoreError> {
        let mut tx = self.pool.begin().await?;
        self.run(
            &mut tx,
            "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY",
        )
        .await?;
        let fields = self.fields_of(&mut tx, company_id).await?;
        let total: i64 = sqlx::query_scalar(sql::COUNT_CONTACTS)
            .persistent(self.persistent)
            .bind(company_id)
            .fetch_one(&mut *tx)
            .await?;
        let (pages_sent, pages) = export_channel(stall);
        let store = self.clone();
        tokio::spawn(async move {
            if let Err(error) = store.send_pages(&mut tx, company_id, &pages_sent).await {
                // The client sees the body end short; the reason is logged with the request.
                pages_sent.hand_over(Err(error)).await;
            }
            if let Err(error) = tx.rollback().await {
                tracing::warn!(%error, "could not end an export's snapshot");
            }
        });
        Ok(Export {
            fields,
            total: total.unsigned_abs(),
            pages,
        })
    }

    async fn fields_with_reserved_keys(&self) -> Result<Vec<ReservedKeyField>, StoreError> {
        self.with_session(async |conn| {
            let query = RESERVED_KEYS.iter().fold(
                sqlx::query_as(sql::FIELDS_WITH_RESERVED_KEYS).persistent(self.persistent),
                |query, key| query.bind(*key),
            );
            Ok(query.fetch_all(conn).await?)
        })
        .await
    }

    async fn data_check_version(&self, check: &str) -> Result<Option<i64>, StoreError> {
        self.with_session(async |conn| {
            Ok(sqlx::query_scalar(sql::DATA_CHECK_VERSION)
                .persistent(self.persistent)
                .bind(check)
                .fetch_optional(conn)
                .await?)
        })
        .await
    }

    async fn record_data_check(&self, check: &str, version: i64) -> Result<(), StoreError> {
        retrying(|| {
            self.with_session(async |conn| {
                sqlx::query(sql::RECORD_DATA_CHECK)
                    .persistent(self.persistent)
                    .bind(check)
                    .bind(version)
                    .bind(now_ms())
                    .execute(conn)
                    .await?;
                Ok(())
            })
        })
        .await
    }

    async fn stored_emails(
        &self,
        table: EmailTable,
        after: Uuid,
        limit: u32,
    ) -> Result<Vec<StoredEmail>, StoreError> {
        self.with_session(async |conn| {
            Ok(sqlx::query_as(sql::stored_emails(table))
                .persistent(self.persistent)
                .bind(after)
                .bind(i64::from(limit))
                .fetch_all(conn)
                .await?)
        })
        .await
    }

    async fn rewrite_email(
        &self,
        table: EmailTable,
        stored: &StoredEmail,
        email: &Email,
    ) -> Result<bool, StoreError> {
        let rewritten = retrying(|| {
            self.with_session(async |conn| {
                let query = sqlx::query(sql::rewrite_email(table))
                    .persistent(self.persistent)
                    .bind(stored.id)
                    .bind(&stored.email)
                    .bind(email.as_str());
                let query = match table {
                    EmailTable::Contacts => query.bind(now_ms()),
                    EmailTable::Users => query,
                };
                let done = query
                    .execute(conn)
                    .await
                    .map_err(unique_or(table.duplicate()))?;
                Ok(done.rows_affected() > 0)
            })
        })
        .await;
        match rewritten {
            Err(StoreError::DuplicateContact { member, .. }) => {
                let holder = self
                    .with_session(async |conn| {
                        Ok(sqlx::query_scalar(sql::contact_holding(member))
                            .persistent(self.persistent)
                            .bind(stored.company_id)
                            .bind(email.as_str())
                            .fetch_optional(conn)
                            .await?)
                    })
                    .await?;
                Err(StoreError::DuplicateContact {
                    member,
                    conflicting_contact_id: holder,
                })
            }
            outcome => outcome,
        }
    }
}
