//! `Idempotency-Key` on the writes of `/api/v1` (docs/reference.md#idempotency): a write runs
//! once per company and key, its repeats get its first answer, a different request with the
//! key is refused, and a repeat while the first runs is told to wait.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderValue, Method, Request, header};
use contactd::http::idempotency;
use contactd::store::{IdempotencyClaim, IdempotentRequest};
use serde_json::{Value, json};
use sqlx::{Connection, Executor};
use uuid::Uuid;

use crate::helpers::{Backend, TestApp, TestResponse, contact_path, contract_test};

const REPLAYED: &str = "idempotent-replayed";

async fn send(
    app: &TestApp,
    method: Method,
    path: &str,
    body: Option<Value>,
    key: &str,
) -> TestResponse {
    app.request_with(method, path, body, &[("Idempotency-Key", key)])
        .await
}

async fn create(app: &TestApp, body: Value, key: &str) -> TestResponse {
    send(app, Method::POST, "/api/v1/contacts", Some(body), key).await
}

fn replayed(response: &TestResponse) -> bool {
    response
        .headers
        .get(REPLAYED)
        .is_some_and(|value| value == "true")
}

async fn contacts_with_ext_id(app: &TestApp, ext_id: &str) -> usize {
    let listed = app.list_contacts("?limit=100").await;
    listed.assert_status(200);
    listed.body["data"]["contacts"]
        .as_array()
        .expect("contacts")
        .iter()
        .filter(|contact| contact["ext_id"] == ext_id)
        .count()
}

async fn a_repeated_write_gets_the_first_answer_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let body = json!({"ext_id": "crm-1", "first_name": "Ada"});
    let first = create(&app, body.clone(), "create-1").await;
    first.assert_status(200);
    assert!(!replayed(&first));
    let before = app.dump().await;

    for _ in 0..3 {
        let repeat = create(&app, body.clone(), "create-1").await;
        repeat.assert_status(200);
        assert!(replayed(&repeat), "{:?}", repeat.headers);
        assert_eq!(repeat.text, first.text);
        assert_eq!(repeat.headers[header::ETAG], first.headers[header::ETAG]);
        assert_eq!(
            repeat.headers[header::CONTENT_TYPE],
            first.headers[header::CONTENT_TYPE]
        );
    }
    assert_eq!(
        app.dump().await,
        before,
        "a repeat writes nothing, not even an event"
    );

    // The answer given again is the first one, also after the contact has changed since.
    let path = contact_path("alt:ext_id:crm-1");
    let rename = || {
        let body = Some(json!({"first_name": "Grace"}));
        send(&app, Method::PATCH, &path, body, "rename-1")
    };
    let renamed = rename().await;
    renamed.assert_status(200);
    app.patch_contact_at("alt:ext_id:crm-1", json!({"first_name": "Edith"}))
        .await
        .assert_status(200);
    let repeat = rename().await;
    assert!(replayed(&repeat));
    assert_eq!(repeat.body["first_name"], "Grace");
    assert_eq!(
        app.get_contact("alt:ext_id:crm-1").await.body["first_name"],
        "Edith"
    );

    // A delete repeated is the same 200, not a 404.
    let deleted = send(&app, Method::DELETE, &path, None, "delete-1").await;
    deleted.assert_status(200);
    let repeat = send(&app, Method::DELETE, &path, None, "delete-1").await;
    repeat.assert_status(200);
    assert!(replayed(&repeat));
    assert_eq!(repeat.text, deleted.text);

    // A refusal is an answer too: the same request gets it again.
    let refused = create(&app, json!({"email": "nope"}), "bad-1").await;
    refused.assert_error(400, "invalid_email");
    let repeat = create(&app, json!({"email": "nope"}), "bad-1").await;
    repeat.assert_error(400, "invalid_email");
    assert!(replayed(&repeat));
}
contract_test!(a_repeated_write_gets_the_first_answer_and_changes_nothing);

async fn the_key_of_a_different_request_is_refused_with_422() {
    let app = TestApp::spawn().await;
    let body = json!({"ext_id": "crm-1"});
    create(&app, body.clone(), "k").await.assert_status(200);
    let other_body = json!({"ext_id": "crm-2"});
    let same_json_other_bytes = json!({"ext_id": "crm-1", "first_name": null});
    let attempts = [
        (Method::POST, "/api/v1/contacts", Some(other_body.clone())),
        (
            Method::POST,
            "/api/v1/contacts",
            Some(same_json_other_bytes),
        ),
        (
            Method::PATCH,
            "/api/v1/contacts",
            Some(json!({"id": "alt:ext_id:crm-1"})),
        ),
        (
            Method::POST,
            "/api/v1/custom-fields",
            Some(json!({"key": "k", "display_name": "K", "type": "text"})),
        ),
    ];
    let before = app.dump().await;
    for (method, path, body) in attempts {
        let refused = send(&app, method, path, body, "k").await;
        refused.assert_error(422, "idempotency_key_reused");
        refused.assert_message_mentions("different request");
    }
    assert_eq!(
        app.dump().await,
        before,
        "nothing of a refused request is written"
    );
    // If-Match is part of the request.
    let path = contact_path("alt:ext_id:crm-1");
    app.request_with(
        Method::DELETE,
        &path,
        None,
        &[("Idempotency-Key", "d"), ("If-Match", "\"0\"")],
    )
    .await
    .assert_error(412, "precondition_failed");
    let before_delete = app.dump().await;
    app.request_with(Method::DELETE, &path, None, &[("Idempotency-Key", "d")])
        .await
        .assert_error(422, "idempotency_key_reused");
    assert_eq!(app.dump().await, before_delete);
}
contract_test!(the_key_of_a_different_request_is_refused_with_422);

async fn keys_belong_to_their_company() {
    let app = TestApp::spawn().await;
    let other = app.other_company_key().await;
    let body = json!({"ext_id": "crm-1"});
    create(&app, body.clone(), "shared")
        .await
        .assert_status(200);
    let theirs = app
        .request_as_with(
            &other,
            Method::POST,
            "/api/v1/contacts",
            Some(body),
            &[("Idempotency-Key", "shared")],
        )
        .await;
    theirs.assert_status(200);
    assert!(
        !replayed(&theirs),
        "another company's key of the same name is its own"
    );
}
contract_test!(keys_belong_to_their_company);

async fn of_concurrent_repeats_one_runs_and_the_others_wait_or_replay() {
    let app = Arc::new(TestApp::spawn().await);
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let app = Arc::clone(&app);
            tokio::spawn(async move { create(&app, json!({"ext_id": "crm-1"}), "once").await })
        })
        .collect();
    let mut ran = Vec::new();
    for task in tasks {
        let response = task.await.expect("ran");
        match response.status.as_u16() {
            200 if replayed(&response) => {}
            200 => ran.push(response),
            _ => {
                response.assert_error(409, "idempotency_in_progress");
                assert_eq!(response.headers[header::RETRY_AFTER], "1");
            }
        }
    }
    assert_eq!(ran.len(), 1, "exactly one of them ran");
    assert_eq!(contacts_with_ext_id(&app, "crm-1").await, 1);
    // Once it is answered, every repeat gets that answer.
    let repeat = create(&app, json!({"ext_id": "crm-1"}), "once").await;
    assert!(replayed(&repeat));
    assert_eq!(repeat.text, ran[0].text);
}
contract_test!(of_concurrent_repeats_one_runs_and_the_others_wait_or_replay);

/// A claim whose request never answered (its process died) holds the key for the lease,
/// then a repeat of the same request takes it over; a different request never does.
async fn an_abandoned_claim_is_taken_over_after_its_lease() {
    let app = TestApp::spawn().await;
    let claim = |lease: Duration, fingerprint: u8| IdempotentRequest {
        company_id: app.company_id,
        key: "k".to_owned(),
        fingerprint: [fingerprint; 32],
        claim: Uuid::new_v4(),
        lease,
        retention: idempotency::RETENTION,
    };
    let store = &app.store;
    let first = store
        .claim_idempotency_key(&claim(Duration::ZERO, 1))
        .await
        .expect("claim");
    assert_eq!(first, IdempotencyClaim::Claimed);
    assert_eq!(
        store
            .claim_idempotency_key(&claim(Duration::ZERO, 2))
            .await
            .expect("claim"),
        IdempotencyClaim::Reused
    );
    assert_eq!(
        store
            .claim_idempotency_key(&claim(idempotency::LEASE, 1))
            .await
            .expect("claim"),
        IdempotencyClaim::Claimed,
        "the lease has passed: the same request takes the key over"
    );
    assert_eq!(
        store
            .claim_idempotency_key(&claim(idempotency::LEASE, 1))
            .await
            .expect("claim"),
        IdempotencyClaim::InProgress,
        "the new claim holds for its lease"
    );
}
contract_test!(an_abandoned_claim_is_taken_over_after_its_lease);

async fn a_client_that_goes_away_mid_request_leaves_a_key_a_repeat_can_use() {
    let app = Arc::new(TestApp::spawn().await);
    for (turn, wait_us) in [0_u64, 200, 500, 1_000, 2_000, 5_000]
        .into_iter()
        .enumerate()
    {
        let ext_id = format!("crm-{turn}");
        let key = format!("vanish-{turn}");
        let body = json!({"ext_id": ext_id});
        let request = {
            let (app, body, key) = (Arc::clone(&app), body.clone(), key.clone());
            tokio::spawn(async move { create(&app, body, &key).await })
        };
        tokio::time::sleep(Duration::from_micros(wait_us)).await;
        request.abort();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        let repeat = loop {
            let repeat = create(&app, body.clone(), &key).await;
            if repeat.status != 409 || tokio::time::Instant::now() > deadline {
                break repeat;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        repeat.assert_status(200);
        assert_eq!(contacts_with_ext_id(&app, &ext_id).await, 1, "written once");
    }
}
contract_test!(a_client_that_goes_away_mid_request_leaves_a_key_a_repeat_can_use);

async fn keys_must_be_1_to_255_printable_ascii_characters() {
    let app = TestApp::spawn().await;
    let before = app.dump().await;
    let long = "k".repeat(256);
    for key in ["", long.as_str(), "tab\there"] {
        let refused = create(&app, json!({"ext_id": "x"}), key).await;
        refused.assert_error(400, "invalid_idempotency_key");
        assert_eq!(refused.field(), Some("Idempotency-Key"));
    }
    let non_ascii = Request::post("/api/v1/contacts")
        .header(header::AUTHORIZATION, format!("Bearer {}", app.key))
        .header(header::CONTENT_TYPE, "application/json")
        .header(
            "Idempotency-Key",
            HeaderValue::from_bytes("clé".as_bytes()).expect("obs-text"),
        )
        .body(Body::from(r#"{"ext_id":"x"}"#))
        .expect("valid request");
    app.send(non_ascii)
        .await
        .assert_error(400, "invalid_idempotency_key");
    assert_eq!(app.dump().await, before);
    let longest = "k".repeat(255);
    create(&app, json!({"ext_id": "x"}), &longest)
        .await
        .assert_status(200);
    create(&app, json!({"ext_id": "y"}), "a key with spaces ~!")
        .await
        .assert_status(200);
    // A read ignores the header.
    let read = send(&app, Method::GET, &contact_path("alt:ext_id:x"), None, "k").await;
    read.assert_status(200);
    assert!(!replayed(&read));
}
contract_test!(keys_must_be_1_to_255_printable_ascii_characters);

async fn expired_keys_are_deleted_and_free_for_a_new_request() {
    let app = TestApp::spawn().await;
    create(&app, json!({"ext_id": "a"}), "k")
        .await
        .assert_status(200);
    assert_eq!(
        idempotency::delete_expired(app.store.as_ref(), idempotency::RETENTION)
            .await
            .expect("expire"),
        0,
        "a key of a moment ago is kept"
    );
    tokio::time::sleep(Duration::from_millis(2)).await;
    assert_eq!(
        idempotency::delete_expired(app.store.as_ref(), Duration::ZERO)
            .await
            .expect("expire"),
        1
    );
    let fresh = create(&app, json!({"ext_id": "b"}), "k").await;
    fresh.assert_status(200);
    assert!(!replayed(&fresh));
}
contract_test!(expired_keys_are_deleted_and_free_for_a_new_request);

/// A claim the database could not take (SQLite locked by another process) is a 503 that
/// leaves nothing behind: the repeat runs the request.
#[tokio::test]
async fn a_claim_refused_by_a_busy_database_leaves_the_key_free() {
    Backend::Sqlite
        .run(async {
            let app = TestApp::spawn().await;
            let mut other = sqlx::SqliteConnection::connect(&app.database.url)
                .await
                .expect("open");
            other.execute("BEGIN IMMEDIATE").await.expect("lock");
            let body = json!({"ext_id": "crm-1"});
            create(&app, body.clone(), "k")
                .await
                .assert_error(503, "database_unavailable");
            other.execute("ROLLBACK").await.expect("unlock");
            let repeat = create(&app, body, "k").await;
            repeat.assert_status(200);
            assert!(!replayed(&repeat));
        })
        .await;
}
