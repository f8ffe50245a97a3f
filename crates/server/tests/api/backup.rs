//! Backup and restore (docs/reference.md#backup-and-restore), through the real binary: a
//! backup taken while writes go on holds every write answered before it, as one snapshot; a
//! restore refuses a database in use and any file it could not run, leaving the database
//! as it was, puts a whole copy in place, and a crash half way leaves the old database or
//! the new one; on PostgreSQL both give the pg_dump and pg_restore commands, which work.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use contactd_api::{
    Contact, CreateContact, CreateCustomField, CustomFieldChanges, CustomFieldInput, ExportFormat,
    FieldType, UpdateContact,
};
use contactd_client::{Client, Error};
use serde_json::json;
use sqlx::Connection;

use crate::helpers::{
    Backend, ServerProcess, TestDatabase, admin, admin_refused, admin_with_input, contactd,
};

/// Writers sending creates and PATCHes while the backup runs: more than the server's one
/// SQLite writer, so that batches of writes commit while the backup reads.
const WRITERS: usize = 8;

/// Contacts created before the writers start, so that the copy takes long enough for
/// writes to commit while it runs.
const SEEDED: usize = 10_000;

/// The number field every write sets, together with `first_name`.
const FIELD: &str = "seq";

/// A write a writer sent and had answered.
struct Answered {
    ext_id: String,
    /// The value it set; each writer's values grow with every write it sends.
    value: u64,
    answered_at: Instant,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_backup_under_writes_holds_every_write_answered_before_it_as_one_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let live = sqlite_url(&dir.path().join("live.db"));
    let key = company_with_key(&live);
    // Its writers send as fast as they can with one key: no rate limit.
    let server = ServerProcess::start(&live, &[("CONTACTD_RATE_LIMIT", "0")]);
    let client = Client::new(&server.base_url, &key);
    define_field(&client).await;
    seed(&client).await;

    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicUsize::new(0));
    let writers: Vec<_> = (0..WRITERS)
        .map(|writer| {
            tokio::spawn(write_until_stopped(
                client.clone(),
                format!("w{writer}"),
                stop.clone(),
                answered.clone(),
            ))
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(15);
    while answered.load(Ordering::SeqCst) < 100 {
        assert!(
            Instant::now() < deadline,
            "the writers got 100 answers in 15 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let backup = dir.path().join("backup.db");
    let answered_before = answered.load(Ordering::SeqCst);
    let started = Instant::now();
    let output = tokio::task::spawn_blocking({
        let (live, backup) = (live.clone(), backup.clone());
        move || run(&live, &["backup", "--to", path_arg(&backup)])
    })
    .await
    .unwrap();
    let took = started.elapsed();
    let answered_during = answered.load(Ordering::SeqCst) - answered_before;
    stop.store(true, Ordering::SeqCst);
    let mut logs = Vec::new();
    for writer in writers {
        logs.push(writer.await.expect("every write is answered"));
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("to {}", backup.display())) && stderr.contains("schema version"),
        "the backup says what it wrote: {stderr}"
    );
    assert!(
        answered_during > 0,
        "writes went on while the backup ran ({took:?})"
    );
    eprintln!("backup took {took:?}, {answered_during} writes answered meanwhile");
    assert_integrity_ok(&backup).await;

    let restored = sqlite_url(&dir.path().join("restored.db"));
    admin(&restored, &["restore", "--from", path_arg(&backup)]);
    let server = ServerProcess::start(&restored, &[]);
    let contacts = every_contact(&Client::new(&server.base_url, &key)).await;
    let seeded = contacts.keys().filter(|id| id.starts_with("seed-")).count();
    assert_eq!(seeded, SEEDED, "every seeded contact is in the backup");
    for log in &logs {
        assert_one_cut(log, &contacts, started);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_restore_is_refused_while_the_database_is_in_use_and_done_once_it_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let live_path = dir.path().join("live.db");
    let live = sqlite_url(&live_path);
    let key = company_with_key(&live);
    let server = ServerProcess::start(&live, &[]);
    let client = Client::new(&server.base_url, &key);
    define_field(&client).await;
    client
        .create_contact(&named("in-the-backup"))
        .await
        .unwrap();
    let backup = dir.path().join("backup.db");
    admin(&live, &["backup", "--to", path_arg(&backup)]);
    client
        .create_contact(&named("after-the-backup"))
        .await
        .unwrap();

    let refused = admin_refused(&live, &["restore", "--from", path_arg(&backup)]);
    assert!(
        refused.contains(&format!(
            "{} is in use by another process",
            live_path.display()
        )) && refused.contains("nothing was changed"),
        "{refused}"
    );
    // The server goes on with everything it had.
    client
        .get_contact("alt:ext_id:after-the-backup")
        .await
        .unwrap();
    client
        .create_contact(&named("after-the-refusal"))
        .await
        .unwrap();
    assert_eq!(server.terminate(), Some(0));

    // Any process that has the file open counts, not only a server: here, this test.
    let mut other = sqlx::SqliteConnection::connect(&live).await.unwrap();
    let _: i64 = sqlx::query_scalar("SELECT count(*) FROM contacts")
        .fetch_one(&mut other)
        .await
        .unwrap();
    let refused = admin_refused(&live, &["restore", "--from", path_arg(&backup)]);
    assert!(
        refused.contains("is in use by another process"),
        "{refused}"
    );
    other.close().await.unwrap();

    let output = run(&live, &["restore", "--from", path_arg(&backup)]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("restored {} into {live}", backup.display())),
        "{stderr}"
    );
    let server = ServerProcess::start(&live, &[]);
    let client = Client::new(&server.base_url, &key);
    client
        .get_contact("alt:ext_id:in-the-backup")
        .await
        .unwrap();
    for gone in ["after-the-backup", "after-the-refusal"] {
        assert_not_found(&client, gone).await;
    }
    client
        .create_contact(&named("after-the-restore"))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_restore_refuses_a_file_it_could_not_run_and_leaves_the_database_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let live_path = dir.path().join("live.db");
    let live = sqlite_url(&live_path);
    admin(&live, &["company", "create", "kept"]);
    let companies = admin(&live, &["company", "list"]);
    let good = dir.path().join("good.db");
    admin(&live, &["backup", "--to", path_arg(&good)]);

    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "these are not the pages of a database\n".repeat(200)).unwrap();
    let damaged = dir.path().join("damaged.db");
    let mut bytes = std::fs::read(&good).unwrap();
    let third = bytes.len() / 3;
    bytes[third..2 * third].fill(0xA5);
    std::fs::write(&damaged, bytes).unwrap();
    let foreign = dir.path().join("foreign.db");
    let mut conn = sqlx::SqliteConnection::connect(&format!("{}?mode=rwc", sqlite_url(&foreign)))
        .await
        .unwrap();
    sqlx::query("CREATE TABLE notes (body TEXT)")
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    let newer = dir.path().join("newer.db");
    std::fs::copy(&good, &newer).unwrap();
    let mut conn = sqlx::SqliteConnection::connect(&sqlite_url(&newer))
        .await
        .unwrap();
    // What a newer contactd leaves behind: a migration this binary does not have.
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, \
         execution_time) VALUES (9999, 'from a newer contactd', true, x'', 0)",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();
    let known = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/sqlite"))
        .unwrap()
        .filter(|entry| {
            entry
                .as_ref()
                .is_ok_and(|entry| entry.path().extension().is_some_and(|ext| ext == "sql"))
        })
        .count();
    let missing = dir.path().join("missing.db");

    let cases = [
        (&missing, "there is no file at".to_owned()),
        (&text, "is not a SQLite database".to_owned()),
        (&damaged, "is damaged".to_owned()),
        (
            &foreign,
            "is a SQLite database but not a contactd one".to_owned(),
        ),
        (
            &newer,
            format!(
                "is at version 9999 or later, but this contactd knows versions up to {known} only"
            ),
        ),
        (&live_path, "is the database itself".to_owned()),
    ];
    for (file, expected) in cases {
        let refused = admin_refused(&live, &["restore", "--from", path_arg(file)]);
        assert!(
            refused.contains(expected.as_str()) && refused.contains(&file.display().to_string()),
            "{}: {refused}",
            file.display()
        );
        assert_eq!(
            admin(&live, &["company", "list"]),
            companies,
            "refusing {} left the database as it was",
            file.display()
        );
    }

    // Nor is a SQLite database that is not contactd's replaced.
    let refused = admin_refused(
        &sqlite_url(&foreign),
        &["restore", "--from", path_arg(&good)],
    );
    assert!(
        refused.contains("is a SQLite database but not a contactd one"),
        "{refused}"
    );
}

#[test]
fn a_backup_replaces_an_existing_file_only_when_forced() {
    let dir = tempfile::tempdir().unwrap();
    let live_path = dir.path().join("live.db");
    let live = sqlite_url(&live_path);
    admin(&live, &["company", "create", "acme"]);
    let target = dir.path().join("backup.db");
    std::fs::write(&target, "keep me").unwrap();

    let refused = admin_refused(&live, &["backup", "--to", path_arg(&target)]);
    assert!(
        refused.contains("already exists") && refused.contains("--force"),
        "{refused}"
    );
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep me");

    admin(&live, &["backup", "--to", path_arg(&target), "--force"]);
    let restored = sqlite_url(&dir.path().join("restored.db"));
    admin(&restored, &["restore", "--from", path_arg(&target)]);
    assert_eq!(
        admin(&restored, &["company", "list"]),
        admin(&live, &["company", "list"])
    );

    let refused = admin_refused(&live, &["backup", "--to", path_arg(&live_path), "--force"]);
    assert!(refused.contains("is the database itself"), "{refused}");
    let missing = dir.path().join("missing.db");
    let refused = admin_refused(
        &sqlite_url(&missing),
        &["backup", "--to", path_arg(&dir.path().join("other.db"))],
    );
    assert!(refused.contains("there is no database at"), "{refused}");
    assert!(!missing.exists(), "a backup creates no database");
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !names
            .iter()
            .any(|name| name.starts_with(".contactd-backup-")),
        "no temporary file is left behind: {names:?}"
    );
}

#[test]
fn on_postgresql_backup_and_restore_give_the_pg_dump_and_pg_restore_commands() {
    let url = "postgres://contactd:s3cret@db.example:5432/contactd?sslmode=require";
    let refused = admin_refused(url, &["backup", "--to", "/srv/backups/contactd.dump"]);
    assert!(
        refused.contains(
            "pg_dump --format custom --file /srv/backups/contactd.dump \
             'postgres://contactd@db.example:5432/contactd?sslmode=require'"
        ),
        "{refused}"
    );
    let refused_restore = admin_refused(url, &["restore", "--from", "/srv/backups/contactd.dump"]);
    assert!(
        refused_restore.contains(
            "pg_restore --clean --if-exists --no-owner --single-transaction --dbname \
             'postgres://contactd@db.example:5432/contactd?sslmode=require' \
             /srv/backups/contactd.dump"
        ),
        "{refused_restore}"
    );
    for refused in [refused, refused_restore] {
        assert!(
            !refused.contains("s3cret") && refused.contains("PGPASSWORD"),
            "the password is left out, and where to give it is said: {refused}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(
    not(postgres_tests),
    ignore = "CONTACTD_TEST_POSTGRES_URL is not set: PostgreSQL tests are skipped"
)]
async fn the_pg_dump_and_pg_restore_commands_given_restore_a_working_database() {
    let original = TestDatabase::create(Backend::Postgres).await;
    let key = company_with_key(&original.url);
    let server = ServerProcess::start(&original.url, &[]);
    let client = Client::new(&server.base_url, &key);
    define_field(&client).await;
    client.create_contact(&named("in-the-dump")).await.unwrap();

    // pg_dump runs while the server does.
    let dir = tempfile::tempdir().unwrap();
    let dump = dir.path().join("contactd.dump");
    run_the_given_command(&admin_refused(
        &original.url,
        &["backup", "--to", path_arg(&dump)],
    ));
    client
        .create_contact(&named("after-the-dump"))
        .await
        .unwrap();
    assert_eq!(server.terminate(), Some(0));

    let copy = TestDatabase::create(Backend::Postgres).await;
    run_the_given_command(&admin_refused(
        &copy.url,
        &["restore", "--from", path_arg(&dump)],
    ));
    // In place too, over a database that changed since the dump.
    run_the_given_command(&admin_refused(
        &original.url,
        &["restore", "--from", path_arg(&dump)],
    ));
    for database in [&copy, &original] {
        let server = ServerProcess::start(&database.url, &[]);
        let client = Client::new(&server.base_url, &key);
        let contact = client.get_contact("alt:ext_id:in-the-dump").await.unwrap();
        assert_eq!(stored_value(&contact), 1);
        assert_not_found(&client, "after-the-dump").await;
        client
            .create_contact(&named("after-the-restore"))
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_restored_database_holds_the_companies_keys_users_and_fields_of_the_backup() {
    let dir = tempfile::tempdir().unwrap();
    let live = sqlite_url(&dir.path().join("live.db"));
    let key = company_with_key(&live);
    admin(&live, &["company", "create", "globex"]);
    admin(
        &live,
        &[
            "field",
            "create",
            "--company",
            "acme",
            "--key",
            "plan",
            "--type",
            "select",
            "--display-name",
            "Plan",
            "--option",
            "free",
            "--option",
            "pro",
        ],
    );
    admin_with_input(
        &live,
        &[
            "user",
            "create",
            "--company",
            "acme",
            "--email",
            "ann@example.com",
        ],
        "a long passphrase\n",
    );
    let server = ServerProcess::start(&live, &[]);
    let client = Client::new(&server.base_url, &key);
    let contact = client
        .create_contact(&CreateContact {
            ext_id: Some("crm-1".to_owned()),
            custom_fields: vec![CustomFieldInput {
                key: "plan".to_owned(),
                value: json!("pro"),
            }],
            ..CreateContact::default()
        })
        .await
        .unwrap();
    assert_eq!(server.terminate(), Some(0));

    let backup = dir.path().join("backup.db");
    admin(&live, &["backup", "--to", path_arg(&backup)]);
    let restored = sqlite_url(&dir.path().join("restored.db"));
    admin(&restored, &["restore", "--from", path_arg(&backup)]);
    for listing in [
        &["company", "list"][..],
        &["key", "list", "--company", "acme"],
        &["field", "list", "--company", "acme"],
        &["user", "list", "--company", "acme"],
    ] {
        assert_eq!(
            admin(&restored, listing),
            admin(&live, listing),
            "{listing:?}"
        );
    }
    let server = ServerProcess::start(&restored, &[]);
    let client = Client::new(&server.base_url, &key);
    assert_eq!(
        client.get_contact("alt:ext_id:crm-1").await.unwrap(),
        contact,
        "the key authenticates and the contact is whole"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_restore_killed_half_way_leaves_the_old_database_or_the_new_one() {
    let dir = tempfile::tempdir().unwrap();
    let source = sqlite_url(&dir.path().join("source.db"));
    let key = company_with_key(&source);
    let server = ServerProcess::start(&source, &[]);
    let client = Client::new(&server.base_url, &key);
    define_field(&client).await;
    seed(&client).await;
    assert_eq!(server.terminate(), Some(0));
    let backup = dir.path().join("backup.db");
    admin(&source, &["backup", "--to", path_arg(&backup)]);
    let old = dir.path().join("old.db");
    admin(&sqlite_url(&old), &["company", "create", "old"]);
    let old_companies = admin(&sqlite_url(&old), &["company", "list"]);
    let new_companies = admin(&source, &["company", "list"]);

    // A whole restore first, to know how long one takes; then kills spread across it.
    let target = dir.path().join("target.db");
    let target_url = sqlite_url(&target);
    let started = Instant::now();
    admin(&target_url, &["restore", "--from", path_arg(&backup)]);
    let whole = started.elapsed();
    let mut outcomes = HashSet::new();
    for tenth in 1..=9 {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", target.display()));
        }
        std::fs::copy(&old, &target).unwrap();
        let mut restore = contactd()
            .args(["restore", "--from", path_arg(&backup)])
            .env("CONTACTD_DATABASE_URL", &target_url)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(whole * tenth / 10);
        let _ = restore.kill();
        let finished = restore.wait().unwrap().success();
        assert_integrity_ok(&target).await;
        let companies = admin(&target_url, &["company", "list"]);
        assert!(
            companies == old_companies || companies == new_companies,
            "a restore killed at {tenth}/10 left neither database: {companies}"
        );
        outcomes.insert((finished, companies == new_companies));
    }
    eprintln!("a whole restore took {whole:?}; (finished, new) outcomes: {outcomes:?}");
}

/// A `sqlite://` URL for a file.
fn sqlite_url(path: &Path) -> String {
    format!("sqlite://{}", path.display())
}

fn path_arg(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 temp path")
}

/// Runs a command on a database, returning how it ended.
fn run(database_url: &str, args: &[&str]) -> Output {
    contactd()
        .args(args)
        .env("CONTACTD_DATABASE_URL", database_url)
        .output()
        .expect("run contactd")
}

/// Creates the company `acme` and an API key for it, returning the key.
fn company_with_key(database_url: &str) -> String {
    admin(database_url, &["company", "create", "acme"]);
    admin(database_url, &["key", "create", "--company", "acme"])
        .trim()
        .to_owned()
}

async fn define_field(client: &Client) {
    client
        .create_custom_field(&CreateCustomField {
            key: FIELD.to_owned(),
            display_name: "Sequence".to_owned(),
            field_type: FieldType::Number,
            options: None,
        })
        .await
        .expect("field created");
}

/// Creates `SEEDED` contacts, `seed-B-N`, a thousand a request.
async fn seed(client: &Client) {
    for batch in 0..SEEDED / 1000 {
        let contacts: Vec<CreateContact> = (0..1000)
            .map(|index| CreateContact {
                ext_id: Some(format!("seed-{batch}-{index}")),
                first_name: Some("v0".to_owned()),
                last_name: Some("a name long enough to give the copy some pages".repeat(4)),
                custom_fields: vec![value_of(0)],
                ..CreateContact::default()
            })
            .collect();
        let summary = client.create_contacts(&contacts).await.expect("seeded");
        assert!(summary.failed_contacts.is_empty(), "{summary:?}");
    }
}

/// A contact with an ext_id and the value 1.
fn named(ext_id: &str) -> CreateContact {
    CreateContact {
        ext_id: Some(ext_id.to_owned()),
        first_name: Some("v1".to_owned()),
        custom_fields: vec![value_of(1)],
        ..CreateContact::default()
    }
}

/// Creates contacts `{prefix}-0…` and patches random ones of them, one request at a time,
/// each with a larger value than the one before, until `stop`; returns every write, all of
/// which must be answered.
async fn write_until_stopped(
    client: Client,
    prefix: String,
    stop: Arc<AtomicBool>,
    answered: Arc<AtomicUsize>,
) -> Vec<Answered> {
    let mut created = 0;
    let mut log = Vec::new();
    for value in 1.. {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        // One write in three creates, so that most contacts are patched a few times.
        let (ext_id, contact) = if created == 0 || value % 3 == 0 {
            let ext_id = format!("{prefix}-{created}");
            created += 1;
            let contact = client
                .create_contact(&CreateContact {
                    custom_fields: vec![value_of(value)],
                    first_name: Some(format!("v{value}")),
                    ext_id: Some(ext_id.clone()),
                    ..CreateContact::default()
                })
                .await;
            (ext_id, contact)
        } else {
            let ext_id = format!("{prefix}-{}", rand::random_range(0..created));
            let update = UpdateContact {
                first_name: Some(Some(format!("v{value}"))),
                custom_fields: Some(CustomFieldChanges {
                    set: vec![value_of(value)],
                    remove: Vec::new(),
                }),
                ..UpdateContact::default()
            };
            let contact = client
                .update_contact_at(&format!("alt:ext_id:{ext_id}"), &update)
                .await;
            (ext_id, contact)
        };
        let contact = contact.unwrap_or_else(|error| panic!("{ext_id}: {error}"));
        assert_eq!(stored_value(&contact), value);
        log.push(Answered {
            ext_id,
            value,
            answered_at: Instant::now(),
        });
        answered.fetch_add(1, Ordering::SeqCst);
    }
    log
}

/// Checks that a copy shows one writer's writes up to a point in the order they were sent
/// and none after it (each writer sends a write only once the one before was answered, so
/// a snapshot cuts its writes in their order), and that the point is no earlier than the
/// last write answered before the backup started.
fn assert_one_cut(log: &[Answered], contacts: &HashMap<String, u64>, started: Instant) {
    let shown = |write: &&Answered| contacts.get(&write.ext_id) == Some(&write.value);
    let cut = log.iter().filter(shown).map(|write| write.value).max();
    let last_before = log
        .iter()
        .filter(|write| write.answered_at < started)
        .map(|write| write.value)
        .max();
    assert!(
        cut >= last_before,
        "the backup holds writes up to value {cut:?}, but {last_before:?} was answered before it started"
    );
    let mut expected: HashMap<&str, u64> = HashMap::new();
    for write in log.iter().filter(|write| Some(write.value) <= cut) {
        expected.insert(&write.ext_id, write.value);
    }
    for ext_id in log.iter().map(|write| write.ext_id.as_str()) {
        assert_eq!(
            contacts.get(ext_id).copied(),
            expected.get(ext_id).copied(),
            "{ext_id} in the backup is not what the writes up to value {cut:?} left"
        );
    }
}

/// Every contact a server holds, by ext_id, with its value.
async fn every_contact(client: &Client) -> HashMap<String, u64> {
    let mut export = client.export_contacts(ExportFormat::Ndjson).await.unwrap();
    let mut body = Vec::new();
    while let Some(chunk) = export.chunk().await.unwrap() {
        body.extend_from_slice(&chunk);
    }
    body.split(|byte| *byte == b'\n')
        .filter(|line| !line.is_empty())
        .map(|line| {
            let contact: Contact = serde_json::from_slice(line).unwrap();
            let value = stored_value(&contact);
            (contact.ext_id.expect("every contact has an ext_id"), value)
        })
        .collect()
}

/// The value a contact holds, checking that its name and its field agree: both are set by
/// every write, so a disagreement is a write copied in part.
fn stored_value(contact: &Contact) -> u64 {
    let from_name = contact
        .first_name
        .as_deref()
        .and_then(|name| name.strip_prefix('v'))
        .and_then(|value| value.parse().ok());
    let from_field = contact
        .custom_fields
        .iter()
        .find(|field| field.key == FIELD)
        .and_then(|field| field.value.as_u64());
    assert_eq!(from_name, from_field, "a torn write: {contact:?}");
    from_name.unwrap_or_else(|| panic!("a contact without a written value: {contact:?}"))
}

fn value_of(value: u64) -> CustomFieldInput {
    CustomFieldInput {
        key: FIELD.to_owned(),
        value: json!(value),
    }
}

async fn assert_not_found(client: &Client, ext_id: &str) {
    match client.get_contact(&format!("alt:ext_id:{ext_id}")).await {
        Err(Error::Api(body)) if body.code.as_deref() == Some("contact_not_found") => {}
        other => panic!("{ext_id} should be gone: {other:?}"),
    }
}

/// Runs `PRAGMA integrity_check` on a database file.
async fn assert_integrity_ok(path: &Path) {
    let mut conn = sqlx::SqliteConnection::connect(&sqlite_url(path))
        .await
        .unwrap();
    let integrity: Vec<String> = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    assert_eq!(integrity, ["ok"], "{}", path.display());
    conn.close().await.unwrap();
}

/// Runs the command line that a refusal on PostgreSQL gave, on its indented line.
fn run_the_given_command(refusal: &str) {
    let line = refusal
        .lines()
        .find(|line| line.starts_with("    "))
        .unwrap_or_else(|| panic!("no command in: {refusal}"));
    let words = shlex::split(line.trim()).expect("a shell command line");
    let status = Command::new(&words[0])
        .args(&words[1..])
        .status()
        .expect("run the command");
    assert!(status.success(), "{line} failed");
}
