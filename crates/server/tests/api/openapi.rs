//! The OpenAPI document: served without a key, identical to the committed `openapi.json`,
//! compatible with the seed's Update Contact schema, and rendered by `/docs` from assets the
//! binary itself serves.

use axum::body::Body;
use axum::http::{Request, header};
use serde_json::{Value, json};

use crate::helpers::TestApp;

/// The committed copy at the repository root.
const COMMITTED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../openapi.json");

async fn get(app: &TestApp, path: &str) -> crate::helpers::TestResponse {
    app.send(Request::get(path).body(Body::empty()).expect("request"))
        .await
}

async fn served_document(app: &TestApp) -> Value {
    let response = get(app, "/api/v1/openapi.json").await;
    response.assert_status(200);
    response.body
}

/// Fails when the code's document and the committed one differ; run with
/// `UPDATE_OPENAPI=1` to rewrite the committed copy after a deliberate change.
#[tokio::test]
async fn the_committed_openapi_json_is_what_the_server_serves() {
    let app = TestApp::spawn().await;
    let served = served_document(&app).await;
    assert_eq!(served["openapi"], "3.1.0");
    let pretty = serde_json::to_string_pretty(&served).expect("JSON") + "\n";
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(COMMITTED, &pretty).expect("write openapi.json");
    }
    let committed = std::fs::read_to_string(COMMITTED).expect("openapi.json is committed");
    assert!(
        committed == pretty,
        "openapi.json differs from the served document; if the change is intended, run \
         `UPDATE_OPENAPI=1 cargo test -p contactd --test api openapi` and commit it"
    );
}

#[tokio::test]
async fn the_document_covers_every_route_and_the_bearer_scheme() {
    let app = TestApp::spawn().await;
    let document = served_document(&app).await;
    let mut operations: Vec<String> = Vec::new();
    for (path, item) in document["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("path item").keys() {
            operations.push(format!("{} {path}", method.to_uppercase()));
        }
    }
    operations.sort();
    assert_eq!(
        operations,
        [
            "DELETE /api/v1/contacts/{id}",
            "DELETE /api/v1/custom-fields/{key}",
            "DELETE /api/v1/webhooks/{id}",
            "GET /api/v1/contacts",
            "GET /api/v1/contacts/count",
            "GET /api/v1/contacts/export",
            "GET /api/v1/contacts/{id}",
            "GET /api/v1/contacts/{id}/history",
            "GET /api/v1/custom-fields",
            "GET /api/v1/custom-fields/{key}",
            "GET /api/v1/events",
            "GET /api/v1/webhooks",
            "GET /api/v1/webhooks/{id}",
            "GET /api/v1/webhooks/{id}/deliveries",
            "GET /healthz",
            "GET /readyz",
            "PATCH /api/v1/contacts",
            "PATCH /api/v1/contacts/{id}",
            "PATCH /api/v1/custom-fields/{key}",
            "PATCH /api/v1/webhooks/{id}",
            "POST /api/v1/contacts",
            "POST /api/v1/contacts/batch",
            "POST /api/v1/custom-fields",
            "POST /api/v1/webhooks",
            "POST /api/v1/webhooks/{id}/deliveries/{event_id}/retry",
            "POST /api/v1/webhooks/{id}/rotate-secret",
        ]
    );
    assert_eq!(
        document["components"]["securitySchemes"]["bearerAuth"],
        json!({"type": "http", "scheme": "bearer", "description": "An API key: `Authorization: Bearer <key>`"})
    );
    let patch = &document["paths"]["/api/v1/contacts"]["patch"];
    for status in [
        "200", "400", "401", "404", "409", "413", "415", "500", "503",
    ] {
        assert_eq!(
            patch["responses"][status]["content"]["application/json"]["schema"]["$ref"]
                .as_str()
                .map(|reference| reference.rsplit('/').next()),
            Some(Some(if status == "200" {
                "Contact"
            } else {
                "ErrorBody"
            })),
            "PATCH /contacts documents {status}"
        );
    }
}

/// Every body the seed's `ContactUpdateByIdentifierPayload` declares is valid against the
/// served schema of `PATCH /api/v1/contacts`: a client written against the seed fits.
#[tokio::test]
async fn the_update_body_schema_accepts_everything_the_seed_declares() {
    let app = TestApp::spawn().await;
    let document = served_document(&app).await;
    let schema = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$ref": "#/components/schemas/ContactUpdateByIdentifierPayload",
        "components": document["components"],
    });
    let validator = jsonschema::validator_for(&schema).expect("a valid JSON Schema");
    let seed_bodies = [
        json!({"id": "0192f3a4-7b1c-7d2e-9f00-1234567890ab"}),
        json!({"id": "alt:ext_id:crm-42", "email": "jane@example.com"}),
        json!({"id": "alt:email:jane@example.com", "phone_number": "+1 415 555 2671"}),
        json!({"id": "alt:phone_number:+14155552671", "phone_number": 4_155_552_671_u64}),
        json!({"id": "alt:email:jane@example.com", "ext_id": "crm-42", "first_name": "Jane", "last_name": "Doe"}),
        json!({"id": "alt:email:jane@example.com", "custom_fields": {}}),
        json!({"id": "alt:email:jane@example.com", "custom_fields": {"set": [], "remove": []}}),
        json!({"id": "alt:email:jane@example.com", "custom_fields": {
            "set": [{"key": "plan", "value": "pro"}, {"key": "seats", "value": "12"}],
            "remove": ["old_score"],
        }}),
    ];
    for body in &seed_bodies {
        let errors: Vec<String> = validator
            .iter_errors(body)
            .map(|error| error.to_string())
            .collect();
        assert!(errors.is_empty(), "{body} is refused: {errors:?}");
    }
    for refused in [
        json!({}),
        json!({"email": "jane@example.com"}),
        json!({"id": "x", "phone": "1"}),
    ] {
        assert!(!validator.is_valid(&refused), "{refused} should be refused");
    }
}

#[tokio::test]
async fn the_reference_page_renders_from_assets_the_server_embeds() {
    let app = TestApp::spawn().await;
    let page = get(&app, "/docs").await;
    page.assert_status(200);
    assert!(
        page.headers[header::CONTENT_TYPE]
            .to_str()
            .expect("ASCII")
            .starts_with("text/html")
    );
    assert!(
        !page.text.contains("http://") && !page.text.contains("https://"),
        "no outside host"
    );
    for asset in [
        "/docs/swagger-ui-bundle.js",
        "/docs/swagger-ui.css",
        "/api/v1/openapi.json",
    ] {
        assert!(page.text.contains(asset), "the page loads {asset}");
    }
    let script = get(&app, "/docs/swagger-ui-bundle.js").await;
    script.assert_status(200);
    assert_eq!(
        script.headers[header::CONTENT_TYPE],
        "text/javascript; charset=utf-8"
    );
    assert!(script.text.len() > 100_000, "the real bundle, not a stub");
    let style = get(&app, "/docs/swagger-ui.css").await;
    style.assert_status(200);
    assert_eq!(
        style.headers[header::CONTENT_TYPE],
        "text/css; charset=utf-8"
    );
}
