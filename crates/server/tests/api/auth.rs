//! Bearer authentication (docs/reference.md#authentication) and tenant isolation (docs/reference.md#1-tenancy-and-resources): every `/api/v1` endpoint needs a
//! live key, and acts only on the data of that key's company.

use axum::body::Body;
use axum::http::{Method, Request, header};
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestResponse, contact_path, contract_test};

/// Every `/api/v1` endpoint, with a body that would succeed for a valid key.
fn every_endpoint() -> Vec<(Method, String, Option<Value>)> {
    let contact = contact_path("alt:ext_id:crm-1");
    let field = "/api/v1/custom-fields/plan".to_owned();
    vec![
        (Method::GET, "/api/v1/contacts".to_owned(), None),
        (
            Method::POST,
            "/api/v1/contacts".to_owned(),
            Some(json!({"ext_id": "crm-2"})),
        ),
        (
            Method::PATCH,
            "/api/v1/contacts".to_owned(),
            Some(json!({"id": "alt:ext_id:crm-1", "first_name": "Mallory"})),
        ),
        (Method::GET, contact.clone(), None),
        (
            Method::PATCH,
            contact.clone(),
            Some(json!({"first_name": "Mallory"})),
        ),
        (Method::DELETE, contact, None),
        (Method::GET, "/api/v1/custom-fields".to_owned(), None),
        (
            Method::POST,
            "/api/v1/custom-fields".to_owned(),
            Some(json!({"key": "seats", "display_name": "Seats", "type": "number"})),
        ),
        (Method::GET, field.clone(), None),
        (
            Method::PATCH,
            field.clone(),
            Some(json!({"display_name": "Mallory"})),
        ),
        (Method::DELETE, field, None),
    ]
}

/// `method path` with this `Authorization` header value (or none) and an optional JSON body.
async fn send_with_authorization(
    app: &TestApp,
    authorization: Option<&str>,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> TestResponse {
    let mut builder = Request::builder().method(method).uri(path);
    if let Some(authorization) = authorization {
        builder = builder.header(header::AUTHORIZATION, authorization);
    }
    let request = match body {
        Some(body) => builder
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string())),
        None => builder.body(Body::empty()),
    };
    app.send(request.expect("valid request")).await
}

#[track_caller]
fn assert_unauthorized(response: &TestResponse) {
    response.assert_error(401, "unauthorized");
    assert_eq!(response.headers[header::WWW_AUTHENTICATE], "Bearer");
}

/// A company's data to hide from others: a field definition and a contact with every
/// identifier and a value of that field.
async fn given_company_data(app: &TestApp) -> Value {
    app.given_field("plan", "select", Some(&["free", "pro"]))
        .await;
    app.given_contact(json!({
        "email": "jane@example.com",
        "phone_number": "+14155552671",
        "ext_id": "crm-1",
        "first_name": "Jane",
        "custom_fields": [{"key": "plan", "value": "pro"}],
    }))
    .await
}

/// Every row of the tenant data, leaving out `api_keys`, whose `last_used_at` any request
/// may move.
async fn tenant_data(app: &TestApp) -> String {
    app.dump()
        .await
        .split("## ")
        .filter(|table| !table.starts_with("api_keys\n"))
        .collect::<Vec<_>>()
        .join("## ")
}

/// Every identifier form of the contact made by [`given_company_data`].
fn identifiers_of(contact: &Value) -> Vec<String> {
    let id = contact["id"].as_str().expect("a contact id").to_owned();
    vec![
        id.to_uppercase(),
        id,
        "alt:ext_id:crm-1".to_owned(),
        "alt:email:Jane@Example.com".to_owned(),
        "alt:phone_number:+14155552671".to_owned(),
        "alt:phone_number:(415) 555-2671".to_owned(),
    ]
}

async fn a_request_without_a_key_is_refused_on_every_endpoint_and_changes_nothing() {
    let app = TestApp::spawn().await;
    given_company_data(&app).await;
    let before = app.dump().await;
    for (method, path, body) in every_endpoint() {
        let response =
            send_with_authorization(&app, None, method.clone(), &path, body.as_ref()).await;
        assert_unauthorized(&response);
        assert!(
            response.body["message"]
                .as_str()
                .expect("a message")
                .contains("Bearer"),
            "{method} {path}: {}",
            response.text
        );
    }
    assert_eq!(app.dump().await, before);
}
contract_test!(a_request_without_a_key_is_refused_on_every_endpoint_and_changes_nothing);

async fn a_malformed_authorization_header_is_refused() {
    let app = TestApp::spawn().await;
    let key = &app.key;
    for authorization in [
        "Basic abc".to_owned(),
        format!("Basic {key}"),
        "Bearer".to_owned(),
        "Bearer ".to_owned(),
        "Bearer    ".to_owned(),
        key.clone(),
        format!("Bearer{key}"),
        format!("Token {key}"),
        String::new(),
    ] {
        let response = send_with_authorization(
            &app,
            Some(&authorization),
            Method::GET,
            "/api/v1/contacts",
            None,
        )
        .await;
        assert_unauthorized(&response);
    }
}
contract_test!(a_malformed_authorization_header_is_refused);

async fn an_unknown_key_is_refused() {
    let app = TestApp::spawn().await;
    let unknown = contactd::api_key::generate(None, &contactd_api::Scope::ALL).secret;
    let truncated = &app.key[..app.key.len() - 1];
    for key in [unknown.as_str(), truncated, "cd_", "not-a-key"] {
        let response = app
            .request_as(key, Method::GET, "/api/v1/contacts", None)
            .await;
        assert_unauthorized(&response);
    }
    let extended = format!("{}0", app.key);
    assert_unauthorized(
        &app.request_as(&extended, Method::GET, "/api/v1/contacts", None)
            .await,
    );
}
contract_test!(an_unknown_key_is_refused);

async fn the_bearer_scheme_is_matched_in_any_case() {
    let app = TestApp::spawn().await;
    for scheme in ["bearer", "BEARER", "Bearer"] {
        let authorization = format!("{scheme} {}", app.key);
        send_with_authorization(
            &app,
            Some(&authorization),
            Method::GET,
            "/api/v1/contacts",
            None,
        )
        .await
        .assert_status(200);
    }
}
contract_test!(the_bearer_scheme_is_matched_in_any_case);

async fn a_revoked_key_is_refused_within_a_second_while_other_keys_keep_working() {
    let app = TestApp::spawn().await;
    let second = contactd::api_key::generate(Some("second".to_owned()), &contactd_api::Scope::ALL);
    app.store
        .create_api_key(app.company_id, &second.record)
        .await
        .expect("create key");
    app.request(Method::GET, "/api/v1/contacts", None)
        .await
        .assert_status(200);

    let keys = app
        .store
        .list_api_keys(app.company_id)
        .await
        .expect("list keys");
    assert_eq!(keys.len(), 2);
    let first = keys
        .iter()
        .find(|key| app.key.starts_with(&key.prefix) && key.name.is_none())
        .expect("the app's key is listed");
    app.store.revoke_api_key(first.id).await.expect("revoke");
    // A server trusts a key it has seen for up to a second (docs/reference.md#admin-commands: "within a second").
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;

    assert_unauthorized(&app.request(Method::GET, "/api/v1/contacts", None).await);
    assert_unauthorized(&app.create_contact(json!({"ext_id": "crm-1"})).await);
    let response = app
        .request_as(&second.secret, Method::GET, "/api/v1/contacts", None)
        .await;
    response.assert_status(200);
    assert_eq!(response.body["data"]["contacts"], json!([]));
}
contract_test!(a_revoked_key_is_refused_within_a_second_while_other_keys_keep_working);

async fn the_health_probes_need_no_key() {
    let app = TestApp::spawn().await;
    for (path, status) in [("/healthz", "ok"), ("/readyz", "ready")] {
        for authorization in [None, Some("Bearer not-a-key")] {
            let response =
                send_with_authorization(&app, authorization, Method::GET, path, None).await;
            response.assert_status(200);
            assert_eq!(response.body["status"], status);
        }
    }
}
contract_test!(the_health_probes_need_no_key);

async fn another_company_cannot_fetch_a_contact_by_any_identifier() {
    let app = TestApp::spawn().await;
    let contact = given_company_data(&app).await;
    let other = app.other_company_key().await;
    for identifier in identifiers_of(&contact) {
        let response = app
            .request_as(&other, Method::GET, &contact_path(&identifier), None)
            .await;
        response.assert_error(404, "contact_not_found");
        assert!(!response.text.contains("Jane\""), "{}", response.text);
        app.get_contact(&identifier).await.assert_status(200);
    }
}
contract_test!(another_company_cannot_fetch_a_contact_by_any_identifier);

async fn another_company_cannot_update_a_contact_by_any_identifier() {
    let app = TestApp::spawn().await;
    let contact = given_company_data(&app).await;
    let other = app.other_company_key().await;
    let before = tenant_data(&app).await;
    for identifier in identifiers_of(&contact) {
        let by_body = app
            .request_as(
                &other,
                Method::PATCH,
                "/api/v1/contacts",
                Some(json!({"id": identifier, "first_name": "Mallory", "email": null})),
            )
            .await;
        by_body.assert_error(404, "contact_not_found");
        let by_path = app
            .request_as(
                &other,
                Method::PATCH,
                &contact_path(&identifier),
                Some(json!({"first_name": "Mallory", "ext_id": "stolen"})),
            )
            .await;
        by_path.assert_error(404, "contact_not_found");
    }
    assert_eq!(tenant_data(&app).await, before);
    let fetched = app
        .get_contact(contact["id"].as_str().expect("a contact id"))
        .await;
    assert_eq!(fetched.body, contact);
}
contract_test!(another_company_cannot_update_a_contact_by_any_identifier);

async fn another_company_cannot_delete_a_contact() {
    let app = TestApp::spawn().await;
    let contact = given_company_data(&app).await;
    let other = app.other_company_key().await;
    for identifier in identifiers_of(&contact) {
        app.request_as(&other, Method::DELETE, &contact_path(&identifier), None)
            .await
            .assert_error(404, "contact_not_found");
    }
    let fetched = app
        .get_contact(contact["id"].as_str().expect("a contact id"))
        .await;
    fetched.assert_status(200);
    assert_eq!(fetched.body, contact);
}
contract_test!(another_company_cannot_delete_a_contact);

async fn another_company_lists_neither_contacts_nor_fields() {
    let app = TestApp::spawn().await;
    given_company_data(&app).await;
    let other = app.other_company_key().await;

    let contacts = app
        .request_as(&other, Method::GET, "/api/v1/contacts", None)
        .await;
    contacts.assert_status(200);
    assert_eq!(
        contacts.body,
        json!({"data": {"contacts": []}, "next_cursor": null})
    );

    let fields = app
        .request_as(&other, Method::GET, "/api/v1/custom-fields", None)
        .await;
    fields.assert_status(200);
    assert_eq!(fields.body, json!({"data": {"custom_fields": []}}));
}
contract_test!(another_company_lists_neither_contacts_nor_fields);

async fn another_company_cannot_see_change_or_delete_a_field_definition() {
    let app = TestApp::spawn().await;
    given_company_data(&app).await;
    let other = app.other_company_key().await;
    let path = "/api/v1/custom-fields/plan";
    let definition = app.request(Method::GET, path, None).await.body;
    let before = tenant_data(&app).await;

    app.request_as(&other, Method::GET, path, None)
        .await
        .assert_error(404, "custom_field_not_found");
    app.request_as(
        &other,
        Method::PATCH,
        path,
        Some(json!({"display_name": "Mallory", "options": ["free", "pro", "stolen"]})),
    )
    .await
    .assert_error(404, "custom_field_not_found");
    app.request_as(&other, Method::DELETE, path, None)
        .await
        .assert_error(404, "custom_field_not_found");

    assert_eq!(tenant_data(&app).await, before);
    assert_eq!(app.request(Method::GET, path, None).await.body, definition);
}
contract_test!(another_company_cannot_see_change_or_delete_a_field_definition);

async fn identifiers_and_field_keys_are_unique_per_company_only() {
    let app = TestApp::spawn().await;
    let contact = given_company_data(&app).await;
    let other = app.other_company_key().await;

    let twin = app
        .request_as(
            &other,
            Method::POST,
            "/api/v1/contacts",
            Some(json!({
                "email": "JANE@example.com",
                "phone_number": "4155552671",
                "ext_id": "crm-1",
                "first_name": "Janet",
            })),
        )
        .await;
    twin.assert_status(200);
    assert_ne!(twin.body["id"], contact["id"]);
    assert_eq!(twin.body["email"], json!("jane@example.com"));
    assert_eq!(twin.body["custom_fields"], json!([]));

    let field = app
        .request_as(
            &other,
            Method::POST,
            "/api/v1/custom-fields",
            Some(json!({"key": "plan", "display_name": "Their plan", "type": "text"})),
        )
        .await;
    field.assert_status(200);
    assert_eq!(field.body["type"], json!("text"));

    // Each company's alternate identifier names its own contact.
    let own = app
        .request_as(
            &other,
            Method::GET,
            &contact_path("alt:email:jane@example.com"),
            None,
        )
        .await;
    assert_eq!(own.body["first_name"], json!("Janet"));
    let fetched = app.get_contact("alt:email:jane@example.com").await;
    assert_eq!(fetched.body, contact);
    let definition = app
        .request(Method::GET, "/api/v1/custom-fields/plan", None)
        .await;
    assert_eq!(definition.body["type"], json!("select"));
    assert_eq!(definition.body["display_name"], json!("plan"));
}
contract_test!(identifiers_and_field_keys_are_unique_per_company_only);

async fn another_company_cannot_set_a_field_it_has_not_defined() {
    let app = TestApp::spawn().await;
    given_company_data(&app).await;
    let other = app.other_company_key().await;

    let created = app
        .request_as(
            &other,
            Method::POST,
            "/api/v1/contacts",
            Some(json!({"ext_id": "crm-9", "custom_fields": [{"key": "plan", "value": "pro"}]})),
        )
        .await;
    created.assert_error(400, "unknown_custom_field");
    assert_eq!(created.field(), Some("custom_fields[0].key"));

    let own = app
        .request_as(
            &other,
            Method::POST,
            "/api/v1/contacts",
            Some(json!({"ext_id": "crm-9"})),
        )
        .await;
    own.assert_status(200);
    for custom_fields in [
        json!({"set": [{"key": "plan", "value": "pro"}]}),
        json!({"remove": ["plan"]}),
    ] {
        let updated = app
            .request_as(
                &other,
                Method::PATCH,
                "/api/v1/contacts",
                Some(json!({"id": "alt:ext_id:crm-9", "custom_fields": custom_fields})),
            )
            .await;
        updated.assert_error(400, "unknown_custom_field");
    }
}
contract_test!(another_company_cannot_set_a_field_it_has_not_defined);

async fn another_company_cannot_page_with_a_cursor_it_was_not_given() {
    let app = TestApp::spawn().await;
    for ext_id in ["crm-1", "crm-2", "crm-3"] {
        app.given_contact(json!({"ext_id": ext_id})).await;
    }
    let page = app.list_contacts("?limit=1").await;
    page.assert_status(200);
    let cursor = page.body["next_cursor"]
        .as_str()
        .expect("a next page")
        .to_owned();
    app.list_contacts(&format!("?limit=1&cursor={cursor}"))
        .await
        .assert_status(200);

    let other = app.other_company_key().await;
    app.request_as(
        &other,
        Method::POST,
        "/api/v1/contacts",
        Some(json!({"ext_id": "crm-1"})),
    )
    .await
    .assert_status(200);
    let response = app
        .request_as(
            &other,
            Method::GET,
            &format!("/api/v1/contacts?limit=1&cursor={cursor}"),
            None,
        )
        .await;
    response.assert_error(400, "invalid_cursor");
    assert_eq!(response.field(), Some("cursor"));
}
contract_test!(another_company_cannot_page_with_a_cursor_it_was_not_given);
