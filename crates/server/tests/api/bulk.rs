//! Bulk (docs/reference.md#11-bulk-batch-writes-import-and-export): array create on `POST /contacts`, `POST /contacts/batch` upserts, and the
//! streaming export; per-item honesty, the whole-request refusals, racing upserts, and the
//! export's snapshot.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::http::{Method, header};
use futures_util::StreamExt;
use serde_json::{Value, json};

use crate::helpers::{TEST_BODY_LIMIT, TestApp, contract_test};

const BATCH: &str = "/api/v1/contacts/batch";

async fn create_many(app: &TestApp, items: Value) -> Value {
    let response = app.create_contact(items).await;
    response.assert_status(200);
    response.body
}

async fn upsert(app: &TestApp, match_on: &str, contacts: Value) -> Vec<Value> {
    let response = app
        .request(
            Method::POST,
            BATCH,
            Some(json!({"match_on": match_on, "contacts": contacts})),
        )
        .await;
    response.assert_status(200);
    response.body["results"].as_array().unwrap().clone()
}

/// Every contact of the company, walking every page of the list.
async fn all_contacts(app: &TestApp) -> Vec<Value> {
    let mut contacts = Vec::new();
    let mut query = "?limit=100".to_owned();
    loop {
        let page = app.list_contacts(&query).await;
        page.assert_status(200);
        contacts.extend(page.body["data"]["contacts"].as_array().unwrap().clone());
        match page.body["next_cursor"].as_str() {
            Some(cursor) => query = format!("?limit=100&cursor={cursor}"),
            None => return contacts,
        }
    }
}

fn ext_ids(contacts: &[Value]) -> BTreeSet<String> {
    contacts
        .iter()
        .map(|contact| contact["ext_id"].as_str().unwrap_or_default().to_owned())
        .collect()
}

async fn an_array_create_lands_every_good_item_and_reports_every_bad_one() {
    let app = TestApp::spawn().await;
    app.given_field("plan", "select", Some(&["free", "pro"]))
        .await;
    let existing = app
        .given_contact(json!({"ext_id": "crm-0", "email": "taken@example.com"}))
        .await;
    let items = json!([
        {"ext_id": "crm-1", "email": "One@Example.com", "custom_fields": [{"key": "plan", "value": "pro"}]},
        {"ext_id": "crm-2", "phone_number": "not a phone"},
        {"ext_id": "crm-3", "email": "taken@example.com"},
        {"ext_id": "crm-1", "first_name": "Again"},
        {"ext_id": "crm-4", "custom_fields": [{"key": "nope", "value": "x"}]},
        {"ext_id": "crm-5", "job_opening_id": "job-1"},
        {"first_name": "No identifier"},
        {"ext_id": "crm-6", "phone": "4155552671", "error": "mine"},
        {"ext_id": "crm-7", "phone_number": "(415) 555-2671", "first_name": "Zoë"},
    ]);
    let summary = create_many(&app, items.clone()).await;
    assert_eq!(summary["successful_imports_count"], json!(2));
    assert_eq!(summary["failed_imports_count"], json!(7));
    let failed = summary["failed_contacts"].as_array().unwrap();
    let first = app.get_contact("alt:ext_id:crm-1").await;
    first.assert_status(200);
    let expected = [
        (1, 400, "invalid_phone_number", "phone_number"),
        (2, 409, "duplicate_email", "email"),
        (3, 409, "duplicate_ext_id", "ext_id"),
        (4, 400, "unknown_custom_field", "custom_fields[0].key"),
        (5, 400, "unsupported_member", "job_opening_id"),
        (6, 400, "identifier_required", ""),
        (7, 400, "invalid_request", "error"),
    ];
    assert_eq!(failed.len(), expected.len());
    for (failure, (index, status, code, field)) in failed.iter().zip(expected) {
        assert_eq!(failure["index"], json!(index), "{failure}");
        assert_eq!(failure["error"]["error"], json!(status), "{failure}");
        assert_eq!(failure["error"]["code"], json!(code), "{failure}");
        assert_eq!(
            failure["error"]["field"].as_str().unwrap_or_default(),
            field,
            "{failure}"
        );
        // The item is echoed as sent, beside its index and error (its own `error` member,
        // refused as unknown, is left out rather than answered twice).
        let mut echoed = failure.as_object().unwrap().clone();
        echoed.remove("index");
        echoed.remove("error");
        let mut sent = items[index].as_object().unwrap().clone();
        sent.remove("error");
        assert_eq!(echoed, sent, "{failure}");
    }
    assert_eq!(
        failed[1]["error"]["conflicting_contact_id"], existing["id"],
        "a duplicate of the database names the holder"
    );
    assert_eq!(
        failed[2]["error"]["conflicting_contact_id"], first.body["id"],
        "a duplicate within the array names the earlier item's contact"
    );

    let stored = all_contacts(&app).await;
    assert_eq!(
        ext_ids(&stored),
        BTreeSet::from(["crm-0".to_owned(), "crm-1".to_owned(), "crm-7".to_owned()])
    );
    assert_eq!(first.body["email"], json!("one@example.com"));
    assert_eq!(first.body["custom_fields"][0]["value"], json!("pro"));
    let seventh = app.get_contact("alt:ext_id:crm-7").await;
    assert_eq!(seventh.body["phone_number"], json!("+14155552671"));
    assert_eq!(seventh.body["first_name"], json!("Zoë"));
}
contract_test!(an_array_create_lands_every_good_item_and_reports_every_bad_one);

async fn a_bulk_body_too_long_or_not_all_objects_is_refused_whole() {
    let app = TestApp::spawn().await;
    app.given_contact(json!({"ext_id": "crm-0"})).await;
    let before = app.dump().await;
    let too_many: Vec<Value> = (0..1001)
        .map(|i| json!({"ext_id": format!("x-{i}")}))
        .collect();
    app.create_contact(json!(too_many))
        .await
        .assert_error(400, "too_many_items")
        .assert_message_mentions("1000");
    let response = app
        .create_contact(json!([{"ext_id": "fine"}, "jane@example.com"]))
        .await;
    response.assert_error(400, "invalid_request");
    assert_eq!(response.field(), Some("[1]"));
    let response = app
        .request(
            Method::POST,
            BATCH,
            Some(json!({"match_on": "ext_id", "contacts": too_many})),
        )
        .await;
    response.assert_error(400, "too_many_items");
    assert_eq!(response.field(), Some("contacts"));
    for body in [
        json!({"match_on": "ext_id", "contacts": [{"ext_id": "fine"}, 3]}),
        json!({"match_on": "id", "contacts": []}),
        json!({"match_on": "ext_id"}),
        json!({"match_on": "ext_id", "contacts": [], "extra": 1}),
        json!([{"ext_id": "fine"}]),
    ] {
        app.request(Method::POST, BATCH, Some(body.clone()))
            .await
            .assert_error(400, "invalid_request");
    }
    assert_eq!(app.dump().await, before);

    let empty = create_many(&app, json!([])).await;
    assert_eq!(
        empty,
        json!({"successful_imports_count": 0, "failed_imports_count": 0, "failed_contacts": []})
    );
    assert!(upsert(&app, "email", json!([])).await.is_empty());
}
contract_test!(a_bulk_body_too_long_or_not_all_objects_is_refused_whole);

/// A single contact keeps the ordinary body limit; an array may be as large as the bulk
/// limit, so 1,000 ordinary contacts fit in one request.
async fn an_array_may_exceed_the_single_body_limit() {
    let app = TestApp::spawn().await;
    let padding = "x".repeat(200);
    let items: Vec<Value> = (0..1000)
        .map(|i| json!({"ext_id": format!("crm-{i}"), "first_name": padding, "last_name": padding}))
        .collect();
    assert!(json!(items).to_string().len() > TEST_BODY_LIMIT * 4);
    let summary = create_many(&app, json!(items)).await;
    assert_eq!(summary["successful_imports_count"], json!(1000));
    assert_eq!(all_contacts(&app).await.len(), 1000);

    let single = json!({"ext_id": "big", "first_name": "x".repeat(TEST_BODY_LIMIT)});
    app.create_contact(single)
        .await
        .assert_error(413, "payload_too_large")
        .assert_message_mentions(&TEST_BODY_LIMIT.to_string());
}
contract_test!(an_array_may_exceed_the_single_body_limit);

async fn a_batch_upsert_updates_matches_creates_the_rest_and_reports_each_item() {
    let app = TestApp::spawn().await;
    app.given_field("plan", "select", Some(&["free", "pro"]))
        .await;
    app.given_field("seats", "number", None).await;
    let old = app
        .given_contact(json!({
            "ext_id": "crm-1", "email": "old@example.com", "first_name": "Old", "last_name": "Kept",
            "custom_fields": [{"key": "plan", "value": "free"}, {"key": "seats", "value": 3}],
        }))
        .await;
    let holder = app
        .given_contact(json!({"ext_id": "crm-9", "email": "taken@example.com"}))
        .await;
    let results = upsert(
        &app,
        "ext_id",
        json!([
            {"ext_id": "crm-1", "first_name": "New", "email": null, "custom_fields": [{"key": "seats", "value": "4"}]},
            {"ext_id": "crm-2", "email": "two@example.com"},
            {"email": "no-key@example.com"},
            {"ext_id": "crm-2", "first_name": "Twice"},
            {"ext_id": "crm-3", "email": "taken@example.com"},
            {"ext_id": "crm-4", "phone_number": "12"},
            {"ext_id": "crm-5", "custom_fields": [{"key": "plan", "value": "pro"}]},
            {"ext_id": null},
        ]),
    )
    .await;
    let statuses: Vec<_> = results
        .iter()
        .map(|result| {
            (
                result["index"].as_u64().unwrap(),
                result["status"].as_u64().unwrap(),
                result["error"]["code"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            )
        })
        .collect();
    assert_eq!(
        statuses,
        [
            (0, 200, String::new()),
            (1, 200, String::new()),
            (2, 400, "match_on_required".to_owned()),
            (3, 409, "duplicate_in_batch".to_owned()),
            (4, 409, "duplicate_email".to_owned()),
            (5, 400, "invalid_phone_number".to_owned()),
            (6, 200, String::new()),
            (7, 400, "match_on_required".to_owned()),
        ]
    );
    assert_eq!(results[0]["created"], json!(false));
    assert_eq!(results[0]["changed"], json!(true));
    assert_eq!(results[1]["created"], json!(true));
    assert_eq!(results[6]["created"], json!(true));
    assert_eq!(results[4]["error"]["conflicting_contact_id"], holder["id"]);
    assert!(
        results[3]["error"]["message"]
            .as_str()
            .unwrap()
            .contains('1')
    );

    // Omitted members are kept, null clears, custom_fields sets only the keys it names.
    let updated = &results[0]["contact"];
    assert_eq!(updated["id"], old["id"]);
    assert_eq!(updated["first_name"], json!("New"));
    assert_eq!(updated["last_name"], json!("Kept"));
    assert_eq!(updated["email"], Value::Null);
    assert_eq!(
        updated["custom_fields"],
        json!([
            {"key": "plan", "value": "free", "type": "select", "display_name": "plan"},
            {"key": "seats", "value": 4, "type": "number", "display_name": "seats"},
        ])
    );
    assert_eq!(app.get_contact("alt:ext_id:crm-1").await.body, *updated);
    assert_eq!(
        app.get_contact("alt:ext_id:crm-2").await.body,
        results[1]["contact"]
    );
    assert_eq!(
        ext_ids(&all_contacts(&app).await),
        BTreeSet::from(["crm-1", "crm-2", "crm-5", "crm-9"].map(str::to_owned))
    );
}
contract_test!(a_batch_upsert_updates_matches_creates_the_rest_and_reports_each_item);

/// Re-running a batch creates nothing: every item matches what the first run created, and
/// an item that changes nothing leaves `updated_at` alone.
async fn running_the_same_batch_again_changes_and_creates_nothing() {
    let app = TestApp::spawn().await;
    let contacts: Vec<Value> = (0..50)
        .map(|i| json!({"email": format!("person{i}@example.com"), "first_name": format!("P{i}")}))
        .collect();
    let first = upsert(&app, "email", json!(contacts)).await;
    assert!(first.iter().all(|result| result["created"] == json!(true)));
    assert!(first.iter().all(|result| result["changed"] == json!(true)));
    let again = upsert(&app, "email", json!(contacts)).await;
    for (before, after) in first.iter().zip(&again) {
        assert_eq!(after["status"], json!(200));
        assert_eq!(after["created"], json!(false));
        assert_eq!(after["changed"], json!(false));
        assert_eq!(after["contact"], before["contact"]);
    }
    assert_eq!(all_contacts(&app).await.len(), 50);
}
contract_test!(running_the_same_batch_again_changes_and_creates_nothing);

/// Clients upserting the same keys at once, in opposite orders, end with one contact per
/// key, and every item succeeds.
async fn racing_batch_upserts_of_the_same_keys_end_with_one_contact_per_key() {
    let app = Arc::new(TestApp::spawn().await);
    let keys: Vec<String> = (0..40).map(|i| format!("crm-{i}")).collect();
    let tasks: Vec<_> = (0..4)
        .map(|client| {
            let app = Arc::clone(&app);
            let mut order = keys.clone();
            if client % 2 == 1 {
                order.reverse();
            }
            tokio::spawn(async move {
                let contacts: Vec<Value> = order
                    .iter()
                    .map(|key| json!({"ext_id": key, "first_name": format!("client {client}")}))
                    .collect();
                upsert(&app, "ext_id", json!(contacts)).await
            })
        })
        .collect();
    let mut created = 0;
    for task in tasks {
        for result in task.await.unwrap() {
            assert_eq!(result["status"], json!(200), "{result}");
            created += usize::from(result["created"] == json!(true));
        }
    }
    assert_eq!(created, keys.len(), "each key is created exactly once");
    let stored = all_contacts(&app).await;
    assert_eq!(stored.len(), keys.len());
    assert_eq!(ext_ids(&stored), keys.into_iter().collect());
}
contract_test!(racing_batch_upserts_of_the_same_keys_end_with_one_contact_per_key);

/// Reads a whole export body; `query` is empty or `?format=…`.
async fn export(app: &TestApp, query: &str) -> (String, String) {
    let response = app.open(&format!("/api/v1/contacts/export{query}")).await;
    assert_eq!(response.status(), 200);
    let content_type = response.headers()[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .to_owned();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    (content_type, String::from_utf8(bytes.to_vec()).unwrap())
}

async fn an_export_has_every_contact_in_ndjson_and_csv_with_its_custom_fields() {
    let app = TestApp::spawn().await;
    app.given_field("plan", "select", Some(&["free", "pro"]))
        .await;
    app.given_field("seats", "number", None).await;
    app.given_field("notes", "text", None).await;
    let awkward = "a, \"quoted\"\nsecond line; ünïcödé ✓";
    create_many(
        &app,
        json!([
            {"ext_id": "crm-1", "email": "a@example.com", "first_name": awkward,
             "custom_fields": [{"key": "notes", "value": awkward}, {"key": "seats", "value": 2.5}]},
            {"phone_number": "+44 20 7946 0958", "last_name": "O'Brien",
             "custom_fields": [{"key": "plan", "value": "pro"}]},
            {"ext_id": "=SUM(A1)"},
        ]),
    )
    .await;
    let listed = all_contacts(&app).await;

    let (content_type, ndjson) = export(&app, "?format=ndjson").await;
    assert_eq!(content_type, "application/x-ndjson");
    let lines: Vec<Value> = ndjson
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines, listed, "NDJSON lines are the contacts, newest first");
    assert_eq!(export(&app, "").await.1, ndjson, "NDJSON is the default");

    let (content_type, csv) = export(&app, "?format=csv").await;
    assert_eq!(content_type, "text/csv; charset=utf-8");
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(
        header,
        [
            "id",
            "email",
            "phone_number",
            "ext_id",
            "first_name",
            "last_name",
            "created_at",
            "updated_at",
            "notes",
            "plan",
            "seats"
        ]
    );
    let rows: Vec<Vec<String>> = reader
        .records()
        .map(|record| record.unwrap().iter().map(str::to_owned).collect())
        .collect();
    assert_eq!(rows.len(), listed.len());
    for (row, contact) in rows.iter().zip(&listed) {
        for (cell, column) in row.iter().zip(&header) {
            let expected = match column.as_str() {
                "notes" | "plan" | "seats" => contact["custom_fields"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|field| field["key"] == json!(column))
                    .map(|field| match &field["value"] {
                        Value::String(text) => text.clone(),
                        other => other.to_string(),
                    })
                    .unwrap_or_default(),
                member => contact[member].as_str().unwrap_or_default().to_owned(),
            };
            assert_eq!(cell, &expected, "column {column}");
        }
    }
    assert!(csv.contains("\r\n"), "RFC 4180 line ends");
}
contract_test!(an_export_has_every_contact_in_ndjson_and_csv_with_its_custom_fields);

async fn an_export_refuses_an_unknown_format_or_parameter() {
    let app = TestApp::spawn().await;
    for query in ["?format=xml", "?format=csv&limit=3", "?fromat=csv"] {
        app.request(
            Method::GET,
            &format!("/api/v1/contacts/export{query}"),
            None,
        )
        .await
        .assert_error(400, "invalid_query");
    }
}
contract_test!(an_export_refuses_an_unknown_format_or_parameter);

/// Contacts created, changed and deleted while an export streams do not change what it
/// returns: every contact as it was when the export began, each once.
async fn an_export_is_one_snapshot_while_contacts_are_written() {
    let app = TestApp::spawn().await;
    for chunk in 0..3 {
        let items: Vec<Value> = (0..600)
            .map(|i| json!({"ext_id": format!("crm-{}", chunk * 600 + i), "first_name": "Before"}))
            .collect();
        create_many(&app, json!(items)).await;
    }
    let response = app.open("/api/v1/contacts/export?format=ndjson").await;
    assert_eq!(response.status(), 200);
    let mut body = response.into_body().into_data_stream();
    let mut received = body.next().await.unwrap().unwrap().to_vec();
    assert!(!received.is_empty());

    // The oldest contacts are streamed last: change and delete some of them, add others.
    for i in 0..20 {
        app.delete_contact(&format!("alt:ext_id:crm-{i}"))
            .await
            .assert_status(200);
        app.patch_contact(
            json!({"id": format!("alt:ext_id:crm-{}", 20 + i), "first_name": "After"}),
        )
        .await
        .assert_status(200);
    }
    create_many(&app, json!([{"ext_id": "new-1"}, {"ext_id": "new-2"}])).await;

    while let Some(chunk) = body.next().await {
        received.extend_from_slice(&chunk.unwrap());
    }
    let lines: Vec<Value> = String::from_utf8(received)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len(), 1800);
    let expected: BTreeSet<String> = (0..1800).map(|i| format!("crm-{i}")).collect();
    assert_eq!(ext_ids(&lines), expected);
    assert!(
        lines
            .iter()
            .all(|contact| contact["first_name"] == json!("Before"))
    );
}
contract_test!(an_export_is_one_snapshot_while_contacts_are_written);
