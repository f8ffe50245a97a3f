//! The backend a contract test runs on, and `contract_test!`, which runs each test body on
//! both.

/// The database a contract test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

tokio::task_local! {
    static BACKEND: Backend;
}

impl Backend {
    /// Runs a test body with `TestApp::spawn` opening databases of this backend.
    pub async fn run(self, test: impl std::future::Future<Output = ()>) {
        BACKEND.scope(self, test).await;
    }

    /// The backend of the running contract test (SQLite outside one).
    pub fn current() -> Self {
        BACKEND
            .try_with(|backend| *backend)
            .unwrap_or(Backend::Sqlite)
    }
}

/// Runs a test body, an `async fn NAME()`, on both backends: as `NAME::sqlite` always, and as
/// `NAME::postgres` when `CONTACTD_TEST_POSTGRES_URL` was set at build time (CI sets it);
/// otherwise that half is listed as ignored, with the reason.
macro_rules! contract_test {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sqlite() {
                $crate::helpers::Backend::Sqlite.run(super::$name()).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            #[cfg_attr(
                not(postgres_tests),
                ignore = "CONTACTD_TEST_POSTGRES_URL is not set: the PostgreSQL half of the \
                          contract tests is skipped"
            )]
            async fn postgres() {
                $crate::helpers::Backend::Postgres.run(super::$name()).await;
            }
        }
    };
}
pub(crate) use contract_test;
