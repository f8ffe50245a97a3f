//! Hostile input: truncated, malformed, oversized, deceptive and smuggled requests are refused
//! with a 4xx in the seed's `Error` shape (docs/reference.md#the-error-body) and leave the database byte-for-byte as it was;
//! deceptive values that are valid are stored literally and never reach another contact.
//!
//! One file per family of attack; here, the company under attack and the check every
//! family ends with: each request refused, and the database's dump unchanged.

mod absurd_headers;
mod forged_cursors;
mod lookalike_emails;
mod malformed_json;
mod not_utf_8;
mod nul_bytes;
mod numbers_out_of_range;
mod oversized_bodies;
mod oversized_strings;
mod percent_encoded_paths;
mod sql_injection;

use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderValue, Method, Request, header};
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestResponse, contact_path};

/// How long a refusal may take before the server counts as hung.
const PATIENCE: Duration = Duration::from_secs(30);

/// The company under attack: a custom field of every type, and two contacts with every
/// member and every field set, so that a dump has rows in every table.
struct Seeded {
    app: TestApp,
    jane: Value,
    john: Value,
}

async fn seeded() -> Seeded {
    let app = TestApp::spawn().await;
    app.given_field("plan", "select", Some(&["free", "pro"]))
        .await;
    app.given_field("seats", "number", None).await;
    app.given_field("vip", "boolean", None).await;
    app.given_field("renewal", "date", None).await;
    app.given_field("notes", "text", None).await;
    let jane = app
        .given_contact(json!({
            "email": "jane@example.com",
            "phone_number": "+1 415 555 2671",
            "ext_id": "crm-1",
            "first_name": "Jane",
            "last_name": "Doe",
            "custom_fields": [
                {"key": "plan", "value": "pro"},
                {"key": "seats", "value": 12},
                {"key": "vip", "value": true},
                {"key": "renewal", "value": "2027-01-31"},
                {"key": "notes", "value": "likes tea"},
            ],
        }))
        .await;
    let john = app
        .given_contact(json!({
            "email": "john@example.com",
            "phone_number": "+44 20 7946 0958",
            "ext_id": "crm-2",
            "first_name": "John",
            "last_name": "Roe",
            "custom_fields": [
                {"key": "plan", "value": "free"},
                {"key": "seats", "value": "3.5"},
                {"key": "vip", "value": "FALSE"},
                {"key": "renewal", "value": "2026-12-01"},
                {"key": "notes", "value": "Zoë's account"},
            ],
        }))
        .await;
    Seeded { app, jane, john }
}

/// A dump of the database taken before hostile requests, to compare with one taken after.
struct Snapshot(String);

impl Snapshot {
    async fn take(app: &TestApp) -> Self {
        Self(app.dump().await)
    }

    /// The data of the database now, change events left out: what a test compares after
    /// requests that changed the data and changed it back.
    async fn take_data(app: &TestApp) -> Self {
        Self(app.database.dump_of_data().await)
    }

    async fn assert_data_unchanged(&self, app: &TestApp, after: &str) {
        let now = app.database.dump_of_data().await;
        assert!(
            self.0 == now,
            "the data changed after {after}:\n--- before\n{}\n--- after\n{now}",
            self.0
        );
    }

    async fn assert_unchanged(&self, app: &TestApp, after: &str) {
        let now = app.dump().await;
        assert!(
            self.0 == now,
            "the database changed after {after}:\n--- before\n{}\n--- after\n{now}",
            self.0
        );
    }
}

/// A request with the app's key and, when given, a body declared as `application/json`.
fn request(app: &TestApp, method: Method, path: &str, body: Option<&[u8]>) -> Request<Body> {
    let builder = Request::builder()
        .method(method)
        .uri(path)
        .header(header::AUTHORIZATION, format!("Bearer {}", app.key));
    match body {
        Some(body) => builder
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_vec())),
        None => builder.body(Body::empty()),
    }
    .unwrap_or_else(|error| panic!("{path:.80}: the http crate refuses the request: {error}"))
}

/// One hostile request and the refusal it must get.
struct Attempt {
    /// What the attacker tries, for the failure message.
    story: String,
    request: Request<Body>,
    status: u16,
    /// The `code` the refusal must carry, when the contract (docs/reference.md) or the domain names one.
    code: Option<&'static str>,
}

impl Attempt {
    fn refused(
        story: impl Into<String>,
        request: Request<Body>,
        status: u16,
        code: Option<&'static str>,
    ) -> Self {
        Self {
            story: story.into(),
            request,
            status,
            code,
        }
    }
}

/// What is wrong with a response that should be a refusal with `status` (and `code`) in the
/// error shape (docs/reference.md#the-error-body), if anything.
fn refusal_problem(response: &TestResponse, status: u16, code: Option<&str>) -> Option<String> {
    let body = &response.body;
    let shown = || format!("{} {:.300}", response.status, response.text);
    if response.status.as_u16() != status {
        return Some(format!("expected {status}, got {}", shown()));
    }
    if response.headers.get(header::CONTENT_TYPE)
        != Some(&HeaderValue::from_static("application/json; charset=utf-8"))
    {
        return Some(format!(
            "Content-Type is {:?}: {}",
            response.headers.get(header::CONTENT_TYPE),
            shown()
        ));
    }
    if body["error"] != json!(status) {
        return Some(format!("`error` is not {status}: {}", shown()));
    }
    if body["message"].as_str().is_none_or(str::is_empty) {
        return Some(format!("no message: {}", shown()));
    }
    let Some(actual) = body["code"].as_str().filter(|code| !code.is_empty()) else {
        return Some(format!("no code: {}", shown()));
    };
    if code.is_some_and(|code| code != actual) {
        return Some(format!("expected code {code:?}: {}", shown()));
    }
    None
}

/// Sends every attempt, checks that each is refused as it should be, and that the database
/// is byte-for-byte what it was before the first. Every failure is listed, not just the first.
async fn assert_all_refused(app: &TestApp, attempts: Vec<Attempt>) {
    let count = attempts.len();
    let before = Snapshot::take(app).await;
    let mut problems = Vec::new();
    for attempt in attempts {
        let Ok(response) = tokio::time::timeout(PATIENCE, app.send(attempt.request)).await else {
            problems.push(format!(
                "{:.200}: no answer within {PATIENCE:?}",
                attempt.story
            ));
            continue;
        };
        if let Some(problem) = refusal_problem(&response, attempt.status, attempt.code) {
            problems.push(format!("{:.200}: {problem}", attempt.story));
        }
    }
    assert!(
        problems.is_empty(),
        "{} of {count} hostile requests were not refused properly:\n{}",
        problems.len(),
        problems.join("\n")
    );
    before
        .assert_unchanged(app, &format!("{count} refused requests"))
        .await;
}

/// Each hostile path segment sent to every route that takes one: GET, PATCH (with a body
/// that would change the contact or field) and DELETE.
fn at_every_route_of(
    app: &TestApp,
    collection: &str,
    segment: &str,
    status: u16,
    code: Option<&'static str>,
) -> Vec<Attempt> {
    let path = format!("/api/v1/{collection}/{segment}");
    let patch: &[u8] = if collection == "contacts" {
        br#"{"first_name": "Mallory"}"#
    } else {
        br#"{"display_name": "Mallory"}"#
    };
    [
        (Method::GET, None),
        (Method::PATCH, Some(patch)),
        (Method::DELETE, None),
    ]
    .into_iter()
    .map(|(method, body)| {
        Attempt::refused(
            format!("{method} {path}"),
            request(app, method, &path, body),
            status,
            code,
        )
    })
    .collect()
}
/// A JSON request with the app's key, its body shown in the story.
fn json_attempt(
    app: &TestApp,
    story: &str,
    (method, path): (Method, &str),
    body: Value,
    code: &'static str,
) -> Attempt {
    Attempt::refused(
        format!("{story}: {method} {path} {body:.300}"),
        request(app, method, path, Some(body.to_string().as_bytes())),
        400,
        Some(code),
    )
}

/// A custom field value written on create and by each form of update.
fn field_value_attempts(app: &TestApp, values: &Value, code: &'static str) -> Vec<Attempt> {
    vec![
        json_attempt(
            app,
            "create with a custom field value",
            (Method::POST, "/api/v1/contacts"),
            json!({"ext_id": "crm-9", "custom_fields": values}),
            code,
        ),
        json_attempt(
            app,
            "set a custom field value",
            (Method::PATCH, "/api/v1/contacts"),
            json!({"id": "alt:ext_id:crm-1", "custom_fields": {"set": values}}),
            code,
        ),
        json_attempt(
            app,
            "set a custom field value by path",
            (Method::PATCH, &contact_path("alt:ext_id:crm-2")),
            json!({"custom_fields": {"set": values}}),
            code,
        ),
    ]
}

/// A field definition with one member replaced, on create; and the change, on update.
fn field_definition_attempts(
    app: &TestApp,
    member: &str,
    value: Value,
    code: &'static str,
) -> Vec<Attempt> {
    let mut definition =
        json!({"key": "tier", "display_name": "Tier", "type": "select", "options": ["gold"]});
    definition[member] = value.clone();
    let mut attempts = vec![json_attempt(
        app,
        &format!("define a field with this {member}"),
        (Method::POST, "/api/v1/custom-fields"),
        definition,
        code,
    )];
    if matches!(member, "display_name" | "options") {
        let mut change = json!({});
        change[member] = match value {
            // Options only grow: the current ones, then the new.
            Value::Array(options) => json!(
                [json!(["free", "pro"]), json!(options)]
                    .iter()
                    .flat_map(|list| list.as_array().unwrap().clone())
                    .collect::<Vec<_>>()
            ),
            other => other,
        };
        attempts.push(json_attempt(
            app,
            &format!("change a field's {member}"),
            (Method::PATCH, "/api/v1/custom-fields/plan"),
            change,
            code,
        ));
    }
    attempts
}
