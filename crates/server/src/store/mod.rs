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
mod events;
mod export;
mod interface;
mod model;
#[cfg(test)]
mod plans;
mod postgres;
mod rows;
mod schema;
mod sql;
mod sqlite;

pub use backend::Backend;
pub use checks::check_stored_data;
pub use database::Database;
pub use error::{DatabaseError, DatabaseFailure, StoreError};
pub use events::retention_cutoff;
pub use interface::Store;
pub use model::*;
pub use postgres::{PostgresBackend, PostgresSettings, is_retryable, retrying};
pub use rows::{duration_ms, now_ms};
pub use schema::version as schema_version;
pub use sqlite::{SqliteBackend, backup};
