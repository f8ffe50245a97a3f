//! The schema version: what this binary's migrations reach, and the refusal of a database
//! that a newer contactd has already migrated further
//! (docs/reference.md#16-running-in-production).
//!
//! Both backends migrate with sqlx, from trees that hold the same file names (a test checks
//! it), so this is written once for both and the schema version is one number.

use sqlx::migrate::{MigrateError, Migrator};

use super::StoreError;

/// SQLite's migrations, built into the binary.
pub static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");

/// PostgreSQL's migrations, built into the binary.
pub static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

/// The schema version this binary's migrations reach: what a database it has opened is at
/// (docs/reference.md#version).
pub fn version() -> i64 {
    SQLITE_MIGRATIONS
        .iter()
        .map(|migration| migration.version)
        .max()
        .unwrap_or(0)
}

/// The lowest of the `applied` migrations this binary does not know: a database holding
/// one was migrated by a newer contactd, as sqlx's `VersionMissing` says.
pub fn unknown_migration(applied: &[i64]) -> Option<i64> {
    applied
        .iter()
        .copied()
        .filter(|version| {
            !SQLITE_MIGRATIONS
                .iter()
                .any(|known| known.version == *version)
        })
        .min()
}

/// Why migrating failed. A database holding a migration this binary does
/// not know was migrated by a newer contactd: the binary must not run on it, and the
/// operator is told what to do instead of sqlx's bare "migration N was previously applied
/// but is missing".
pub fn migration_failed(error: MigrateError) -> StoreError {
    match error {
        MigrateError::VersionMissing(database) => StoreError::SchemaTooNew {
            database,
            binary: version(),
        },
        other => StoreError::Migration(other.to_string()),
    }
}
