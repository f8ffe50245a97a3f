//! SPEC §12 as the server's operator meets it (`docs/robustness.md`): the SQLite WAL stays
//! bounded under saturating writes and long reads, slow and stalled clients are cut off,
//! and exports cannot take the database away from everyone else.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::Method;
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp};

/// The bound §12 sets on the WAL, in bytes.
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
