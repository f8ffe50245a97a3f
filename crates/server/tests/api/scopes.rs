//! Key scopes (docs/reference.md#scopes): every `/api/v1` operation needs the one scope its
//! OpenAPI `security` names, a key without it is refused with 403 before anything runs, and
//! a key made without naming scopes has them all.

use axum::http::{Method, header};
use contactd::api_key;
use contactd_api::Scope;
use serde_json::{Value, json};

use crate::helpers::{TestApp, admin, admin_refused, contract_test};

/// A key of the app's company with exactly `scopes`.
async fn key_with(app: &TestApp, scopes: &[Scope]) -> String {
    let key = api_key::generate(Some("scoped".to_owned()), scopes);
    app.store
        .create_api_key(app.company_id, &key.record)
        .await
        .expect("create key");
    key.secret
}

/// Every operation under `/api/v1` of the served document, with the scope it states.
async fn operations(app: &TestApp) -> Vec<(Method, String, Scope)> {
    let document = app.request(Method::GET, "/api/v1/openapi.json", None).await;
    let mut operations = Vec::new();
    for (path, item) in document.body["paths"].as_object().expect("paths") {
        if !path.starts_with("/api/v1/") {
            continue;
        }
        for (method, operation) in item.as_object().expect("an item") {
            let security = &operation["security"];
            let scopes = security[0]["bearerAuth"].as_array();
            let [scope] = scopes.map(Vec::as_slice).unwrap_or_default() else {
                panic!("{method} {path} states one scope: {security}");
            };
            let scope = Scope::from_name(scope.as_str().expect("a name")).expect("a scope");
            let concrete = path
                .replace("{id}", "0192f3a4-7b1c-7d2e-9f00-1234567890ab")
                .replace("{key}", "absent_field")
                .replace("{event_id}", "evt_0192f3a47b1c7d2e9f001234567890ab");
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).expect("a method");
            operations.push((method, concrete, scope));
        }
    }
    assert!(operations.len() >= 20, "{operations:?}");
    operations
}

async fn every_operation_needs_the_scope_its_document_states() {
    let app = TestApp::spawn().await;
    app.create_contact(json!({"ext_id": "crm-1"}))
        .await
        .assert_status(200);
    let before = app.dump().await;
    for (method, path, scope) in operations(&app).await {
        let others: Vec<Scope> = Scope::ALL.into_iter().filter(|s| *s != scope).collect();
        let without = key_with(&app, &others).await;
        let body = (method != Method::GET && method != Method::DELETE).then(|| json!({}));
        let refused = app
            .request_as(&without, method.clone(), &path, body.clone())
            .await;
        refused.assert_error(403, "insufficient_scope");
        refused.assert_message_mentions(scope.as_str());
        assert_eq!(
            refused.headers[header::WWW_AUTHENTICATE],
            format!("Bearer error=\"insufficient_scope\", scope=\"{scope}\""),
            "{method} {path}"
        );

        let only = key_with(&app, &[scope]).await;
        let allowed = app.request_as(&only, method.clone(), &path, body).await;
        assert!(
            allowed.status != 403 && allowed.status != 401,
            "{method} {path} with {scope} alone: {} {}",
            allowed.status,
            allowed.text
        );
    }
    // The refused requests wrote nothing; the allowed ones carried empty bodies or named
    // nothing that exists, so they changed nothing either (but for the keys made here).
    let after = app.dump().await;
    let without_keys = |dump: &str| -> String {
        dump.lines()
            .filter(|line| !line.contains("scoped"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(without_keys(&after), without_keys(&before));
}
contract_test!(every_operation_needs_the_scope_its_document_states);

async fn a_read_only_key_reads_and_cannot_write() {
    let app = TestApp::spawn().await;
    let reader = key_with(&app, &[Scope::ContactsRead]).await;
    app.create_contact(json!({"ext_id": "crm-1"}))
        .await
        .assert_status(200);
    let read = app
        .request_as(
            &reader,
            Method::GET,
            "/api/v1/contacts/alt:ext_id:crm-1",
            None,
        )
        .await;
    read.assert_status(200);
    let before = app.dump().await;
    for (method, path, body) in [
        (
            Method::POST,
            "/api/v1/contacts",
            Some(json!({"ext_id": "crm-2"})),
        ),
        (
            Method::PATCH,
            "/api/v1/contacts",
            Some(json!({"id": "alt:ext_id:crm-1", "first_name": "Eve"})),
        ),
        (Method::DELETE, "/api/v1/contacts/alt:ext_id:crm-1", None),
        (
            Method::POST,
            "/api/v1/contacts/batch",
            Some(json!({"match_on": "ext_id", "contacts": [{"ext_id": "crm-1"}]})),
        ),
        (
            Method::POST,
            "/api/v1/custom-fields",
            Some(json!({"key": "plan", "display_name": "Plan", "type": "text"})),
        ),
        (Method::GET, "/api/v1/contacts/export", None),
        (Method::GET, "/api/v1/events", None),
        (Method::GET, "/api/v1/webhooks", None),
    ] {
        app.request_as(&reader, method, path, body)
            .await
            .assert_error(403, "insufficient_scope");
    }
    assert_eq!(app.dump().await, before, "nothing was written");
}
contract_test!(a_read_only_key_reads_and_cannot_write);

#[test]
fn the_cli_makes_keys_with_the_scopes_named_and_every_scope_by_default() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("scopes.db").display());
    admin(&url, &["company", "create", "acme"]);
    admin(
        &url,
        &["key", "create", "--company", "acme", "--name", "full"],
    );
    admin(
        &url,
        &[
            "key",
            "create",
            "--company",
            "acme",
            "--name",
            "sync",
            "--scope",
            "events:read",
            "--scope",
            "contacts:read,events:read",
        ],
    );
    let listed = admin(&url, &["key", "list", "--company", "acme"]);
    let scopes_of = |name: &str| -> Value {
        let line = listed
            .lines()
            .find(|line| line.split('\t').nth(2) == Some(name))
            .unwrap_or_else(|| panic!("{name} in {listed}"));
        json!(line.split('\t').nth(6))
    };
    assert_eq!(
        scopes_of("full"),
        json!(
            "contacts:read,contacts:write,contacts:export,fields:write,events:read,webhooks:manage"
        )
    );
    assert_eq!(scopes_of("sync"), json!("contacts:read,events:read"));

    let refused = admin_refused(
        &url,
        &[
            "key",
            "create",
            "--company",
            "acme",
            "--scope",
            "contacts:delete",
        ],
    );
    assert!(
        refused.contains("no scope is named \"contacts:delete\"")
            && refused.contains("webhooks:manage"),
        "{refused}"
    );
}

/// A key made before scopes existed keeps working for everything once the database is
/// migrated (`migrations/sqlite/0008_key_scopes.sql`): the database is taken back to
/// version 7's shape, then migrated again, and the key is read afresh.
async fn a_key_made_before_scopes_existed_has_every_scope_after_the_upgrade() {
    let app = TestApp::spawn().await;
    app.database
        .execute(
            "ALTER TABLE api_keys DROP COLUMN scopes; \
             DELETE FROM _sqlx_migrations WHERE version = 8",
        )
        .await;
    admin(&app.database.url, &["migrate"]);
    let keys = app.store.list_api_keys(app.company_id).await.expect("keys");
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].scopes, Scope::ALL);
    for path in [
        "/api/v1/contacts",
        "/api/v1/contacts/export",
        "/api/v1/events",
        "/api/v1/webhooks",
    ] {
        app.request(Method::GET, path, None)
            .await
            .assert_status(200);
    }
}
contract_test!(a_key_made_before_scopes_existed_has_every_scope_after_the_upgrade);
