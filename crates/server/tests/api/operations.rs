//! Operations (docs/reference.md#8-operations): probes, request ids, the body limit, configuration, graceful shutdown.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request};
use serde_json::json;

use sqlx::{Connection, Executor};

use crate::helpers::{Backend, ServerProcess, TestApp, admin, contract_test, send_raw};

async fn probes_answer_without_a_key() {
    let app = TestApp::spawn().await;
    for (path, status) in [("/healthz", "ok"), ("/readyz", "ready")] {
        let response = app
            .send(Request::get(path).body(Body::empty()).expect("request"))
            .await;
        response.assert_status(200);
        assert_eq!(response.body["status"], status);
        // They say what serves them: the release, the commit (this is a git checkout) and
        // the schema version the database was migrated to.
        assert_eq!(response.body["version"], env!("CARGO_PKG_VERSION"));
        assert!(
            response.body["commit"]
                .as_str()
                .is_some_and(|commit| commit.len() == 12),
            "{}",
            response.body
        );
        assert_eq!(response.body["schema_version"], json!(schema_version()));
    }
}
contract_test!(probes_answer_without_a_key);

/// The highest migration of the source tree, which a served database is at.
fn schema_version() -> i64 {
    let tree = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/sqlite");
    std::fs::read_dir(tree)
        .expect("the migrations")
        .filter_map(|entry| {
            let name = entry.ok()?.file_name().into_string().ok()?;
            name.split('_').next()?.parse().ok()
        })
        .max()
        .expect("a migration")
}

#[test]
fn version_names_the_release_the_commit_and_the_schema() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_contactd"))
        .arg("--version")
        .output()
        .expect("run contactd --version");
    assert!(output.status.success());
    let line = String::from_utf8(output.stdout).expect("UTF-8");
    let commit = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run git");
    let commit = String::from_utf8(commit.stdout).expect("UTF-8");
    assert_eq!(
        line,
        format!(
            "contactd {} (commit {}, schema {})\n",
            env!("CARGO_PKG_VERSION"),
            commit.trim(),
            schema_version()
        )
    );
}

#[test]
fn every_json_answer_ends_its_line() {
    let (_dir, url, key) = served_database();
    let server = ServerProcess::start(&url, &[]);
    let host = server.base_url.trim_start_matches("http://").to_owned();
    let requests = [
        format!("GET /healthz HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"),
        format!("GET /api/v1/openapi.json HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"),
        format!(
            "GET /api/v1/contacts HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {key}\r\nConnection: close\r\n\r\n"
        ),
        format!("GET /api/v1/contacts HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"),
        format!("GET /nowhere HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"),
        // Refused by the HTTP layer before any route, and shaped like the API's errors.
        format!(
            "GET /{} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n",
            "a".repeat(100_000)
        ),
    ];
    for request in requests {
        let (status, body) = send_raw(&server, request.as_bytes());
        assert!(
            body.ends_with("}\n") && serde_json::from_str::<serde_json::Value>(&body).is_ok(),
            "{status} answer to {:.60} is not one JSON value and a line end: {body:.300}",
            request
        );
    }
}

async fn every_response_carries_a_request_id_and_keeps_the_callers() {
    let app = TestApp::spawn().await;
    let response = app.request(Method::GET, "/api/v1/contacts", None).await;
    let generated = response.headers["x-request-id"].to_str().expect("ASCII");
    uuid::Uuid::parse_str(generated).expect("a generated request id");

    let response = app
        .send(
            Request::get("/nowhere")
                .header("x-request-id", "trace-me-42")
                .body(Body::empty())
                .expect("request"),
        )
        .await;
    response.assert_error(404, "route_not_found");
    assert_eq!(response.headers["x-request-id"], "trace-me-42");
}
contract_test!(every_response_carries_a_request_id_and_keeps_the_callers);

fn served_database() -> (tempfile::TempDir, String, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("ops.db").display());
    admin(&url, &["company", "create", "acme"]);
    let key = admin(&url, &["key", "create", "--company", "acme"])
        .trim()
        .to_owned();
    (dir, url, key)
}

/// Sends raw HTTP/1.1 and returns the status line.
fn raw_status(stream: &mut TcpStream) -> String {
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read response");
    response.lines().next().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn the_body_limit_and_phone_region_are_configurable() {
    let (_dir, url, key) = served_database();
    let server = ServerProcess::start(
        &url,
        &[
            ("CONTACTD_BODY_LIMIT", "1000"),
            ("CONTACTD_DEFAULT_PHONE_REGION", "GB"),
        ],
    );
    let http = reqwest::Client::new();
    let post = |body: serde_json::Value| {
        http.post(format!("{}/api/v1/contacts", server.base_url))
            .bearer_auth(&key)
            .json(&body)
            .send()
    };
    let too_large = post(json!({"email": "a@example.com", "first_name": "x".repeat(1200)}))
        .await
        .expect("sent");
    assert_eq!(too_large.status(), 413);
    let body: serde_json::Value = too_large.json().await.expect("JSON error");
    assert_eq!(body["error"], 413);

    let created: serde_json::Value = post(json!({"phone_number": "020 7946 0958"}))
        .await
        .expect("sent")
        .json()
        .await
        .expect("JSON");
    assert_eq!(created["phone_number"], "+442079460958");
}

#[tokio::test]
async fn sigterm_lets_an_in_flight_request_finish_then_exits_zero() {
    let (_dir, url, key) = served_database();
    let server = ServerProcess::start(&url, &[]);
    let address = server.base_url.trim_start_matches("http://").to_owned();
    let body = r#"{"email": "inflight@example.com"}"#;
    let mut stream = TcpStream::connect(&address).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    // Send the head and half the body, so the request is in flight when SIGTERM lands.
    write!(
        stream,
        "POST /api/v1/contacts HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {key}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
        body.len(),
        &body[..10]
    )
    .expect("send head");
    stream.flush().expect("flush");
    std::thread::sleep(Duration::from_millis(300));
    let pid = server.pid();
    std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("SIGTERM");
    std::thread::sleep(Duration::from_millis(300));
    stream
        .write_all(&body.as_bytes()[10..])
        .expect("send the rest");
    assert_eq!(raw_status(&mut stream), "HTTP/1.1 200 OK");
    assert_eq!(server.wait(), Some(0));
    let listed = admin(&url, &["company", "list"]);
    assert!(listed.contains("acme"));
}

/// Another process (an admin command, a backup) holding SQLite's write lock past the busy
/// timeout makes writes fail with 503, worth a retry, and writes nothing; reads go on.
#[tokio::test]
async fn a_write_kept_waiting_on_another_process_s_sqlite_lock_is_a_503() {
    Backend::Sqlite
        .run(async {
            let app = TestApp::spawn().await;
            app.given_contact(json!({"ext_id": "before"})).await;
            let mut other = sqlx::SqliteConnection::connect(&app.database.url)
                .await
                .expect("open");
            other.execute("BEGIN IMMEDIATE").await.expect("lock");

            app.get_contact("alt:ext_id:before")
                .await
                .assert_status(200);
            app.create_contact(json!({"ext_id": "during"}))
                .await
                .assert_error(503, "database_unavailable");

            other.execute("ROLLBACK").await.expect("unlock");
            app.get_contact("alt:ext_id:during")
                .await
                .assert_status(404);
            app.create_contact(json!({"ext_id": "after"}))
                .await
                .assert_status(200);
        })
        .await;
}
