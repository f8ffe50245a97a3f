//! Why a store operation failed, in terms no driver owns: each backend turns its driver's
//! errors into a [`DatabaseError`] where it calls the driver, so nothing above the backends
//! names one.

use uuid::Uuid;

use super::model::{ContactVersion, UniqueMember};
use crate::domain::{FieldKey, Invalid};

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
    /// The company has as many webhook endpoints as it may.
    #[error("the company has the most webhook endpoints it may have")]
    TooManyWebhooks,
    /// A feed cursor points before what retention has kept: events after it are gone.
    #[error("the cursor is older than the event retention")]
    CursorExpired,
    /// The contact is no longer at a version the write's precondition accepts: it changed
    /// since the client read it. Nothing was written.
    #[error("the contact has changed: it is at version {}", .current.as_str())]
    VersionChanged { current: ContactVersion },
    /// A custom field used by the write was deleted before the write committed.
    #[error("a custom field was deleted while this request was using it")]
    FieldDeleted,
    /// The result of the write would break a domain rule (e.g. no identifier left).
    #[error(transparent)]
    Invalid(#[from] Invalid),
    /// The database refused a statement, failed, or could not be reached.
    #[error("database error: {0}")]
    Database(#[from] DatabaseError),
    /// A batch of writes could not be committed (the disk is full, say); nothing of it
    /// was stored.
    #[error("the write could not be committed: {0}")]
    WriteFailed(String),
    /// Migrations could not be applied.
    #[error("migration error: {0}")]
    Migration(String),
    /// The database holds a migration newer than this binary knows: a newer contactd
    /// upgraded it.
    #[error(
        "the database's schema is at version {database} or later, but this contactd knows \
         versions up to {binary} only: a newer contactd has upgraded it. Run that newer \
         contactd, or restore the backup taken before the upgrade to go back to this one"
    )]
    SchemaTooNew { database: i64, binary: i64 },
    /// The store itself broke down: a thread it runs on stopped, or a row it wrote reads
    /// back wrong.
    #[error("the store failed: {0}")]
    Internal(String),
}

/// A failure the database reported, sorted into what the store decides on.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct DatabaseError {
    pub failure: DatabaseFailure,
    /// The driver's own words, for the log.
    pub message: String,
}

/// What kind of failure a [`DatabaseError`] is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseFailure {
    /// A unique index refused the write. `index` names it as the database does:
    /// PostgreSQL by the index's name, SQLite by its columns (`contacts.company_id,
    /// contacts.email`); `UniqueMember::of_index` reads either.
    UniqueViolation { index: String },
    /// A foreign key refused the write: the row it refers to is gone.
    ForeignKeyViolation,
    /// A text the database cannot hold (PostgreSQL: NUL, or a character its encoding
    /// lacks). Every input is checked for these before it reaches a store, so this is a
    /// last line: such a write is the client's to fix (a 400), never a 500.
    UnstorableText,
    /// The database is out of reach or too busy to answer now (a 503, worth a retry).
    Unavailable,
    /// The transaction lost to a concurrent one (a serialization failure or a deadlock)
    /// and may succeed if run again.
    Contention,
    /// Anything else.
    Other,
}

impl DatabaseError {
    pub fn new(failure: DatabaseFailure, message: impl ToString) -> Self {
        Self {
            failure,
            message: message.to_string(),
        }
    }
}

impl StoreError {
    /// What kind of database failure this is, if it is one.
    pub fn database_failure(&self) -> Option<&DatabaseFailure> {
        match self {
            Self::Database(error) => Some(&error.failure),
            _ => None,
        }
    }

    /// Whether the database refused a text it cannot hold ([`DatabaseFailure::UnstorableText`]).
    pub fn is_unstorable_text(&self) -> bool {
        self.database_failure() == Some(&DatabaseFailure::UnstorableText)
    }

    /// Whether the database is out of reach or too busy to answer now (a 503, worth a
    /// retry), rather than failing.
    pub fn is_unavailable(&self) -> bool {
        self.database_failure() == Some(&DatabaseFailure::Unavailable)
    }

    /// Whether the transaction lost to a concurrent one and is worth running again.
    pub fn is_contention(&self) -> bool {
        self.database_failure() == Some(&DatabaseFailure::Contention)
    }

    /// Whether a unique index refused the write.
    pub fn is_unique_violation(&self) -> bool {
        matches!(
            self.database_failure(),
            Some(DatabaseFailure::UniqueViolation { .. })
        )
    }

    /// A decoding failure of a row the store wrote itself.
    pub fn unreadable(what: impl std::fmt::Display) -> Self {
        Self::Internal(format!("a stored row cannot be read: {what}"))
    }
}

/// Maps a unique violation to `duplicate`, leaving any other failure as it is.
pub fn unique_or(duplicate: StoreError) -> impl FnOnce(StoreError) -> StoreError {
    move |error| {
        if error.is_unique_violation() {
            duplicate
        } else {
            error
        }
    }
}
