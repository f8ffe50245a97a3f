//! The `contactd` command line (docs/reference.md#9-command-line): admin commands, their variables, and the first run.

use std::io::Write;
use std::process::Stdio;
use std::time::{Duration, Instant};

use contactd_client::Client;
use serde_json::Value;

use crate::helpers::{ServerProcess, admin, contactd};

fn fresh_database() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("cli.db").display());
    (dir, url)
}

#[test]
fn migrate_creates_the_database_and_prints_nothing() {
    let (dir, url) = fresh_database();
    assert_eq!(admin(&url, &["migrate"]), "");
    assert!(dir.path().join("cli.db").exists());
    assert_eq!(admin(&url, &["migrate"]), "", "migrating twice is a no-op");
}

#[test]
fn companies_are_created_and_listed_by_id_and_name() {
    let (_dir, url) = fresh_database();
    let id = admin(&url, &["company", "create", "acme"])
        .trim()
        .to_owned();
    uuid::Uuid::parse_str(&id).expect("create prints the id alone");
    admin(&url, &["company", "create", "globex"]);
    let listed = admin(&url, &["company", "list"]);
    let lines: Vec<&str> = listed.lines().collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0], format!("{id}\tacme"));
    assert!(lines[1].ends_with("\tglobex"));

    let duplicate = contactd()
        .args(["company", "create", "acme"])
        .env("CONTACTD_DATABASE_URL", &url)
        .output()
        .expect("run");
    assert!(!duplicate.status.success());
    assert!(String::from_utf8_lossy(&duplicate.stderr).contains("already exists"));
}

#[test]
fn options_read_their_contactd_variables() {
    let (_dir, url) = fresh_database();
    let id = admin(&url, &["company", "create", "acme"])
        .trim()
        .to_owned();
    let output = contactd()
        .args(["key", "create"])
        .env("CONTACTD_DATABASE_URL", &url)
        .env("CONTACTD_COMPANY", &id)
        .env("CONTACTD_NAME", "from-env")
        .output()
        .expect("run");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let listed = admin(&url, &["key", "list", "--company", "acme"]);
    assert!(listed.contains("\tfrom-env\t"), "{listed}");
}

#[test]
fn an_unknown_company_is_refused_by_name() {
    let (_dir, url) = fresh_database();
    let output = contactd()
        .args(["key", "create", "--company", "nope"])
        .env("CONTACTD_DATABASE_URL", &url)
        .output()
        .expect("run");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("\"nope\""));
    assert!(output.stdout.is_empty());
}

#[test]
fn field_definitions_are_managed_from_the_command_line() {
    let (_dir, url) = fresh_database();
    admin(&url, &["company", "create", "acme"]);
    let created = admin(
        &url,
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
    let created: Value = serde_json::from_str(&created).expect("the definition as JSON");
    assert_eq!(created["key"], "plan");
    assert_eq!(created["type"], "select");
    assert_eq!(created["options"], serde_json::json!(["free", "pro"]));
    admin(
        &url,
        &[
            "field",
            "create",
            "--company",
            "acme",
            "--key",
            "seats",
            "--type",
            "number",
            "--display-name",
            "Seats",
        ],
    );
    let listed = admin(&url, &["field", "list", "--company", "acme"]);
    let keys: Vec<String> = listed
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).expect("JSON line")["key"].to_string())
        .collect();
    assert_eq!(keys, ["\"plan\"", "\"seats\""]);

    let refused = contactd()
        .args([
            "field",
            "create",
            "--company",
            "acme",
            "--key",
            "Bad-Key",
            "--type",
            "text",
            "--display-name",
            "X",
        ])
        .env("CONTACTD_DATABASE_URL", &url)
        .output()
        .expect("run");
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("key:"));

    assert_eq!(
        admin(
            &url,
            &["field", "delete", "--company", "acme", "--key", "plan"]
        ),
        ""
    );
    let listed = admin(&url, &["field", "list", "--company", "acme"]);
    assert_eq!(listed.lines().count(), 1);
}

#[tokio::test]
async fn the_first_run_creates_a_default_company_and_prints_a_working_key_once() {
    let (_dir, url) = fresh_database();
    let server = ServerProcess::start(&url, &[]);
    let log = server.log();
    assert!(log.contains("first run"), "{log}");
    let key = server.first_run_key();
    let client = Client::new(&server.base_url, &key);
    client
        .list_contacts(None, None)
        .await
        .expect("the printed key works");
    assert!(log.contains(&format!("dashboard:  {}/dashboard", server.base_url)));
    let password = log
        .lines()
        .find_map(|line| line.trim().strip_prefix("password:"))
        .expect("the first run prints the dashboard password")
        .trim()
        .to_owned();
    assert!(log.contains("email:      admin@contactd.local"));
    assert_eq!(server.terminate(), Some(0));
    assert!(
        user_password_matches(&url, "admin@contactd.local", &password).await,
        "the printed password is the dashboard user's"
    );

    let again = ServerProcess::start(&url, &[]);
    assert!(
        !again.log().contains("first run"),
        "the key is printed only once"
    );
    assert!(admin(&url, &["company", "list"]).ends_with("\tdefault\n"));
}

#[tokio::test]
async fn a_first_start_that_cannot_listen_leaves_the_first_run_to_the_next_start() {
    let (_dir, url) = fresh_database();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    let address = taken.local_addr().expect("its address").to_string();
    let failed = contactd()
        .args(["serve", "--bind", &address])
        .env("CONTACTD_DATABASE_URL", &url)
        .output()
        .expect("run contactd serve");
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(!failed.status.success(), "{stderr}");
    assert!(stderr.contains("could not listen"), "{stderr}");
    assert!(
        !stderr.contains("first run"),
        "nothing was created to show: {stderr}"
    );
    assert_eq!(
        admin(&url, &["company", "list"]),
        "",
        "a start that could not listen creates no company"
    );
    drop(taken);

    let server = ServerProcess::start(&url, &[]);
    let log = server.log();
    assert!(log.contains("first run"), "{log}");
    Client::new(&server.base_url, server.first_run_key())
        .list_contacts(None, None)
        .await
        .expect("the printed key works");
    let password = log
        .lines()
        .find_map(|line| line.trim().strip_prefix("password:"))
        .expect("the first run prints the dashboard password")
        .trim()
        .to_owned();
    let client = crate::helpers::login_client();
    let login = server
        .login_form(&client)
        .await
        .submit(&client, "admin@contactd.local", &password)
        .await
        .expect("the login is answered");
    assert_eq!(login.status(), 303, "the printed dashboard login works");
}

/// Whether `password` is the one of the dashboard user with this email.
async fn user_password_matches(url: &str, email: &str, password: &str) -> bool {
    let store = contactd::cli::open_store(url, &crate::helpers::test_postgres_settings())
        .await
        .expect("open database");
    let email = contactd::domain::Email::parse(email).expect("valid email");
    let credentials = store
        .user_credentials(&email)
        .await
        .expect("read user")
        .expect("the user exists");
    contactd::password::verify(password, &credentials.password_hash)
}

/// Runs `contactd user create` with `stdin` as its input.
fn create_user(url: &str, company: &str, email: &str, stdin: &str) -> std::process::Output {
    user_command(url, &["create", "--company", company], email, stdin)
}

/// Runs `contactd user ARGS…` for `email` (given by its variable) with `stdin` as input.
fn user_command(url: &str, args: &[&str], email: &str, stdin: &str) -> std::process::Output {
    let mut child = contactd()
        .arg("user")
        .args(args)
        .env("CONTACTD_DATABASE_URL", url)
        .env("CONTACTD_EMAIL", email)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run contactd user create");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    child.wait_with_output().expect("wait")
}

#[tokio::test]
async fn dashboard_users_are_created_with_the_password_read_from_stdin() {
    let (_dir, url) = fresh_database();
    admin(&url, &["company", "create", "acme"]);
    let created = create_user(
        &url,
        "acme",
        "Ann@Example.com",
        "a long passphrase\r\nignored\n",
    );
    assert!(created.status.success(), "{created:?}");
    let id = String::from_utf8(created.stdout).unwrap();
    assert!(
        uuid::Uuid::try_parse(id.trim()).is_ok(),
        "prints the user's id: {id}"
    );
    assert!(user_password_matches(&url, "ann@example.com", "a long passphrase").await);

    for (company, email, stdin, complaint) in [
        (
            "acme",
            "ann@example.com",
            "another passphrase\n",
            "already exists",
        ),
        ("acme", "bob@example.com", "short\n", "8 to 256 characters"),
        ("acme", "not an email", "a long passphrase\n", "--email"),
        (
            "nope",
            "bob@example.com",
            "a long passphrase\n",
            "no company",
        ),
    ] {
        let refused = create_user(&url, company, email, stdin);
        assert!(!refused.status.success());
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert!(stderr.contains(complaint), "{email}: {stderr}");
    }
}

#[tokio::test]
async fn dashboard_users_are_listed_given_new_passwords_and_deleted() {
    let (_dir, url) = fresh_database();
    admin(&url, &["company", "create", "acme"]);
    for email in ["ann@example.com", "bob@example.com"] {
        let created = create_user(&url, "acme", email, "a long passphrase\n");
        assert!(created.status.success(), "{created:?}");
    }
    let listed = admin(&url, &["user", "list", "--company", "acme"]);
    let emails: Vec<&str> = listed
        .lines()
        .map(|line| line.split('\t').nth(1).unwrap())
        .collect();
    assert_eq!(emails, ["ann@example.com", "bob@example.com"]);

    let reset = user_command(
        &url,
        &["set-password"],
        "ann@example.com",
        "another passphrase\n",
    );
    assert!(reset.status.success(), "{reset:?}");
    assert!(user_password_matches(&url, "ann@example.com", "another passphrase").await);
    let unknown = user_command(
        &url,
        &["set-password"],
        "eve@example.com",
        "another passphrase\n",
    );
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no user with email"));

    let deleted = user_command(&url, &["delete"], "bob@example.com", "");
    assert!(deleted.status.success(), "{deleted:?}");
    assert_eq!(
        admin(&url, &["user", "list", "--company", "acme"])
            .lines()
            .count(),
        1
    );
    let again = user_command(&url, &["delete"], "bob@example.com", "");
    assert!(!again.status.success());
}

#[tokio::test]
async fn admin_changes_take_effect_in_a_running_server_within_a_second() {
    let (_dir, url) = fresh_database();
    admin(&url, &["company", "create", "acme"]);
    let server = ServerProcess::start(&url, &[]);
    let key = admin(
        &url,
        &["key", "create", "--company", "acme", "--name", "ci"],
    )
    .trim()
    .to_owned();
    let client = Client::new(&server.base_url, &key);
    client
        .list_contacts(None, None)
        .await
        .expect("a new key works at once");

    admin(
        &url,
        &[
            "field",
            "create",
            "--company",
            "acme",
            "--key",
            "tier",
            "--type",
            "text",
            "--display-name",
            "Tier",
        ],
    );
    client
        .get_custom_field("tier")
        .await
        .expect("a new field is visible at once");

    let listed = admin(&url, &["key", "list", "--company", "acme"]);
    let line = listed
        .lines()
        .find(|line| line.contains("\tci\t"))
        .expect("the key is listed");
    assert!(line.contains("active"));
    assert!(
        !line.contains(key.trim_start_matches("cd_")),
        "listings never show the secret"
    );
    let key_id = line.split('\t').next().expect("id column");
    assert_eq!(admin(&url, &["key", "revoke", key_id]), "");
    let revoked_at = Instant::now();
    loop {
        if client.list_contacts(None, None).await.is_err() {
            break;
        }
        assert!(
            revoked_at.elapsed() < Duration::from_secs(1),
            "a revoked key still works"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(admin(&url, &["key", "list", "--company", "acme"]).contains("revoked"));
}

/// The database URL can be read from a file (`CONTACTD_DATABASE_URL_FILE`), so that a
/// password in it sits in neither the environment nor the command line; giving it both
/// ways is refused rather than one silently winning.
#[test]
fn the_database_url_can_be_read_from_a_file_but_not_given_twice() {
    let dir = tempfile::tempdir().expect("temp dir");
    let database = dir.path().join("from-file.db");
    let url_file = dir.path().join("database-url");
    std::fs::write(&url_file, format!("sqlite://{}\n", database.display())).expect("write");
    let created = contactd()
        .args(["company", "create", "acme"])
        .env("CONTACTD_DATABASE_URL_FILE", &url_file)
        .current_dir(dir.path())
        .output()
        .expect("run contactd");
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    assert!(database.exists(), "the URL in the file was used");
    assert!(!dir.path().join("contactd.db").exists(), "not the default");

    let twice = contactd()
        .args(["company", "list"])
        .env("CONTACTD_DATABASE_URL_FILE", &url_file)
        .env(
            "CONTACTD_DATABASE_URL",
            format!("sqlite://{}", database.display()),
        )
        .current_dir(dir.path())
        .output()
        .expect("run contactd");
    let stderr = String::from_utf8_lossy(&twice.stderr);
    assert!(!twice.status.success(), "{stderr}");
    assert!(stderr.contains("not both"), "{stderr}");
}
