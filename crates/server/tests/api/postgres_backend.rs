//! What only the PostgreSQL backend has: retries of real serialization failures, and
//! running behind PgBouncer in transaction mode.

use std::net::TcpListener;
use std::process::{Child, Command};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use contactd::store::{StoreError, is_retryable, retrying};
use contactd_api::{
    CreateContact, CreateCustomField, CustomFieldChanges, CustomFieldInput, FieldType,
    UpdateContact,
};
use contactd_client::Client;
use serde_json::json;
use sqlx::{Connection, Executor, PgConnection};

use crate::helpers::{Backend, ServerProcess, TestDatabase, admin};

/// Increments one counter from many tasks at once in SERIALIZABLE transactions, each a
/// read then a write: PostgreSQL fails all but one of each overlapping group with SQLSTATE
/// 40001, and only the retries make every increment land.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(
    not(postgres_tests),
    ignore = "CONTACTD_TEST_POSTGRES_URL is not set: PostgreSQL tests are skipped"
)]
async fn serialization_failures_from_postgres_are_retried_until_every_write_lands() {
    let database = TestDatabase::create(Backend::Postgres).await;
    let mut setup = PgConnection::connect(&database.url).await.expect("connect");
    setup
        .execute("CREATE TABLE counter (n BIGINT NOT NULL); INSERT INTO counter VALUES (0)")
        .await
        .expect("create the counter");
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(8)
        .connect(&database.url)
        .await
        .expect("pool");
    let attempts = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(AtomicUsize::new(0));
    const WRITERS: usize = 8;
    let tasks: Vec<_> = (0..WRITERS)
        .map(|_| {
            let (pool, attempts, failures) = (pool.clone(), attempts.clone(), failures.clone());
            tokio::spawn(async move {
                retrying(|| async {
                    attempts.fetch_add(1, Ordering::SeqCst);
                    let outcome: Result<(), StoreError> = async {
                        let mut tx = pool
                            .begin_with("BEGIN ISOLATION LEVEL SERIALIZABLE")
                            .await?;
                        let n: i64 = sqlx::query_scalar("SELECT n FROM counter")
                            .fetch_one(&mut *tx)
                            .await?;
                        // Hold the snapshot a moment, so the transactions overlap.
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        sqlx::query("UPDATE counter SET n = $1")
                            .bind(n + 1)
                            .execute(&mut *tx)
                            .await?;
                        tx.commit().await?;
                        Ok(())
                    }
                    .await;
                    if outcome.as_ref().is_err_and(is_retryable) {
                        failures.fetch_add(1, Ordering::SeqCst);
                    }
                    outcome
                })
                .await
            })
        })
        .collect();
    for task in tasks {
        task.await
            .expect("task")
            .expect("every increment lands after retries");
    }
    let n: i64 = sqlx::query_scalar("SELECT n FROM counter")
        .fetch_one(&pool)
        .await
        .expect("read");
    assert_eq!(n, WRITERS as i64, "no increment was lost");
    let failures = failures.load(Ordering::SeqCst);
    assert!(
        failures > 0,
        "the writers never collided: the test proved nothing"
    );
    assert_eq!(attempts.load(Ordering::SeqCst), WRITERS + failures);
}

/// A PgBouncer in transaction mode in front of the test server's PostgreSQL, run as the
/// `postgres` user (PgBouncer refuses to run as root) from a config of its own, stopped on drop.
struct PgBouncer {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl PgBouncer {
    fn start(upstream: &url::Url) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let config = dir.path().join("pgbouncer.ini");
        std::fs::write(
            &config,
            format!(
                "[databases]\n* = host={} port={} user={}\n\n[pgbouncer]\nlisten_addr = 127.0.0.1\n\
                 listen_port = {port}\nunix_socket_dir =\nauth_type = any\n\
                 pool_mode = transaction\nignore_startup_parameters = extra_float_digits\ndefault_pool_size = 2\nmax_client_conn = 200\n\
                 logfile = {}\n",
                upstream.host_str().expect("a host"),
                upstream.port().unwrap_or(5432),
                upstream.username(),
                dir.path().join("pgbouncer.log").display()
            ),
        )
        .expect("write the config");
        Command::new("chown")
            .args(["-R", "postgres"])
            .arg(dir.path())
            .status()
            .expect("chown");
        // setpriv execs PgBouncer in place (runuser would stay its parent), so killing the
        // child stops PgBouncer itself.
        let child = Command::new("setpriv")
            .args([
                "--reuid=postgres",
                "--regid=postgres",
                "--init-groups",
                "pgbouncer",
                "--quiet",
            ])
            .arg(&config)
            .spawn()
            .expect("start pgbouncer");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "pgbouncer did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Self {
            child,
            port,
            _dir: dir,
        }
    }
}

impl Drop for PgBouncer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Behind PgBouncer in transaction mode, two server connections serve many clients, each
/// transaction possibly on another; prepared statements of one would be missing (or clash)
/// on the next. With `--database-pgbouncer` every request still works.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(
    not(postgres_tests),
    ignore = "CONTACTD_TEST_POSTGRES_URL is not set: PostgreSQL tests are skipped"
)]
async fn a_server_behind_pgbouncer_in_transaction_mode_serves_every_request() {
    let database = TestDatabase::create(Backend::Postgres).await;
    admin(&database.url, &["migrate"]);
    admin(&database.url, &["company", "create", "acme"]);
    let key = admin(&database.url, &["key", "create", "--company", "acme"])
        .trim()
        .to_owned();
    let mut url = url::Url::parse(&database.url).expect("URL");
    let bouncer = PgBouncer::start(&url);
    url.set_port(Some(bouncer.port)).expect("a port");
    let server = ServerProcess::start(
        url.as_str(),
        &[
            ("CONTACTD_DATABASE_PGBOUNCER", "true"),
            ("CONTACTD_DATABASE_MAX_CONNECTIONS", "8"),
            // Its requests come as fast as one key can send them.
            ("CONTACTD_RATE_LIMIT", "0"),
        ],
    );
    let client = Client::new(&server.base_url, &key);
    client
        .create_custom_field(&CreateCustomField {
            key: "visits".to_owned(),
            display_name: "Visits".to_owned(),
            field_type: FieldType::Number,
            options: None,
        })
        .await
        .expect("field created");

    let tasks: Vec<_> = (0..8)
        .map(|worker| {
            let client = client.clone();
            tokio::spawn(async move {
                for round in 0..15 {
                    let ext_id = format!("w{worker}-r{round}");
                    client
                        .create_contact(&CreateContact {
                            ext_id: Some(ext_id.clone()),
                            ..CreateContact::default()
                        })
                        .await
                        .expect("create through PgBouncer");
                    client
                        .update_contact(&UpdateContact {
                            id: Some(format!("alt:ext_id:{ext_id}")),
                            first_name: Some(Some(format!("Worker {worker}"))),
                            custom_fields: Some(CustomFieldChanges {
                                set: vec![CustomFieldInput {
                                    key: "visits".to_owned(),
                                    value: json!(round),
                                }],
                                remove: Vec::new(),
                            }),
                            ..UpdateContact::default()
                        })
                        .await
                        .expect("update through PgBouncer");
                    client
                        .get_contact(&format!("alt:ext_id:{ext_id}"))
                        .await
                        .expect("fetch through PgBouncer");
                    client
                        .list_contacts(Some(5), None)
                        .await
                        .expect("list through PgBouncer");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("worker");
    }
    let mut direct = PgConnection::connect(&database.url).await.expect("connect");
    let stored: i64 =
        sqlx::query_scalar("SELECT count(*) FROM contacts WHERE first_name LIKE 'Worker %'")
            .fetch_one(&mut direct)
            .await
            .expect("count");
    assert_eq!(stored, 8 * 15);

    let refused = crate::helpers::contactd()
        .args(["migrate", "--database-pgbouncer"])
        .env("CONTACTD_DATABASE_URL", url.as_str())
        .output()
        .expect("run");
    assert!(
        !refused.status.success(),
        "migrating through PgBouncer is refused"
    );
}

/// The README's PostgreSQL command, on a database that does not exist yet: the server
/// creates it, migrates it and prints a first key, as on SQLite.
#[tokio::test]
#[cfg_attr(
    not(postgres_tests),
    ignore = "CONTACTD_TEST_POSTGRES_URL is not set: PostgreSQL tests are skipped"
)]
async fn serve_creates_a_missing_postgres_database_and_prints_a_first_key() {
    let name = format!("contactd_test_{}", uuid::Uuid::now_v7().simple());
    let mut url = url::Url::parse(&crate::helpers::postgres_admin_url()).expect("URL");
    url.set_path(&name);
    let server = ServerProcess::start(url.as_str(), &[]);
    let key = server.first_run_key();
    let created = Client::new(&server.base_url, &key)
        .create_contact(&CreateContact {
            email: Some("first@example.com".to_owned()),
            ..CreateContact::default()
        })
        .await
        .expect("the new database serves");
    assert_eq!(created.email.as_deref(), Some("first@example.com"));
    assert_eq!(server.terminate(), Some(0));

    let mut admin_conn = PgConnection::connect(&crate::helpers::postgres_admin_url())
        .await
        .expect("connect");
    admin_conn
        .execute(format!("DROP DATABASE {name} WITH (FORCE)").as_str())
        .await
        .expect("drop the database the server made");
}
