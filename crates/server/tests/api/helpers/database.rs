//! `TestDatabase`: a fresh, empty database for each test, on SQLite or on the PostgreSQL
//! server the tests are given.

use std::time::Duration;

use contactd::store::PostgresSettings;
use sqlx::{Connection, Executor};
use tempfile::TempDir;
use uuid::Uuid;

use super::Backend;

/// The PostgreSQL server the tests make their databases on (an admin URL, such as
/// `postgres://postgres@127.0.0.1:5432/test`).
pub fn postgres_admin_url() -> String {
    std::env::var("CONTACTD_TEST_POSTGRES_URL")
        .expect("CONTACTD_TEST_POSTGRES_URL names the PostgreSQL server to test against")
}

/// Small pools and a short acquire timeout: many tests run at once on one server.
pub fn test_postgres_settings() -> PostgresSettings {
    PostgresSettings {
        max_connections: 4,
        acquire_timeout: Duration::from_secs(10),
        pgbouncer: false,
    }
}

/// A database of its own for one test: a SQLite file in a temp dir, or a PostgreSQL
/// database created for it and dropped after it.
pub struct TestDatabase {
    pub backend: Backend,
    pub url: String,
    /// The PostgreSQL database's name, to drop it afterwards.
    postgres_name: Option<String>,
    _dir: TempDir,
}

impl TestDatabase {
    /// Makes a fresh, empty database.
    pub async fn create(backend: Backend) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        match backend {
            Backend::Sqlite => Self {
                backend,
                url: format!("sqlite://{}", dir.path().join("contactd.db").display()),
                postgres_name: None,
                _dir: dir,
            },
            Backend::Postgres => {
                let admin_url = postgres_admin_url();
                let name = format!("contactd_test_{}", Uuid::now_v7().simple());
                let mut admin = sqlx::PgConnection::connect(&admin_url)
                    .await
                    .expect("connect to CONTACTD_TEST_POSTGRES_URL");
                admin
                    .execute(format!("CREATE DATABASE {name}").as_str())
                    .await
                    .expect("create a test database");
                let mut url = url::Url::parse(&admin_url).expect("a postgres:// URL");
                url.set_path(&name);
                Self {
                    backend,
                    url: url.to_string(),
                    postgres_name: Some(name),
                    _dir: dir,
                }
            }
        }
    }

    /// Runs SQL under the API, for tests that must reach past it.
    pub async fn execute(&self, statement: &str) {
        match self.backend {
            Backend::Sqlite => {
                let mut conn = sqlx::SqliteConnection::connect(&self.url)
                    .await
                    .expect("open");
                conn.execute(statement).await.expect("execute");
            }
            Backend::Postgres => {
                let mut conn = sqlx::PgConnection::connect(&self.url).await.expect("open");
                conn.execute(statement).await.expect("execute");
            }
        }
    }
}

impl TestDatabase {
    /// On PostgreSQL, a connection in a transaction that has taken a transaction id, so the
    /// cluster's oldest open transaction stays put until the connection is dropped. None on
    /// SQLite, where an open write transaction would stop every writer instead.
    pub async fn hold_a_transaction_open(&self) -> Option<sqlx::PgConnection> {
        if self.backend != Backend::Postgres {
            return None;
        }
        let mut conn = sqlx::PgConnection::connect(&self.url).await.expect("open");
        conn.execute("BEGIN; SELECT pg_current_xact_id();")
            .await
            .expect("begin a transaction");
        Some(conn)
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Some(name) = self.postgres_name.take() else {
            return;
        };
        // Drop is synchronous and may run inside the test's runtime: use a thread of its own.
        let admin_url = postgres_admin_url();
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async {
                let mut admin = sqlx::PgConnection::connect(&admin_url).await?;
                admin
                    .execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
                    .await
                    .map(|_| ())
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop a test database: {dropped:?}");
        }
    }
}
