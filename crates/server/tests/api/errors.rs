//! The error contract (docs/reference.md#the-error-body): every failure, whatever its status, answers in the seed's
//! `Error` shape with a stable `code`, names the request member at fault, and never leaks
//! internals.

use axum::body::Body;
use axum::http::{Method, Request, header};
use serde_json::{Value, json};

use crate::helpers::{TEST_BODY_LIMIT, TestApp, TestResponse, contact_path, contract_test};

/// A request with this app's key, the given `Content-Type` (if any) and a raw body.
fn raw_request(
    app: &TestApp,
    method: Method,
    path: &str,
    content_type: Option<&str>,
    body: Body,
) -> Request<Body> {
    let mut builder = Request::builder()
        .method(method)
        .uri(path)
        .header(header::AUTHORIZATION, format!("Bearer {}", app.key));
    if let Some(content_type) = content_type {
        builder = builder.header(header::CONTENT_TYPE, content_type);
    }
    builder.body(body).expect("valid request")
}

/// Sends raw bytes as `application/json` to `method path`.
async fn send_json_bytes(
    app: &TestApp,
    method: Method,
    path: &str,
    bytes: impl Into<Body>,
) -> TestResponse {
    app.send(raw_request(
        app,
        method,
        path,
        Some("application/json"),
        bytes.into(),
    ))
    .await
}

/// A create body padded with JSON whitespace to exactly `len` bytes.
fn create_body_of_len(len: usize) -> Vec<u8> {
    let mut body = br#"{"ext_id": "crm-1""#.to_vec();
    body.resize(len - 1, b' ');
    body.push(b'}');
    body
}

#[track_caller]
fn assert_message_mentions(response: &TestResponse, text: &str) {
    let message = response.body["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(text),
        "message should mention {text:?}: {}",
        response.text
    );
}

async fn an_unknown_route_is_a_404_in_the_error_shape() {
    let app = TestApp::spawn().await;
    for path in [
        "/api/v1/nope",
        "/api/v1",
        "/api/v1/contacts/a/b",
        "/api/v2/contacts",
        "/nope",
    ] {
        let response = app.request(Method::GET, path, None).await;
        response.assert_error(404, "route_not_found");
    }
    let response = app
        .request_as("not-a-key", Method::GET, "/elsewhere", None)
        .await;
    response.assert_error(404, "route_not_found");
}
contract_test!(an_unknown_route_is_a_404_in_the_error_shape);

async fn a_method_a_route_does_not_serve_is_a_405_listing_the_allowed_ones() {
    let app = TestApp::spawn().await;
    let response = app
        .request(
            Method::PUT,
            "/api/v1/contacts",
            Some(json!({"ext_id": "crm-1"})),
        )
        .await;
    response.assert_error(405, "method_not_allowed");
    let allowed = response.headers[header::ALLOW]
        .to_str()
        .expect("an ASCII header");
    for method in ["GET", "POST", "PATCH"] {
        assert!(allowed.contains(method), "Allow: {allowed}");
    }
    assert!(!allowed.contains("PUT"), "Allow: {allowed}");

    for (method, path) in [
        (Method::DELETE, "/api/v1/contacts".to_owned()),
        (Method::POST, contact_path("alt:ext_id:crm-1")),
        (Method::PUT, "/api/v1/custom-fields/plan".to_owned()),
        (Method::DELETE, "/api/v1/custom-fields".to_owned()),
        (Method::POST, "/healthz".to_owned()),
    ] {
        app.request(method, &path, None)
            .await
            .assert_error(405, "method_not_allowed");
    }
    assert_eq!(
        app.list_contacts("").await.body["data"]["contacts"],
        json!([])
    );
}
contract_test!(a_method_a_route_does_not_serve_is_a_405_listing_the_allowed_ones);

async fn a_body_over_the_limit_with_its_length_announced_is_a_413() {
    let app = TestApp::spawn().await;
    let body = create_body_of_len(TEST_BODY_LIMIT + 1);
    let mut request = raw_request(
        &app,
        Method::POST,
        "/api/v1/contacts",
        Some("application/json"),
        Body::from(body.clone()),
    );
    request
        .headers_mut()
        .insert(header::CONTENT_LENGTH, body.len().into());
    let response = app.send(request).await;
    response.assert_error(413, "payload_too_large");
    assert_message_mentions(&response, &TEST_BODY_LIMIT.to_string());
    assert_eq!(
        app.list_contacts("").await.body["data"]["contacts"],
        json!([])
    );
}
contract_test!(a_body_over_the_limit_with_its_length_announced_is_a_413);

async fn a_streamed_body_over_the_limit_without_a_length_is_a_413() {
    let app = TestApp::spawn().await;
    let body = create_body_of_len(TEST_BODY_LIMIT + 1);
    // A stream has no known length, so the limit must be enforced while reading.
    let streamed = Body::from_stream(Body::from(body).into_data_stream());
    let request = raw_request(
        &app,
        Method::PATCH,
        "/api/v1/contacts",
        Some("application/json"),
        streamed,
    );
    assert!(request.headers().get(header::CONTENT_LENGTH).is_none());
    app.send(request)
        .await
        .assert_error(413, "payload_too_large");
}
contract_test!(a_streamed_body_over_the_limit_without_a_length_is_a_413);

async fn a_body_exactly_at_the_limit_is_accepted() {
    let app = TestApp::spawn().await;
    let response = send_json_bytes(
        &app,
        Method::POST,
        "/api/v1/contacts",
        create_body_of_len(TEST_BODY_LIMIT),
    )
    .await;
    response.assert_status(200);
    assert_eq!(response.body["ext_id"], json!("crm-1"));
}
contract_test!(a_body_exactly_at_the_limit_is_accepted);

async fn a_body_not_declared_as_json_is_a_415() {
    let app = TestApp::spawn().await;
    let body = json!({"ext_id": "crm-1"}).to_string();
    for content_type in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        Some("application/jsonx"),
        None,
    ] {
        for (method, path) in [
            (Method::POST, "/api/v1/contacts"),
            (Method::PATCH, "/api/v1/contacts"),
            (Method::POST, "/api/v1/custom-fields"),
        ] {
            let request = raw_request(&app, method, path, content_type, Body::from(body.clone()));
            let response = app.send(request).await;
            response.assert_error(415, "unsupported_media_type");
            assert_message_mentions(&response, "application/json");
        }
    }
    assert_eq!(
        app.list_contacts("").await.body["data"]["contacts"],
        json!([])
    );
}
contract_test!(a_body_not_declared_as_json_is_a_415);

async fn json_declared_with_a_charset_or_in_capitals_is_accepted() {
    let app = TestApp::spawn().await;
    for (content_type, ext_id) in [
        ("application/json; charset=utf-8", "crm-1"),
        ("Application/JSON", "crm-2"),
    ] {
        let body = Body::from(json!({"ext_id": ext_id}).to_string());
        let request = raw_request(
            &app,
            Method::POST,
            "/api/v1/contacts",
            Some(content_type),
            body,
        );
        let response = app.send(request).await;
        response.assert_status(200);
        assert_eq!(response.body["ext_id"], json!(ext_id));
    }
}
contract_test!(json_declared_with_a_charset_or_in_capitals_is_accepted);

async fn a_body_that_is_not_json_is_refused_and_changes_nothing() {
    let app = TestApp::spawn().await;
    app.given_contact(json!({"ext_id": "crm-1"})).await;
    let before = app.dump().await;
    for (method, path, body) in [
        (
            Method::POST,
            "/api/v1/contacts",
            r#"{"email": "jane@example.com""#,
        ),
        (Method::POST, "/api/v1/contacts", r#"{"ext_id": "crm-2"} x"#),
        (
            Method::POST,
            "/api/v1/contacts",
            r#"{"ext_id": "crm-2"}{"ext_id": "crm-3"}"#,
        ),
        (Method::POST, "/api/v1/contacts", r#"{ext_id: "crm-2"}"#),
        (Method::POST, "/api/v1/contacts", r#"{"ext_id": 'crm-2'}"#),
        (Method::POST, "/api/v1/contacts", ""),
        (
            Method::PATCH,
            "/api/v1/contacts",
            r#"{"id": "alt:ext_id:crm-1", "email": "#,
        ),
        (Method::POST, "/api/v1/custom-fields", r#"{"key": "plan",}"#),
    ] {
        let response = send_json_bytes(&app, method, path, body).await;
        response.assert_error(400, "invalid_json");
        assert_message_mentions(&response, "not valid JSON");
    }
    assert_eq!(app.dump().await, before);
}
contract_test!(a_body_that_is_not_json_is_refused_and_changes_nothing);

async fn a_body_that_is_not_utf_8_is_refused() {
    let app = TestApp::spawn().await;
    let body: &[u8] = b"{\"ext_id\": \"crm-\xff\xfe\"}";
    let response = send_json_bytes(&app, Method::POST, "/api/v1/contacts", body).await;
    response.assert_status(400);
    assert_eq!(response.body["error"], json!(400));
    assert_eq!(response.body["code"], json!("invalid_json"));
    assert_eq!(
        app.list_contacts("").await.body["data"]["contacts"],
        json!([])
    );
}
contract_test!(a_body_that_is_not_utf_8_is_refused);

async fn a_member_of_the_wrong_type_is_refused_naming_it() {
    let app = TestApp::spawn().await;
    app.given_field("plan", "text", None).await;
    app.given_contact(json!({"ext_id": "crm-1"})).await;
    for (method, path, body, field) in [
        (
            Method::POST,
            "/api/v1/contacts",
            json!({"email": 5}),
            "email",
        ),
        (
            Method::POST,
            "/api/v1/contacts",
            json!({"ext_id": ["crm-2"]}),
            "ext_id",
        ),
        (
            Method::POST,
            "/api/v1/contacts",
            json!({"ext_id": "crm-2", "first_name": true}),
            "first_name",
        ),
        (
            Method::POST,
            "/api/v1/contacts",
            json!({"ext_id": "crm-2", "custom_fields": {}}),
            "custom_fields",
        ),
        (
            Method::POST,
            "/api/v1/contacts",
            json!({"ext_id": "crm-2", "custom_fields": [{"key": 1, "value": "x"}]}),
            "custom_fields[0].key",
        ),
        (
            Method::POST,
            "/api/v1/contacts",
            json!({"ext_id": "crm-2", "custom_fields": [{"value": "x"}]}),
            "custom_fields[0]",
        ),
        (Method::PATCH, "/api/v1/contacts", json!({"id": 7}), "id"),
        (
            Method::PATCH,
            "/api/v1/contacts",
            json!({"id": "alt:ext_id:crm-1", "custom_fields": {"remove": "plan"}}),
            "custom_fields.remove",
        ),
        (
            Method::POST,
            "/api/v1/custom-fields",
            json!({"key": "seats", "display_name": 3, "type": "number"}),
            "display_name",
        ),
        (
            Method::POST,
            "/api/v1/custom-fields",
            json!({"key": "tier", "display_name": "Tier", "type": "select", "options": "gold"}),
            "options",
        ),
    ] {
        let response = app.request(method, path, Some(body.clone())).await;
        response.assert_error(400, "invalid_request");
        assert_eq!(response.field(), Some(field), "{body}: {}", response.text);
    }
}
contract_test!(a_member_of_the_wrong_type_is_refused_naming_it);

async fn a_body_that_is_not_an_object_is_refused() {
    let app = TestApp::spawn().await;
    for body in [
        json!("jane@example.com"),
        json!(42),
        json!(null),
        json!(true),
    ] {
        for (method, path) in [
            (Method::POST, "/api/v1/contacts"),
            (Method::PATCH, "/api/v1/contacts"),
            (Method::POST, "/api/v1/custom-fields"),
        ] {
            app.request(method, path, Some(body.clone()))
                .await
                .assert_error(400, "invalid_request");
        }
    }
}
contract_test!(a_body_that_is_not_an_object_is_refused);

async fn an_array_in_place_of_an_object_is_refused_and_changes_nothing() {
    let app = TestApp::spawn().await;
    app.given_field("plan", "select", Some(&["free"])).await;
    app.given_contact(json!({"ext_id": "crm-1"})).await;
    let before = app.dump().await;
    for (method, path, body) in [
        (
            Method::PATCH,
            "/api/v1/contacts".to_owned(),
            json!(["alt:ext_id:crm-1", "new@example.com"]),
        ),
        (
            Method::PATCH,
            contact_path("alt:ext_id:crm-1"),
            json!([null, "new@example.com"]),
        ),
        (
            Method::POST,
            "/api/v1/custom-fields".to_owned(),
            json!(["seats", "Seats", "number"]),
        ),
        (
            Method::PATCH,
            "/api/v1/custom-fields/plan".to_owned(),
            json!(["Renamed"]),
        ),
        (
            Method::PATCH,
            "/api/v1/contacts".to_owned(),
            json!({"id": "alt:ext_id:crm-1", "custom_fields": [[{"key": "plan", "value": "free"}]]}),
        ),
        (
            Method::POST,
            "/api/v1/contacts".to_owned(),
            json!({"ext_id": "crm-2", "custom_fields": [["plan", "free"]]}),
        ),
        // docs/reference.md#11-bulk-batch-writes-import-and-export: a create body that is an array must be an array of objects.
        (
            Method::POST,
            "/api/v1/contacts".to_owned(),
            json!(["jane@example.com"]),
        ),
    ] {
        let response = app.request(method, &path, Some(body.clone())).await;
        response.assert_status(400);
        assert_eq!(
            response.body["error"],
            json!(400),
            "{body}: {}",
            response.text
        );
    }
    assert_eq!(app.dump().await, before);
}
contract_test!(an_array_in_place_of_an_object_is_refused_and_changes_nothing);

async fn an_unknown_member_is_refused_by_name_instead_of_being_dropped() {
    let app = TestApp::spawn().await;
    app.given_field("plan", "text", None).await;
    app.given_contact(json!({"ext_id": "crm-1"})).await;
    let before = app.dump().await;
    let cases: [(Method, String, Value, &str); 7] = [
        (
            Method::POST,
            "/api/v1/contacts".to_owned(),
            json!({"ext_id": "crm-2", "phone": "+14155552671"}),
            "phone",
        ),
        (
            Method::PATCH,
            "/api/v1/contacts".to_owned(),
            json!({"id": "alt:ext_id:crm-1", "frist_name": "Jane"}),
            "frist_name",
        ),
        (
            Method::PATCH,
            contact_path("alt:ext_id:crm-1"),
            json!({"emial": "jane@example.com"}),
            "emial",
        ),
        (
            Method::PATCH,
            "/api/v1/contacts".to_owned(),
            json!({"id": "alt:ext_id:crm-1", "custom_fields": {"set": [{"key": "plan", "value": "pro", "type": "text"}]}}),
            "custom_fields.set[0].type",
        ),
        (
            Method::PATCH,
            "/api/v1/contacts".to_owned(),
            json!({"id": "alt:ext_id:crm-1", "custom_fields": {"delete": ["plan"]}}),
            "custom_fields.delete",
        ),
        (
            Method::POST,
            "/api/v1/contacts".to_owned(),
            json!({"ext_id": "crm-2", "custom_fields": [{"key": "plan", "value": "pro", "label": "Plan"}]}),
            "custom_fields[0].label",
        ),
        (
            Method::POST,
            "/api/v1/custom-fields".to_owned(),
            json!({"key": "seats", "display_name": "Seats", "type": "number", "required": true}),
            "required",
        ),
    ];
    for (method, path, body, member) in cases {
        let response = app.request(method, &path, Some(body.clone())).await;
        response.assert_error(400, "invalid_request");
        assert_eq!(response.field(), Some(member), "{body}: {}", response.text);
        let last = member
            .rsplit('.')
            .next()
            .expect("rsplit yields at least one part");
        assert_message_mentions(&response, last);
    }
    assert_eq!(app.dump().await, before);
}
contract_test!(an_unknown_member_is_refused_by_name_instead_of_being_dropped);

async fn an_internal_failure_is_a_500_that_leaks_nothing() {
    let app = TestApp::spawn().await;
    app.given_field("plan", "text", None).await;
    let contact = app
        .given_contact(
            json!({"ext_id": "crm-1", "custom_fields": [{"key": "plan", "value": "pro"}]}),
        )
        .await;

    app.database
        .execute("DROP TABLE contact_field_values")
        .await;

    let id = contact["id"].as_str().expect("a contact id");
    for response in [app.get_contact(id).await, app.list_contacts("").await] {
        response.assert_error(500, "internal");
        let mut members: Vec<&String> = response
            .body
            .as_object()
            .expect("an object")
            .keys()
            .collect();
        members.sort();
        assert_eq!(members, ["code", "error", "message"], "{}", response.text);
        let message = response.body["message"].as_str().expect("a message");
        for secret in [
            "SQL",
            "sql",
            "sqlite",
            "contact_field_values",
            "table",
            "/",
            "contactd.db",
        ] {
            assert!(!message.contains(secret), "500 leaks {secret:?}: {message}");
        }
        assert!(
            !response.text.contains(&app.database.url),
            "{}",
            response.text
        );
    }
}
contract_test!(an_internal_failure_is_a_500_that_leaks_nothing);

/// The codes a table of the reference's "Error codes" section lists in its `column`.
fn documented_codes(table: usize, column: usize) -> std::collections::BTreeSet<String> {
    let reference = include_str!("../../../../docs/reference.md");
    let section = reference
        .split("### Error codes")
        .nth(1)
        .and_then(|rest| rest.split("\n### ").next())
        .expect("the Error codes section");
    let tables: Vec<Vec<&str>> = section
        .split("\n\n")
        .map(|block| {
            block
                .lines()
                .filter(|line| line.starts_with('|'))
                .skip(2)
                .collect()
        })
        .filter(|rows: &Vec<&str>| !rows.is_empty())
        .collect();
    tables[table]
        .iter()
        .flat_map(|row| {
            let cell = row.split('|').nth(column + 1).expect("the column");
            cell.split('`')
                .skip(1)
                .step_by(2)
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The one list of codes in the code, the reference's tables and the served document's
/// enum name the same codes.
#[tokio::test]
async fn the_error_catalogue_is_the_same_in_the_code_the_docs_and_the_openapi_document() {
    use contactd_api::ErrorCode;
    let names = |codes: &[ErrorCode]| -> std::collections::BTreeSet<String> {
        codes.iter().map(|code| code.as_str().to_owned()).collect()
    };
    assert_eq!(
        documented_codes(0, 1),
        names(ErrorCode::API),
        "the API's table"
    );
    assert_eq!(
        documented_codes(1, 0),
        names(ErrorCode::OTHER),
        "the other codes' table"
    );

    let app = TestApp::spawn().await;
    let document = app.request(Method::GET, "/api/v1/openapi.json", None).await;
    let schemas = &document.body["components"]["schemas"];
    let listed: std::collections::BTreeSet<String> = schemas["ErrorCode"]["enum"]
        .as_array()
        .expect("an enum")
        .iter()
        .map(|code| code.as_str().expect("a string").to_owned())
        .collect();
    assert_eq!(listed, names(ErrorCode::API));
    assert_eq!(
        schemas["ErrorBody"]["properties"]["code"]["$ref"],
        "#/components/schemas/ErrorCode"
    );
}

/// Sentences name what was at fault and what would be accepted, in the API's words: no
/// parser positions, no framework wording (docs/reference.md#error-codes).
async fn messages_name_the_member_at_fault_and_what_is_accepted() {
    let app = TestApp::spawn().await;
    app.given_field("plan", "select", Some(&["free", "pro"]))
        .await;

    let typo = app.list_contacts("?limt=5").await;
    typo.assert_error(400, "invalid_query");
    assert_eq!(typo.field(), Some("limt"));
    typo.assert_message_mentions("`limit`, `cursor`");
    let twice = app.list_contacts("?limit=1&limit=2").await;
    twice.assert_error(400, "invalid_query");
    assert_eq!(twice.field(), Some("limit"));
    let format = app
        .request(Method::GET, "/api/v1/contacts/export?format=xml", None)
        .await;
    format.assert_error(400, "invalid_query");
    assert_eq!(format.field(), Some("format"));
    format.assert_message_mentions("`csv`");

    let select = app
        .create_contact(json!({"ext_id": "a", "custom_fields": [{"key": "plan", "value": "gold"}]}))
        .await;
    select.assert_error(400, "invalid_custom_field_value");
    select.assert_message_mentions(r#""free", "pro""#);

    let wrong_type = app.create_contact(json!({"ext_id": 5})).await;
    wrong_type.assert_error(400, "invalid_request");
    assert_eq!(wrong_type.field(), Some("ext_id"));
    let truncated = send_json_bytes(&app, Method::POST, "/api/v1/contacts", "{\"ext_id\":").await;
    truncated.assert_error(400, "invalid_json");
    for response in [&typo, &twice, &format, &wrong_type, &truncated] {
        let message = response.body["message"].as_str().expect("a message");
        for internal in ["line 1", "column", "Failed to deserialize", "query string"] {
            assert!(!message.contains(internal), "{message:?} says {internal:?}");
        }
    }
}
contract_test!(messages_name_the_member_at_fault_and_what_is_accepted);
