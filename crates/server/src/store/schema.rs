//! The schema version: what this binary's migrations reach, and the refusal of a database
//! that a newer contactd has already migrated further
//! (docs/reference.md#16-running-in-production).
//!
//! Both backends migrate with sqlx, from trees that hold the same file names, so this is
//! written once for both.

use sqlx::migrate::{MigrateError, Migrator};

use super::StoreError;

/// The highest schema version `migrator` knows.
pub fn known_version(migrator: &Migrator) -> i64 {
    migrator
        .iter()
        .map(|migration| migration.version)
        .max()
        .unwrap_or(0)
}

/// The lowest of the `applied` migrations that `migrator` does not know: a database
/// holding one was migrated by a newer contactd, as sqlx's `VersionMissing` says.
pub fn unknown_migration(migrator: &Migrator, applied: &[i64]) -> Option<i64> {
    applied
        .iter()
        .copied()
        .filter(|version| !migrator.iter().any(|known| known.version == *version))
        .min()
}

/// Why migrating with `migrator` failed. A database holding a migration this binary does
/// not know was migrated by a newer contactd: the binary must not run on it, and the
/// operator is told what to do instead of sqlx's bare "migration N was previously applied
/// but is missing".
pub fn migration_failed(migrator: &Migrator, error: MigrateError) -> StoreError {
    match error {
        MigrateError::VersionMissing(database) => StoreError::SchemaTooNew {
            database,
            binary: known_version(migrator),
        },
        other => StoreError::Migration(other.to_string()),
    }
}
