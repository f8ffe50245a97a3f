//! The robustness contract (docs/reference.md#12-robustness) as the server's operator meets it (`docs/robustness.md`): the SQLite WAL stays
//! bounded under saturating writes and long reads, slow and stalled clients are cut off,
//! and exports cannot take the database away from everyone else.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::Method;
use contactd::store::{ContactQuery, FieldFilter, FieldTest};
use futures_util::StreamExt;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{
    Backend, ServerProcess, TestApp, TestDatabase, assert_spec_refusal, contract_test, runtime,
    send_raw,
};

/// The bound docs/reference.md#12-robustness sets on the WAL, in bytes.
const WAL_BOUND: u64 = 64 * 1024 * 1024;

/// The WAL file of a SQLite test app's database.
fn wal_of(app: &TestApp) -> PathBuf {
    let path = app
        .database
        .url
        .strip_prefix("sqlite://")
        .expect("a SQLite test database");
    PathBuf::from(format!("{path}-wal"))
}

fn wal_bytes(wal: &PathBuf) -> u64 {
    std::fs::metadata(wal).map_or(0, |metadata| metadata.len())
}

/// An array create of `count` new contacts, unique by `tag`.
fn new_contacts(tag: &str, count: usize) -> Value {
    Value::Array(
        (0..count)
            .map(|i| {
                json!({
                    "email": format!("{tag}-{i}@example.com"),
                    "ext_id": format!("{tag}-{i}"),
                    "first_name": "Soak",
                    "last_name": format!("Writer {i} with a name long enough to fill pages"),
                })
            })
            .collect(),
    )
}

/// Writers sending array creates and single PATCHes back to back, for `duration`.
async fn saturate(app: &Arc<TestApp>, writers: usize, duration: Duration) -> u64 {
    let deadline = Instant::now() + duration;
    let tasks: Vec<_> = (0..writers)
        .map(|writer| {
            let app = app.clone();
            tokio::spawn(async move {
                let mut written = 0;
                while Instant::now() < deadline {
                    let tag = format!("w{writer}-{written}");
                    app.request(
                        Method::POST,
                        "/api/v1/contacts",
                        Some(new_contacts(&tag, 50)),
                    )
                    .await
                    .assert_status(200);
                    written += 1;
                }
                written
            })
        })
        .collect();
    let mut requests = 0;
    for task in tasks {
        requests += task.await.expect("writer task");
    }
    requests
}

/// Under back-to-back writes the WAL never passes its bound (before, it grew by gigabytes,
/// since the log was never started again), and once writes pause it is truncated.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_wal_stays_bounded_under_saturating_writes_and_is_truncated_when_they_pause() {
    Backend::Sqlite
        .run(async {
            let app = Arc::new(TestApp::spawn().await);
            let wal = wal_of(&app);
            let sampler = {
                let wal = wal.clone();
                tokio::spawn(async move {
                    let mut largest = 0;
                    let deadline = Instant::now() + Duration::from_secs(6);
                    while Instant::now() < deadline {
                        largest = largest.max(wal_bytes(&wal));
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    largest
                })
            };
            let requests = saturate(&app, 4, Duration::from_secs(5)).await;
            let largest = sampler.await.expect("sampler");
            eprintln!("{requests} array creates; largest WAL {largest} bytes");
            assert!(
                largest <= WAL_BOUND,
                "the WAL reached {largest} bytes under {requests} array creates"
            );
            let paused = Instant::now();
            while wal_bytes(&wal) > 0 {
                assert!(
                    paused.elapsed() < Duration::from_secs(5),
                    "the WAL was not truncated after writes paused: {} bytes",
                    wal_bytes(&wal)
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await;
}

/// An export whose client stops reading holds a snapshot; under saturating writes it is
/// ended once the WAL it holds passes its bound, the WAL stays within 64 MiB, and the client
/// sees a broken body rather than a short file.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_export_that_holds_its_snapshot_under_saturating_writes_is_ended_before_the_wal_passes_its_bound()
 {
    Backend::Sqlite
        .run(async {
            let app = Arc::new(TestApp::spawn().await);
            let wal = wal_of(&app);
            saturate(&app, 1, Duration::from_millis(500)).await;
            let export = app.open("/api/v1/contacts/export").await;
            assert_eq!(export.status().as_u16(), 200);
            let mut body = export.into_body().into_data_stream();
            let writers = {
                let app = app.clone();
                tokio::spawn(async move { saturate(&app, 4, Duration::from_secs(12)).await })
            };
            let mut largest = 0;
            let started = Instant::now();
            // Nothing is read while the writers take the WAL past what the export may hold
            // (48 MiB), and for a second after, for the server to see it: on a slower or
            // busier machine that takes longer, up to 11 s.
            let mut passed: Option<Instant> = None;
            while started.elapsed() < Duration::from_secs(11)
                && passed.is_none_or(|at| at.elapsed() < Duration::from_secs(1))
            {
                largest = largest.max(wal_bytes(&wal));
                if largest > 48 * 1024 * 1024 {
                    passed.get_or_insert_with(Instant::now);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let mut ended_short = false;
            while let Some(frame) = body.next().await {
                largest = largest.max(wal_bytes(&wal));
                if frame.is_err() {
                    ended_short = true;
                    break;
                }
            }
            let requests = writers.await.expect("writers");
            eprintln!("{requests} array creates; largest WAL {largest} bytes");
            assert!(
                ended_short,
                "the export ran to its end while the writes went on: the WAL was {largest} bytes"
            );
            assert!(largest <= WAL_BOUND, "the WAL reached {largest} bytes");
        })
        .await;
}

/// A company runs at most two exports at once and the server four: more are answered 429
/// with `Retry-After`, and room comes back as soon as one ends.
async fn exports_past_the_budget_are_answered_429_and_room_comes_back() {
    let app = TestApp::spawn().await;
    app.create_contact(json!({"email": "a@example.com"}))
        .await
        .assert_status(200);
    let first = app.open("/api/v1/contacts/export").await;
    let second = app.open("/api/v1/contacts/export").await;
    assert_eq!(
        (first.status().as_u16(), second.status().as_u16()),
        (200, 200)
    );
    let refused = app
        .request(Method::GET, "/api/v1/contacts/export", None)
        .await;
    refused.assert_error(429, "too_many_exports");
    assert_eq!(refused.headers["retry-after"], "1");
    let other = app.other_company_key().await;
    app.request_as(&other, Method::GET, "/api/v1/contacts/export", None)
        .await
        .assert_status(200);
    drop(first);
    app.request(Method::GET, "/api/v1/contacts/export", None)
        .await
        .assert_status(200);
    drop(second);
}
contract_test!(exports_past_the_budget_are_answered_429_and_room_comes_back);

/// A real server on a fresh SQLite database, with its first run's key.
fn server_with(env: &[(&str, &str)]) -> (ServerProcess, String, TestDatabase) {
    let database = runtime().block_on(TestDatabase::create(Backend::Sqlite));
    let server = ServerProcess::start(&database.url, env);
    let key = server.first_run_key();
    (server, key, database)
}

fn connect(server: &ServerProcess) -> TcpStream {
    let stream =
        TcpStream::connect(server.base_url.trim_start_matches("http://")).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("read timeout");
    stream
}

/// Whether the server has closed the connection: a read gives end of file or an error.
fn closed_by_server(stream: &mut TcpStream) -> bool {
    let mut byte = [0; 1];
    matches!(stream.read(&mut byte), Ok(0) | Err(_))
}

/// A head trickled a byte at a time, and a connection left idle after a request, are both
/// closed after the header timeout (before, both stayed open for good).
#[test]
fn slow_heads_and_idle_connections_are_closed_after_the_header_timeout() {
    let (server, _key, _database) = server_with(&[("CONTACTD_HEADER_TIMEOUT", "1s")]);
    let started = Instant::now();
    let mut trickle = connect(&server);
    trickle.set_nonblocking(true).expect("nonblocking");
    let head = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Slow: aaaaaaaaaaaaaaaaaaaa";
    let mut cut_off = None;
    for byte in head {
        if trickle.write_all(&[*byte]).is_err() {
            cut_off = Some(started.elapsed());
            break;
        }
        let mut buffer = [0; 64];
        if trickle.read(&mut buffer).is_ok() {
            cut_off = Some(started.elapsed());
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let cut_off = cut_off.expect("a head trickled over 6 s was never cut off");
    assert!(
        cut_off < Duration::from_secs(4),
        "cut off after {cut_off:?}"
    );

    let mut idle = connect(&server);
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .expect("send");
    let mut answer = [0; 512];
    let read = idle.read(&mut answer).expect("an answer");
    assert!(answer[..read].starts_with(b"HTTP/1.1 200"));
    let idle_since = Instant::now();
    assert!(closed_by_server(&mut idle));
    let idle_for = idle_since.elapsed();
    assert!(
        idle_for >= Duration::from_millis(800) && idle_for < Duration::from_secs(4),
        "an idle connection was closed after {idle_for:?}"
    );
}

/// A body declared and never sent is answered 408 in the error shape once it stops for the
/// body timeout, and nothing is written.
#[test]
fn a_body_that_stops_arriving_is_answered_408_in_the_error_shape() {
    let (server, key, database) = server_with(&[("CONTACTD_BODY_TIMEOUT", "1s")]);
    let mut stream = connect(&server);
    let started = Instant::now();
    write!(
        stream,
        "POST /api/v1/contacts HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {key}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"email\": \"a@"
    )
    .expect("send");
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer).into_owned();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, body)| body)
        .unwrap_or_default();
    assert_spec_refusal(408, body);
    let dump = runtime().block_on(database.dump());
    assert!(!dump.contains("a@"), "{dump}");
}

/// Past the connection cap, a connection is answered 503 in the error shape at once and
/// closed; when connections end, room comes back.
#[test]
fn connections_past_the_cap_are_refused_with_503_in_the_error_shape() {
    let (server, _key, _database) = server_with(&[("CONTACTD_MAX_CONNECTIONS", "4")]);
    let held: Vec<TcpStream> = (0..4).map(|_| connect(&server)).collect();
    // The server counts a connection once it has accepted it.
    std::thread::sleep(Duration::from_millis(300));
    let (status, body) = send_raw(&server, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(status, 503, "{body}");
    let body: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(body["code"], "too_many_connections");
    drop(held);
    std::thread::sleep(Duration::from_millis(300));
    let (status, _) = send_raw(
        &server,
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status, 200);
}

/// What hyper refuses before the router — too many headers for it to parse, a URI past its
/// limit, two different `Content-Length`s — is answered in the error shape too.
#[test]
fn refusals_before_the_router_carry_the_error_body() {
    let (server, _key, _database) = server_with(&[]);
    let junk: String = (0..1100)
        .map(|index| format!("X-Junk-{index}: junk\r\n"))
        .collect();
    let too_many = format!("GET /healthz HTTP/1.1\r\nHost: x\r\n{junk}\r\n");
    let long_uri = format!(
        "GET /{} HTTP/1.1\r\nHost: x\r\n\r\n",
        "a".repeat(100 * 1024)
    );
    let framing = "POST /api/v1/contacts HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\
                   Content-Length: 3\r\n\r\n{}";
    for (head, status) in [
        (too_many.as_str(), 431),
        (long_uri.as_str(), 414),
        (framing, 400),
    ] {
        let (answered, body) = send_raw(&server, head.as_bytes());
        assert_eq!(answered, status, "{body}");
        assert_spec_refusal(answered, &body);
    }
}

/// Seeds `batches` array creates of 1,000 contacts of a few hundred bytes each through the
/// API of a real server.
fn seed_over_http(server: &ServerProcess, key: &str, batches: usize) {
    runtime().block_on(async {
        let client = reqwest::Client::new();
        for batch in 0..batches {
            let contacts: Vec<Value> = (0..1000)
                .map(|i| {
                    json!({
                        "ext_id": format!("seed-{batch}-{i}"),
                        "first_name": "Seeded",
                        "last_name": "x".repeat(250),
                    })
                })
                .collect();
            let response = client
                .post(format!("{}/api/v1/contacts", server.base_url))
                .bearer_auth(key)
                .json(&contacts)
                .send()
                .await
                .expect("seed");
            let answer: Value = response.json().await.expect("JSON");
            assert_eq!(answer["successful_imports_count"], 1000, "{answer}");
        }
    });
}

/// Opens an export on a raw connection and reads only its head.
fn stalled_export(server: &ServerProcess, key: &str) -> TcpStream {
    let mut stream = connect(server);
    write!(
        stream,
        "GET /api/v1/contacts/export HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n\r\n"
    )
    .expect("send");
    let mut head = [0; 12];
    stream.read_exact(&mut head).expect("a status line");
    assert_eq!(&head, b"HTTP/1.1 200");
    stream
}

fn export_status(server: &ServerProcess, key: &str) -> u16 {
    let head = format!(
        "GET /api/v1/contacts/export?format=csv HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n\
         Connection: close\r\n\r\n"
    );
    send_raw(server, head.as_bytes()).0
}

/// A client that starts an export (10 MB) and stops reading holds the company's only export
/// slot; after the stall timeout the export is abandoned and the connection closed, so the
/// slot and the snapshot come back; the stalled client sees a body cut short. A shutdown
/// waits for a stalled export only as long as the shutdown timeout.
#[test]
fn a_stalled_export_is_abandoned_after_the_stall_timeout_and_shutdown_does_not_wait_for_it() {
    let (server, key, _database) = server_with(&[
        ("CONTACTD_STALL_TIMEOUT", "2s"),
        ("CONTACTD_MAX_EXPORTS_PER_COMPANY", "1"),
        ("CONTACTD_SHUTDOWN_TIMEOUT", "1s"),
    ]);
    seed_over_http(&server, &key, 25);
    let mut stalled = stalled_export(&server, &key);
    let second = export_status(&server, &key);
    assert_eq!(second, 429, "the only slot is taken");
    let started = Instant::now();
    while export_status(&server, &key) != 200 {
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "a stalled export still held its slot after {:?}",
            started.elapsed()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let mut received = Vec::new();
    let _ = stalled.read_to_end(&mut received);
    assert!(
        !received.ends_with(b"0\r\n\r\n"),
        "the stalled export's body ended as if complete"
    );

    let _stalled = stalled_export(&server, &key);
    let terminated = Instant::now();
    let status = server.terminate();
    assert_eq!(status, Some(0));
    assert!(
        terminated.elapsed() < Duration::from_secs(5),
        "shutdown waited {:?} for a stalled export",
        terminated.elapsed()
    );
}

/// The store's side of a stall, on both backends: a reader whose pages are not taken within
/// the stall timeout gives up, and the pages it did hand over add up to less than the total.
async fn an_export_reader_gives_up_on_pages_not_taken_in_time() {
    let app = TestApp::spawn().await;
    for batch in 0..3 {
        app.request(
            Method::POST,
            "/api/v1/contacts",
            Some(new_contacts(&format!("b{batch}"), 1000)),
        )
        .await
        .assert_status(200);
    }
    let mut export = app
        .store
        .export_contacts(app.company_id, Duration::from_millis(200))
        .await
        .expect("export");
    assert_eq!(export.total, 3000);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut read = 0;
    while let Some(page) = export.pages.recv().await {
        read += page.expect("a page").len();
    }
    assert!(read < 3000, "a stalled reader went on to the end");
}
contract_test!(an_export_reader_gives_up_on_pages_not_taken_in_time);

/// A key's first request while another process holds SQLite's write lock is answered at
/// once: recording the key's use never makes a read wait (before, it waited for the lock
/// and answered 503 after 5 s).
#[tokio::test]
async fn a_read_with_a_fresh_key_never_waits_for_another_process_s_write_lock() {
    use sqlx::{Connection, Executor};
    Backend::Sqlite
        .run(async {
            let app = TestApp::spawn().await;
            let fresh = app.other_company_key().await;
            let mut other = sqlx::SqliteConnection::connect(&app.database.url)
                .await
                .expect("open");
            other.execute("BEGIN IMMEDIATE").await.expect("lock");
            let started = Instant::now();
            app.request_as(&fresh, Method::GET, "/api/v1/contacts", None)
                .await
                .assert_status(200);
            let waited = started.elapsed();
            other.execute("ROLLBACK").await.expect("unlock");
            assert!(
                waited < Duration::from_secs(1),
                "the read waited {waited:?}"
            );
        })
        .await;
}

/// While another process holds SQLite's write lock for 8 s, no write waits more than about
/// 5 s: each is answered 503 (writing nothing) once it has waited 5 s, or 200 when the lock
/// comes back before then (before, a write queued behind a refused batch waited up to 10 s
/// and answered 200).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_write_waits_more_than_five_seconds_for_another_process_s_lock() {
    use sqlx::{Connection, Executor};
    Backend::Sqlite
        .run(async {
            let app = Arc::new(TestApp::spawn().await);
            app.given_contact(json!({"ext_id": "warm"})).await;
            let mut other = sqlx::SqliteConnection::connect(&app.database.url)
                .await
                .expect("open");
            other.execute("BEGIN IMMEDIATE").await.expect("lock");
            let writes: Vec<_> = (0..16)
                .map(|i| {
                    let app = app.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(Duration::from_millis(500 * i)).await;
                        let sent = Instant::now();
                        let body = json!({"ext_id": format!("during-{i}")});
                        let status = app.create_contact(body).await.status.as_u16();
                        (i, status, sent.elapsed())
                    })
                })
                .collect();
            tokio::time::sleep(Duration::from_secs(8)).await;
            other.execute("ROLLBACK").await.expect("unlock");
            let (mut refused, mut written) = (0, 0);
            for write in writes {
                let (i, status, waited) = write.await.expect("write");
                assert!(
                    waited < Duration::from_millis(5800),
                    "write {i} waited {waited:?}"
                );
                match status {
                    503 => {
                        refused += 1;
                        assert!(
                            waited > Duration::from_millis(4500),
                            "write {i}: {waited:?}"
                        );
                        app.get_contact(&format!("alt:ext_id:during-{i}"))
                            .await
                            .assert_status(404);
                    }
                    200 => written += 1,
                    other => panic!("write {i} answered {other}"),
                }
            }
            assert!(
                refused > 0 && written > 0,
                "{refused} refused, {written} written"
            );
        })
        .await;
}

/// Searches that read every contact of a big company (here, a count of those without a
/// field's value) run off the request threads: with one worker thread, a request made while
/// eight of them run is answered long before they end (before, it waited behind them all).
#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn searches_that_read_every_contact_do_not_hold_up_other_requests() {
    Backend::Sqlite
        .run(async {
            let app = Arc::new(TestApp::spawn().await);
            app.database
                .execute(&format!(
                    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n \
                     WHERE i < 60000) \
                     INSERT INTO contacts (id, company_id, email, first_name, last_name, \
                     created_at, updated_at) \
                     SELECT randomblob(16), x'{}', 'c' || i || '@example.com', 'First' || i, \
                     'Last' || i, i, i FROM n",
                    app.company_id.simple()
                ))
                .await;
            let started = Instant::now();
            let searches: Vec<_> = (0..8)
                .map(|_| {
                    let app = app.clone();
                    tokio::spawn(async move {
                        let without_a_value = ContactQuery {
                            fields: vec![FieldFilter {
                                field_id: Uuid::nil(),
                                test: FieldTest::Exists(false),
                            }],
                            ..ContactQuery::default()
                        };
                        app.store
                            .count_contacts(app.company_id, &without_a_value)
                            .await
                            .expect("search")
                    })
                })
                .collect();
            let health = {
                let app = app.clone();
                tokio::spawn(async move {
                    app.request(Method::GET, "/healthz", None)
                        .await
                        .assert_status(200);
                    started.elapsed()
                })
            };
            let answered_after = health.await.expect("healthz");
            for search in searches {
                assert_eq!(search.await.expect("search"), 60_000);
            }
            let searches_took = started.elapsed();
            eprintln!("healthz after {answered_after:?}; the searches took {searches_took:?}");
            assert!(
                answered_after * 4 < searches_took,
                "healthz waited {answered_after:?} while the searches took {searches_took:?}"
            );
        })
        .await;
}
