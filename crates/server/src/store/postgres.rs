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
use rand::{Rng, RngCore};
use sqlx::migrate::MigrateDatabase;
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgConnection, PgPool, Postgres, Transaction};
use uuid::Uuid;

use super::{
    ApiKey, ApiKeyRow, Caller, Company, CompanyRow, Contact, ContactRow, FieldDefinition,
    FieldDefinitionChange, FieldRow, IdentifierMatch, LAST_USED_RESOLUTION_MS, ListPosition,
    NewApiKey, NewFieldDefinition, PostgresSettings, Store, StoreError, UniqueMember,
    contacts_from_rows, field_write_error, identifiers_change, now_ms, options_json, sql,
    unique_or, unique_value, values_change,
};
use crate::domain::contact::{ContactMembers, ContactPatch, FieldWrite, NewContact};
use crate::domain::{ContactIdentifier, FieldKey};

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

    /// Turns a unique-index violation into [`StoreError::DuplicateContact`]. PostgreSQL
    /// aborts the whole transaction on an error, so the holder of the value is read after
    /// the rollback, on a connection of its own.
    async fn duplicate_contact(
        &self,
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
        let conflicting_contact_id = self
            .with_session(async |conn| {
                Ok(sqlx::query_scalar(sql::contact_holding(member))
                    .persistent(self.persistent)
                    .bind(company_id)
                    .bind(unique_value(members, member))
                    .fetch_optional(conn)
                    .await?)
            })
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

    async fn create_contact_once(
        &self,
        company_id: Uuid,
        contact: &NewContact,
    ) -> Result<Contact, StoreError> {
        let mut tx = self.pool.begin().await?;
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
            .execute(&mut *tx)
            .await;
        if let Err(error) = inserted {
            drop(tx);
            return Err(self.duplicate_contact(company_id, members, error).await);
        }
        self.write_field_values(&mut tx, id, &contact.field_values)
            .await?;
        let created = self
            .fetch_contact(&mut tx, company_id, &ContactIdentifier::Id(id))
            .await?
            .ok_or(StoreError::NotFound)?;
        tx.commit().await?;
        Ok(created)
    }

    async fn update_contact_once(
        &self,
        company_id: Uuid,
        id: &ContactIdentifier,
        patch: &ContactPatch,
    ) -> Result<Contact, StoreError> {
        let mut tx = self.pool.begin().await?;
        let id = IdentifierMatch::from(id);
        let query = sqlx::query_scalar(lock_contact(&id))
            .persistent(self.persistent)
            .bind(company_id);
        let query = match id {
            IdentifierMatch::Id(uuid) => query.bind(uuid),
            IdentifierMatch::Unique { value, .. } => query.bind(value),
        };
        let locked: Uuid = query
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(StoreError::NotFound)?;
        let current = self
            .fetch_contact(&mut tx, company_id, &ContactIdentifier::Id(locked))
            .await?
            .ok_or(StoreError::NotFound)?;
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
                .execute(&mut *tx)
                .await;
            if let Err(error) = updated {
                drop(tx);
                return Err(self.duplicate_contact(company_id, &members, error).await);
            }
        }
        sqlx::query(sql::UPDATE_CONTACT)
            .persistent(self.persistent)
            .bind(current.id)
            .bind(&members.first_name)
            .bind(&members.last_name)
            .bind(now_ms().max(current.updated_at.timestamp_millis()))
            .execute(&mut *tx)
            .await?;
        self.write_field_values(&mut tx, current.id, &patch.set_values)
            .await?;
        for field_id in &patch.remove_fields {
            sqlx::query(sql::DELETE_VALUE)
                .persistent(self.persistent)
                .bind(current.id)
                .bind(field_id)
                .execute(&mut *tx)
                .await?;
        }
        let updated = self
            .fetch_contact(&mut tx, company_id, &ContactIdentifier::Id(current.id))
            .await?
            .ok_or(StoreError::NotFound)?;
        tx.commit().await?;
        Ok(updated)
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

    async fn authenticate(&self, key_hash: &[u8; 32]) -> Result<Option<Caller>, StoreError> {
        let found: Option<(Uuid, Uuid, Vec<u8>, Option<i64>)> = self
            .with_session(async |conn| {
                Ok(sqlx::query_as(sql::AUTHENTICATE)
                    .persistent(self.persistent)
                    .bind(&key_hash[..])
                    .fetch_optional(conn)
                    .await?)
            })
            .await?;
        let Some((key_id, company_id, cursor_secret, last_used_at)) = found else {
            return Ok(None);
        };
        let now = now_ms();
        if last_used_at.is_none_or(|at| now - at >= LAST_USED_RESOLUTION_MS) {
            retrying(|| {
                self.with_session(async |conn| {
                    sqlx::query(sql::TOUCH_KEY)
                        .persistent(self.persistent)
                        .bind(key_id)
                        .bind(now)
                        .execute(conn)
                        .await?;
                    Ok(())
                })
            })
            .await?;
        }
        Ok(Some(Caller {
            company_id,
            cursor_secret,
        }))
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
                    .bind(field.options.as_ref().map(options_json))
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
        let rows: Vec<FieldRow> = self
            .with_session(async |conn| {
                Ok(sqlx::query_as(sql::LIST_FIELDS)
                    .persistent(self.persistent)
                    .bind(company_id)
                    .fetch_all(conn)
                    .await?)
            })
            .await?;
        rows.into_iter().map(FieldDefinition::try_from).collect()
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
        let row: Option<FieldRow> = retrying(|| {
            self.with_session(async |conn| {
                Ok(sqlx::query_as(sql::UPDATE_FIELD)
                    .persistent(self.persistent)
                    .bind(company_id)
                    .bind(key.as_str())
                    .bind(change.display_name.as_ref().map(|name| name.as_str()))
                    .bind(change.options.as_ref().map(options_json))
                    .fetch_optional(conn)
                    .await?)
            })
        })
        .await?;
        row.ok_or(StoreError::NotFound)?.try_into()
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

    async fn create_contact(
        &self,
        company_id: Uuid,
        contact: &NewContact,
    ) -> Result<Contact, StoreError> {
        retrying(|| self.create_contact_once(company_id, contact)).await
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
        let rows: Vec<ContactRow> = self
            .with_session(async |conn| {
                Ok(sqlx::query_as(sql::LIST_CONTACTS)
                    .persistent(self.persistent)
                    .bind(company_id)
                    .bind(after.created_at_ms)
                    .bind(after.id)
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
        retrying(|| self.update_contact_once(company_id, id, patch)).await
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
}
