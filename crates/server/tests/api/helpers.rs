//! `TestApp`: the real router on a fresh database, with intent-named helpers, and
//! `ServerProcess`: the real `contactd` binary on a free port.

#![allow(
    dead_code,
    reason = "each test file uses its own subset of the helpers"
)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use contactd::api_key;
use contactd::domain::DefaultRegion;
use contactd::http::{AppState, app};
use contactd::store::{self, PostgresSettings, Store};
use serde_json::{Value, json};
use sqlx::{Connection, Executor, Row};
use tempfile::TempDir;
use tower::ServiceExt;
use uuid::Uuid;

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

    /// Every row of every table, as text, tables and rows in a fixed order; but for a key's
    /// `last_used_at`, bookkeeping that any request writes just after it was answered.
    pub async fn dump(&self) -> String {
        match self.backend {
            Backend::Sqlite => self.dump_sqlite().await,
            Backend::Postgres => self.dump_postgres().await,
        }
    }

    async fn dump_sqlite(&self) -> String {
        let mut conn = sqlx::SqliteConnection::connect(&self.url)
            .await
            .expect("open");
        let tables: Vec<String> =
            sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
                .fetch_all(&mut conn)
                .await
                .expect("list tables");
        let mut dump = String::new();
        for table in tables {
            let columns: Vec<String> = sqlx::query(&format!("PRAGMA table_info({table})"))
                .fetch_all(&mut conn)
                .await
                .expect("table info")
                .iter()
                .map(|row| row.get::<String, _>("name"))
                .filter(|column| column != UNDUMPED_COLUMN)
                .collect();
            let row_text = columns
                .iter()
                .map(|column| format!("quote({column})"))
                .collect::<Vec<_>>()
                .join(" || '|' || ");
            let rows: Vec<String> =
                sqlx::query_scalar(&format!("SELECT {row_text} FROM {table} ORDER BY 1"))
                    .fetch_all(&mut conn)
                    .await
                    .expect("read table");
            dump.push_str(&format!("## {table}\n{}\n", rows.join("\n")));
        }
        dump
    }

    async fn dump_postgres(&self) -> String {
        let mut conn = sqlx::PgConnection::connect(&self.url).await.expect("open");
        let tables: Vec<String> = sqlx::query_scalar(
            "SELECT tablename::text FROM pg_tables WHERE schemaname = 'public' ORDER BY 1",
        )
        .fetch_all(&mut conn)
        .await
        .expect("list tables");
        let mut dump = String::new();
        for table in tables {
            let rows: Vec<String> = sqlx::query_scalar(&format!(
                "SELECT (row_to_json(t)::jsonb - '{UNDUMPED_COLUMN}')::text FROM {table} t \
                 ORDER BY 1"
            ))
            .fetch_all(&mut conn)
            .await
            .expect("read table");
            dump.push_str(&format!("## {table}\n{}\n", rows.join("\n")));
        }
        dump
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

/// The column a dump leaves out.
const UNDUMPED_COLUMN: &str = "last_used_at";

/// The body limit tests run with: small, so the 413 test needs no huge body.
pub const TEST_BODY_LIMIT: usize = 64 * 1024;

/// The real router over a fresh SQLite file, with one company and one key.
pub struct TestApp {
    router: Router,
    pub store: Arc<dyn Store>,
    pub company_id: Uuid,
    /// The company's API key, sent by every helper.
    pub key: String,
    pub database: TestDatabase,
}

/// A response, with its body parsed as JSON (`Value::Null` when the body is empty).
#[derive(Debug)]
pub struct TestResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
    pub text: String,
}

impl TestResponse {
    /// Asserts the status, showing the body when it differs.
    #[track_caller]
    pub fn assert_status(&self, status: u16) -> &Self {
        assert_eq!(
            self.status.as_u16(),
            status,
            "unexpected status; body: {}",
            self.text
        );
        self
    }

    /// Asserts an error response in the SPEC §2 shape, with this status and code.
    #[track_caller]
    pub fn assert_error(&self, status: u16, code: &str) -> &Self {
        self.assert_status(status);
        assert_eq!(self.body["error"], json!(status), "body: {}", self.text);
        assert!(
            self.body["message"].as_str().is_some_and(|m| !m.is_empty()),
            "body: {}",
            self.text
        );
        assert_eq!(self.body["code"], json!(code), "body: {}", self.text);
        assert_eq!(
            self.headers[header::CONTENT_TYPE],
            "application/json; charset=utf-8"
        );
        self
    }

    /// Asserts that the error message mentions `text`.
    #[track_caller]
    pub fn assert_message_mentions(&self, text: &str) {
        let message = self.body["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(text),
            "{message:?} does not mention {text:?}"
        );
    }

    /// The `field` member of an error body.
    pub fn field(&self) -> Option<&str> {
        self.body["field"].as_str()
    }
}

impl TestApp {
    /// A router on a fresh database of the test's backend, with a company `acme` and a
    /// key for it.
    pub async fn spawn() -> Self {
        let database = TestDatabase::create(Backend::current()).await;
        let store = store::connect(&database.url, &test_postgres_settings())
            .await
            .expect("open database");
        let company = store.create_company("acme").await.expect("create company");
        let key = Self::make_key(store.as_ref(), company.id).await;
        let router = app(AppState::new(
            store.clone(),
            DefaultRegion::default(),
            TEST_BODY_LIMIT,
        ));
        Self {
            router,
            store,
            company_id: company.id,
            key,
            database,
        }
    }

    async fn make_key(store: &dyn Store, company_id: Uuid) -> String {
        let key = api_key::generate(None);
        store
            .create_api_key(company_id, &key.record)
            .await
            .expect("create key");
        key.secret
    }

    /// A key of a second company, for tenant-isolation tests.
    pub async fn other_company_key(&self) -> String {
        let company = self
            .store
            .create_company(&format!("other-{}", Uuid::now_v7()))
            .await
            .expect("create company");
        Self::make_key(self.store.as_ref(), company.id).await
    }

    /// Sends a raw request through the router.
    pub async fn send(&self, request: Request<Body>) -> TestResponse {
        let response = self
            .router
            .clone()
            .oneshot(request)
            .await
            .expect("the router never fails");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("read body");
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or(Value::Null)
        };
        TestResponse {
            status,
            headers,
            body,
            text,
        }
    }

    /// Sends `GET path` with this app's key and returns the response unread, to read its
    /// body as it streams.
    pub async fn open(&self, path: &str) -> axum::response::Response {
        let request = Request::get(path)
            .header(header::AUTHORIZATION, format!("Bearer {}", self.key))
            .body(Body::empty())
            .expect("valid request");
        self.router
            .clone()
            .oneshot(request)
            .await
            .expect("the router never fails")
    }

    /// Sends `method path` with this app's key and an optional JSON body.
    pub async fn request(&self, method: Method, path: &str, body: Option<Value>) -> TestResponse {
        self.request_as(&self.key, method, path, body).await
    }

    /// Sends `method path` with the given key and an optional JSON body.
    pub async fn request_as(
        &self,
        key: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> TestResponse {
        let builder = Request::builder()
            .method(method)
            .uri(path)
            .header(header::AUTHORIZATION, format!("Bearer {key}"));
        let request = match body {
            Some(body) => builder
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(body.to_string())),
            None => builder.body(Body::empty()),
        };
        self.send(request.expect("valid request")).await
    }

    pub async fn create_contact(&self, body: Value) -> TestResponse {
        self.request(Method::POST, "/api/v1/contacts", Some(body))
            .await
    }

    /// Creates a contact that must succeed, returning its body.
    pub async fn given_contact(&self, body: Value) -> Value {
        let response = self.create_contact(body).await;
        response.assert_status(200);
        response.body
    }

    pub async fn patch_contact(&self, body: Value) -> TestResponse {
        self.request(Method::PATCH, "/api/v1/contacts", Some(body))
            .await
    }

    pub async fn patch_contact_at(&self, id: &str, body: Value) -> TestResponse {
        self.request(Method::PATCH, &contact_path(id), Some(body))
            .await
    }

    pub async fn get_contact(&self, id: &str) -> TestResponse {
        self.request(Method::GET, &contact_path(id), None).await
    }

    pub async fn delete_contact(&self, id: &str) -> TestResponse {
        self.request(Method::DELETE, &contact_path(id), None).await
    }

    pub async fn list_contacts(&self, query: &str) -> TestResponse {
        self.request(Method::GET, &format!("/api/v1/contacts{query}"), None)
            .await
    }

    pub async fn create_field(&self, body: Value) -> TestResponse {
        self.request(Method::POST, "/api/v1/custom-fields", Some(body))
            .await
    }

    /// Defines a field that must be accepted.
    pub async fn given_field(&self, key: &str, field_type: &str, options: Option<&[&str]>) {
        let mut body =
            json!({"key": key, "display_name": key.replace('_', " "), "type": field_type});
        if let Some(options) = options {
            body["options"] = json!(options);
        }
        self.create_field(body).await.assert_status(200);
    }

    /// Every row of every table, as text: equal dumps mean an unchanged database.
    pub async fn dump(&self) -> String {
        self.database.dump().await
    }
}

/// Sends `count` requests at once, `request(app, index)` each, and returns the one answered
/// 200 after checking that every other was a 409 `conflict_code` naming the winner.
pub async fn race_for_one_winner<F, Fut>(
    app: &Arc<TestApp>,
    count: usize,
    conflict_code: &str,
    request: F,
) -> Value
where
    F: Fn(Arc<TestApp>, usize) -> Fut,
    Fut: std::future::Future<Output = TestResponse> + Send + 'static,
{
    let tasks: Vec<_> = (0..count)
        .map(|index| tokio::spawn(request(Arc::clone(app), index)))
        .collect();
    let mut responses = Vec::with_capacity(count);
    for task in tasks {
        responses.push(task.await.expect("the request task ran"));
    }
    let (won, lost): (Vec<_>, Vec<_>) = responses
        .iter()
        .partition(|response| response.status.as_u16() == 200);
    assert_eq!(won.len(), 1, "exactly one request wins");
    let winner = won[0].body.clone();
    for response in lost {
        response.assert_error(409, conflict_code);
        assert_eq!(response.body["conflicting_contact_id"], winner["id"]);
    }
    winner
}

/// The path of a contact, its identifier percent-encoded as one segment.
pub fn contact_path(id: &str) -> String {
    format!("/api/v1/contacts/{}", encode_segment(id))
}

/// Percent-encodes everything but unreserved characters and `:`.
pub fn encode_segment(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b':' => {
                (byte as char).to_string()
            }
            _ => format!("%{byte:02X}"),
        })
        .collect()
}

/// The `contactd` binary built for these tests.
pub fn contactd() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_contactd"));
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    command
}

/// Runs an admin command on a database, asserting success, and returns its stdout.
pub fn admin(database_url: &str, args: &[&str]) -> String {
    let output = contactd()
        .args(args)
        .env("CONTACTD_DATABASE_URL", database_url)
        .output()
        .expect("run contactd");
    assert!(
        output.status.success(),
        "contactd {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8 output")
}

/// A running `contactd serve` on a free port, its stderr collected.
pub struct ServerProcess {
    child: Child,
    pub base_url: String,
    pub stderr: Arc<Mutex<String>>,
}

impl ServerProcess {
    /// Starts `contactd serve` on a database and waits until it listens.
    pub fn start(database_url: &str, extra_env: &[(&str, &str)]) -> Self {
        let mut child = contactd()
            .args(["serve", "--bind", "127.0.0.1:0"])
            .env("CONTACTD_DATABASE_URL", database_url)
            .env("RUST_LOG", "debug")
            .envs(extra_env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start contactd");
        let stderr = Arc::new(Mutex::new(String::new()));
        let (address_tx, address_rx) = std::sync::mpsc::channel();
        let reader = BufReader::new(child.stderr.take().expect("piped stderr"));
        let collected = stderr.clone();
        std::thread::spawn(move || {
            for line in reader.lines().map_while(Result::ok) {
                if let Some(address) = line
                    .split_once("contactd is listening")
                    .and_then(|(_, rest)| rest.split("address=").nth(1))
                {
                    let _ = address_tx.send(address.trim().to_owned());
                }
                let mut collected = collected.lock().expect("lock");
                collected.push_str(&line);
                collected.push('\n');
            }
        });
        let address = address_rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("contactd did not start: {}", stderr.lock().expect("lock")));
        Self {
            child,
            base_url: format!("http://{address}"),
            stderr,
        }
    }

    /// Everything the server wrote to stderr so far.
    pub fn log(&self) -> String {
        self.stderr.lock().expect("lock").clone()
    }

    /// The API key a first run printed to stderr.
    pub fn first_run_key(&self) -> String {
        self.log()
            .split_whitespace()
            .find(|word| word.starts_with("cd_"))
            .expect("the first run prints a key")
            .to_owned()
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM and waits for the exit, returning its status code.
    pub fn terminate(self) -> Option<i32> {
        Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("send SIGTERM");
        self.wait()
    }

    /// Waits (at most 30 s) for the process to exit, returning its status code.
    pub fn wait(mut self) -> Option<i32> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status.code();
            }
            assert!(Instant::now() < deadline, "contactd did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// The login form of a running server, as a browser holds it after opening the page: the
/// login cookie and the token the form sends back. One form may be sent many times.
pub struct LoginForm {
    base_url: String,
    /// `contactd_login=…`, as the browser sends it back.
    cookie: String,
    csrf: String,
}

impl ServerProcess {
    /// Opens the dashboard's login page, as a browser would.
    pub async fn login_form(&self, client: &reqwest::Client) -> LoginForm {
        let page = client
            .get(format!("{}/dashboard/login", self.base_url))
            .send()
            .await
            .expect("the login page answers");
        assert_eq!(page.status(), 200);
        let cookie = page
            .headers()
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .find(|value| value.starts_with("contactd_login="))
            .and_then(|value| value.split(';').next())
            .expect("the login page sets its cookie")
            .to_owned();
        let html = page.text().await.expect("the login page");
        LoginForm {
            base_url: self.base_url.clone(),
            cookie,
            csrf: csrf_token_in(&html).expect("the login form has a token"),
        }
    }
}

impl LoginForm {
    /// Sends the form with this email and password; redirects are not followed.
    pub async fn submit(
        &self,
        client: &reqwest::Client,
        email: &str,
        password: &str,
    ) -> reqwest::Result<reqwest::Response> {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs([
                ("email", email),
                ("password", password),
                ("csrf_token", &self.csrf),
            ])
            .finish();
        client
            .post(format!("{}/dashboard/login", self.base_url))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::COOKIE, &self.cookie)
            .body(body)
            .send()
            .await
    }
}

/// A client for [`LoginForm::submit`]: it does not follow the redirect a login answers with.
pub fn login_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .expect("an HTTP client")
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A person signed in to the dashboard through the router, with their session cookie and
/// the CSRF token the pages give them.
pub struct DashboardUser<'a> {
    app: &'a TestApp,
    /// `contactd_session=…`, as the browser sends it back.
    pub cookie: String,
    pub csrf: String,
}

/// The value a response's `Set-Cookie` gives the cookie `name`, and its attributes.
pub fn set_cookie(response: &TestResponse, name: &str) -> Option<String> {
    response
        .headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find(|value| value.starts_with(&format!("{name}=")))
        .map(str::to_owned)
}

/// The value of the first hidden `csrf_token` input of a page.
pub fn csrf_token_in(html: &str) -> Option<String> {
    let (_, rest) = html.split_once(r#"name="csrf_token" value=""#)?;
    rest.split('"').next().map(str::to_owned)
}

/// Undoes the HTML escaping of text in a page.
pub fn unescape_html(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#34;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&amp;", "&")
}

/// The sentence a form page shows next to the input `name`, if any.
pub fn input_error(html: &str, name: &str) -> Option<String> {
    let (_, rest) = html.split_once(&format!(r#"id="error-{name}">"#))?;
    rest.split("</span>").next().map(unescape_html)
}

impl TestApp {
    /// Creates a dashboard user of a company with this email and password.
    pub async fn given_user(&self, company_id: Uuid, email: &str, password: &str) {
        let email = contactd::domain::Email::parse(email).expect("a valid email");
        let hash = contactd::password::Password::parse(password)
            .expect("a valid password")
            .hash();
        self.store
            .create_user(company_id, &email, &hash)
            .await
            .expect("create user");
    }

    /// The login page, and the login cookie it sets (`contactd_login=…`).
    pub async fn login_page(&self) -> (TestResponse, String) {
        let page = self
            .send(
                Request::get("/dashboard/login")
                    .body(Body::empty())
                    .expect("valid request"),
            )
            .await;
        page.assert_status(200);
        let cookie = set_cookie(&page, "contactd_login").expect("the login page sets a cookie");
        let cookie = cookie.split(';').next().expect("name=value").to_owned();
        (page, cookie)
    }

    /// Sends the login form as a browser that opened the login page would.
    pub async fn submit_login(&self, email: &str, password: &str) -> TestResponse {
        let (page, cookie) = self.login_page().await;
        let csrf = csrf_token_in(&page.text).expect("the login form has a token");
        self.post_form(
            "/dashboard/login",
            Some(&cookie),
            &[
                ("email", email),
                ("password", password),
                ("csrf_token", &csrf),
            ],
        )
        .await
    }

    /// Logs in through the login form, which must succeed.
    pub async fn log_in(&self, email: &str, password: &str) -> DashboardUser<'_> {
        let response = self.submit_login(email, password).await;
        response.assert_status(303);
        let cookie = set_cookie(&response, "contactd_session").expect("a session cookie");
        let cookie = cookie.split(';').next().expect("name=value").to_owned();
        let mut user = DashboardUser {
            app: self,
            cookie,
            csrf: String::new(),
        };
        let page = user.get("/dashboard/contacts").await;
        page.assert_status(200);
        user.csrf = csrf_token_in(&page.text).expect("pages carry the CSRF token");
        user
    }

    /// Posts a URL-encoded form with an optional `Cookie` header.
    pub async fn post_form(
        &self,
        path: &str,
        cookie: Option<&str>,
        pairs: &[(&str, &str)],
    ) -> TestResponse {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish();
        let mut request =
            Request::post(path).header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        if let Some(cookie) = cookie {
            request = request.header(header::COOKIE, cookie);
        }
        self.send(request.body(Body::from(body)).expect("valid request"))
            .await
    }
}

impl DashboardUser<'_> {
    /// `GET path` with the session cookie.
    pub async fn get(&self, path: &str) -> TestResponse {
        self.app
            .send(
                Request::get(path)
                    .header(header::COOKIE, &self.cookie)
                    .body(Body::empty())
                    .expect("valid request"),
            )
            .await
    }

    /// Posts a form with the session cookie and its CSRF token, as the page's form would.
    pub async fn post(&self, path: &str, pairs: &[(&str, &str)]) -> TestResponse {
        let mut pairs = pairs.to_vec();
        pairs.push(("csrf_token", &self.csrf));
        self.app.post_form(path, Some(&self.cookie), &pairs).await
    }

    /// Posts a form with the session cookie but no CSRF token.
    pub async fn post_without_csrf(&self, path: &str, pairs: &[(&str, &str)]) -> TestResponse {
        self.app.post_form(path, Some(&self.cookie), pairs).await
    }
}
