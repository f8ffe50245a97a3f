//! Hostile input: truncated, malformed, oversized, deceptive and smuggled requests are refused
//! with a 4xx in the seed's `Error` shape (§2) and leave the database byte-for-byte as it was;
//! deceptive values that are valid are stored literally and never reach another contact.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, Method, Request, header};
use serde_json::{Value, json};

use crate::helpers::{
    ServerProcess, TEST_BODY_LIMIT, TestApp, TestDatabase, TestResponse, contact_path,
    contract_test, encode_segment,
};

/// Sixty KiB: far past every length limit, yet inside the tests' 64 KiB body limit.
const HUGE: usize = 60 * 1024;

/// How long a refusal may take before the server counts as hung.
const PATIENCE: Duration = Duration::from_secs(30);

/// How deep the nested-JSON attacks go.
const DEPTH: usize = 10_000;

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
    /// The `code` the refusal must carry, when the SPEC or the domain names one.
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
/// SPEC §2 shape, if anything.
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

async fn a_valid_body_cut_off_at_any_byte_is_refused_and_changes_nothing() {
    let Seeded { app, .. } = seeded().await;
    let create = |n: u64| {
        json!({
        "email": format!("zoe{n}@example.com"),
        "phone_number": 14155552670_u64 + n,
        "ext_id": format!("crm-{n}"),
        "first_name": "Zoë",
        "last_name": "Ångström",
        "custom_fields": [
            {"key": "plan", "value": "pro"},
            {"key": "seats", "value": 4.5},
            {"key": "vip", "value": false},
            {"key": "renewal", "value": "2028-02-29"},
            {"key": "notes", "value": "✓ \"quoted\" \\ back"},
        ],
        })
    };
    let bodies = [
        (
            Method::POST,
            "/api/v1/contacts".to_owned(),
            serde_json::to_vec(&create(3)).unwrap(),
        ),
        (
            Method::POST,
            "/api/v1/contacts".to_owned(),
            serde_json::to_vec_pretty(&create(4)).unwrap(),
        ),
        (
            Method::PATCH,
            "/api/v1/contacts".to_owned(),
            serde_json::to_vec(&json!({
                "id": "alt:email:jane@example.com",
                "email": null,
                "phone_number": "(415) 555-2679",
                "first_name": "Jäne",
                "custom_fields": {
                    "set": [{"key": "seats", "value": "13"}, {"key": "vip", "value": "false"}],
                    "remove": ["notes", "renewal"],
                },
            }))
            .unwrap(),
        ),
        (
            Method::PATCH,
            contact_path("alt:ext_id:crm-2"),
            serde_json::to_vec(&json!({"last_name": null, "ext_id": "crm-2b"})).unwrap(),
        ),
        (
            Method::POST,
            "/api/v1/custom-fields".to_owned(),
            serde_json::to_vec(&json!({
                "key": "tier",
                "display_name": "Tier ✓",
                "type": "select",
                "options": ["gold", "silver"],
            }))
            .unwrap(),
        ),
        (
            Method::PATCH,
            "/api/v1/custom-fields/plan".to_owned(),
            serde_json::to_vec(
                &json!({"display_name": "Plan ✓", "options": ["free", "pro", "team"]}),
            )
            .unwrap(),
        ),
    ];
    let mut attempts = Vec::new();
    for (method, path, body) in &bodies {
        for cut in 0..body.len() {
            attempts.push(Attempt::refused(
                format!("{method} {path} cut after {cut} of {} bytes", body.len()),
                request(&app, method.clone(), path, Some(&body[..cut])),
                400,
                Some("invalid_json"),
            ));
        }
    }
    assert_all_refused(&app, attempts).await;

    // Whole, every body is accepted: each refusal above was the cut's doing.
    for (method, path, body) in &bodies {
        let response = app
            .send(request(&app, method.clone(), path, Some(body)))
            .await;
        response.assert_status(200);
    }
}
contract_test!(a_valid_body_cut_off_at_any_byte_is_refused_and_changes_nothing);

async fn json_nested_ten_thousand_deep_is_refused_without_exhausting_the_stack() {
    let Seeded { app, .. } = seeded().await;
    let arrays = format!("{}{}", "[".repeat(DEPTH), "]".repeat(DEPTH));
    let objects = format!("{}1{}", r#"{"a":"#.repeat(DEPTH), "}".repeat(DEPTH));
    let unclosed = "[{\"a\":".repeat(DEPTH / 2);
    let places = [
        (Method::POST, "/api/v1/contacts".to_owned(), "NESTED"),
        (Method::PATCH, "/api/v1/contacts".to_owned(), "NESTED"),
        (Method::PATCH, contact_path("alt:ext_id:crm-1"), "NESTED"),
        (Method::POST, "/api/v1/custom-fields".to_owned(), "NESTED"),
        (
            Method::PATCH,
            "/api/v1/custom-fields/plan".to_owned(),
            "NESTED",
        ),
        (
            Method::POST,
            "/api/v1/contacts".to_owned(),
            r#"{"ext_id": NESTED}"#,
        ),
        (
            Method::POST,
            "/api/v1/contacts".to_owned(),
            r#"{"ext_id": "crm-9", "phone_number": NESTED}"#,
        ),
        (
            Method::POST,
            "/api/v1/contacts".to_owned(),
            r#"{"ext_id": "crm-9", "custom_fields": NESTED}"#,
        ),
        (
            Method::POST,
            "/api/v1/contacts".to_owned(),
            r#"{"ext_id": "crm-9", "custom_fields": [{"key": "notes", "value": NESTED}]}"#,
        ),
        (
            Method::POST,
            "/api/v1/contacts".to_owned(),
            r#"{"ext_id": "crm-9", "nested": NESTED}"#,
        ),
        (
            Method::PATCH,
            "/api/v1/contacts".to_owned(),
            r#"{"id": NESTED}"#,
        ),
        (
            Method::PATCH,
            "/api/v1/contacts".to_owned(),
            r#"{"id": "alt:ext_id:crm-1", "custom_fields": {"set": [{"key": "seats", "value": NESTED}]}}"#,
        ),
        (
            Method::PATCH,
            "/api/v1/contacts".to_owned(),
            r#"{"id": "alt:ext_id:crm-1", "custom_fields": {"remove": NESTED}}"#,
        ),
        (
            Method::PATCH,
            contact_path("alt:ext_id:crm-1"),
            r#"{"first_name": "Jane", "custom_fields": NESTED}"#,
        ),
        (
            Method::POST,
            "/api/v1/custom-fields".to_owned(),
            r#"{"key": "tier", "display_name": "Tier", "type": "select", "options": NESTED}"#,
        ),
        (
            Method::PATCH,
            "/api/v1/custom-fields/plan".to_owned(),
            r#"{"options": NESTED}"#,
        ),
    ];
    let mut attempts = Vec::new();
    for (shape, nested) in [
        ("arrays", &arrays),
        ("objects", &objects),
        ("unclosed arrays of objects", &unclosed),
    ] {
        for (method, path, template) in &places {
            let body = template.replace("NESTED", nested);
            attempts.push(Attempt::refused(
                format!("{method} {path} {template} with {DEPTH} nested {shape}"),
                request(&app, method.clone(), path, Some(body.as_bytes())),
                400,
                None,
            ));
        }
    }
    assert_all_refused(&app, attempts).await;
}
contract_test!(json_nested_ten_thousand_deep_is_refused_without_exhausting_the_stack);

async fn json_that_only_a_lenient_parser_would_read_is_refused() {
    let Seeded { app, .. } = seeded().await;
    let bodies: [(Method, &str, &[u8]); 24] = [
        (
            Method::POST,
            "/api/v1/contacts",
            br#"{"ext_id": "crm-9" /* a comment */}"#,
        ),
        (
            Method::POST,
            "/api/v1/contacts",
            b"// a comment\n{\"ext_id\": \"crm-9\"}",
        ),
        (Method::POST, "/api/v1/contacts", br#"{"ext_id": "crm-9"} # a comment"#),
        (
            Method::POST,
            "/api/v1/contacts",
            br#"{"ext_id": "crm-9", "custom_fields": [{"key": "notes", "value": "x"},]}"#,
        ),
        (
            Method::POST,
            "/api/v1/contacts",
            br#"{"ext_id": "crm-9", "custom_fields": [{"key": "seats", "value": NaN}]}"#,
        ),
        (
            Method::POST,
            "/api/v1/contacts",
            br#"{"ext_id": "crm-9", "custom_fields": [{"key": "seats", "value": Infinity}]}"#,
        ),
        (
            Method::POST,
            "/api/v1/contacts",
            br#"{"ext_id": "crm-9", "custom_fields": [{"key": "seats", "value": -Infinity}]}"#,
        ),
        (
            Method::POST,
            "/api/v1/contacts",
            br#"{"ext_id": "crm-9", "custom_fields": [{"key": "seats", "value": 0x10}]}"#,
        ),
        (
            Method::POST,
            "/api/v1/contacts",
            br#"{"ext_id": "crm-9", "custom_fields": [{"key": "seats", "value": +1}]}"#,
        ),
        (
            Method::POST,
            "/api/v1/contacts",
            br#"{"ext_id": "crm-9", "custom_fields": [{"key": "seats", "value": .5}]}"#,
        ),
        (
            Method::POST,
            "/api/v1/contacts",
            br#"{"ext_id": "crm-9", "custom_fields": [{"key": "seats", "value": 1.}]}"#,
        ),
        (
            Method::POST,
            "/api/v1/contacts",
            br#"{"ext_id": "crm-9", "custom_fields": [{"key": "seats", "value": 1e}]}"#,
        ),
        (
            Method::POST,
            "/api/v1/contacts",
            br#"{"ext_id": "crm-9", "phone_number": 04155552671}"#,
        ),
        (
            Method::POST,
            "/api/v1/contacts",
            br#"{"ext_id": "crm-9", "custom_fields": [{"key": "vip", "value": True}]}"#,
        ),
        (
            Method::POST,
            "/api/v1/contacts",
            br#"{"ext_id": "crm-9", "first_name": undefined}"#,
        ),
        (Method::POST, "/api/v1/contacts", b"{\"ext_id\": \"crm\n9\"}"),
        (Method::POST, "/api/v1/contacts", b"{\"ext_id\": \"crm\t9\"}"),
        (Method::POST, "/api/v1/contacts", b"{\"ext_id\": \"crm\x019\"}"),
        (Method::POST, "/api/v1/contacts", br#"{"ext_id": "crm\x41"}"#),
        (Method::POST, "/api/v1/contacts", br#"{"ext_id": "crm\u12"}"#),
        (Method::POST, "/api/v1/contacts", br#"{"ext_id": "crm\U00000041"}"#),
        (Method::POST, "/api/v1/contacts", b" \n\t\r "),
        (
            Method::PATCH,
            "/api/v1/contacts",
            br#"{"id": "alt:ext_id:crm-1", "first_name": "Jane"}}"#,
        ),
        (
            Method::POST,
            "/api/v1/custom-fields",
            br#"{"key": "tier", "display_name": "Tier", "type": "select", "options": ["gold",,"silver"]}"#,
        ),
    ];
    let attempts = bodies
        .into_iter()
        .map(|(method, path, body)| {
            Attempt::refused(
                format!("{method} {path} {}", String::from_utf8_lossy(body)),
                request(&app, method, path, Some(body)),
                400,
                Some("invalid_json"),
            )
        })
        .collect();
    assert_all_refused(&app, attempts).await;
}
contract_test!(json_that_only_a_lenient_parser_would_read_is_refused);

async fn a_member_given_twice_is_refused_so_no_parser_can_pick_a_different_one() {
    let Seeded { app, .. } = seeded().await;
    let bodies: [(Method, &str, &str); 8] = [
        (
            Method::POST,
            "/api/v1/contacts",
            r#"{"ext_id": "crm-9", "ext_id": "crm-10"}"#,
        ),
        (
            Method::PATCH,
            "/api/v1/contacts",
            r#"{"id": "alt:ext_id:crm-2", "id": "alt:ext_id:crm-1", "first_name": "Mallory"}"#,
        ),
        (
            Method::PATCH,
            "/api/v1/contacts",
            r#"{"id": "alt:ext_id:crm-1", "email": "mallory@example.com", "email": null}"#,
        ),
        (
            Method::PATCH,
            "/api/v1/contacts/alt:ext_id:crm-1",
            r#"{"id": "alt:ext_id:crm-1", "first_name": "Mallory", "id": "alt:ext_id:crm-2"}"#,
        ),
        (
            Method::PATCH,
            "/api/v1/contacts",
            r#"{"id": "alt:ext_id:crm-1", "custom_fields": {"set": [{"key": "notes", "value": "x"}], "set": []}}"#,
        ),
        (
            Method::POST,
            "/api/v1/contacts",
            r#"{"ext_id": "crm-9", "custom_fields": [{"key": "notes", "key": "plan", "value": "pro"}]}"#,
        ),
        (
            Method::POST,
            "/api/v1/custom-fields",
            r#"{"key": "tier", "key": "plan", "display_name": "Tier", "type": "text"}"#,
        ),
        (
            Method::PATCH,
            "/api/v1/custom-fields/plan",
            r#"{"display_name": "Plan", "display_name": "Mallory"}"#,
        ),
    ];
    let attempts = bodies
        .into_iter()
        .map(|(method, path, body)| {
            Attempt::refused(
                format!("{method} {path} {body}"),
                request(&app, method, path, Some(body.as_bytes())),
                400,
                Some("invalid_request"),
            )
        })
        .collect();
    assert_all_refused(&app, attempts).await;
}
contract_test!(a_member_given_twice_is_refused_so_no_parser_can_pick_a_different_one);

async fn a_body_that_is_not_utf_8_anywhere_is_refused() {
    let Seeded { app, .. } = seeded().await;
    let utf_16: Vec<u8> = "\u{feff}{\"ext_id\": \"crm-9\"}"
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    let bodies: [(Method, &str, &[u8]); 17] = [
        (Method::POST, "/api/v1/contacts", b"{\"ext_id\": \"\xC0\xAF\"}"),
        (Method::POST, "/api/v1/contacts", b"{\"ext_id\": \"crm-\xFF\"}"),
        (Method::POST, "/api/v1/contacts", b"{\"ext_id\": \"\xED\xA0\x80\"}"),
        (Method::POST, "/api/v1/contacts", b"{\"ext_id\": \"\xE2\x82\"}"),
        (Method::POST, "/api/v1/contacts", b"{\"ext_id\": \"\xF4\x90\x80\x80\"}"),
        (Method::POST, "/api/v1/contacts", b"{\"ext_id\": \"\\ud800\"}"),
        (Method::POST, "/api/v1/contacts", b"{\"ext_id\": \"\\udc00\"}"),
        (Method::POST, "/api/v1/contacts", b"{\"ext_id\": \"\\ud800\\u0041\"}"),
        (Method::POST, "/api/v1/contacts", b"{\"\xFFext_id\": \"crm-9\"}"),
        (
            Method::POST,
            "/api/v1/contacts",
            b"{\"email\": \"jane\xC0\xAE@example.com\"}",
        ),
        (
            Method::POST,
            "/api/v1/contacts",
            b"{\"ext_id\": \"crm-9\", \"custom_fields\": [{\"key\": \"notes\", \"value\": \"\xFF\"}]}",
        ),
        (
            Method::POST,
            "/api/v1/contacts",
            b"{\"first_name\": \"Zo\xEB\", \"ext_id\": \"crm-9\"}",
        ),
        (Method::POST, "/api/v1/contacts", &utf_16),
        (
            Method::PATCH,
            "/api/v1/contacts",
            b"{\"id\": \"alt:ext_id:crm-1\xFF\", \"first_name\": \"Mallory\"}",
        ),
        (
            Method::PATCH,
            "/api/v1/contacts",
            b"{\"id\": \"alt:ext_id:crm-1\", \"first_name\": \"\xC0\xAF\"}",
        ),
        (
            Method::POST,
            "/api/v1/custom-fields",
            b"{\"key\": \"tier\", \"display_name\": \"\xFF\", \"type\": \"text\"}",
        ),
        (
            Method::PATCH,
            "/api/v1/custom-fields/plan",
            b"{\"options\": [\"free\", \"pro\", \"\xED\xBF\xBF\"]}",
        ),
    ];
    let attempts = bodies
        .into_iter()
        .map(|(method, path, body)| {
            Attempt::refused(
                format!("{method} {path} {}", String::from_utf8_lossy(body)),
                request(&app, method, path, Some(body)),
                400,
                Some("invalid_json"),
            )
        })
        .collect();
    assert_all_refused(&app, attempts).await;
}
contract_test!(a_body_that_is_not_utf_8_anywhere_is_refused);

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

async fn invalid_utf_8_in_a_path_segment_is_refused() {
    let Seeded { app, .. } = seeded().await;
    let mut attempts = Vec::new();
    for segment in [
        "%C0%AF",
        "%FF",
        "%ED%A0%80",
        "alt:ext_id:%FF",
        "alt:ext_id:crm-1%C0%AF",
        "alt:ext_id:%F4%90%80%80",
        "alt:email:jane%FF@example.com",
        "alt:phone_number:%2B1415555267%C1",
    ] {
        attempts.extend(at_every_route_of(&app, "contacts", segment, 400, None));
    }
    for segment in ["%FF", "plan%C0%AF", "pl%E0%80an"] {
        attempts.extend(at_every_route_of(&app, "custom-fields", segment, 400, None));
    }
    assert_all_refused(&app, attempts).await;
}
contract_test!(invalid_utf_8_in_a_path_segment_is_refused);

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

async fn a_nul_in_a_contact_member_or_identifier_is_refused() {
    let Seeded { app, jane, .. } = seeded().await;
    let jane_id = jane["id"].as_str().unwrap();
    let mut attempts = Vec::new();
    for (member, nul_value, code) in [
        ("email", json!("jane\u{0}@example.com"), "invalid_email"),
        ("email", json!("mallory@example.com\u{0}"), "invalid_email"),
        (
            "phone_number",
            json!("+1 415 555 2671\u{0}"),
            "invalid_phone_number",
        ),
        (
            "phone_number",
            json!("\u{0}+14155552672"),
            "invalid_phone_number",
        ),
        ("ext_id", json!("crm-9\u{0}"), "invalid_ext_id"),
        ("ext_id", json!("\u{0}"), "invalid_ext_id"),
        ("first_name", json!("Ja\u{0}ne"), "invalid_name"),
        ("last_name", json!("\u{0}"), "invalid_name"),
    ] {
        let mut create = json!({"ext_id": "crm-9", "email": "zoe@example.com"});
        create[member] = nul_value.clone();
        let mut update = json!({"id": "alt:ext_id:crm-1"});
        update[member] = nul_value.clone();
        let mut update_at = json!({});
        update_at[member] = nul_value;
        let story = format!("a NUL in {member}");
        let by_path = contact_path("alt:ext_id:crm-2");
        attempts.extend([
            json_attempt(
                &app,
                &story,
                (Method::POST, "/api/v1/contacts"),
                create,
                code,
            ),
            json_attempt(
                &app,
                &story,
                (Method::PATCH, "/api/v1/contacts"),
                update,
                code,
            ),
            json_attempt(&app, &story, (Method::PATCH, &by_path), update_at, code),
        ]);
    }
    for (key, value) in [
        ("notes\u{0}", "x"),
        ("plan", "pro\u{0}"),
        ("renewal", "2027-01-31\u{0}"),
        ("seats", "12\u{0}"),
        ("vip", "true\u{0}"),
    ] {
        let code = if key.contains('\u{0}') {
            "unknown_custom_field"
        } else {
            "invalid_custom_field_value"
        };
        attempts.extend(field_value_attempts(
            &app,
            &json!([{"key": key, "value": value}]),
            code,
        ));
    }
    attempts.push(json_attempt(
        &app,
        "remove a custom field",
        (Method::PATCH, "/api/v1/contacts"),
        json!({"id": "alt:ext_id:crm-1", "custom_fields": {"remove": ["notes\u{0}"]}}),
        "unknown_custom_field",
    ));
    for id in [
        "alt:ext_id:crm-1\u{0}".to_owned(),
        "alt:ext_id:\u{0}".to_owned(),
        "alt:email:jane@example.com\u{0}".to_owned(),
        "alt:phone_number:+14155552671\u{0}".to_owned(),
        "alt\u{0}:ext_id:crm-1".to_owned(),
        format!("{jane_id}\u{0}"),
        format!("\u{0}{jane_id}"),
    ] {
        attempts.push(json_attempt(
            &app,
            "name the contact",
            (Method::PATCH, "/api/v1/contacts"),
            json!({"id": id, "first_name": "Mallory"}),
            "invalid_identifier",
        ));
    }
    attempts.extend(field_definition_attempts(
        &app,
        "key",
        json!("tier\u{0}"),
        "invalid_custom_field_key",
    ));
    attempts.extend(field_definition_attempts(
        &app,
        "type",
        json!("select\u{0}"),
        "invalid_request",
    ));
    for raw in [
        b"{\"ext_id\": \"crm-9\x00\"}".as_slice(),
        b"{\"ext_id\": \"crm-9\"}\x00",
        b"\x00{\"ext_id\": \"crm-9\"}",
        b"{\"ext_id\":\x00\"crm-9\"}",
    ] {
        attempts.push(Attempt::refused(
            format!("a raw NUL byte: {}", String::from_utf8_lossy(raw)),
            request(&app, Method::POST, "/api/v1/contacts", Some(raw)),
            400,
            Some("invalid_json"),
        ));
    }
    assert_all_refused(&app, attempts).await;
}
contract_test!(a_nul_in_a_contact_member_or_identifier_is_refused);

async fn a_nul_in_a_custom_field_text_value_display_name_or_option_is_refused() {
    let Seeded { app, .. } = seeded().await;
    let mut attempts = Vec::new();
    for text in ["tea\u{0}", "\u{0}"] {
        attempts.extend(field_value_attempts(
            &app,
            &json!([{"key": "notes", "value": text}]),
            "invalid_custom_field_value",
        ));
    }
    for (member, value, code) in [
        ("display_name", json!("Tier\u{0}"), "invalid_display_name"),
        ("display_name", json!("\u{0}"), "invalid_display_name"),
        ("options", json!(["gold\u{0}"]), "invalid_options"),
        ("options", json!(["\u{0}"]), "invalid_options"),
    ] {
        attempts.extend(field_definition_attempts(&app, member, value, code));
    }
    assert_all_refused(&app, attempts).await;
}
contract_test!(a_nul_in_a_custom_field_text_value_display_name_or_option_is_refused);

async fn a_nul_in_a_path_identifier_is_refused() {
    let Seeded { app, jane, .. } = seeded().await;
    let jane_id = jane["id"].as_str().unwrap();
    let mut attempts = Vec::new();
    for segment in [
        "%00".to_owned(),
        "alt:ext_id:crm-1%00".to_owned(),
        "alt:ext_id:%00".to_owned(),
        "alt:ext_id:%00crm-1".to_owned(),
        "alt:email:jane@example.com%00".to_owned(),
        "alt:phone_number:%2B14155552671%00".to_owned(),
        "alt%00:ext_id:crm-1".to_owned(),
        format!("{jane_id}%00"),
        format!("%00{jane_id}"),
    ] {
        attempts.extend(at_every_route_of(
            &app,
            "contacts",
            &segment,
            400,
            Some("invalid_identifier"),
        ));
    }
    for segment in ["plan%00", "%00", "%00plan"] {
        attempts.extend(at_every_route_of(
            &app,
            "custom-fields",
            segment,
            400,
            Some("invalid_custom_field_key"),
        ));
    }
    assert_all_refused(&app, attempts).await;
}
contract_test!(a_nul_in_a_path_identifier_is_refused);

/// A valid-looking address of exactly 255 characters: each part within its own limit, so
/// only the whole is too long.
fn email_of_255_characters() -> String {
    let label = "a".repeat(63);
    let domain = format!("{label}.{label}.{label}");
    let address = format!("{}@{domain}", "j".repeat(255 - 1 - domain.len()));
    assert_eq!(address.chars().count(), 255);
    address
}

async fn a_string_over_its_limit_in_any_member_is_refused() {
    let Seeded { app, .. } = seeded().await;
    let huge = "x".repeat(HUGE);
    let huge_digits = "9".repeat(HUGE);
    let long_email = email_of_255_characters();
    let huge_email = format!("{huge}@example.com");
    let long_key = "a".repeat(64);
    let contact_members = [
        ("email", long_email.clone(), "invalid_email"),
        ("email", huge_email.clone(), "invalid_email"),
        (
            "phone_number",
            format!("+1{}4155552671", " ".repeat(53)),
            "invalid_phone_number",
        ),
        ("phone_number", huge_digits.clone(), "invalid_phone_number"),
        ("ext_id", "x".repeat(256), "invalid_ext_id"),
        ("ext_id", "é".repeat(256), "invalid_ext_id"),
        ("ext_id", "😀".repeat(256), "invalid_ext_id"),
        ("ext_id", huge.clone(), "invalid_ext_id"),
        ("first_name", "x".repeat(256), "invalid_name"),
        ("first_name", "é".repeat(256), "invalid_name"),
        ("first_name", huge.clone(), "invalid_name"),
        ("last_name", "x".repeat(256), "invalid_name"),
        ("last_name", huge.clone(), "invalid_name"),
    ];
    let field_values = [
        ("notes", "x".repeat(10_001), "invalid_custom_field_value"),
        ("notes", "é".repeat(10_001), "invalid_custom_field_value"),
        ("notes", huge.clone(), "invalid_custom_field_value"),
        ("plan", huge.clone(), "invalid_custom_field_value"),
        (
            "renewal",
            format!("2027-01-31{}", "0".repeat(HUGE)),
            "invalid_custom_field_value",
        ),
        ("seats", huge_digits.clone(), "invalid_custom_field_value"),
        (
            "vip",
            format!("true{}", " ".repeat(HUGE)),
            "invalid_custom_field_value",
        ),
        (long_key.as_str(), "x".to_owned(), "unknown_custom_field"),
        (huge.as_str(), "x".to_owned(), "unknown_custom_field"),
    ];
    let mut attempts = Vec::new();
    let mut send = |story: String, method: Method, path: &str, body: Value, code| {
        let body = body.to_string();
        attempts.push(Attempt::refused(
            format!("{story}: {method} {path} ({} bytes)", body.len()),
            request(&app, method, path, Some(body.as_bytes())),
            400,
            code,
        ));
    };
    for (member, long, code) in &contact_members {
        let story = format!("{member} of {} characters", long.chars().count());
        let mut create = json!({"ext_id": "crm-9"});
        create[member] = json!(long);
        send(
            story.clone(),
            Method::POST,
            "/api/v1/contacts",
            create,
            Some(*code),
        );
        let mut update = json!({"id": "alt:ext_id:crm-1"});
        update[member] = json!(long);
        send(
            story.clone(),
            Method::PATCH,
            "/api/v1/contacts",
            update,
            Some(*code),
        );
        let mut update_at = json!({});
        update_at[member] = json!(long);
        send(
            story,
            Method::PATCH,
            &contact_path("alt:ext_id:crm-2"),
            update_at,
            Some(*code),
        );
    }
    for (key, long, code) in &field_values {
        let story = format!(
            "custom field {:.20} valued {} characters",
            key,
            long.chars().count()
        );
        let values = json!([{"key": key, "value": long}]);
        send(
            story.clone(),
            Method::POST,
            "/api/v1/contacts",
            json!({"ext_id": "crm-9", "custom_fields": values}),
            Some(*code),
        );
        send(
            story,
            Method::PATCH,
            "/api/v1/contacts",
            json!({"id": "alt:ext_id:crm-1", "custom_fields": {"set": values}}),
            Some(*code),
        );
    }
    send(
        "remove a key of 60 KiB".to_owned(),
        Method::PATCH,
        "/api/v1/contacts",
        json!({"id": "alt:ext_id:crm-1", "custom_fields": {"remove": [huge]}}),
        Some("unknown_custom_field"),
    );
    send(
        "a member name of 60 KiB".to_owned(),
        Method::POST,
        "/api/v1/contacts",
        json!({"ext_id": "crm-9", huge.clone(): "x"}),
        Some("invalid_request"),
    );
    for id in [
        format!("alt:ext_id:{}", "x".repeat(256)),
        format!("alt:ext_id:{huge}"),
        format!("alt:email:{long_email}"),
        format!("alt:email:{huge_email}"),
        format!("alt:phone_number:{huge_digits}"),
        format!("alt:{huge}:crm-1"),
        huge.clone(),
    ] {
        send(
            format!("an id of {} characters", id.len()),
            Method::PATCH,
            "/api/v1/contacts",
            json!({"id": id, "first_name": "Mallory"}),
            Some("invalid_identifier"),
        );
    }
    let too_many_options: Vec<String> = (0..501).map(|index| format!("option {index}")).collect();
    for (member, long, code) in [
        ("key", json!("a".repeat(64)), "invalid_custom_field_key"),
        ("key", json!(huge), "invalid_custom_field_key"),
        (
            "display_name",
            json!("x".repeat(101)),
            "invalid_display_name",
        ),
        (
            "display_name",
            json!("é".repeat(101)),
            "invalid_display_name",
        ),
        ("display_name", json!(huge), "invalid_display_name"),
        ("type", json!(huge), "invalid_request"),
        (
            "options",
            json!(["gold", "x".repeat(256)]),
            "invalid_options",
        ),
        ("options", json!([huge]), "invalid_options"),
        ("options", json!(too_many_options), "invalid_options"),
    ] {
        let mut field =
            json!({"key": "tier", "display_name": "Tier", "type": "select", "options": ["gold"]});
        field[member] = long;
        send(
            format!("a field's {member}"),
            Method::POST,
            "/api/v1/custom-fields",
            field,
            Some(code),
        );
    }
    for (change, code) in [
        (
            json!({"display_name": "x".repeat(101)}),
            "invalid_display_name",
        ),
        (json!({"display_name": huge}), "invalid_display_name"),
        (
            json!({"options": ["free", "pro", "x".repeat(256)]}),
            "invalid_options",
        ),
    ] {
        send(
            "change a field".to_owned(),
            Method::PATCH,
            "/api/v1/custom-fields/plan",
            change,
            Some(code),
        );
    }
    // In the path, 60 KiB is still a URI the http crate takes (its limit is 64 KiB).
    attempts.extend(at_every_route_of(
        &app,
        "contacts",
        &format!("alt:ext_id:{huge}"),
        400,
        Some("invalid_identifier"),
    ));
    attempts.extend(at_every_route_of(
        &app,
        "contacts",
        &huge,
        400,
        Some("invalid_identifier"),
    ));
    attempts.extend(at_every_route_of(
        &app,
        "custom-fields",
        &"a".repeat(HUGE),
        400,
        Some("invalid_custom_field_key"),
    ));
    assert_all_refused(&app, attempts).await;
}
contract_test!(a_string_over_its_limit_in_any_member_is_refused);

async fn a_refusal_never_echoes_a_huge_input_back() {
    let Seeded { app, .. } = seeded().await;
    let huge = "x".repeat(HUGE);
    let requests = [
        (
            Method::POST,
            "/api/v1/contacts".to_owned(),
            json!({"ext_id": "crm-9", huge.clone(): 1}),
        ),
        (
            Method::PATCH,
            "/api/v1/contacts".to_owned(),
            json!({"id": "alt:ext_id:crm-1", huge.clone(): 1}),
        ),
        (
            Method::PATCH,
            contact_path("alt:ext_id:crm-1"),
            json!({huge.clone(): 1}),
        ),
        (
            Method::POST,
            "/api/v1/custom-fields".to_owned(),
            json!({"key": "tier", "display_name": "Tier", "type": huge}),
        ),
        (
            Method::POST,
            "/api/v1/custom-fields".to_owned(),
            json!({"key": "tier", "display_name": "Tier", "type": "text", huge.clone(): 1}),
        ),
        (
            Method::POST,
            "/api/v1/contacts".to_owned(),
            json!({"ext_id": huge}),
        ),
        (
            Method::POST,
            "/api/v1/contacts".to_owned(),
            json!({"email": huge}),
        ),
        (
            Method::PATCH,
            "/api/v1/contacts".to_owned(),
            json!({"id": huge}),
        ),
        (
            Method::PATCH,
            "/api/v1/contacts".to_owned(),
            json!({"id": format!("alt:{huge}:x")}),
        ),
        (
            Method::PATCH,
            "/api/v1/contacts".to_owned(),
            json!({"id": "alt:ext_id:crm-1", "custom_fields": {"remove": [huge]}}),
        ),
        (
            Method::POST,
            "/api/v1/contacts".to_owned(),
            json!({"ext_id": "crm-9", "custom_fields": [{"key": "plan", "value": huge}]}),
        ),
        (
            Method::POST,
            "/api/v1/custom-fields".to_owned(),
            json!({"key": huge, "display_name": "Tier", "type": "text"}),
        ),
    ];
    let mut echoes = Vec::new();
    for (method, path, body) in requests {
        let response = app
            .send(request(
                &app,
                method.clone(),
                &path,
                Some(body.to_string().as_bytes()),
            ))
            .await;
        response.assert_status(400);
        // A sentence and a member path, not the attacker's 60 KiB (let alone three copies).
        if response.text.len() > 2048 {
            echoes.push(format!(
                "{method} {path} {:.80}: a refusal of {} bytes: {:.200}",
                body.to_string(),
                response.text.len(),
                response.text
            ));
        }
    }
    assert!(echoes.is_empty(), "{}", echoes.join("\n"));
}
contract_test!(a_refusal_never_echoes_a_huge_input_back);

/// What happens to an email that looks like `jane@example.com`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lookalike {
    /// Refused as an invalid address (invisible characters among them).
    Refused,
    /// A valid address of its own, stored in this normal form: a different mailbox, so a
    /// different contact.
    Distinct(&'static str),
    /// Another spelling of Jane's own address (docs/robustness.md#email-normalisation):
    /// refused as her duplicate, and a lookup by it finds her.
    Same,
}

async fn a_lookalike_email_never_reaches_the_ascii_contact() {
    let Seeded { app, jane, .. } = seeded().await;
    let before = Snapshot::take(&app).await;
    let expected = [
        (
            "j\u{430}ne@example.com",
            Lookalike::Distinct("j\u{430}ne@example.com"),
        ),
        (
            "jane@ex\u{430}mple.com",
            Lookalike::Distinct("jane@xn--exmple-4nf.com"),
        ),
        ("jane\u{ff20}example.com", Lookalike::Refused),
        (
            "\u{ff4a}\u{ff41}\u{ff4e}\u{ff45}@example.com",
            Lookalike::Same,
        ),
        ("ja\u{200d}ne@example.com", Lookalike::Refused),
        ("jane\u{200b}@example.com", Lookalike::Refused),
        ("jane@example.com\u{200b}", Lookalike::Refused),
        ("\u{202e}jane@example.com", Lookalike::Refused),
        ("jane@example.com\u{202e}", Lookalike::Refused),
        (
            "jane\u{301}@example.com",
            Lookalike::Distinct("jan\u{e9}@example.com"),
        ),
        ("ja\u{ad}ne@example.com", Lookalike::Refused),
        ("jane@example\u{3002}com", Lookalike::Same),
    ];
    for (email, expectation) in expected {
        let named = format!("alt:email:{email}");
        let created = app.create_contact(json!({"email": email})).await;
        let fetched = app.get_contact(&named).await;
        match expectation {
            Lookalike::Distinct(stored) => {
                // A mailbox of its own: every request naming it reaches it, and only it.
                created.assert_status(200);
                let id = &created.body["id"];
                assert_ne!(id, &jane["id"], "{email:?}");
                assert_eq!(created.body["email"], json!(stored), "{email:?}");
                let updated = app
                    .patch_contact(json!({"id": named, "first_name": "Mallory"}))
                    .await;
                let deleted = app.delete_contact(&named).await;
                for response in [&fetched, &updated, &deleted] {
                    response.assert_status(200);
                    assert_eq!(&response.body["id"], id, "{email:?}: {}", response.text);
                }
                assert_eq!(updated.body["first_name"], json!("Mallory"));
            }
            Lookalike::Same => {
                created.assert_error(409, "duplicate_email");
                assert_eq!(created.body["conflicting_contact_id"], jane["id"]);
                fetched.assert_status(200);
                assert_eq!(fetched.body, jane, "{email:?}");
            }
            Lookalike::Refused => {
                created.assert_error(400, "invalid_email");
                let updated = app
                    .patch_contact(json!({"id": named, "first_name": "Mallory"}))
                    .await;
                let deleted = app.delete_contact(&named).await;
                for response in [&fetched, &updated, &deleted] {
                    response.assert_error(400, "invalid_identifier");
                }
            }
        }
    }
    assert_eq!(
        app.get_contact(jane["id"].as_str().unwrap()).await.body,
        jane
    );
    // Each distinct contact was deleted again, so nothing else may differ.
    before.assert_unchanged(&app, "the lookalike emails").await;
}
contract_test!(a_lookalike_email_never_reaches_the_ascii_contact);

async fn a_phone_number_out_of_range_is_refused() {
    let Seeded { app, .. } = seeded().await;
    let thousand_digits = "9".repeat(1000);
    let mut attempts = Vec::new();
    for (raw, code) in [
        ("1e309", None),
        ("-1e309", None),
        (thousand_digits.as_str(), None),
        ("-0", Some("invalid_phone_number")),
        ("-0.0", Some("invalid_phone_number")),
        ("0", Some("invalid_phone_number")),
        ("-4155552671", Some("invalid_phone_number")),
        ("-14155552671", Some("invalid_phone_number")),
        ("1e20", Some("invalid_phone_number")),
        ("18446744073709551616", Some("invalid_phone_number")),
        ("18446744073709551615", Some("invalid_phone_number")),
        ("4155552671.0", Some("invalid_phone_number")),
        ("4.155552671e9", Some("invalid_phone_number")),
        ("4155552671e0", Some("invalid_phone_number")),
        ("4155552671.5", Some("invalid_phone_number")),
        ("1e-7", Some("invalid_phone_number")),
        (r#""+1 415 555 2671\u0000""#, Some("invalid_phone_number")),
        (r#""-4155552671""#, Some("invalid_phone_number")),
        (r#""1e10""#, Some("invalid_phone_number")),
        (r#""4155552671e0""#, Some("invalid_phone_number")),
        (r#""NaN""#, Some("invalid_phone_number")),
        (r#""Infinity""#, Some("invalid_phone_number")),
        (r#""+1 415 555 2671 ext. 12""#, Some("invalid_phone_number")),
        (
            r#""+1\u2009415\u2009555\u20092671""#,
            Some("invalid_phone_number"),
        ),
        ("true", Some("invalid_request")),
        ("[4155552671]", Some("invalid_request")),
        (r#"{"number": 4155552671}"#, Some("invalid_request")),
    ] {
        for (method, path, body) in [
            (
                Method::POST,
                "/api/v1/contacts".to_owned(),
                format!(r#"{{"ext_id": "crm-9", "phone_number": {raw}}}"#),
            ),
            (
                Method::PATCH,
                "/api/v1/contacts".to_owned(),
                format!(r#"{{"id": "alt:ext_id:crm-1", "phone_number": {raw}}}"#),
            ),
            (
                Method::PATCH,
                contact_path("alt:ext_id:crm-2"),
                format!(r#"{{"phone_number": {raw}}}"#),
            ),
        ] {
            attempts.push(Attempt::refused(
                format!("{method} {path} {body:.120}"),
                request(&app, method, &path, Some(body.as_bytes())),
                400,
                code,
            ));
        }
    }
    for phone in [
        "-4155552671",
        "-0",
        "1e20",
        "18446744073709551616",
        "4155552671e0",
        "+1 415 555 2671\u{0}",
    ] {
        attempts.extend(at_every_route_of(
            &app,
            "contacts",
            &encode_segment(&format!("alt:phone_number:{phone}")),
            400,
            Some("invalid_identifier"),
        ));
    }
    assert_all_refused(&app, attempts).await;
}
contract_test!(a_phone_number_out_of_range_is_refused);

async fn a_custom_number_that_is_not_finite_or_not_a_number_is_refused() {
    let Seeded { app, .. } = seeded().await;
    let four_hundred_digits = "9".repeat(400);
    let quoted_digits = format!("\"{four_hundred_digits}\"");
    let mut attempts = Vec::new();
    for (raw, code) in [
        ("1e309", None),
        ("-1e309", None),
        ("1e400", None),
        (four_hundred_digits.as_str(), None),
        (r#""1e309""#, Some("invalid_custom_field_value")),
        (r#""-1e309""#, Some("invalid_custom_field_value")),
        (r#""1e400""#, Some("invalid_custom_field_value")),
        (quoted_digits.as_str(), Some("invalid_custom_field_value")),
        (r#""NaN""#, Some("invalid_custom_field_value")),
        (r#""nan""#, Some("invalid_custom_field_value")),
        (r#""Infinity""#, Some("invalid_custom_field_value")),
        (r#""-Infinity""#, Some("invalid_custom_field_value")),
        (r#""inf""#, Some("invalid_custom_field_value")),
        (r#""+1""#, Some("invalid_custom_field_value")),
        (r#"".5""#, Some("invalid_custom_field_value")),
        (r#""5.""#, Some("invalid_custom_field_value")),
        (r#""0x10""#, Some("invalid_custom_field_value")),
        (r#""1_000""#, Some("invalid_custom_field_value")),
        (r#""1,5""#, Some("invalid_custom_field_value")),
        (r#""12 seats""#, Some("invalid_custom_field_value")),
        (r#""""#, Some("invalid_custom_field_value")),
        (r#"" ""#, Some("invalid_custom_field_value")),
        (r#""١٢""#, Some("invalid_custom_field_value")),
        (r#""１２""#, Some("invalid_custom_field_value")),
        ("true", Some("invalid_custom_field_value")),
        ("null", Some("invalid_custom_field_value")),
        ("[12]", Some("invalid_custom_field_value")),
        (r#"{"value": 12}"#, Some("invalid_custom_field_value")),
    ] {
        for (method, body) in [
            (
                Method::POST,
                format!(
                    r#"{{"ext_id": "crm-9", "custom_fields": [{{"key": "seats", "value": {raw}}}]}}"#
                ),
            ),
            (
                Method::PATCH,
                format!(
                    r#"{{"id": "alt:ext_id:crm-1", "custom_fields": {{"set": [{{"key": "seats", "value": {raw}}}]}}}}"#
                ),
            ),
        ] {
            attempts.push(Attempt::refused(
                format!("{method} {body:.160}"),
                request(&app, method, "/api/v1/contacts", Some(body.as_bytes())),
                400,
                code,
            ));
        }
    }
    assert_all_refused(&app, attempts).await;
}
contract_test!(a_custom_number_that_is_not_finite_or_not_a_number_is_refused);

async fn negative_zero_and_huge_finite_numbers_are_stored_as_the_number_they_are() {
    let Seeded { app, .. } = seeded().await;
    for (index, (raw, expected)) in [
        ("-0", 0.0),
        ("-0.0", 0.0),
        (r#""-0""#, 0.0),
        (r#""-0.000""#, 0.0),
        ("-0e5", 0.0),
        ("123456789012345678901234567890", 1.2345678901234568e29),
        (r#""123456789012345678901234567890""#, 1.2345678901234568e29),
        ("1.7976931348623157e308", f64::MAX),
        ("-1.7976931348623157e308", f64::MIN),
        ("9007199254740993", 9_007_199_254_740_992.0),
    ]
    .into_iter()
    .enumerate()
    {
        let body = format!(
            r#"{{"ext_id": "number-{index}", "custom_fields": [{{"key": "seats", "value": {raw}}}]}}"#
        );
        let response = app
            .send(request(
                &app,
                Method::POST,
                "/api/v1/contacts",
                Some(body.as_bytes()),
            ))
            .await;
        response.assert_status(200);
        let stored = app.get_contact(&format!("alt:ext_id:number-{index}")).await;
        let value = &stored.body["custom_fields"][0]["value"];
        assert_eq!(value.as_f64(), Some(expected), "{raw} came back as {value}");
        if expected == 0.0 {
            // Zero has one form: a client must never see `-0` or `-0.0`.
            assert_eq!(value, &json!(0), "{raw} came back as {value}");
        }
    }
}
contract_test!(negative_zero_and_huge_finite_numbers_are_stored_as_the_number_they_are);

/// Strings that mean something to SQL, to `LIKE`, or to a shell.
const SQL_METACHARACTERS: [&str; 12] = [
    "'; DROP TABLE contacts; --",
    "\" OR 1=1 --",
    "' OR '1'='1",
    "%",
    "_",
    "\\",
    "crm-%",
    "crm_1",
    "\\'; --",
    "$1",
    "?",
    "*/ SELECT 1; /*",
];

async fn sql_metacharacters_in_string_members_are_stored_and_returned_literally() {
    let Seeded { app, jane, john } = seeded().await;
    for (index, text) in SQL_METACHARACTERS.iter().enumerate() {
        let key = format!("meta_{index}");
        let field = app
            .create_field(json!({
                "key": key,
                "display_name": text,
                "type": "select",
                "options": [text, format!("{text}-other")],
            }))
            .await;
        field.assert_status(200);
        assert_eq!(field.body["display_name"], json!(text));
        assert_eq!(
            field.body["options"],
            json!([text, format!("{text}-other")])
        );

        let created = app
            .create_contact(json!({
                "ext_id": text,
                "first_name": text,
                "last_name": text,
                "custom_fields": [
                    {"key": "notes", "value": text},
                    {"key": key, "value": text},
                ],
            }))
            .await;
        created.assert_status(200);
        for member in ["ext_id", "first_name", "last_name"] {
            assert_eq!(created.body[member], json!(text), "{member}");
        }
        let fetched = app.get_contact(&format!("alt:ext_id:{text}")).await;
        fetched.assert_status(200);
        assert_eq!(fetched.body, created.body, "{text}");
        let notes = fetched.body["custom_fields"]
            .as_array()
            .unwrap()
            .iter()
            .find(|field| field["key"] == "notes")
            .unwrap()
            .clone();
        assert_eq!(notes["value"], json!(text));

        let updated = app
            .patch_contact(json!({
                "id": format!("alt:ext_id:{text}"),
                "first_name": format!("{text}{text}"),
                "custom_fields": {"set": [{"key": "notes", "value": format!("{text}{text}")}]},
            }))
            .await;
        updated.assert_status(200);
        assert_eq!(updated.body["first_name"], json!(format!("{text}{text}")));
    }
    // Every table survived, and the seeded contacts are as they were.
    assert_eq!(
        app.get_contact(jane["id"].as_str().unwrap()).await.body,
        jane
    );
    assert_eq!(
        app.get_contact(john["id"].as_str().unwrap()).await.body,
        john
    );
    let listed = app.list_contacts("?limit=100").await;
    assert_eq!(
        listed.body["data"]["contacts"].as_array().unwrap().len(),
        2 + SQL_METACHARACTERS.len()
    );
    // `%` and `_` found exactly the contact that holds them, never a LIKE match.
    for (pattern, holder) in [
        ("%", "%"),
        ("_", "_"),
        ("crm_1", "crm_1"),
        ("crm-%", "crm-%"),
    ] {
        let found = app.get_contact(&format!("alt:ext_id:{pattern}")).await;
        assert_eq!(found.body["ext_id"], json!(holder));
    }
}
contract_test!(sql_metacharacters_in_string_members_are_stored_and_returned_literally);

async fn sql_metacharacters_in_emails_are_stored_literally_or_refused() {
    let Seeded { app, .. } = seeded().await;
    let refused = ["x;y", "a\"b", "'; DROP TABLE contacts; --", "\\"]
        .map(|local_part| {
            let body = json!({"email": format!("{local_part}@example.com"), "ext_id": "mail"});
            Attempt::refused(
                format!("email {local_part}@example.com"),
                request(
                    &app,
                    Method::POST,
                    "/api/v1/contacts",
                    Some(body.to_string().as_bytes()),
                ),
                400,
                Some("invalid_email"),
            )
        })
        .into_iter()
        .collect();
    assert_all_refused(&app, refused).await;

    for (index, local_part) in [
        "o'brien",
        "'or'1'='1",
        "%",
        "_",
        "j%",
        "j_ne",
        "a--b",
        "jane'--",
    ]
    .into_iter()
    .enumerate()
    {
        let email = format!("{local_part}@example.com");
        let created = app
            .create_contact(json!({"email": email, "ext_id": format!("mail-{index}")}))
            .await;
        created.assert_status(200);
        assert_eq!(created.body["email"], json!(email));
        let found = app.get_contact(&format!("alt:email:{email}")).await;
        assert_eq!(found.body["id"], created.body["id"], "{email}");
    }
}
contract_test!(sql_metacharacters_in_emails_are_stored_literally_or_refused);

async fn a_pattern_or_injection_in_an_identifier_matches_no_other_contact() {
    let Seeded { app, jane, .. } = seeded().await;
    let jane_id = jane["id"].as_str().unwrap();
    let mut attempts = Vec::new();
    let mut identifiers: Vec<String> = SQL_METACHARACTERS
        .iter()
        .map(|text| format!("alt:ext_id:{text}"))
        .collect();
    identifiers.extend(
        [
            "alt:ext_id:crm-_",
            "alt:ext_id:_rm-1",
            "alt:ext_id:crm-1' --",
            "alt:ext_id:crm-1' OR '1'='1",
            "alt:ext_id:crm-1\" OR \"1\"=\"1",
            "alt:email:%@example.com",
            "alt:email:j_ne@example.com",
            "alt:email:'or'1'='1@example.com",
        ]
        .map(str::to_owned),
    );
    for id in &identifiers {
        attempts.push(Attempt::refused(
            format!("PATCH /api/v1/contacts id {id}"),
            request(
                &app,
                Method::PATCH,
                "/api/v1/contacts",
                Some(
                    json!({"id": id, "first_name": "Mallory"})
                        .to_string()
                        .as_bytes(),
                ),
            ),
            404,
            Some("contact_not_found"),
        ));
        attempts.extend(at_every_route_of(
            &app,
            "contacts",
            &encode_segment(id),
            404,
            Some("contact_not_found"),
        ));
    }
    for (id, code) in [
        (format!("{jane_id}' OR '1'='1"), "invalid_identifier"),
        (format!("{}%", &jane_id[..35]), "invalid_identifier"),
        (
            "alt:phone_number:+1415555267%".to_owned(),
            "invalid_identifier",
        ),
        (
            "alt:phone_number:' OR 1=1 --".to_owned(),
            "invalid_identifier",
        ),
        ("alt:ext_id'--:crm-1".to_owned(), "invalid_identifier"),
    ] {
        attempts.extend(at_every_route_of(
            &app,
            "contacts",
            &encode_segment(&id),
            400,
            Some(code),
        ));
    }
    for key in ["plan'--", "plan%", "pl%an", "plan;", "Plan"] {
        attempts.extend(at_every_route_of(
            &app,
            "custom-fields",
            &encode_segment(key),
            400,
            Some("invalid_custom_field_key"),
        ));
    }
    attempts.extend(at_every_route_of(
        &app,
        "custom-fields",
        "p_an",
        404,
        Some("custom_field_not_found"),
    ));
    assert_all_refused(&app, attempts).await;
}
contract_test!(a_pattern_or_injection_in_an_identifier_matches_no_other_contact);

async fn sql_metacharacters_in_a_member_with_a_grammar_are_refused() {
    let Seeded { app, .. } = seeded().await;
    let mut attempts = Vec::new();
    for text in SQL_METACHARACTERS {
        attempts.extend(
            [
                (
                    json!({"ext_id": "crm-9", "phone_number": text}),
                    "invalid_phone_number",
                ),
                (json!({"ext_id": "crm-9", "email": text}), "invalid_email"),
            ]
            .map(|(body, code)| {
                json_attempt(
                    &app,
                    "create",
                    (Method::POST, "/api/v1/contacts"),
                    body,
                    code,
                )
            }),
        );
        for key in ["plan", "seats", "vip", "renewal"] {
            attempts.extend(field_value_attempts(
                &app,
                &json!([{"key": key, "value": text}]),
                "invalid_custom_field_value",
            ));
        }
        attempts.extend(field_value_attempts(
            &app,
            &json!([{"key": text, "value": "x"}]),
            "unknown_custom_field",
        ));
        attempts.push(json_attempt(
            &app,
            "remove",
            (Method::PATCH, "/api/v1/contacts"),
            json!({"id": "alt:ext_id:crm-1", "custom_fields": {"remove": [text]}}),
            "unknown_custom_field",
        ));
        // `crm_1` is a well-formed key; every other text holds a character no key may.
        if text != "crm_1" {
            attempts.extend(field_definition_attempts(
                &app,
                "key",
                json!(text),
                "invalid_custom_field_key",
            ));
        }
        attempts.extend(field_definition_attempts(
            &app,
            "type",
            json!(text),
            "invalid_request",
        ));
    }
    assert_all_refused(&app, attempts).await;
}
contract_test!(sql_metacharacters_in_a_member_with_a_grammar_are_refused);

/// A JSON body that would be accepted, padded with whitespace to `len` bytes.
fn padded(body: &Value, len: usize) -> Vec<u8> {
    let mut bytes = body.to_string().into_bytes();
    bytes.resize(len, b' ');
    bytes
}

async fn a_body_over_the_limit_on_any_write_route_is_a_413_that_changes_nothing() {
    let Seeded { app, .. } = seeded().await;
    let writes = [
        (
            Method::POST,
            "/api/v1/contacts".to_owned(),
            json!({"ext_id": "crm-9"}),
        ),
        (
            Method::PATCH,
            "/api/v1/contacts".to_owned(),
            json!({"id": "alt:ext_id:crm-1", "first_name": "Mallory"}),
        ),
        (
            Method::PATCH,
            contact_path("alt:ext_id:crm-1"),
            json!({"first_name": "Mallory"}),
        ),
        (
            Method::POST,
            "/api/v1/custom-fields".to_owned(),
            json!({"key": "tier", "display_name": "Tier", "type": "text"}),
        ),
        (
            Method::PATCH,
            "/api/v1/custom-fields/plan".to_owned(),
            json!({"display_name": "Mallory"}),
        ),
    ];
    let mut attempts = Vec::new();
    for (method, path, body) in &writes {
        for len in [TEST_BODY_LIMIT + 1, 1024 * 1024] {
            let bytes = padded(body, len);
            let mut announced = request(&app, method.clone(), path, Some(&bytes));
            announced
                .headers_mut()
                .insert(header::CONTENT_LENGTH, len.into());
            let mut streamed = request(&app, method.clone(), path, None);
            streamed.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            *streamed.body_mut() = Body::from_stream(Body::from(bytes).into_data_stream());
            for (how, request) in [("announced", announced), ("streamed", streamed)] {
                attempts.push(Attempt::refused(
                    format!("{method} {path} with {len} bytes, {how}"),
                    request,
                    413,
                    Some("payload_too_large"),
                ));
            }
        }
    }
    assert_all_refused(&app, attempts).await;

    // At the limit, each write goes through: the refusals were the size's doing alone.
    for (method, path, body) in &writes {
        let bytes = padded(body, TEST_BODY_LIMIT);
        let response = app
            .send(request(&app, method.clone(), path, Some(&bytes)))
            .await;
        response.assert_status(200);
    }
}
contract_test!(a_body_over_the_limit_on_any_write_route_is_a_413_that_changes_nothing);

async fn a_percent_encoding_trick_in_a_path_resolves_only_to_the_contact_it_names() {
    let Seeded { app, jane, .. } = seeded().await;
    let jane_id = jane["id"].as_str().unwrap();
    let mut ids = std::collections::HashMap::new();
    ids.insert("crm-1", jane_id.to_owned());
    for (ext_id, email) in [
        ("a/b", None),
        ("%2F", None),
        ("a b", None),
        ("a+b", None),
        ("a:b", None),
        ("plus", Some("j+x@example.com")),
    ] {
        let contact = app
            .given_contact(json!({"ext_id": ext_id, "email": email}))
            .await;
        ids.insert(ext_id, contact["id"].as_str().unwrap().to_owned());
    }
    let encoded_id: String = jane_id.bytes().map(|byte| format!("%{byte:02x}")).collect();
    let upper_id = jane_id.to_uppercase();
    let resolving = [
        ("alt:ext_id:a%2Fb", "a/b"),
        ("alt:ext_id:a%2fb", "a/b"),
        ("alt%3Aext_id%3Aa%2Fb", "a/b"),
        ("alt%3aext_id%3acrm-1", "crm-1"),
        ("alt:ext_id:crm%2D1", "crm-1"),
        ("alt:ext_id:%252F", "%2F"),
        ("alt:ext_id:a+b", "a+b"),
        ("alt:ext_id:a%2Bb", "a+b"),
        ("alt:ext_id:a%20b", "a b"),
        ("alt:ext_id:a:b", "a:b"),
        ("alt:ext_id:a%3Ab", "a:b"),
        ("alt:email:JANE%40Example.COM", "crm-1"),
        ("alt:email:j+x@example.com", "plus"),
        ("alt:email:j%2Bx@example.com", "plus"),
        ("alt:phone_number:+14155552671", "crm-1"),
        ("alt:phone_number:%2B14155552671", "crm-1"),
        ("alt:phone_number:%2B1%20(415)%20555-2671", "crm-1"),
        (&upper_id, "crm-1"),
        (&encoded_id, "crm-1"),
    ];
    let before = Snapshot::take(&app).await;
    for (segment, ext_id) in resolving {
        let path = format!("/api/v1/contacts/{segment}");
        for (method, body) in [(Method::GET, None), (Method::PATCH, Some(b"{}".as_slice()))] {
            let response = app.send(request(&app, method.clone(), &path, body)).await;
            response.assert_status(200);
            assert_eq!(
                response.body["id"],
                json!(ids[ext_id]),
                "{method} {path} must name {ext_id:?}"
            );
        }
    }
    before
        .assert_unchanged(&app, "fetching and empty updates")
        .await;

    let mut attempts = Vec::new();
    for segment in [
        "alt:ext_id:a%252Fb",
        "alt:ext_id:%252f",
        "alt:ext_id:a%2520b",
        "alt:ext_id:a%252Bb",
        "alt:ext_id:..%2Fx",
        "alt:ext_id:..%2F..%2Fcustom-fields%2Fplan",
        "alt:ext_id:a%2Fb%2F",
        "alt:ext_id:%2Fa%2Fb",
        "alt:ext_id:crm-1%3F",
        "alt:ext_id:crm-1%23",
        "alt:ext_id:crm-1;x=1",
        "alt:ext_id:%",
        "alt:ext_id:%zz",
        "alt:ext_id:crm-1%2",
        "alt:ext_id:CRM-1",
        "alt:ext_id:crm-1%20",
        "alt:ext_id:%20crm-1",
        "alt:ext_id:a%09b",
    ] {
        attempts.extend(at_every_route_of(
            &app,
            "contacts",
            segment,
            404,
            Some("contact_not_found"),
        ));
    }
    for segment in [
        "..",
        ".",
        "%2E%2E",
        "%2e",
        "..%2F..%2Fcustom-fields",
        "alt%253Aext_id%253Acrm-1",
        "alt:email:jane%2540example.com",
        "alt:email:j%20x%40example.com",
        "alt:phone_number:+1+415+555+2671",
        "alt:ext_id%2Fcrm-1",
        "ALT:ext_id:crm-1",
        "alt:EXT_ID:crm-1",
        "alt%3Aext_id%3A",
        "%7B{JANE}%7D",
        "{JANE}%20",
        "%20{JANE}",
        "{JANE}%2F",
    ] {
        let segment = segment.replace("{JANE}", jane_id);
        attempts.extend(at_every_route_of(
            &app,
            "contacts",
            &segment,
            400,
            Some("invalid_identifier"),
        ));
    }
    for path in [
        "/api/v1/contacts/alt:ext_id:a/b".to_owned(),
        "/api/v1/contacts/alt:ext_id:crm-1/".to_owned(),
        "/api/v1/contacts//alt:ext_id:crm-1".to_owned(),
        "/api/v1/contacts/../custom-fields/plan".to_owned(),
        "/api/v1/contacts/%2E%2E/custom-fields/plan".to_owned(),
        "/api/v1/custom-fields/../contacts/alt:ext_id:crm-1".to_owned(),
        format!("/api/v1/contacts/{jane_id}/.."),
        "/api/v1%2Fcontacts%2Falt:ext_id:crm-1".to_owned(),
        "/api/v1/contacts%2Falt:ext_id:crm-1".to_owned(),
        "/api/v1/custom-fields%2Fplan".to_owned(),
        "/api/v1/custom-fields/plan/".to_owned(),
    ] {
        for method in [Method::GET, Method::PATCH, Method::DELETE] {
            let body =
                (method == Method::PATCH).then_some(br#"{"first_name": "Mallory"}"#.as_slice());
            attempts.push(Attempt::refused(
                format!("{method} {path}"),
                request(&app, method, &path, body),
                404,
                Some("route_not_found"),
            ));
        }
    }
    for segment in [
        "PLAN",
        "plan%2F..",
        "pl%C3%A0n",
        "plan%20",
        "%20plan",
        "..",
        "plan:x",
    ] {
        attempts.extend(at_every_route_of(
            &app,
            "custom-fields",
            segment,
            400,
            Some("invalid_custom_field_key"),
        ));
    }
    assert_all_refused(&app, attempts).await;

    for segment in ["pl%61n", "%70lan", "pl%61%6E"] {
        let response = app
            .request(
                Method::GET,
                &format!("/api/v1/custom-fields/{segment}"),
                None,
            )
            .await;
        response.assert_status(200);
        assert_eq!(response.body["key"], json!("plan"), "{segment}");
    }
}
contract_test!(a_percent_encoding_trick_in_a_path_resolves_only_to_the_contact_it_names);

async fn a_garbage_or_foreign_cursor_is_refused() {
    let Seeded { app, .. } = seeded().await;
    let ours = app.list_contacts("?limit=1").await.body["next_cursor"]
        .as_str()
        .expect("a next page")
        .to_owned();
    let other_key = app.other_company_key().await;
    for index in 0..3 {
        app.request_as(
            &other_key,
            Method::POST,
            "/api/v1/contacts",
            Some(json!({"ext_id": format!("theirs-{index}")})),
        )
        .await
        .assert_status(200);
    }
    let theirs = app
        .request_as(&other_key, Method::GET, "/api/v1/contacts?limit=1", None)
        .await
        .body["next_cursor"]
        .as_str()
        .expect("a next page")
        .to_owned();
    let base64 = |bytes: &[u8]| -> String {
        // URL-safe, unpadded: the alphabet real cursors use, so only the length is wrong.
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let bits: Vec<bool> = bytes
            .iter()
            .flat_map(|byte| (0..8).rev().map(move |bit| (*byte >> bit) & 1 == 1))
            .collect();
        bits.chunks(6)
            .map(|chunk| {
                let value = chunk
                    .iter()
                    .chain(std::iter::repeat(&false))
                    .take(6)
                    .fold(0, |value, bit| (value << 1) | usize::from(*bit));
                ALPHABET[value] as char
            })
            .collect()
    };
    let standard_alphabet = ours.replace('-', "+").replace('_', "/");
    let mut cursors = vec![
        String::new(),
        "=".to_owned(),
        "!!!!".to_owned(),
        "A".repeat(40 * 1024),
        base64(&[0xAB; 39]),
        base64(&[0xAB; 41]),
        base64(&[0xAB; 4096]),
        format!("{ours}=="),
        format!("{ours}AA"),
        ours[..ours.len() - 1].to_owned(),
        format!(" {ours}"),
        format!("{ours}\u{0}"),
        theirs.clone(),
        "' OR 1=1 --".to_owned(),
        "%".to_owned(),
        "\u{ff}\u{fe}".to_owned(),
    ];
    if standard_alphabet != ours {
        cursors.push(standard_alphabet);
    }
    let mut attempts: Vec<Attempt> = cursors
        .iter()
        .map(|cursor| {
            let path = format!("/api/v1/contacts?cursor={}", encode_segment(cursor));
            Attempt::refused(
                format!("cursor {cursor:.80?}"),
                request(&app, Method::GET, &path, None),
                400,
                Some("invalid_cursor"),
            )
        })
        .collect();
    for query in [
        "cursor=%FF",
        "cursor=%C0%AF",
        "cursor=%00",
        "cursor=%",
        "cursor=+",
    ] {
        attempts.push(Attempt::refused(
            query,
            request(
                &app,
                Method::GET,
                &format!("/api/v1/contacts?{query}"),
                None,
            ),
            400,
            Some("invalid_cursor"),
        ));
    }
    for query in [
        format!("cursor={ours}&cursor={theirs}"),
        format!("cursor[]={ours}"),
        "limit=1;DROP%20TABLE%20contacts".to_owned(),
        "limit=%FF".to_owned(),
    ] {
        attempts.push(Attempt::refused(
            query.clone(),
            request(
                &app,
                Method::GET,
                &format!("/api/v1/contacts?{query}"),
                None,
            ),
            400,
            None,
        ));
    }
    // Our cursor, presented by the other company, is as foreign as theirs is to us.
    let path = format!("/api/v1/contacts?cursor={ours}");
    attempts.push(Attempt::refused(
        "our cursor presented by the other company",
        Request::builder()
            .uri(&path)
            .header(header::AUTHORIZATION, format!("Bearer {other_key}"))
            .body(Body::empty())
            .unwrap(),
        400,
        Some("invalid_cursor"),
    ));
    assert_all_refused(&app, attempts).await;
}
contract_test!(a_garbage_or_foreign_cursor_is_refused);

/// A request with exactly these headers (no key unless one is among them) and this body.
fn with_headers(
    method: Method,
    path: &str,
    headers: Vec<(HeaderName, HeaderValue)>,
    body: &str,
) -> Request<Body> {
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .body(Body::from(body.to_owned()))
        .unwrap();
    for (name, value) in headers {
        request.headers_mut().append(name, value);
    }
    request
}

/// Heads over the router's limits (64 KiB, 200 headers) are refused with 431 before any
/// other check; smaller oddities get the usual refusal.
async fn an_absurd_header_gets_an_error_in_the_spec_shape() {
    let Seeded { app, .. } = seeded().await;
    let value = |text: String| HeaderValue::from_str(&text).unwrap();
    let bearer = value(format!("Bearer {}", app.key));
    let json_type = HeaderValue::from_static("application/json");
    let hundred_kib = "A".repeat(100 * 1024);
    let ten_kib = "x".repeat(10 * 1024);
    let create = r#"{"ext_id": "crm-9"}"#;
    let junk = |count: usize| -> Vec<(HeaderName, HeaderValue)> {
        (0..count)
            .map(|index| {
                (
                    HeaderName::try_from(format!("x-junk-{index}")).unwrap(),
                    HeaderValue::from_static("junk"),
                )
            })
            .collect()
    };
    let case = |story: &str,
                method: Method,
                headers: Vec<(HeaderName, HeaderValue)>,
                body: &str,
                status: u16,
                code: &'static str| {
        Attempt::refused(
            story,
            with_headers(method, "/api/v1/contacts", headers, body),
            status,
            Some(code),
        )
    };
    let attempts = vec![
        case(
            "an Authorization of 100 KiB",
            Method::POST,
            vec![
                (
                    header::AUTHORIZATION,
                    value(format!("Bearer {hundred_kib}")),
                ),
                (header::CONTENT_TYPE, json_type.clone()),
            ],
            create,
            431,
            "headers_too_large",
        ),
        case(
            "an Authorization of 100 KiB without a scheme",
            Method::GET,
            vec![(header::AUTHORIZATION, value(hundred_kib.clone()))],
            "",
            431,
            "headers_too_large",
        ),
        case(
            "the real key followed by 100 KiB",
            Method::POST,
            vec![
                (
                    header::AUTHORIZATION,
                    value(format!("Bearer {} {hundred_kib}", app.key)),
                ),
                (header::CONTENT_TYPE, json_type.clone()),
            ],
            create,
            431,
            "headers_too_large",
        ),
        case(
            "1,000 headers and no key",
            Method::POST,
            junk(1000),
            create,
            431,
            "headers_too_large",
        ),
        case(
            "1,000 Authorization headers, none of them a key",
            Method::GET,
            (0..1000)
                .map(|index| {
                    (
                        header::AUTHORIZATION,
                        value(format!("Bearer cd_forged_{index}")),
                    )
                })
                .collect(),
            "",
            431,
            "headers_too_large",
        ),
        case(
            "1,000 headers and a body that is not JSON",
            Method::POST,
            [
                vec![
                    (header::AUTHORIZATION, bearer.clone()),
                    (header::CONTENT_TYPE, json_type.clone()),
                ],
                junk(1000),
            ]
            .concat(),
            "{\"ext_id\": ",
            431,
            "headers_too_large",
        ),
        case(
            "1,000 Content-Type headers, the first not JSON",
            Method::POST,
            [
                vec![(header::AUTHORIZATION, bearer.clone())],
                (0..1000)
                    .map(|_| (header::CONTENT_TYPE, HeaderValue::from_static("text/plain")))
                    .collect(),
            ]
            .concat(),
            create,
            431,
            "headers_too_large",
        ),
        case(
            "a Content-Type of 10 KiB",
            Method::POST,
            vec![
                (header::AUTHORIZATION, bearer.clone()),
                (
                    header::CONTENT_TYPE,
                    value(format!("application/{ten_kib}")),
                ),
            ],
            create,
            415,
            "unsupported_media_type",
        ),
        case(
            "a JSON Content-Type with 10 KiB of parameters, and a cut body",
            Method::POST,
            vec![
                (header::AUTHORIZATION, bearer.clone()),
                (
                    header::CONTENT_TYPE,
                    value(format!("application/json; {}", "p=v; ".repeat(2048))),
                ),
            ],
            "{\"ext_id\": ",
            400,
            "invalid_json",
        ),
        case(
            "a Content-Type with bytes that are not ASCII",
            Method::POST,
            vec![
                (header::AUTHORIZATION, bearer.clone()),
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_bytes(b"application/json\xff").unwrap(),
                ),
            ],
            create,
            415,
            "unsupported_media_type",
        ),
        case(
            "a Content-Type of application/json in Latin-1 look-alike bytes",
            Method::POST,
            vec![
                (header::AUTHORIZATION, bearer.clone()),
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_bytes(b"application/js\xf6n").unwrap(),
                ),
            ],
            create,
            415,
            "unsupported_media_type",
        ),
        case(
            "an Authorization with bytes that are not ASCII",
            Method::GET,
            vec![(
                header::AUTHORIZATION,
                HeaderValue::from_bytes(b"Bearer \xff\xfe\xfd").unwrap(),
            )],
            "",
            401,
            "unauthorized",
        ),
        case(
            "the real key with a byte that is not ASCII after it",
            Method::GET,
            vec![(
                header::AUTHORIZATION,
                HeaderValue::from_bytes(format!("Bearer {}\u{ff}", app.key).as_bytes()).unwrap(),
            )],
            "",
            401,
            "unauthorized",
        ),
        case(
            "a header name of 10 KiB and no key",
            Method::GET,
            vec![(
                HeaderName::try_from(format!("x-{}", "a".repeat(10 * 1024))).unwrap(),
                HeaderValue::from_static("v"),
            )],
            "",
            401,
            "unauthorized",
        ),
        case(
            "an X-Request-Id of 100 KiB on a refused write",
            Method::POST,
            vec![
                (header::AUTHORIZATION, bearer.clone()),
                (header::CONTENT_TYPE, json_type.clone()),
                (
                    HeaderName::from_static("x-request-id"),
                    value(hundred_kib.clone()),
                ),
            ],
            "{\"ext_id\": ",
            431,
            "headers_too_large",
        ),
        case(
            "an X-Request-Id with bytes that are not ASCII on a refused write",
            Method::POST,
            vec![
                (header::AUTHORIZATION, bearer.clone()),
                (header::CONTENT_TYPE, json_type.clone()),
                (
                    HeaderName::from_static("x-request-id"),
                    HeaderValue::from_bytes(b"\xff\xfe").unwrap(),
                ),
            ],
            "{\"ext_id\": ",
            400,
            "invalid_json",
        ),
    ];
    assert_all_refused(&app, attempts).await;
}
contract_test!(an_absurd_header_gets_an_error_in_the_spec_shape);

/// Sends raw bytes to a real server and returns the status and the body of its answer.
pub(crate) fn send_raw(server: &ServerProcess, head: &[u8]) -> (u16, String) {
    let address = server.base_url.trim_start_matches("http://");
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    // The server may answer and close before the whole head is written.
    let _ = stream.write_all(head);
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|status| status.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP status in the answer: {answer:.500}"));
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// Checks an answer of the real server is a 4xx in the SPEC shape.
#[track_caller]
pub(crate) fn assert_spec_refusal(status: u16, body: &str) {
    assert!((400..500).contains(&status), "status {status}: {body:.300}");
    let body: Value = serde_json::from_str(body)
        .unwrap_or_else(|_| panic!("{status} with a body that is not JSON: {body:?}"));
    assert_eq!(body["error"], json!(status), "{body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert!(
        body["code"].as_str().is_some_and(|c| !c.is_empty()),
        "{body}"
    );
}

#[test]
fn a_header_of_a_mebibyte_sent_to_the_real_server_gets_an_error_in_the_spec_shape() {
    let database = runtime().block_on(TestDatabase::create(crate::helpers::Backend::Sqlite));
    let server = ServerProcess::start(&database.url, &[]);
    let head = format!(
        "GET /api/v1/contacts HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {}\r\n\
         Connection: close\r\n\r\n",
        "A".repeat(1024 * 1024)
    );
    let (status, body) = send_raw(&server, head.as_bytes());
    assert_spec_refusal(status, &body);
}

#[test]
fn a_thousand_headers_sent_to_the_real_server_get_an_error_in_the_spec_shape() {
    let database = runtime().block_on(TestDatabase::create(crate::helpers::Backend::Sqlite));
    let server = ServerProcess::start(&database.url, &[]);
    let junk: String = (0..1000)
        .map(|index| format!("X-Junk-{index}: junk\r\n"))
        .collect();
    let head = format!(
        "GET /api/v1/contacts HTTP/1.1\r\nHost: localhost\r\n{junk}Connection: close\r\n\r\n"
    );
    let (status, body) = send_raw(&server, head.as_bytes());
    assert_spec_refusal(status, &body);
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}
