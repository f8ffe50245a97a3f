//! `contactd import` and `contactd export` (docs/reference.md#11-bulk-batch-writes-import-and-export), the real binary against a real server:
//! round trips, re-runs with `--match-on`, the errors file, and refusals before writing.

use std::path::Path;
use std::process::Output;

use serde_json::Value;
use tempfile::TempDir;

use crate::helpers::{ServerProcess, admin, contactd};

/// A server on a fresh SQLite file, with the fields the tests' files use.
struct Setup {
    dir: TempDir,
    database_url: String,
    server: ServerProcess,
}

impl Setup {
    fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let database_url = format!("sqlite://{}", dir.path().join("contacts.db").display());
        let server = ServerProcess::start(&database_url, &[]);
        Self {
            dir,
            database_url,
            server,
        }
    }

    /// A company with the fields `plan`, `seats` and `notes`, and a key for it.
    fn company(&self, name: &str) -> String {
        admin(&self.database_url, &["company", "create", name]);
        for (key, field_type, options) in [
            (
                "plan",
                "select",
                &["--option", "free", "--option", "pro"][..],
            ),
            ("seats", "number", &[][..]),
            ("notes", "text", &[][..]),
        ] {
            let mut args = vec![
                "field",
                "create",
                "--company",
                name,
                "--key",
                key,
                "--type",
                field_type,
                "--display-name",
                key,
            ];
            args.extend_from_slice(options);
            admin(&self.database_url, &args);
        }
        admin(&self.database_url, &["key", "create", "--company", name])
            .trim()
            .to_owned()
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    /// Runs `contactd` against the server with `key`.
    fn run(&self, key: &str, args: &[&str]) -> Output {
        contactd()
            .args(args)
            .env("CONTACTD_URL", &self.server.base_url)
            .env("CONTACTD_KEY", key)
            .output()
            .expect("run contactd")
    }

    /// Runs a command that must succeed, returning its stdout.
    fn succeed(&self, key: &str, args: &[&str]) -> String {
        let output = self.run(key, args);
        assert!(
            output.status.success(),
            "contactd {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).expect("UTF-8")
    }

    /// The company's contacts as exported in NDJSON, without what the server assigns
    /// (id and timestamps), in export order.
    fn contacts(&self, key: &str) -> Vec<Value> {
        self.succeed(key, &["export", "--format", "ndjson"])
            .lines()
            .map(|line| {
                let mut contact: Value = serde_json::from_str(line).expect("JSON line");
                let members = contact.as_object_mut().expect("object");
                for assigned in ["id", "created_at", "updated_at"] {
                    members.remove(assigned);
                }
                contact
            })
            .collect()
    }
}

fn by_ext_id(mut contacts: Vec<Value>) -> Vec<Value> {
    contacts.sort_by(|a, b| a["ext_id"].as_str().cmp(&b["ext_id"].as_str()));
    contacts
}

fn write(path: &str, text: &str) {
    std::fs::write(path, text).expect("write file");
}

/// A CSV with quoting, an embedded line break, Unicode, empty cells and every field type.
const AWKWARD_CSV: &str = "email,phone_number,ext_id,first_name,last_name,plan,seats,notes\n\
jane@example.com,(415) 555-2671,crm-1,Jane,\"Doe, Jr.\",pro,12,\"said \"\"hi\"\"\"\n\
bob@example.com,,crm-2,Bob,Smith,free,,\n\
zoe@example.com,+44 20 7946 0958,crm-3,Zoë,\"two\nlines\",,4.50,日本語 ✓\n";

/// An import whose key is held to one request a second is answered 429 for most of its
/// batches: it waits each `Retry-After` out and sends the batch again, so every row is
/// imported once (docs/reference.md#rate-limits).
#[test]
fn an_import_past_its_keys_rate_limit_waits_and_imports_every_row() {
    let setup = Setup::start();
    setup.company("acme");
    let key = admin(
        &setup.database_url,
        &[
            "key",
            "create",
            "--company",
            "acme",
            "--rate-limit",
            "1",
            "--rate-burst",
            "1",
        ],
    )
    .trim()
    .to_owned();
    let input = setup.path("many.csv");
    let rows: String = (0..40).map(|n| format!("crm-{n},Row {n}\n")).collect();
    write(&input, &format!("ext_id,first_name\n{rows}"));
    let started = std::time::Instant::now();
    let summary = setup.succeed(&key, &["import", &input, "--batch-size", "10"]);
    assert!(
        summary.contains("40 created, 0 updated, 0 unchanged, 0 failed"),
        "{summary}"
    );
    // Four batches and one request a second: the last waited for its token.
    assert!(started.elapsed() >= std::time::Duration::from_secs(2));
    let full = admin(&setup.database_url, &["key", "create", "--company", "acme"]);
    assert_eq!(setup.contacts(full.trim()).len(), 40);
}

#[test]
fn a_csv_exported_and_imported_into_an_empty_company_gives_the_same_contacts() {
    let setup = Setup::start();
    let alpha = setup.company("alpha");
    let input = setup.path("input.csv");
    write(&input, AWKWARD_CSV);
    let summary = setup.succeed(&alpha, &["import", &input]);
    assert!(
        summary.contains("3 created, 0 updated, 0 unchanged, 0 failed"),
        "{summary}"
    );
    let original = by_ext_id(setup.contacts(&alpha));
    assert_eq!(original.len(), 3);
    assert_eq!(original[2]["last_name"], "two\nlines");
    assert_eq!(original[2]["first_name"], "Zoë");

    for format in ["csv", "ndjson"] {
        let exported = setup.path(&format!("alpha.{format}"));
        setup.succeed(&alpha, &["export", "-o", &exported]);
        let beta = setup.company(&format!("beta-{format}"));
        let summary = setup.succeed(&beta, &["import", &exported]);
        assert!(
            summary.contains("3 created, 0 updated, 0 unchanged, 0 failed"),
            "{summary}"
        );
        // The import creates them in file order, newest first: the same contacts, each
        // created anew.
        assert_eq!(
            by_ext_id(setup.contacts(&beta)),
            original,
            "round trip through {format}"
        );
    }
}

#[test]
fn re_running_an_import_with_match_on_creates_nothing_and_changes_nothing() {
    let setup = Setup::start();
    let key = setup.company("acme");
    let input = setup.path("input.csv");
    write(&input, AWKWARD_CSV);
    let first = setup.succeed(&key, &["import", &input, "--match-on", "ext_id"]);
    assert!(
        first.contains("3 created, 0 updated, 0 unchanged, 0 failed"),
        "{first}"
    );
    let before = setup.contacts(&key);
    let again = setup.succeed(
        &key,
        &[
            "import",
            &input,
            "--match-on",
            "ext_id",
            "--batch-size",
            "2",
        ],
    );
    assert!(
        again.contains("0 created, 0 updated, 3 unchanged, 0 failed"),
        "{again}"
    );
    assert_eq!(setup.contacts(&key), before);
}

#[test]
fn every_failed_row_is_in_the_errors_file_with_its_line_and_the_rest_land() {
    let setup = Setup::start();
    let key = setup.company("acme");
    let input = setup.path("input.csv");
    // Line 3 starts a row whose quoted cell spans two lines, so the bad rows after it are
    // on lines 5 and 6 of the file.
    write(
        &input,
        "ext_id,email,last_name,plan\n\
         crm-1,a@example.com,One,pro\n\
         crm-2,b@example.com,\"Two\nlines\",free\n\
         crm-3,not-an-email,Three,pro\n\
         crm-4,a@example.com,Four,gold\n\
         crm-5,e@example.com,Five,free\n",
    );
    let errors = setup.path("errors.csv");
    let output = setup.run(&key, &["import", &input, "--errors", &errors]);
    assert_eq!(
        output.status.code(),
        Some(1),
        "failed rows fail the command"
    );
    let summary = String::from_utf8_lossy(&output.stdout);
    assert!(
        summary.contains("3 created, 0 updated, 0 unchanged, 2 failed"),
        "{summary}"
    );
    let mut reader = csv::Reader::from_path(&errors).expect("errors file");
    assert_eq!(
        reader.headers().expect("header").iter().collect::<Vec<_>>(),
        [
            "line",
            "error_code",
            "error_field",
            "error_message",
            "ext_id",
            "email",
            "last_name",
            "plan"
        ]
    );
    let rows: Vec<Vec<String>> = reader
        .records()
        .map(|record| record.expect("row").iter().map(str::to_owned).collect())
        .collect();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0][..3], ["5", "invalid_email", "email"]);
    assert_eq!(rows[0][4..], ["crm-3", "not-an-email", "Three", "pro"]);
    assert_eq!(
        rows[1][..3],
        ["6", "invalid_custom_field_value", "custom_fields[0].value"]
    );
    let stored: Vec<String> = setup
        .contacts(&key)
        .iter()
        .map(|contact| contact["ext_id"].as_str().expect("ext_id").to_owned())
        .collect();
    assert_eq!(stored, ["crm-5", "crm-2", "crm-1"]);
}

#[test]
fn an_ndjson_import_reports_lines_that_are_not_objects_and_imports_the_rest() {
    let setup = Setup::start();
    let key = setup.company("acme");
    let input = setup.path("input.ndjson");
    write(
        &input,
        "{\"ext_id\": \"crm-1\", \"custom_fields\": [{\"key\": \"plan\", \"value\": \"pro\", \"type\": \"select\", \"display_name\": \"Plan\"}]}\n\
         \n\
         not json\n\
         [1, 2]\n\
         {\"ext_id\": \"crm-2\", \"phone\": \"+14155552671\"}\n\
         {\"ext_id\": \"crm-3\", \"id\": \"ignored\", \"created_at\": \"ignored\"}\n",
    );
    let errors = setup.path("errors.ndjson");
    let output = setup.run(&key, &["import", &input, "--errors", &errors]);
    assert_eq!(output.status.code(), Some(1));
    let failures: Vec<Value> = std::fs::read_to_string(&errors)
        .expect("errors file")
        .lines()
        .map(|line| serde_json::from_str(line).expect("JSON line"))
        .collect();
    let lines: Vec<(u64, &str)> = failures
        .iter()
        .map(|failure| {
            (
                failure["line"].as_u64().expect("line"),
                failure["error"]["code"].as_str().expect("code"),
            )
        })
        .collect();
    assert_eq!(
        lines,
        [
            (3, "invalid_json"),
            (4, "invalid_row"),
            (5, "invalid_request")
        ]
    );
    assert_eq!(failures[2]["contact"]["phone"], "+14155552671");
    assert_eq!(setup.contacts(&key).len(), 2);
}

#[test]
fn unknown_columns_are_refused_before_anything_is_written() {
    let setup = Setup::start();
    let key = setup.company("acme");
    let input = setup.path("input.csv");
    write(&input, "ext_id,emial,tier\ncrm-1,a@example.com,gold\n");
    let output = setup.run(&key, &["import", &input]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("unknown CSV columns: emial, tier"),
        "{stderr}"
    );
    assert!(setup.contacts(&key).is_empty());

    // A file whose format cannot be told, and a wrong key, are refused too.
    let odd = setup.path("input.txt");
    write(&odd, "ext_id\ncrm-1\n");
    let output = setup.run(&key, &["import", &odd]);
    assert!(String::from_utf8_lossy(&output.stderr).contains("--format"));
    let output = setup.run("cd_wrong", &["import", &input]);
    assert!(!output.status.success());
    assert!(Path::new(&input).exists());
}

/// The errors file of a CSV import: each row's line, error code, and its own cells.
fn error_rows(path: &str) -> Vec<(String, String, Vec<String>)> {
    csv::ReaderBuilder::new()
        .flexible(true)
        .from_path(path)
        .expect("errors file")
        .byte_records()
        .map(|record| {
            let record = record.expect("row");
            let cell = |index: usize| String::from_utf8_lossy(&record[index]).into_owned();
            let cells = (4..record.len()).map(cell).collect();
            (cell(0), cell(1), cells)
        })
        .collect()
}

fn ext_ids(contacts: &[Value]) -> Vec<&str> {
    contacts
        .iter()
        .map(|contact| contact["ext_id"].as_str().expect("ext_id"))
        .collect()
}

#[test]
fn an_unterminated_quote_fails_the_row_that_swallowed_the_rest_and_the_import() {
    let setup = Setup::start();
    let key = setup.company("acme");
    let input = setup.path("input.csv");
    // Line 3 opens a quote it never closes: the csv reader runs its cell to the end of
    // the file, swallowing lines 4 and 5.
    write(
        &input,
        "ext_id,last_name,notes\n\
         crm-1,One,fine\n\
         crm-2,Two,\"never closed\n\
         crm-3,Three,lost\n\
         crm-4,Four,lost\n",
    );
    let errors = setup.path("errors.csv");
    let output = setup.run(&key, &["import", &input, "--errors", &errors]);
    assert_eq!(output.status.code(), Some(1), "a malformed file fails");
    let summary = String::from_utf8_lossy(&output.stdout);
    assert!(
        summary.contains("1 created, 0 updated, 0 unchanged, 1 failed"),
        "{summary}"
    );
    let failed = error_rows(&errors);
    assert_eq!(failed.len(), 1);
    assert_eq!(
        (failed[0].0.as_str(), failed[0].1.as_str()),
        ("3", "unterminated_quote")
    );
    assert_eq!(failed[0].2[..2], ["crm-2", "Two"]);
    assert_eq!(ext_ids(&setup.contacts(&key)), ["crm-1"]);
}

#[test]
fn rows_with_too_many_or_too_few_cells_or_that_are_not_utf8_fail_by_line() {
    let setup = Setup::start();
    let key = setup.company("acme");
    let input = setup.path("input.csv");
    let mut file = b"ext_id,last_name,notes\n".to_vec();
    file.extend_from_slice(b"crm-1,One,fine\n");
    file.extend_from_slice(b"crm-2,Two,too,many\n");
    file.extend_from_slice(b"crm-3,too few\n");
    file.extend_from_slice(b"crm-4,Caf\xe9,latin-1\n");
    file.extend_from_slice(b"crm-5,Five,fine\n");
    std::fs::write(&input, &file).expect("write file");
    let errors = setup.path("errors.csv");
    let output = setup.run(&key, &["import", &input, "--errors", &errors]);
    assert_eq!(output.status.code(), Some(1));
    let summary = String::from_utf8_lossy(&output.stdout);
    assert!(
        summary.contains("2 created, 0 updated, 0 unchanged, 3 failed"),
        "{summary}"
    );
    let failed: Vec<(String, String)> = error_rows(&errors)
        .into_iter()
        .map(|(line, code, _)| (line, code))
        .collect();
    assert_eq!(
        failed,
        [
            ("3".to_owned(), "invalid_row".to_owned()),
            ("4".to_owned(), "invalid_row".to_owned()),
            ("5".to_owned(), "invalid_utf8".to_owned()),
        ]
    );
    // The row that is not UTF-8 is in the errors file byte for byte.
    let written = std::fs::read(&errors).expect("errors file");
    assert!(
        written
            .windows(b"crm-4,Caf\xe9,latin-1".len())
            .any(|window| window == b"crm-4,Caf\xe9,latin-1"),
        "{}",
        String::from_utf8_lossy(&written)
    );
    let mut stored = ext_ids(&setup.contacts(&key))
        .into_iter()
        .map(str::to_owned)
        .collect::<Vec<_>>();
    stored.sort();
    assert_eq!(stored, ["crm-1", "crm-5"]);
}

#[test]
fn a_field_stored_under_a_reserved_key_is_named_at_start_up_and_never_takes_a_members_cell() {
    let setup = Setup::start();
    let key = setup.company("acme");
    let refused = contactd()
        .args([
            "field",
            "create",
            "--company",
            "acme",
            "--key",
            "email",
            "--type",
            "text",
        ])
        .args(["--display-name", "Email"])
        .env("CONTACTD_DATABASE_URL", &setup.database_url)
        .output()
        .expect("run contactd");
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("`email` is reserved"), "{stderr}");

    // A database from before keys were reserved may hold such a field.
    let path = setup.database_url.trim_start_matches("sqlite://");
    rusqlite::Connection::open(path)
        .expect("open the database")
        .execute(
            "INSERT INTO custom_fields (id, company_id, key, display_name, field_type, \
             created_at) SELECT randomblob(16), id, 'email', 'Old email', 'text', 1 \
             FROM companies WHERE name = 'acme'",
            [],
        )
        .expect("insert a legacy field");
    let restarted = ServerProcess::start(&setup.database_url, &[]);
    let log = restarted.log();
    assert!(
        log.lines().any(|line| line.contains("reserved key")
            && line.contains("key=email")
            && line.contains("company=acme")),
        "{log}"
    );

    // The `email` column of a CSV is the contact's email, never the field's.
    let input = setup.path("input.csv");
    write(&input, "ext_id,email\ncrm-1,a@example.com\n");
    setup.succeed(&key, &["import", &input]);
    let contacts = setup.contacts(&key);
    assert_eq!(contacts[0]["email"], "a@example.com");
    assert_eq!(contacts[0]["custom_fields"], serde_json::json!([]));

    // Its CSV export repeats the column; importing it is refused by name, before writing.
    let exported = setup.path("acme.csv");
    setup.succeed(&key, &["export", "-o", &exported]);
    let output = setup.run(&key, &["import", &exported, "--match-on", "ext_id"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("column email is given twice") && stderr.contains("reserved key"),
        "{stderr}"
    );
    assert_eq!(setup.contacts(&key), contacts);
}

#[test]
fn a_server_that_cannot_be_reached_is_named_once_with_the_reason() {
    let dir = tempfile::tempdir().expect("temp dir");
    let input = dir.path().join("input.csv").display().to_string();
    write(&input, "email\nada@example.com\n");
    // A port nothing listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();
    let output = contactd()
        .args(["import", &input, "--key", "cd_unused"])
        .args(["--url", &format!("http://127.0.0.1:{port}")])
        .output()
        .expect("run contactd import");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        stderr.matches("error sending request").count(),
        1,
        "{stderr}"
    );
    assert!(stderr.contains("Connection refused"), "{stderr}");
}
