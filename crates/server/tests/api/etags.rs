//! A contact's `ETag`, `If-Match` on its writes and `If-None-Match` on its reads
//! (docs/reference.md#etags).

use std::sync::Arc;

use axum::http::{Method, header};
use serde_json::json;

use crate::helpers::{TestApp, TestResponse, contact_path, contract_test};

#[track_caller]
fn etag_of(response: &TestResponse) -> String {
    let etag = response
        .headers
        .get(header::ETAG)
        .unwrap_or_else(|| panic!("an ETag: {} {}", response.status, response.text))
        .to_str()
        .expect("ASCII")
        .to_owned();
    assert!(
        etag.len() == 34 && etag.starts_with('"') && etag.ends_with('"'),
        "a strong tag of 32 hex digits: {etag}"
    );
    etag
}

async fn every_contact_answer_carries_an_etag_that_changes_with_the_contact() {
    let app = TestApp::spawn().await;
    app.given_field("plan", "select", Some(&["free", "pro"]))
        .await;
    let created = app
        .create_contact(
            json!({"ext_id": "crm-1", "custom_fields": [{"key": "plan", "value": "pro"}]}),
        )
        .await;
    created.assert_status(200);
    let first = etag_of(&created);
    for id in [created.body["id"].as_str().expect("id"), "alt:ext_id:crm-1"] {
        assert_eq!(etag_of(&app.get_contact(id).await), first);
    }

    // A write that changes nothing keeps the version; one that changes something moves it.
    let unchanged = app
        .patch_contact(json!({"id": "alt:ext_id:crm-1", "ext_id": "crm-1"}))
        .await;
    assert_eq!(etag_of(&unchanged), first);
    let renamed = app
        .patch_contact_at("alt:ext_id:crm-1", json!({"first_name": "Ada"}))
        .await;
    let second = etag_of(&renamed);
    assert_ne!(second, first);
    assert_eq!(etag_of(&app.get_contact("alt:ext_id:crm-1").await), second);

    // The object also changes when a field it holds is renamed or deleted.
    app.request(
        Method::PATCH,
        "/api/v1/custom-fields/plan",
        Some(json!({"display_name": "Plan name"})),
    )
    .await
    .assert_status(200);
    let third = etag_of(&app.get_contact("alt:ext_id:crm-1").await);
    assert_ne!(third, second);
    app.request(Method::DELETE, "/api/v1/custom-fields/plan", None)
        .await
        .assert_status(200);
    let fourth = etag_of(&app.get_contact("alt:ext_id:crm-1").await);
    assert!(![first, second, third].contains(&fourth));
}
contract_test!(every_contact_answer_carries_an_etag_that_changes_with_the_contact);

async fn if_none_match_answers_304_while_the_contact_is_unchanged() {
    let app = TestApp::spawn().await;
    let created = app.create_contact(json!({"ext_id": "crm-1"})).await;
    let etag = etag_of(&created);
    let path = contact_path("alt:ext_id:crm-1");
    let weak = format!("W/{etag}");
    let listed = format!("\"0123\", {etag}");
    for held in [etag.as_str(), weak.as_str(), listed.as_str(), "*"] {
        let response = app
            .request_with(Method::GET, &path, None, &[("If-None-Match", held)])
            .await;
        response.assert_status(304);
        assert_eq!(etag_of(&response), etag, "{held}");
        assert!(response.text.is_empty(), "{held}: no body");
    }
    let stale = app
        .request_with(
            Method::GET,
            &path,
            None,
            &[("If-None-Match", "\"0123456789abcdef0123456789abcdef\"")],
        )
        .await;
    stale.assert_status(200);
    assert_eq!(stale.body["ext_id"], "crm-1");

    app.patch_contact(json!({"id": "alt:ext_id:crm-1", "first_name": "Ada"}))
        .await
        .assert_status(200);
    let changed = app
        .request_with(Method::GET, &path, None, &[("If-None-Match", &etag)])
        .await;
    changed.assert_status(200);
    assert_eq!(changed.body["first_name"], "Ada");
}
contract_test!(if_none_match_answers_304_while_the_contact_is_unchanged);

async fn a_write_whose_if_match_is_stale_is_refused_and_writes_nothing() {
    let app = TestApp::spawn().await;
    let created = app.create_contact(json!({"ext_id": "crm-1"})).await;
    let read = etag_of(&created);
    let moved = app
        .patch_contact(json!({"id": "alt:ext_id:crm-1", "first_name": "Ada"}))
        .await;
    let current = etag_of(&moved);
    let before = app.dump().await;

    let weak = format!("W/{current}");
    let body_form = || json!({"id": "alt:ext_id:crm-1", "first_name": "Grace"});
    let path = contact_path("alt:ext_id:crm-1");
    for if_match in [read.as_str(), weak.as_str()] {
        for (method, path, body) in [
            (Method::PATCH, "/api/v1/contacts", Some(body_form())),
            (
                Method::PATCH,
                path.as_str(),
                Some(json!({"first_name": "Grace"})),
            ),
            (Method::DELETE, path.as_str(), None),
        ] {
            let refused = app
                .request_with(method.clone(), path, body, &[("If-Match", if_match)])
                .await;
            refused.assert_error(412, "precondition_failed");
            assert_eq!(
                etag_of(&refused),
                current,
                "{method} {path}: the current ETag"
            );
        }
    }
    assert_eq!(
        app.dump().await,
        before,
        "a refused write leaves everything as it was"
    );

    let listed = format!("{read}, {current}");
    let updated = app
        .request_with(
            Method::PATCH,
            "/api/v1/contacts",
            Some(body_form()),
            &[("If-Match", &listed)],
        )
        .await;
    updated.assert_status(200);
    assert_eq!(updated.body["first_name"], "Grace");
    let latest = etag_of(&updated);
    let anything = app
        .request_with(
            Method::PATCH,
            &path,
            Some(json!({"last_name": "Hopper"})),
            &[("If-Match", "*")],
        )
        .await;
    anything.assert_status(200);
    let latest_after = etag_of(&anything);
    assert_ne!(latest_after, latest);
    app.request_with(Method::DELETE, &path, None, &[("If-Match", &latest_after)])
        .await
        .assert_status(200);
    app.request_with(Method::DELETE, &path, None, &[("If-Match", &latest_after)])
        .await
        .assert_error(404, "contact_not_found");
}
contract_test!(a_write_whose_if_match_is_stale_is_refused_and_writes_nothing);

async fn a_malformed_condition_is_refused_naming_its_header() {
    let app = TestApp::spawn().await;
    app.create_contact(json!({"ext_id": "crm-1"}))
        .await
        .assert_status(200);
    let path = contact_path("alt:ext_id:crm-1");
    for malformed in ["abc", "\"abc", "\"a\" \"b\"", "W/abc", ",", "\"a\"x"] {
        for (method, header) in [(Method::PATCH, "If-Match"), (Method::GET, "If-None-Match")] {
            let body = (method == Method::PATCH).then(|| json!({"first_name": "Ada"}));
            let refused = app
                .request_with(method, &path, body, &[(header, malformed)])
                .await;
            refused.assert_error(400, "invalid_precondition");
            assert_eq!(refused.field(), Some(header), "{malformed}");
        }
    }
    let stored = app.get_contact("alt:ext_id:crm-1").await;
    assert_eq!(stored.body.get("first_name"), None);
}
contract_test!(a_malformed_condition_is_refused_naming_its_header);

/// Twenty clients read one version and each writes with `If-Match`: exactly one write
/// lands, every other is told the contact changed. No update is lost.
async fn concurrent_writes_with_one_if_match_let_exactly_one_through() {
    let app = Arc::new(TestApp::spawn().await);
    let created = app.create_contact(json!({"ext_id": "crm-1"})).await;
    let read = etag_of(&created);
    let tasks: Vec<_> = (0..20)
        .map(|index| {
            let app = Arc::clone(&app);
            let read = read.clone();
            tokio::spawn(async move {
                app.request_with(
                    Method::PATCH,
                    "/api/v1/contacts",
                    Some(
                        json!({"id": "alt:ext_id:crm-1", "first_name": format!("Writer {index}")}),
                    ),
                    &[("If-Match", &read)],
                )
                .await
            })
        })
        .collect();
    let mut landed = Vec::new();
    for task in tasks {
        let response = task.await.expect("the request ran");
        match response.status.as_u16() {
            200 => landed.push(response.body["first_name"].clone()),
            _ => {
                response.assert_error(412, "precondition_failed");
            }
        }
    }
    assert_eq!(landed.len(), 1, "exactly one write lands: {landed:?}");
    let stored = app.get_contact("alt:ext_id:crm-1").await;
    assert_eq!(stored.body["first_name"], landed[0]);
    let history = app
        .request(
            Method::GET,
            "/api/v1/contacts/alt:ext_id:crm-1/history",
            None,
        )
        .await;
    let events = history.body["data"]["events"].as_array().expect("events");
    assert_eq!(events.len(), 2, "created, then the one update");
}
contract_test!(concurrent_writes_with_one_if_match_let_exactly_one_through);
