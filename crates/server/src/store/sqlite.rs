//! The embedded SQLite store: WAL, `synchronous=FULL`, foreign keys, one writer.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use rand::RngCore;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{ConnectOptions, SqliteConnection, SqlitePool};
use uuid::Uuid;

use super::group_commit::GroupCommit;
use super::{
    ApiKey, ApiKeyRow, Caller, Company, CompanyRow, Contact, ContactRow, FieldDefinition,
    FieldDefinitionChange, FieldRow, IdentifierMatch, LAST_USED_RESOLUTION_MS, ListPosition,
    NewApiKey, NewFieldDefinition, Store, StoreError, UniqueMember, contacts_from_rows,
    field_write_error, now_ms, options_json, sql, unique_or, unique_value, values_change,
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
/// SQLite admits one writer at a time, so every write goes to the one connection of the
/// [`GroupCommit`] writer, which runs concurrent writes in one `BEGIN IMMEDIATE`
/// transaction (so a write that reads first never fails to upgrade its lock, and another
/// process such as the admin CLI waits on the busy timeout instead of failing) and one
/// fsync. Reads run in parallel on their own read-only connections.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    readers: SqlitePool,
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
        let mut writer = options.connect().await?;
        sqlx::migrate!("./migrations/sqlite")
            .run(&mut writer)
            .await?;
        let readers = SqlitePoolOptions::new()
            .max_connections(READ_CONNECTIONS)
            .connect_with(options.read_only(true))
            .await?;
        Ok(Self {
            readers,
            writer: GroupCommit::start(writer),
        })
    }
}

/// Reads one contact by any identifier form, on the given connection.
async fn fetch_contact(
    conn: &mut SqliteConnection,
    company_id: Uuid,
    id: &ContactIdentifier,
) -> Result<Option<Contact>, StoreError> {
    let id = IdentifierMatch::from(id);
    let query = sqlx::query_as(sql::contact_by_identifier(&id)).bind(company_id);
    let query = match id {
        IdentifierMatch::Id(uuid) => query.bind(uuid),
        IdentifierMatch::Unique { value, .. } => query.bind(value),
    };
    let rows: Vec<ContactRow> = query.fetch_all(conn).await?;
    Ok(contacts_from_rows(rows)?.pop())
}

/// Turns a unique-index violation into [`StoreError::DuplicateContact`], naming the contact
/// that holds the value (read on the same connection, inside the failed transaction:
/// SQLite undoes only the failed statement).
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
            .find(|member| message.ends_with(&format!("contacts.{}", member.as_str())))
        }
        _ => None,
    };
    let Some(member) = member else {
        return StoreError::from(error);
    };
    let conflicting_contact_id = sqlx::query_scalar(sql::contact_holding(member))
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
    conn: &mut SqliteConnection,
    contact_id: Uuid,
    values: &[FieldWrite],
) -> Result<(), StoreError> {
    for write in values {
        sqlx::query(sql::UPSERT_VALUE)
            .bind(contact_id)
            .bind(write.field_id)
            .bind(write.value.to_storage())
            .execute(&mut *conn)
            .await
            .map_err(field_write_error)?;
    }
    Ok(())
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
        let name = name.to_owned();
        let row: CompanyRow = self
            .writer
            .write(move |conn| {
                Box::pin(async move {
                    sqlx::query_as(sql::INSERT_COMPANY)
                        .bind(Uuid::now_v7())
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
        let rows: Vec<CompanyRow> = sqlx::query_as(sql::LIST_COMPANIES)
            .fetch_all(&self.readers)
            .await?;
        Ok(rows.into_iter().map(Company::from).collect())
    }

    async fn find_company(&self, id_or_name: &str) -> Result<Option<Company>, StoreError> {
        let row: Option<CompanyRow> = sqlx::query_as(sql::FIND_COMPANY)
            .bind(Uuid::try_parse(id_or_name).ok())
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
        let key = key.clone();
        let row: ApiKeyRow = self
            .writer
            .write(move |conn| {
                Box::pin(async move {
                    Ok(sqlx::query_as(sql::INSERT_KEY)
                        .bind(Uuid::now_v7())
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
        let rows: Vec<ApiKeyRow> = sqlx::query_as(sql::LIST_KEYS)
            .bind(company_id)
            .fetch_all(&self.readers)
            .await?;
        Ok(rows.into_iter().map(ApiKey::from).collect())
    }

    async fn revoke_api_key(&self, key_id: Uuid) -> Result<ApiKey, StoreError> {
        let row: Option<ApiKeyRow> = self
            .writer
            .write(move |conn| {
                Box::pin(async move {
                    Ok(sqlx::query_as(sql::REVOKE_KEY)
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
        let found: Option<(Uuid, Uuid, Vec<u8>, Option<i64>)> = sqlx::query_as(sql::AUTHENTICATE)
            .bind(&key_hash[..])
            .fetch_optional(&self.readers)
            .await?;
        let Some((key_id, company_id, cursor_secret, last_used_at)) = found else {
            return Ok(None);
        };
        let now = now_ms();
        if last_used_at.is_none_or(|at| now - at >= LAST_USED_RESOLUTION_MS) {
            self.writer
                .write(move |conn| {
                    Box::pin(async move {
                        sqlx::query(sql::TOUCH_KEY)
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
        let field = field.clone();
        let row: FieldRow = self
            .writer
            .write(move |conn| {
                Box::pin(async move {
                    sqlx::query_as(sql::INSERT_FIELD)
                        .bind(Uuid::now_v7())
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
        let rows: Vec<FieldRow> = sqlx::query_as(sql::LIST_FIELDS)
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
        let row: Option<FieldRow> = sqlx::query_as(sql::GET_FIELD)
            .bind(company_id)
            .bind(key.as_str())
            .fetch_optional(&self.readers)
            .await?;
        row.map(FieldDefinition::try_from).transpose()
    }

    async fn update_field(
        &self,
        company_id: Uuid,
        key: &FieldKey,
        change: &FieldDefinitionChange,
    ) -> Result<FieldDefinition, StoreError> {
        let (key, change) = (key.clone(), change.clone());
        let row: Option<FieldRow> = self
            .writer
            .write(move |conn| {
                Box::pin(async move {
                    Ok(sqlx::query_as(sql::UPDATE_FIELD)
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
        let key = key.clone();
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    let deleted = sqlx::query(sql::DELETE_FIELD)
                        .bind(company_id)
                        .bind(key.as_str())
                        .execute(conn)
                        .await?;
                    if deleted.rows_affected() == 0 {
                        return Err(StoreError::NotFound);
                    }
                    Ok(())
                })
            })
            .await
    }

    async fn create_contact(
        &self,
        company_id: Uuid,
        contact: &NewContact,
    ) -> Result<Contact, StoreError> {
        let contact = contact.clone();
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    let id = Uuid::now_v7();
                    let members = &contact.members;
                    let inserted = sqlx::query(sql::INSERT_CONTACT)
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
                        return Err(duplicate_contact(conn, company_id, members, error).await);
                    }
                    write_field_values(conn, id, &contact.field_values).await?;
                    fetch_contact(conn, company_id, &ContactIdentifier::Id(id))
                        .await?
                        .ok_or(StoreError::NotFound)
                })
            })
            .await
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
        let after = after.unwrap_or(ListPosition::START);
        let rows: Vec<ContactRow> = sqlx::query_as(sql::LIST_CONTACTS)
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
        let (id, patch) = (id.clone(), patch.clone());
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    let current = fetch_contact(conn, company_id, &id)
                        .await?
                        .ok_or(StoreError::NotFound)?;
                    let members = patch.apply(&current.members)?;
                    if members == current.members && !values_change(&patch, &current.custom_fields)
                    {
                        return Ok(current);
                    }
                    let updated = sqlx::query(sql::UPDATE_CONTACT)
                        .bind(current.id)
                        .bind(&members.email)
                        .bind(&members.phone_number)
                        .bind(&members.ext_id)
                        .bind(&members.first_name)
                        .bind(&members.last_name)
                        .bind(now_ms().max(current.updated_at.timestamp_millis()))
                        .execute(&mut *conn)
                        .await;
                    if let Err(error) = updated {
                        return Err(duplicate_contact(conn, company_id, &members, error).await);
                    }
                    write_field_values(conn, current.id, &patch.set_values).await?;
                    for field_id in &patch.remove_fields {
                        sqlx::query(sql::DELETE_VALUE)
                            .bind(current.id)
                            .bind(field_id)
                            .execute(&mut *conn)
                            .await?;
                    }
                    fetch_contact(conn, company_id, &ContactIdentifier::Id(current.id))
                        .await?
                        .ok_or(StoreError::NotFound)
                })
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
                Box::pin(async move {
                    let id = IdentifierMatch::from(&id);
                    let query = sqlx::query_scalar(sql::delete_contact(&id)).bind(company_id);
                    let query = match id {
                        IdentifierMatch::Id(uuid) => query.bind(uuid),
                        IdentifierMatch::Unique { value, .. } => query.bind(value),
                    };
                    let deleted: Option<Uuid> = query.fetch_optional(conn).await?;
                    deleted.ok_or(StoreError::NotFound)
                })
            })
            .await
    }
}
