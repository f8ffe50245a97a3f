//! A database that a newer contactd migrated further is refused by an older one, with a
//! sentence naming both schema versions and the way back
//! (docs/reference.md#16-running-in-production).

use crate::helpers::{Backend, TestDatabase, admin, contactd, contract_test};

contract_test!(an_older_contactd_refuses_a_database_a_newer_one_migrated);

async fn an_older_contactd_refuses_a_database_a_newer_one_migrated() {
    let database = TestDatabase::create(Backend::current()).await;
    admin(&database.url, &["migrate"]);
    // What a newer contactd leaves behind: a migration this binary does not have.
    database
        .execute(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, \
             execution_time) VALUES (9999, 'from a newer contactd', true, '', 0)",
        )
        .await;
    let known = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/sqlite"))
        .expect("the migrations")
        .filter(|entry| {
            entry
                .as_ref()
                .is_ok_and(|entry| entry.path().extension().is_some_and(|ext| ext == "sql"))
        })
        .count();
    for command in [&["migrate"][..], &["company", "list"]] {
        let output = contactd()
            .args(command)
            .env("CONTACTD_DATABASE_URL", &database.url)
            .output()
            .expect("run contactd");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{command:?} ran: {stderr}");
        assert!(
            stderr.contains("schema is at version 9999")
                && stderr.contains(&format!("versions up to {known} only"))
                && stderr.contains("restore the backup taken before the upgrade"),
            "{command:?}: {stderr}"
        );
    }
}
