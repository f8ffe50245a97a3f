//! The store: every read and write contactd makes, on SQLite or PostgreSQL.
//!
//! Nothing here knows about HTTP. Every write is one short transaction, uniqueness is
//! enforced by the database's unique indexes (never by a read-then-write check), and ids are
//! UUIDs generated here, so the same contract holds on every backend.
//!
//! The interface ([`Store`]) is implemented once ([`Database`], in `database.rs`) over any
//! [`Backend`]: the statements (`sql.rs`), the decoding of rows (`rows.rs`) and the plan of
//! each contact write (`contact_plan.rs`) are shared, and a backend only provides
//! connections and the transactions operations run in (`sqlite/`, `postgres/`).

mod backend;
mod checks;
mod connection;
mod contact_plan;
mod contact_writes;
mod database;
mod error;
mod export;
mod interface;
mod model;
mod postgres;
mod rows;
mod sql;
mod sqlite;

use std::sync::Arc;

pub use backend::Backend;
pub use database::Database;
pub use error::{DatabaseError, DatabaseFailure, StoreError};
pub use interface::Store;
pub use model::*;
pub use postgres::{PostgresBackend, PostgresSettings, is_retryable, retrying};
pub use sqlite::SqliteBackend;

/// Opens the database a URL names (`sqlite://PATH`, created if missing, or
/// `postgres://…`), applies its migrations, then the start-up data checks.
pub async fn connect(
    database_url: &str,
    postgres: &PostgresSettings,
) -> Result<Arc<dyn Store>, StoreError> {
    let store: Arc<dyn Store> = if database_url.starts_with("sqlite:") {
        Arc::new(Database::new(SqliteBackend::open(database_url).await?))
    } else if database_url.starts_with("postgres:") || database_url.starts_with("postgresql:") {
        Arc::new(Database::new(
            PostgresBackend::connect(database_url, postgres).await?,
        ))
    } else {
        return Err(StoreError::Migration(
            "the database URL must start with sqlite:// or postgres://".into(),
        ));
    };
    checks::run(store.as_ref()).await?;
    Ok(store)
}
