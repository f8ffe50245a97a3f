//! `TestApp`: the real router on a fresh database, with one company and its key, and
//! intent-named helpers for each request a test makes.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use contactd::api_key;
use contactd::domain::DefaultRegion;
use contactd::http::rate_limit::RateLimits;
use contactd::http::{AppState, app};
use contactd::store::{RateLimit, Store};
use contactd::webhooks::{Destinations, delivery};
use serde_json::{Value, json};
use tower::ServiceExt;
use uuid::Uuid;

use super::{Backend, TestDatabase, test_postgres_settings};

/// The body limit tests run with: small, so the 413 test needs no huge body.
pub const TEST_BODY_LIMIT: usize = 64 * 1024;

/// The real router over a fresh database of the test's backend, with one company and one key.
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

    /// Asserts an error response in the error shape (docs/reference.md#the-error-body), with this status and code.
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
        Self::build(false, RateLimits::new(None)).await
    }

    /// As [`TestApp::spawn`], with the server's rate limit `limit` for every key
    /// (`--rate-limit`, `--rate-burst`); the other apps limit nothing.
    pub async fn spawn_rate_limited(limit: RateLimit) -> Self {
        Self::build(false, RateLimits::new(Some(limit))).await
    }

    /// As [`TestApp::spawn`], with webhook deliveries being made, as a server makes them,
    /// and allowed to receivers on this machine (`--webhook-allow-private`).
    pub async fn spawn_delivering() -> Self {
        let app = Self::build(true, RateLimits::new(None)).await;
        tokio::spawn(delivery::deliver(
            app.store.clone(),
            Destinations {
                allow_private: true,
            },
        ));
        app
    }

    async fn build(allow_private: bool, rate_limits: RateLimits) -> Self {
        let database = TestDatabase::create(Backend::current()).await;
        let store = contactd::cli::open_store(&database.url, &test_postgres_settings())
            .await
            .expect("open database");
        let company = store.create_company("acme").await.expect("create company");
        let key = Self::make_key(store.as_ref(), company.id).await;
        let mut state = AppState::new(store.clone(), DefaultRegion::default(), TEST_BODY_LIMIT);
        state.webhook_destinations.allow_private = allow_private;
        state.rate_limits = Arc::new(rate_limits);
        let router = app(state);
        Self {
            router,
            store,
            company_id: company.id,
            key,
            database,
        }
    }

    async fn make_key(store: &dyn Store, company_id: Uuid) -> String {
        let key = api_key::generate(None, &contactd_api::Scope::ALL);
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
        self.request_as_with(key, method, path, body, &[]).await
    }

    /// Sends `method path` with this app's key, an optional JSON body and more headers.
    pub async fn request_with(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> TestResponse {
        self.request_as_with(&self.key, method, path, body, headers)
            .await
    }

    /// Sends `method path` with the given key, an optional JSON body and more headers.
    pub async fn request_as_with(
        &self,
        key: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> TestResponse {
        let mut builder = Request::builder()
            .method(method)
            .uri(path)
            .header(header::AUTHORIZATION, format!("Bearer {key}"));
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
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
