//! The embedded SQLite store: WAL, `synchronous=FULL`, foreign keys, one writer.

use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use rand::RngCore;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{SqliteConnection, SqlitePool};
use uuid::Uuid;

use super::{
    ApiKey, ApiKeyRow, Caller, Company, CompanyRow, Contact, ContactRow, FieldDefinition,
    FieldDefinitionChange, FieldRow, IdentifierMatch, LAST_USED_RESOLUTION_MS, ListPosition,
    NewApiKey, NewFieldDefinition, Store, StoreError, UniqueMember, contacts_from_rows, now_ms,
    options_json,
};
use crate::domain::contact::{ContactMembers, ContactPatch, FieldWrite, NewContact};
use crate::domain::{ContactIdentifier, FieldKey};

/// How long a statement waits for another connection's (or process's) write lock before
/// failing: long enough to ride out a burst, short enough that a stuck writer surfaces.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Readers run in parallel under WAL; more connections than cores buys nothing.
const READ_CONNECTIONS: u32 = 8;

/// The SQLite store.
///
/// SQLite admits one writer at a time, so writes go through a pool of one connection and
/// start with `BEGIN IMMEDIATE`: a transaction that reads before it writes then never fails
/// to upgrade its lock (SQLITE_BUSY_SNAPSHOT), and another process (the admin CLI) waits
/// on the busy timeout instead of failing.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    readers: SqlitePool,
    writer: SqlitePool,
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
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await?;
        sqlx::migrate!("./migrations/sqlite").run(&writer).await?;
        let readers = SqlitePoolOptions::new()
            .max_connections(READ_CONNECTIONS)
            .connect_with(options.read_only(true))
            .await?;
        Ok(Self { readers, writer })
    }
}

/// The SQL reading contacts with their values, for the rows a `WHERE` clause on `c` picks.
fn contact_select(filter: &str) -> String {
    format!(
        "SELECT c.id, c.email, c.phone_number, c.ext_id, c.first_name, c.last_name, \
                c.created_at, c.updated_at, f.key AS field_key, \
                f.display_name AS field_display_name, f.field_type, v.value AS field_value \
         FROM contacts c \
         LEFT JOIN contact_field_values v ON v.contact_id = c.id \
         LEFT JOIN custom_fields f ON f.id = v.field_id \
         WHERE c.company_id = ?1 AND {filter} \
         ORDER BY c.created_at DESC, c.id DESC, f.key"
    )
}

/// Reads one contact by any identifier form, on the given connection.
async fn fetch_contact(
    conn: &mut SqliteConnection,
    company_id: Uuid,
    id: &ContactIdentifier,
) -> Result<Option<Contact>, StoreError> {
    let rows: Vec<ContactRow> = match IdentifierMatch::from(id) {
        IdentifierMatch::Id(uuid) => {
            sqlx::query_as(&contact_select("c.id = ?2"))
                .bind(company_id)
                .bind(uuid)
                .fetch_all(&mut *conn)
                .await?
        }
        IdentifierMatch::Text { column, value } => {
            sqlx::query_as(&contact_select(&format!("c.{column} = ?2")))
                .bind(company_id)
                .bind(value)
                .fetch_all(&mut *conn)
                .await?
        }
    };
    Ok(contacts_from_rows(rows)?.pop())
}

/// Turns a unique-index violation into [`StoreError::DuplicateContact`], naming the contact
/// that holds the value (read on the same connection, inside the failed transaction).
async fn duplicate_contact(
    conn: &mut SqliteConnection,
    company_id: Uuid,
    members: &ContactMembers,
    error: sqlx::Error,
) -> StoreError {
    // SQLite names the columns of the violated index: "UNIQUE constraint failed:
    // contacts.company_id, contacts.email".
    let member = match &error {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            let message = db.message();
            [
                UniqueMember::Email,
                UniqueMember::PhoneNumber,
                UniqueMember::ExtId,
            ]
            .into_iter()
            .find(|member| message.contains(&format!("contacts.{}", member.as_str())))
        }
        _ => None,
    };
    let Some(member) = member else {
        return StoreError::from(error);
    };
    let value = match member {
        UniqueMember::Email => &members.email,
        UniqueMember::PhoneNumber => &members.phone_number,
        UniqueMember::ExtId => &members.ext_id,
    };
    let conflicting_contact_id = sqlx::query_scalar(&format!(
        "SELECT id FROM contacts WHERE company_id = ?1 AND {} = ?2",
        member.as_str()
    ))
    .bind(company_id)
    .bind(value)
    .fetch_optional(conn)
    .await
    .ok()
    .flatten();
    StoreError::DuplicateContact {
        member,
        conflicting_contact_id,
    }
}

/// Maps a foreign-key violation on a value write to [`StoreError::FieldDeleted`].
fn field_write_error(error: sqlx::Error) -> StoreError {
    match &error {
        sqlx::Error::Database(db) if db.is_foreign_key_violation() => StoreError::FieldDeleted,
        _ => StoreError::from(error),
    }
}

async fn write_field_values(
    conn: &mut SqliteConnection,
    contact_id: Uuid,
    values: &[FieldWrite],
) -> Result<(), StoreError> {
    for write in values {
        sqlx::query(
            "INSERT INTO contact_field_values (contact_id, field_id, value) VALUES (?1, ?2, ?3) \
             ON CONFLICT (contact_id, field_id) DO UPDATE SET value = excluded.value",
        )
        .bind(contact_id)
        .bind(write.field_id)
        .bind(write.value.to_storage())
        .execute(&mut *conn)
        .await
        .map_err(field_write_error)?;
    }
    Ok(())
}

async fn fetch_field(
    conn: &mut SqliteConnection,
    company_id: Uuid,
    key: &FieldKey,
) -> Result<Option<FieldDefinition>, StoreError> {
    let row: Option<FieldRow> = sqlx::query_as(
        "SELECT id, key, display_name, field_type, options, created_at \
         FROM custom_fields WHERE company_id = ?1 AND key = ?2",
    )
    .bind(company_id)
    .bind(key.as_str())
    .fetch_optional(conn)
    .await?;
    row.map(FieldDefinition::try_from).transpose()
}

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.readers).await?;
        Ok(())
    }

    async fn create_company(&self, name: &str) -> Result<Company, StoreError> {
        let mut cursor_secret = [0u8; 32];
        rand::rng().fill_bytes(&mut cursor_secret);
        let row: CompanyRow = sqlx::query_as(
            "INSERT INTO companies (id, name, cursor_secret, created_at) VALUES (?1, ?2, ?3, ?4) \
             RETURNING id, name, created_at",
        )
        .bind(Uuid::now_v7())
        .bind(name)
        .bind(&cursor_secret[..])
        .bind(now_ms())
        .fetch_one(&self.writer)
        .await
        .map_err(|error| match &error {
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                StoreError::DuplicateCompanyName
            }
            _ => StoreError::from(error),
        })?;
        Ok(row.into())
    }

    async fn list_companies(&self) -> Result<Vec<Company>, StoreError> {
        let rows: Vec<CompanyRow> =
            sqlx::query_as("SELECT id, name, created_at FROM companies ORDER BY created_at, id")
                .fetch_all(&self.readers)
                .await?;
        Ok(rows.into_iter().map(Company::from).collect())
    }

    async fn find_company(&self, id_or_name: &str) -> Result<Option<Company>, StoreError> {
        let id = Uuid::try_parse(id_or_name).ok();
        let row: Option<CompanyRow> = sqlx::query_as(
            "SELECT id, name, created_at FROM companies WHERE id = ?1 OR name = ?2 \
             ORDER BY id = ?1 DESC LIMIT 1",
        )
        .bind(id)
        .bind(id_or_name)
        .fetch_optional(&self.readers)
        .await?;
        Ok(row.map(Company::from))
    }

    async fn create_api_key(
        &self,
        company_id: Uuid,
        key: &NewApiKey,
    ) -> Result<ApiKey, StoreError> {
        let row: ApiKeyRow = sqlx::query_as(
            "INSERT INTO api_keys (id, company_id, name, prefix, key_hash, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
             RETURNING id, company_id, name, prefix, created_at, last_used_at, revoked_at",
        )
        .bind(Uuid::now_v7())
        .bind(company_id)
        .bind(&key.name)
        .bind(&key.prefix)
        .bind(&key.key_hash[..])
        .bind(now_ms())
        .fetch_one(&self.writer)
        .await?;
        Ok(row.into())
    }

    async fn list_api_keys(&self, company_id: Uuid) -> Result<Vec<ApiKey>, StoreError> {
        let rows: Vec<ApiKeyRow> = sqlx::query_as(
            "SELECT id, company_id, name, prefix, created_at, last_used_at, revoked_at \
             FROM api_keys WHERE company_id = ?1 ORDER BY created_at, id",
        )
        .bind(company_id)
        .fetch_all(&self.readers)
        .await?;
        Ok(rows.into_iter().map(ApiKey::from).collect())
    }

    async fn revoke_api_key(&self, key_id: Uuid) -> Result<ApiKey, StoreError> {
        let row: Option<ApiKeyRow> = sqlx::query_as(
            "UPDATE api_keys SET revoked_at = coalesce(revoked_at, ?2) WHERE id = ?1 \
             RETURNING id, company_id, name, prefix, created_at, last_used_at, revoked_at",
        )
        .bind(key_id)
        .bind(now_ms())
        .fetch_optional(&self.writer)
        .await?;
        row.map(ApiKey::from).ok_or(StoreError::NotFound)
    }

    async fn authenticate(&self, key_hash: &[u8; 32]) -> Result<Option<Caller>, StoreError> {
        let found: Option<(Uuid, Uuid, Vec<u8>, Option<i64>)> = sqlx::query_as(
            "SELECT k.id, k.company_id, c.cursor_secret, k.last_used_at \
             FROM api_keys k JOIN companies c ON c.id = k.company_id \
             WHERE k.key_hash = ?1 AND k.revoked_at IS NULL",
        )
        .bind(&key_hash[..])
        .fetch_optional(&self.readers)
        .await?;
        let Some((key_id, company_id, cursor_secret, last_used_at)) = found else {
            return Ok(None);
        };
        let now = now_ms();
        if last_used_at.is_none_or(|at| now - at >= LAST_USED_RESOLUTION_MS) {
            sqlx::query("UPDATE api_keys SET last_used_at = ?2 WHERE id = ?1")
                .bind(key_id)
                .bind(now)
                .execute(&self.writer)
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
        let row: FieldRow = sqlx::query_as(
            "INSERT INTO custom_fields (id, company_id, key, display_name, field_type, options, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
             RETURNING id, key, display_name, field_type, options, created_at",
        )
        .bind(Uuid::now_v7())
        .bind(company_id)
        .bind(field.key.as_str())
        .bind(field.display_name.as_str())
        .bind(field.field_type.as_str())
        .bind(field.options.as_ref().map(options_json))
        .bind(now_ms())
        .fetch_one(&self.writer)
        .await
        .map_err(|error| match &error {
            sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::DuplicateFieldKey,
            _ => StoreError::from(error),
        })?;
        row.try_into()
    }

    async fn list_fields(&self, company_id: Uuid) -> Result<Vec<FieldDefinition>, StoreError> {
        let rows: Vec<FieldRow> = sqlx::query_as(
            "SELECT id, key, display_name, field_type, options, created_at \
             FROM custom_fields WHERE company_id = ?1 ORDER BY key",
        )
        .bind(company_id)
        .fetch_all(&self.readers)
        .await?;
        rows.into_iter().map(FieldDefinition::try_from).collect()
    }

    async fn get_field(
        &self,
        company_id: Uuid,
        key: &FieldKey,
    ) -> Result<Option<FieldDefinition>, StoreError> {
        fetch_field(&mut *self.readers.acquire().await?, company_id, key).await
    }

    async fn update_field(
        &self,
        company_id: Uuid,
        key: &FieldKey,
        change: &FieldDefinitionChange,
    ) -> Result<FieldDefinition, StoreError> {
        let row: Option<FieldRow> = sqlx::query_as(
            "UPDATE custom_fields SET display_name = coalesce(?3, display_name), \
                    options = coalesce(?4, options) \
             WHERE company_id = ?1 AND key = ?2 \
             RETURNING id, key, display_name, field_type, options, created_at",
        )
        .bind(company_id)
        .bind(key.as_str())
        .bind(change.display_name.as_ref().map(|name| name.as_str()))
        .bind(change.options.as_ref().map(options_json))
        .fetch_optional(&self.writer)
        .await?;
        row.ok_or(StoreError::NotFound)?.try_into()
    }

    async fn delete_field(&self, company_id: Uuid, key: &FieldKey) -> Result<(), StoreError> {
        let deleted = sqlx::query("DELETE FROM custom_fields WHERE company_id = ?1 AND key = ?2")
            .bind(company_id)
            .bind(key.as_str())
            .execute(&self.writer)
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
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let id = Uuid::now_v7();
        let now = now_ms();
        let members = &contact.members;
        let inserted = sqlx::query(
            "INSERT INTO contacts (id, company_id, email, phone_number, ext_id, first_name, \
                                   last_name, created_at, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)",
        )
        .bind(id)
        .bind(company_id)
        .bind(&members.email)
        .bind(&members.phone_number)
        .bind(&members.ext_id)
        .bind(&members.first_name)
        .bind(&members.last_name)
        .bind(now)
        .execute(&mut *tx)
        .await;
        if let Err(error) = inserted {
            return Err(duplicate_contact(&mut tx, company_id, members, error).await);
        }
        write_field_values(&mut tx, id, &contact.field_values).await?;
        let created = fetch_contact(&mut tx, company_id, &ContactIdentifier::Id(id))
            .await?
            .ok_or(StoreError::NotFound)?;
        tx.commit().await?;
        Ok(created)
    }

    async fn get_contact(
        &self,
        company_id: Uuid,
        id: &ContactIdentifier,
    ) -> Result<Option<Contact>, StoreError> {
        fetch_contact(&mut *self.readers.acquire().await?, company_id, id).await
    }

    async fn list_contacts(
        &self,
        company_id: Uuid,
        after: Option<ListPosition>,
        limit: u32,
    ) -> Result<Vec<Contact>, StoreError> {
        // Without a cursor, start after a position newer than any contact can be, so one
        // query (and one cached statement) serves every page.
        let after = after.unwrap_or(ListPosition {
            created_at_ms: i64::MAX,
            id: Uuid::max(),
        });
        let rows: Vec<ContactRow> = sqlx::query_as(
            "SELECT c.id, c.email, c.phone_number, c.ext_id, c.first_name, c.last_name, \
                    c.created_at, c.updated_at, f.key AS field_key, \
                    f.display_name AS field_display_name, f.field_type, v.value AS field_value \
             FROM (SELECT * FROM contacts \
                   WHERE company_id = ?1 AND (created_at, id) < (?2, ?3) \
                   ORDER BY created_at DESC, id DESC LIMIT ?4) c \
             LEFT JOIN contact_field_values v ON v.contact_id = c.id \
             LEFT JOIN custom_fields f ON f.id = v.field_id \
             ORDER BY c.created_at DESC, c.id DESC, f.key",
        )
        .bind(company_id)
        .bind(after.created_at_ms)
        .bind(after.id)
        .bind(i64::from(limit))
        .fetch_all(&self.readers)
        .await?;
        contacts_from_rows(rows)
    }

    async fn update_contact(
        &self,
        company_id: Uuid,
        id: &ContactIdentifier,
        patch: &ContactPatch,
    ) -> Result<Contact, StoreError> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let current = fetch_contact(&mut tx, company_id, id)
            .await?
            .ok_or(StoreError::NotFound)?;
        let members = patch.apply(&current.members)?;
        let stored: HashMap<Uuid, String> = sqlx::query_as(
            "SELECT field_id, value FROM contact_field_values WHERE contact_id = ?1",
        )
        .bind(current.id)
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .collect();
        let values_change = patch
            .set_values
            .iter()
            .any(|write| stored.get(&write.field_id) != Some(&write.value.to_storage()))
            || patch
                .remove_fields
                .iter()
                .any(|field| stored.contains_key(field));
        if members == current.members && !values_change {
            return Ok(current);
        }
        let updated = sqlx::query(
            "UPDATE contacts SET email = ?2, phone_number = ?3, ext_id = ?4, first_name = ?5, \
                                 last_name = ?6, updated_at = ?7 \
             WHERE id = ?1",
        )
        .bind(current.id)
        .bind(&members.email)
        .bind(&members.phone_number)
        .bind(&members.ext_id)
        .bind(&members.first_name)
        .bind(&members.last_name)
        .bind(now_ms().max(current.updated_at.timestamp_millis()))
        .execute(&mut *tx)
        .await;
        if let Err(error) = updated {
            return Err(duplicate_contact(&mut tx, company_id, &members, error).await);
        }
        write_field_values(&mut tx, current.id, &patch.set_values).await?;
        for field_id in &patch.remove_fields {
            sqlx::query("DELETE FROM contact_field_values WHERE contact_id = ?1 AND field_id = ?2")
                .bind(current.id)
                .bind(field_id)
                .execute(&mut *tx)
                .await?;
        }
        let updated = fetch_contact(&mut tx, company_id, &ContactIdentifier::Id(current.id))
            .await?
            .ok_or(StoreError::NotFound)?;
        tx.commit().await?;
        Ok(updated)
    }

    async fn delete_contact(
        &self,
        company_id: Uuid,
        id: &ContactIdentifier,
    ) -> Result<Uuid, StoreError> {
        let deleted: Option<Uuid> = match IdentifierMatch::from(id) {
            IdentifierMatch::Id(uuid) => {
                sqlx::query_scalar(
                    "DELETE FROM contacts WHERE company_id = ?1 AND id = ?2 RETURNING id",
                )
                .bind(company_id)
                .bind(uuid)
                .fetch_optional(&self.writer)
                .await?
            }
            IdentifierMatch::Text { column, value } => {
                sqlx::query_scalar(&format!(
                    "DELETE FROM contacts WHERE company_id = ?1 AND {column} = ?2 RETURNING id"
                ))
                .bind(company_id)
                .bind(value)
                .fetch_optional(&self.writer)
                .await?
            }
        };
        deleted.ok_or(StoreError::NotFound)
    }
}
