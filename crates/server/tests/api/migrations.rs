//! The two migration trees, SQLite's and PostgreSQL's, hold the same file names, so that every
//! change to the schema is made on both backends under one name (`migrations/README.md`).

use std::collections::BTreeSet;
use std::path::Path;

/// The names of the files in one backend's migration tree.
fn migration_files(backend: &str) -> BTreeSet<String> {
    let tree = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(backend);
    std::fs::read_dir(&tree)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", tree.display()))
        .map(|entry| {
            let name = entry.expect("a directory entry").file_name();
            name.into_string()
                .unwrap_or_else(|name| panic!("a file name that is not UTF-8: {name:?}"))
        })
        .collect()
}

#[test]
fn both_migration_trees_hold_the_same_file_names() {
    let sqlite = migration_files("sqlite");
    let postgres = migration_files("postgres");
    assert!(!sqlite.is_empty(), "no migrations at all");
    let only_sqlite: Vec<_> = sqlite.difference(&postgres).collect();
    let only_postgres: Vec<_> = postgres.difference(&sqlite).collect();
    assert!(
        only_sqlite.is_empty() && only_postgres.is_empty(),
        "only in migrations/sqlite: {only_sqlite:?}; only in migrations/postgres: {only_postgres:?}"
    );
}
