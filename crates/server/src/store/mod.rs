//! The storage interface: every read and write contactd makes, one implementation per
//! database, picked from the URL scheme at start-up.
//!
//! Nothing here knows about HTTP. Every write is one short transaction, uniqueness is
//! enforced by the database's unique indexes (never by a read-then-write check), and ids are
//! UUIDs generated here, so the same contract holds on every backend.

mod checks;
mod group_commit;
mod postgres;
mod sql;
mod sqlite;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use contactd_api::FieldType;
use tokio::sync::mpsc::error::SendTimeoutError;
use uuid::Uuid;

use crate::domain::contact::{ContactMembers, ContactPatch, NewContact};
use crate::domain::{
    ContactIdentifier, DisplayName, Email, FieldKey, FieldValue, Invalid, SelectOptions,
};

pub use postgres::{PostgresStore, is_retryable, retrying};
pub use sqlite::SqliteStore;

/// A tenant (§1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Company {
    pub id: Uuid,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

/// The company an API key acts for, as the bearer middleware learns it.
#[derive(Debug, Clone)]
pub struct Caller {
    pub company_id: Uuid,
    /// Signs this company's list cursors, so that no other company's cursor is accepted.
    pub cursor_secret: Vec<u8>,
}

/// An unrevoked key found by its hash: the company it acts for, and when it was last used.
#[derive(Debug, Clone)]
pub struct KeyUse {
    pub key_id: Uuid,
    pub caller: Caller,
    /// Milliseconds since the epoch; `None` for a key never used.
    pub last_used_at: Option<i64>,
}

/// An API key as listed: never the secret, which only its creator ever sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub id: Uuid,
    pub company_id: Uuid,
    pub name: Option<String>,
    /// The non-secret start of the key, to tell keys apart.
    pub prefix: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// What the store keeps of a new API key: its hash and display prefix, never the key.
#[derive(Debug, Clone)]
pub struct NewApiKey {
    pub name: Option<String>,
    pub prefix: String,
    pub key_hash: [u8; 32],
}

/// A dashboard user: a person who logs in to act for one company.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: Uuid,
    pub company_id: Uuid,
    pub email: String,
    pub created_at: DateTime<Utc>,
}

/// What a login checks of a user: the password hash.
#[derive(Debug, Clone)]
pub struct UserCredentials {
    pub id: Uuid,
    /// An argon2id PHC string.
    pub password_hash: String,
}

/// Whether a login may check its password, as [`Store::reserve_login_attempt`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginAttempt {
    /// The check is counted: go ahead.
    Granted,
    /// The email had its checks for this window, which ends at `until`.
    Refused { until: DateTime<Utc> },
}

impl LoginAttempt {
    /// A refusal for a window that opened at `started_ms` (none: it ended just now).
    fn refused(started_ms: Option<i64>, window: std::time::Duration) -> Self {
        let until = started_ms.map_or_else(Utc::now, |started| {
            timestamp(started) + chrono::TimeDelta::from_std(window).unwrap_or_default()
        });
        Self::Refused { until }
    }
}

/// A dashboard session to store: only the hash of the cookie's token is kept.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub token_hash: [u8; 32],
    pub user_id: Uuid,
    /// What every form of the session must send back.
    pub csrf_token: String,
    pub expires_at: DateTime<Utc>,
}

/// The user a live session belongs to, with what the dashboard needs to act for them.
#[derive(Debug, Clone)]
pub struct SessionUser {
    pub user_id: Uuid,
    pub email: String,
    pub company_name: String,
    pub csrf_token: String,
    /// The company the user acts for, as an API key would.
    pub caller: Caller,
}

/// A custom field definition (§7).
#[derive(Debug, Clone, PartialEq)]
pub struct FieldDefinition {
    pub id: Uuid,
    pub key: FieldKey,
    pub display_name: String,
    pub field_type: FieldType,
    /// The options of a select field; empty for every other type.
    pub options: Vec<String>,
    pub created_at: DateTime<Utc>,
}

/// A custom field definition to create; `options` is `Some` exactly for select fields.
#[derive(Debug, Clone)]
pub struct NewFieldDefinition {
    pub key: FieldKey,
    pub display_name: DisplayName,
    pub field_type: FieldType,
    pub options: Option<SelectOptions>,
}

/// A change to a definition: a new display name and/or more options.
#[derive(Debug, Clone, Default)]
pub struct FieldDefinitionChange {
    pub display_name: Option<DisplayName>,
    pub options: Option<OptionsChange>,
}

/// How a change grows a select field's options. Either is judged against the options
/// stored when the change is written, inside the write's transaction, so that no change
/// can drop an option another one added meanwhile (`docs/robustness.md#concurrent-admins-no-lost-updates`).
#[derive(Debug, Clone)]
pub enum OptionsChange {
    /// The full new list, as the API's PATCH sends it: refused
    /// ([`StoreError::OptionsLeftOut`]) unless it holds every stored option.
    Replace(SelectOptions),
    /// Options to add after the stored ones, as the dashboard's form sends them.
    Add(SelectOptions),
}

impl FieldDefinitionChange {
    /// The definition `stored` becomes with this change. Called by each store with the
    /// definition as it reads it inside the write's transaction (the row locked), so the
    /// check and the write are one step.
    fn apply_to(&self, mut stored: FieldDefinition) -> Result<FieldDefinition, StoreError> {
        if let Some(name) = &self.display_name {
            stored.display_name = name.as_str().to_owned();
        }
        let Some(change) = &self.options else {
            return Ok(stored);
        };
        if stored.field_type != FieldType::Select {
            return Err(StoreError::Invalid(Invalid::new(
                "invalid_options",
                "options are only allowed on select fields",
            )));
        }
        stored.options = match change {
            OptionsChange::Replace(list) => {
                let missing: Vec<String> = stored
                    .options
                    .iter()
                    .filter(|option| !list.contains(option))
                    .cloned()
                    .collect();
                if !missing.is_empty() {
                    return Err(StoreError::OptionsLeftOut {
                        key: stored.key,
                        missing,
                    });
                }
                list.as_slice().to_vec()
            }
            // Parsed again as a whole: the sum must still be at most 500 distinct options.
            OptionsChange::Add(added) => SelectOptions::parse(
                stored
                    .options
                    .iter()
                    .chain(added.as_slice())
                    .cloned()
                    .collect(),
            )?
            .into_vec(),
        };
        Ok(stored)
    }
}

/// A contact as read back (§3).
#[derive(Debug, Clone, PartialEq)]
pub struct Contact {
    pub id: Uuid,
    pub members: ContactMembers,
    /// Only the fields holding a value, ordered by key.
    pub custom_fields: Vec<ContactFieldValue>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One custom field value of a contact, with what its definition says about it.
#[derive(Debug, Clone, PartialEq)]
pub struct ContactFieldValue {
    /// The definition the value belongs to.
    pub field_id: Uuid,
    pub key: String,
    pub display_name: String,
    pub field_type: FieldType,
    pub value: FieldValue,
}

/// Where a page of the newest-first contact list starts: after this contact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListPosition {
    pub created_at_ms: i64,
    pub id: Uuid,
}

impl ListPosition {
    /// Where the first page starts: after a position newer than any contact can be, so one
    /// statement serves every page.
    pub const START: Self = Self {
        created_at_ms: i64::MAX,
        id: Uuid::max(),
    };

    /// The position of a contact: the next page starts after it.
    pub fn of(contact: &Contact) -> Self {
        Self {
            created_at_ms: contact.created_at.timestamp_millis(),
            id: contact.id,
        }
    }
}

/// One item of a batch upsert: the contact its match member names, and the changes.
#[derive(Debug, Clone, PartialEq)]
pub struct ContactUpsert {
    /// The match member's value, as the item gives it: an existing contact holding it is
    /// updated, else a contact is created.
    pub key: ContactIdentifier,
    /// Applied to the existing contact, or to an empty one to create it.
    pub patch: ContactPatch,
}

/// A contact a batch upsert wrote, and whether it created it.
#[derive(Debug, Clone, PartialEq)]
pub struct Upserted {
    pub contact: Contact,
    pub created: bool,
}

/// The outcome of each item of a bulk write, in item order.
pub type ItemResults<T> = Vec<Result<T, StoreError>>;

/// Contacts an export hands over at a time: few enough that a page is small in memory,
/// enough that handing over costs little.
const EXPORT_PAGE: usize = 500;

/// A company's contacts as of one moment: its definitions, then its contacts a page at a
/// time, newest first. A reader holds the snapshot open, reading one ordered query row by
/// row, until the last page is taken or `pages` is dropped; at most two pages wait in
/// memory, however many contacts there are.
#[derive(Debug)]
pub struct Export {
    /// The definitions as of the snapshot, ordered by key.
    pub fields: Vec<FieldDefinition>,
    /// How many contacts the snapshot holds.
    pub total: u64,
    /// Pages of contacts; it ends after the last page, or after an error.
    pub pages: tokio::sync::mpsc::Receiver<ExportPage>,
}

/// A page of an export, or why it could not be read.
pub type ExportPage = Result<Vec<Contact>, StoreError>;

/// The channel an export's reader sends its pages on; a page not taken within `stall` ends
/// the export.
fn export_channel(stall: Duration) -> (PageSender, tokio::sync::mpsc::Receiver<ExportPage>) {
    let (sender, receiver) = tokio::sync::mpsc::channel(2);
    (PageSender { sender, stall }, receiver)
}

/// The reading end's side of an export's pages.
#[derive(Debug)]
struct PageSender {
    sender: tokio::sync::mpsc::Sender<ExportPage>,
    stall: Duration,
}

impl PageSender {
    /// Hands a page over; `false` when the export is over, because the client went away or
    /// took nothing for `stall`. An export that stops early sends fewer contacts than its
    /// `total`, which the HTTP layer turns into a broken transfer, never a short file (see
    /// `docs/robustness.md#timeouts-and-connection-limits`).
    async fn hand_over(&self, page: ExportPage) -> bool {
        match self.sender.send_timeout(page, self.stall).await {
            Ok(()) => true,
            Err(SendTimeoutError::Timeout(_)) => {
                tracing::warn!(
                    stall = ?self.stall,
                    "an export was abandoned: its client took nothing for too long"
                );
                false
            }
            Err(SendTimeoutError::Closed(_)) => false,
        }
    }
}

/// The contact members that must be unique within a company.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UniqueMember {
    Email,
    PhoneNumber,
    ExtId,
}

impl UniqueMember {
    /// The member's name in requests, responses and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::PhoneNumber => "phone_number",
            Self::ExtId => "ext_id",
        }
    }
}

/// A table that stores email addresses in their normal form (`Email::parse`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmailTable {
    /// Contacts: an email is unique within a company.
    Contacts,
    /// Dashboard users: an email is unique across the server.
    Users,
}

impl EmailTable {
    /// The error of a write that would give the table's email to a second row; a
    /// contact's holder is looked up after the failed write.
    fn duplicate(self) -> StoreError {
        match self {
            Self::Contacts => StoreError::DuplicateContact {
                member: UniqueMember::Email,
                conflicting_contact_id: None,
            },
            Self::Users => StoreError::DuplicateUserEmail,
        }
    }
}

/// A stored email, as the start-up data check reads it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct StoredEmail {
    /// The contact or user holding it.
    pub id: Uuid,
    pub company_id: Uuid,
    /// As stored, which may be the normal form of an older version.
    pub email: String,
}

/// A custom field whose key is reserved, stored before keys were.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ReservedKeyField {
    pub company_id: Uuid,
    pub company_name: String,
    pub key: String,
}

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The write would give two contacts of one company the same identifier.
    #[error("another contact already has this {}", .member.as_str())]
    DuplicateContact {
        member: UniqueMember,
        /// The contact holding it, when it could be read after the failed write.
        conflicting_contact_id: Option<Uuid>,
    },
    /// A custom field with this key already exists in the company.
    #[error("a custom field with this key already exists")]
    DuplicateFieldKey,
    /// A company with this name already exists.
    #[error("a company with this name already exists")]
    DuplicateCompanyName,
    /// A dashboard user with this email already exists (in any company).
    #[error("a user with this email already exists")]
    DuplicateUserEmail,
    /// The contact, field, key or company named does not exist (in the caller's company).
    #[error("not found")]
    NotFound,
    /// A select field's new option list leaves out options stored when it was written:
    /// options are never removed, so another change added them meanwhile, or the list is
    /// wrong; either way the caller must send the full list again.
    #[error("the options of {key} leave out stored options")]
    OptionsLeftOut {
        key: FieldKey,
        /// The stored options the list lacks, in stored order.
        missing: Vec<String>,
    },
    /// A custom field used by the write was deleted before the write committed.
    #[error("a custom field was deleted while this request was using it")]
    FieldDeleted,
    /// The result of the write would break a domain rule (e.g. no identifier left).
    #[error(transparent)]
    Invalid(#[from] Invalid),
    /// The database failed or could not be reached.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// The embedded SQLite database failed.
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A batch of writes could not be committed (the disk is full, say); nothing of it
    /// was stored.
    #[error("the write could not be committed: {0}")]
    WriteFailed(String),
    /// Migrations could not be applied.
    #[error("migration error: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
}

impl StoreError {
    /// Whether the database refused a text it cannot hold (PostgreSQL: NUL, or a character
    /// its encoding lacks). Every input is checked for these before it reaches a store, so
    /// this is a last line: such a write is the client's to fix (a 400), never a 500.
    pub fn is_unstorable_text(&self) -> bool {
        matches!(self, Self::Database(sqlx::Error::Database(db))
            if matches!(db.code().as_deref(), Some("22021" | "22P05")))
    }

    /// Whether the database is out of reach or too busy to answer now (a 503, worth a
    /// retry), rather than failing.
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::Database(
                sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed,
            ) => true,
            Self::Sqlite(rusqlite::Error::SqliteFailure(failure, _)) => matches!(
                failure.code,
                rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
            ),
            _ => false,
        }
    }
}

/// Every read and write contactd makes. Each company-scoped method takes the company id
/// first, and nothing of another company is ever visible through it.
#[async_trait]
pub trait Store: Send + Sync + std::fmt::Debug + 'static {
    /// Checks that the database answers.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Creates a company.
    async fn create_company(&self, name: &str) -> Result<Company, StoreError>;
    /// Lists every company, oldest first.
    async fn list_companies(&self) -> Result<Vec<Company>, StoreError>;
    /// Finds a company by its id or, failing that, by its name.
    async fn find_company(&self, id_or_name: &str) -> Result<Option<Company>, StoreError>;

    /// Stores a new API key of a company.
    async fn create_api_key(&self, company_id: Uuid, key: &NewApiKey)
    -> Result<ApiKey, StoreError>;
    /// Lists a company's keys, revoked ones included, oldest first.
    async fn list_api_keys(&self, company_id: Uuid) -> Result<Vec<ApiKey>, StoreError>;
    /// Revokes a key; revoking a revoked key changes nothing.
    async fn revoke_api_key(&self, key_id: Uuid) -> Result<ApiKey, StoreError>;
    /// Finds an unrevoked key by its hash, with the company it acts for. A read only: the
    /// key's use is recorded apart, with [`Store::touch_api_key`], so that no request waits
    /// for a write to be let in.
    async fn authenticate(&self, key_hash: &[u8; 32]) -> Result<Option<KeyUse>, StoreError>;
    /// Records that a key was used at `at` (milliseconds since the epoch).
    async fn touch_api_key(&self, key_id: Uuid, at: i64) -> Result<(), StoreError>;

    /// Creates a dashboard user of a company; the email is unique across companies.
    async fn create_user(
        &self,
        company_id: Uuid,
        email: &Email,
        password_hash: &str,
    ) -> Result<User, StoreError>;
    /// Lists a company's dashboard users, oldest first.
    async fn list_users(&self, company_id: Uuid) -> Result<Vec<User>, StoreError>;
    /// Gives a user a new password: clears their email's login attempts and ends every
    /// session.
    async fn set_password(&self, email: &Email, password_hash: &str) -> Result<(), StoreError>;
    /// Deletes a user and their sessions.
    async fn delete_user(&self, email: &Email) -> Result<(), StoreError>;
    /// Finds what a login checks of the user with this email.
    async fn user_credentials(&self, email: &Email) -> Result<Option<UserCredentials>, StoreError>;
    /// Counts a password check of a login with this email, whether or not a user has it,
    /// unless the email already had `limit` checks in its current window (opened by the
    /// first check, `window` long): then nothing is counted and the login is refused.
    /// Atomic however many logins arrive at once. Ended windows are deleted on the way,
    /// so the table holds only the emails tried in the last `window`.
    async fn reserve_login_attempt(
        &self,
        email: &Email,
        limit: u32,
        window: std::time::Duration,
    ) -> Result<LoginAttempt, StoreError>;
    /// Stores a session after a successful login, which also clears the login attempts
    /// of the user's email; sessions past their expiry are deleted on the way.
    async fn create_session(&self, session: &NewSession) -> Result<(), StoreError>;
    /// Finds the user of an unexpired session by the hash of its token.
    async fn find_session(&self, token_hash: &[u8; 32]) -> Result<Option<SessionUser>, StoreError>;
    /// Ends a session; ending an unknown one changes nothing.
    async fn delete_session(&self, token_hash: &[u8; 32]) -> Result<(), StoreError>;

    /// Creates a custom field definition.
    async fn create_field(
        &self,
        company_id: Uuid,
        field: &NewFieldDefinition,
    ) -> Result<FieldDefinition, StoreError>;
    /// Lists a company's definitions, ordered by key.
    async fn list_fields(&self, company_id: Uuid) -> Result<Vec<FieldDefinition>, StoreError>;
    /// Finds one definition by key.
    async fn get_field(
        &self,
        company_id: Uuid,
        key: &FieldKey,
    ) -> Result<Option<FieldDefinition>, StoreError>;
    /// Renames a definition or grows its options, judged against the definition as it is
    /// stored when the change is written ([`OptionsChange`]).
    async fn update_field(
        &self,
        company_id: Uuid,
        key: &FieldKey,
        change: &FieldDefinitionChange,
    ) -> Result<FieldDefinition, StoreError>;
    /// Deletes a definition and every value of it.
    async fn delete_field(&self, company_id: Uuid, key: &FieldKey) -> Result<(), StoreError>;
    /// Counts the contacts holding a value of a field.
    async fn count_field_values(&self, company_id: Uuid, key: &FieldKey)
    -> Result<u64, StoreError>;

    /// Creates a contact.
    async fn create_contact(
        &self,
        company_id: Uuid,
        contact: &NewContact,
    ) -> Result<Contact, StoreError>;
    /// Finds a contact by any identifier form.
    async fn get_contact(
        &self,
        company_id: Uuid,
        id: &ContactIdentifier,
    ) -> Result<Option<Contact>, StoreError>;
    /// Lists up to `limit` contacts, newest first, after `after` when given.
    async fn list_contacts(
        &self,
        company_id: Uuid,
        after: Option<ListPosition>,
        limit: u32,
    ) -> Result<Vec<Contact>, StoreError>;
    /// Lists up to `limit` contacts, newest first, whose "first last" name contains `text`
    /// (case-insensitive as the database's `lower()` is: ASCII on SQLite).
    async fn search_contacts_by_name(
        &self,
        company_id: Uuid,
        text: &str,
        limit: u32,
    ) -> Result<Vec<Contact>, StoreError>;
    /// Applies an update atomically; an update that changes nothing writes nothing.
    async fn update_contact(
        &self,
        company_id: Uuid,
        id: &ContactIdentifier,
        patch: &ContactPatch,
    ) -> Result<Contact, StoreError>;
    /// Deletes a contact, returning its id.
    async fn delete_contact(
        &self,
        company_id: Uuid,
        id: &ContactIdentifier,
    ) -> Result<Uuid, StoreError>;

    /// Creates each contact on its own, returning the new ids: an item that fails (a
    /// duplicate, also of an earlier item) leaves nothing and never fails another. The outer
    /// error means nothing at all was stored.
    async fn create_contacts(
        &self,
        company_id: Uuid,
        contacts: Vec<NewContact>,
    ) -> Result<ItemResults<Uuid>, StoreError>;
    /// Updates the contact each item's key names, or creates it; each item on its own, as
    /// [`Store::create_contacts`]. Racing upserts of one key end as one contact.
    async fn upsert_contacts(
        &self,
        company_id: Uuid,
        items: Vec<ContactUpsert>,
    ) -> Result<ItemResults<Upserted>, StoreError>;
    /// Starts reading every contact of a company from one snapshot, which is released when
    /// the last page is taken, when `pages` is dropped, or when a page waits `stall` to be
    /// taken.
    async fn export_contacts(
        &self,
        company_id: Uuid,
        stall: Duration,
    ) -> Result<Export, StoreError>;

    /// Lists the custom fields, of every company, whose key is reserved.
    async fn fields_with_reserved_keys(&self) -> Result<Vec<ReservedKeyField>, StoreError>;
    /// The version a start-up data check last completed for, if it ever did.
    async fn data_check_version(&self, check: &str) -> Result<Option<i64>, StoreError>;
    /// Records that a start-up data check completed for a version.
    async fn record_data_check(&self, check: &str, version: i64) -> Result<(), StoreError>;
    /// Reads up to `limit` stored emails of a table, every company's, after the row
    /// `after` in id order (from the first with [`Uuid::nil`]).
    async fn stored_emails(
        &self,
        table: EmailTable,
        after: Uuid,
        limit: u32,
    ) -> Result<Vec<StoredEmail>, StoreError>;
    /// Gives a row a new email if it still holds `stored`: `false` when it no longer
    /// does; [`StoreError::DuplicateContact`] or [`StoreError::DuplicateUserEmail`] when
    /// another row (of the company, for a contact) already holds the new one.
    async fn rewrite_email(
        &self,
        table: EmailTable,
        stored: &StoredEmail,
        email: &Email,
    ) -> Result<bool, StoreError>;
}

/// How the PostgreSQL store uses its server; the SQLite store has no such choices.
#[derive(Debug, Clone)]
pub struct PostgresSettings {
    /// Connections this process keeps open at most.
    pub max_connections: u32,
    /// How long a request waits for a connection before failing (503), so an unreachable
    /// database is reported at once instead of piling requests up.
    pub acquire_timeout: std::time::Duration,
    /// Statements are sent unnamed, never prepared and kept, as PgBouncer's transaction
    /// mode requires.
    pub pgbouncer: bool,
}

/// Opens the database a URL names (`sqlite://PATH`, created if missing, or
/// `postgres://…`), applies its migrations, then the start-up data checks.
pub async fn connect(
    database_url: &str,
    postgres: &PostgresSettings,
) -> Result<Arc<dyn Store>, StoreError> {
    let store: Arc<dyn Store> = if database_url.starts_with("sqlite:") {
        Arc::new(SqliteStore::connect(database_url).await?)
    } else if database_url.starts_with("postgres:") || database_url.starts_with("postgresql:") {
        Arc::new(PostgresStore::connect(database_url, postgres).await?)
    } else {
        return Err(StoreError::Database(sqlx::Error::Configuration(
            "the database URL must start with sqlite:// or postgres://".into(),
        )));
    };
    checks::run(store.as_ref()).await?;
    Ok(store)
}

/// How the database matches a contact identifier: the id column, or a unique member's.
#[derive(Debug, Clone, Copy)]
enum IdentifierMatch<'a> {
    Id(Uuid),
    Unique {
        member: UniqueMember,
        value: &'a str,
    },
}

impl IdentifierMatch<'_> {
    /// The unique member matched on, `None` for the id column.
    fn column(&self) -> Option<UniqueMember> {
        match self {
            Self::Id(_) => None,
            Self::Unique { member, .. } => Some(*member),
        }
    }
}

impl<'a> From<&'a ContactIdentifier> for IdentifierMatch<'a> {
    fn from(id: &'a ContactIdentifier) -> Self {
        let (member, value) = match id {
            ContactIdentifier::Id(uuid) => return Self::Id(*uuid),
            ContactIdentifier::ExtId(ext_id) => (UniqueMember::ExtId, ext_id.as_str()),
            ContactIdentifier::Email(email) => (UniqueMember::Email, email.as_str()),
            ContactIdentifier::PhoneNumber(phone) => (UniqueMember::PhoneNumber, phone.as_str()),
        };
        Self::Unique { member, value }
    }
}

/// One row of the contact read query: a contact joined with at most one of its values.
#[derive(Debug, sqlx::FromRow)]
struct ContactRow {
    id: Uuid,
    email: Option<String>,
    phone_number: Option<String>,
    ext_id: Option<String>,
    first_name: Option<String>,
    last_name: Option<String>,
    created_at: i64,
    updated_at: i64,
    field_id: Option<Uuid>,
    field_key: Option<String>,
    field_display_name: Option<String>,
    field_type: Option<String>,
    field_value: Option<String>,
}

/// Folds the rows of the contact read query (ordered by contact, then key) into contacts.
fn contacts_from_rows(rows: Vec<ContactRow>) -> Result<Vec<Contact>, StoreError> {
    let mut contacts = Vec::new();
    for row in rows {
        add_row(&mut contacts, row)?;
    }
    Ok(contacts)
}

/// Adds a row of the contact read query to `contacts`: a value of the last contact, or a
/// new contact.
fn add_row(contacts: &mut Vec<Contact>, row: ContactRow) -> Result<(), StoreError> {
    let field = match (
        row.field_id,
        row.field_key,
        row.field_display_name,
        row.field_type,
        row.field_value,
    ) {
        (Some(field_id), Some(key), Some(display_name), Some(field_type), Some(value)) => {
            let field_type = parse_field_type(&field_type)?;
            Some(ContactFieldValue {
                field_id,
                value: FieldValue::from_storage(field_type, &value)?,
                key,
                display_name,
                field_type,
            })
        }
        _ => None,
    };
    match contacts.last_mut() {
        Some(contact) if contact.id == row.id => contact.custom_fields.extend(field),
        _ => contacts.push(Contact {
            id: row.id,
            members: ContactMembers {
                email: row.email,
                phone_number: row.phone_number,
                ext_id: row.ext_id,
                first_name: row.first_name,
                last_name: row.last_name,
            },
            custom_fields: field.into_iter().collect(),
            created_at: timestamp(row.created_at),
            updated_at: timestamp(row.updated_at),
        }),
    }
    Ok(())
}

/// Gathers the rows of an export's read, as they stream in, into pages of whole contacts.
#[derive(Debug, Default)]
struct ExportPages {
    page: Vec<Contact>,
}

impl ExportPages {
    /// Adds a row; returns a full page once the row of a contact after it arrives (the
    /// last contact of the page is only whole then).
    fn push(&mut self, row: ContactRow) -> Result<Option<Vec<Contact>>, StoreError> {
        let full = self.page.len() >= EXPORT_PAGE
            && self.page.last().is_some_and(|last| last.id != row.id);
        let page = full.then(|| std::mem::replace(&mut self.page, Vec::with_capacity(EXPORT_PAGE)));
        add_row(&mut self.page, row)?;
        Ok(page)
    }

    /// The last page, when there is one.
    fn finish(self) -> Option<Vec<Contact>> {
        (!self.page.is_empty()).then_some(self.page)
    }
}

/// Whether an update changes any of a contact's identifiers.
fn identifiers_change(before: &ContactMembers, after: &ContactMembers) -> bool {
    (&before.email, &before.phone_number, &before.ext_id)
        != (&after.email, &after.phone_number, &after.ext_id)
}

/// Whether an update writes any custom field value of a contact holding `stored`: one set
/// to something new, or one removed that is there.
fn values_change(patch: &ContactPatch, stored: &[ContactFieldValue]) -> bool {
    let stored_value = |field_id: &Uuid| {
        stored
            .iter()
            .find(|field| field.field_id == *field_id)
            .map(|field| &field.value)
    };
    patch
        .set_values
        .iter()
        .any(|write| stored_value(&write.field_id) != Some(&write.value))
        || patch
            .remove_fields
            .iter()
            .any(|field_id| stored_value(field_id).is_some())
}

/// What the stores need to know of a failed statement, whichever driver ran it.
trait ConstraintViolation: Into<StoreError> {
    fn is_unique_violation(&self) -> bool;
    fn is_foreign_key_violation(&self) -> bool;
}

impl ConstraintViolation for sqlx::Error {
    fn is_unique_violation(&self) -> bool {
        matches!(self, Self::Database(db) if db.is_unique_violation())
    }

    fn is_foreign_key_violation(&self) -> bool {
        matches!(self, Self::Database(db) if db.is_foreign_key_violation())
    }
}

impl ConstraintViolation for rusqlite::Error {
    fn is_unique_violation(&self) -> bool {
        use rusqlite::ffi::{SQLITE_CONSTRAINT_PRIMARYKEY, SQLITE_CONSTRAINT_UNIQUE};
        matches!(self, Self::SqliteFailure(failure, _)
            if matches!(failure.extended_code, SQLITE_CONSTRAINT_UNIQUE | SQLITE_CONSTRAINT_PRIMARYKEY))
    }

    fn is_foreign_key_violation(&self) -> bool {
        matches!(self, Self::SqliteFailure(failure, _)
            if failure.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY)
    }
}

/// Maps a foreign-key violation on a value write to [`StoreError::FieldDeleted`].
fn field_write_error(error: impl ConstraintViolation) -> StoreError {
    if error.is_foreign_key_violation() {
        StoreError::FieldDeleted
    } else {
        error.into()
    }
}

/// Maps a unique violation to `duplicate`, any other failure to a database error.
fn unique_or<E: ConstraintViolation>(duplicate: StoreError) -> impl FnOnce(E) -> StoreError {
    move |error| {
        if error.is_unique_violation() {
            duplicate
        } else {
            error.into()
        }
    }
}

/// The value a contact's members give a unique member.
fn unique_value(members: &ContactMembers, member: UniqueMember) -> Option<&str> {
    match member {
        UniqueMember::Email => members.email.as_deref(),
        UniqueMember::PhoneNumber => members.phone_number.as_deref(),
        UniqueMember::ExtId => members.ext_id.as_deref(),
    }
}

/// One row of a definition read.
#[derive(Debug, sqlx::FromRow)]
struct FieldRow {
    id: Uuid,
    key: String,
    display_name: String,
    field_type: String,
    options: Option<String>,
    created_at: i64,
}

impl TryFrom<FieldRow> for FieldDefinition {
    type Error = StoreError;

    fn try_from(row: FieldRow) -> Result<Self, StoreError> {
        let options = match row.options {
            Some(json) => serde_json::from_str(&json)
                .map_err(|error| StoreError::Database(sqlx::Error::Decode(Box::new(error))))?,
            None => Vec::new(),
        };
        Ok(Self {
            id: row.id,
            key: FieldKey::parse(&row.key)?,
            display_name: row.display_name,
            field_type: parse_field_type(&row.field_type)?,
            options,
            created_at: timestamp(row.created_at),
        })
    }
}

/// The JSON array stored for a select field's options.
fn options_json(options: &[String]) -> String {
    serde_json::Value::from(options).to_string()
}

/// The JSON array stored for a definition's options, `NULL` for every type but select.
fn stored_options(field: &FieldDefinition) -> Option<String> {
    (field.field_type == FieldType::Select).then(|| options_json(&field.options))
}

fn parse_field_type(name: &str) -> Result<FieldType, StoreError> {
    FieldType::from_name(name).ok_or_else(|| {
        StoreError::Database(sqlx::Error::Decode(
            format!("unknown custom field type {name:?} in the database").into(),
        ))
    })
}

/// One row of an API key read.
#[derive(Debug, sqlx::FromRow)]
struct ApiKeyRow {
    id: Uuid,
    company_id: Uuid,
    name: Option<String>,
    prefix: String,
    created_at: i64,
    last_used_at: Option<i64>,
    revoked_at: Option<i64>,
}

impl From<ApiKeyRow> for ApiKey {
    fn from(row: ApiKeyRow) -> Self {
        Self {
            id: row.id,
            company_id: row.company_id,
            name: row.name,
            prefix: row.prefix,
            created_at: timestamp(row.created_at),
            last_used_at: row.last_used_at.map(timestamp),
            revoked_at: row.revoked_at.map(timestamp),
        }
    }
}

/// One row of a user read.
#[derive(Debug, sqlx::FromRow)]
struct UserRow {
    id: Uuid,
    company_id: Uuid,
    email: String,
    created_at: i64,
}

impl From<UserRow> for User {
    fn from(row: UserRow) -> Self {
        Self {
            id: row.id,
            company_id: row.company_id,
            email: row.email,
            created_at: timestamp(row.created_at),
        }
    }
}

/// One row of a login's credentials read.
#[derive(Debug, sqlx::FromRow)]
struct CredentialsRow {
    id: Uuid,
    password_hash: String,
}

impl From<CredentialsRow> for UserCredentials {
    fn from(row: CredentialsRow) -> Self {
        Self {
            id: row.id,
            password_hash: row.password_hash,
        }
    }
}

/// A login window's length in stored milliseconds.
fn window_ms(window: std::time::Duration) -> i64 {
    i64::try_from(window.as_millis()).unwrap_or(i64::MAX)
}

/// One row of a session read.
#[derive(Debug, sqlx::FromRow)]
struct SessionRow {
    user_id: Uuid,
    email: String,
    company_id: Uuid,
    company_name: String,
    cursor_secret: Vec<u8>,
    csrf_token: String,
}

impl From<SessionRow> for SessionUser {
    fn from(row: SessionRow) -> Self {
        Self {
            user_id: row.user_id,
            email: row.email,
            company_name: row.company_name,
            csrf_token: row.csrf_token,
            caller: Caller {
                company_id: row.company_id,
                cursor_secret: row.cursor_secret,
            },
        }
    }
}

/// The `LIKE` pattern of a name search: `text` anywhere, its wildcards taken literally.
fn contains_pattern(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// One row of a company read.
#[derive(Debug, sqlx::FromRow)]
struct CompanyRow {
    id: Uuid,
    name: String,
    created_at: i64,
}

impl From<CompanyRow> for Company {
    fn from(row: CompanyRow) -> Self {
        Self {
            id: row.id,
            name: row.name,
            created_at: timestamp(row.created_at),
        }
    }
}

/// The current time as stored: milliseconds since the Unix epoch.
fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

fn timestamp(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}
