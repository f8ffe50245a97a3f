//! Change events and contact histories (docs/reference.md#13-change-events-history-and-webhooks):
//! every change records one event in its own transaction, from every entry point, and the
//! feed lists each exactly once, in order, never one of a write that failed.

use std::collections::HashSet;
use std::time::Duration;

use axum::http::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, admin, contract_test};

/// Reads the feed from its start, following `next_cursor`, `limit` at a time, until it has
/// `expected` events and then an empty page. On PostgreSQL an event is listed only once
/// every transaction older than its own has ended, in any database of the server
/// (docs/reference.md#the-feed-on-postgresql), and the other tests' transactions run
/// meanwhile: so the reader polls, as every client of the feed does.
async fn feed(app: &TestApp, query: &str, limit: u32, expected: usize) -> Vec<Value> {
    feed_after(app, None, query, limit, expected).await.0
}

/// As [`feed`], after the cursor `after`; also gives the cursor the reader ended with.
async fn feed_after(
    app: &TestApp,
    after: Option<String>,
    query: &str,
    limit: u32,
    expected: usize,
) -> (Vec<Value>, String) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut events = Vec::new();
    let mut after = after;
    loop {
        let cursor = after
            .as_deref()
            .map(|after| format!("&after={after}"))
            .unwrap_or_default();
        let page = app
            .request(
                Method::GET,
                &format!("/api/v1/events?limit={limit}{query}{cursor}"),
                None,
            )
            .await;
        page.assert_status(200);
        let page_events = page.body["data"]["events"]
            .as_array()
            .expect("events")
            .clone();
        assert!(page_events.len() <= limit as usize);
        let next = page.body["next_cursor"]
            .as_str()
            .expect("a cursor")
            .to_owned();
        if page_events.is_empty() {
            if events.len() >= expected {
                assert_eq!(events.len(), expected, "{events:#?}");
                return (events, next);
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "only {} of {expected} events listed: {events:#?}",
                events.len()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        events.extend(page_events);
        after = Some(next);
    }
}

fn types_of(events: &[Value]) -> Vec<&str> {
    events
        .iter()
        .map(|event| event["type"].as_str().expect("a type"))
        .collect()
}

async fn key_id(app: &TestApp) -> String {
    let keys = app.store.list_api_keys(app.company_id).await.expect("keys");
    keys[0].id.to_string()
}

async fn every_change_is_one_event_in_order_with_what_changed() {
    let app = TestApp::spawn().await;
    app.given_field("plan", "select", Some(&["free", "pro"]))
        .await;
    let ada = app
        .given_contact(json!({"ext_id": "crm-1", "first_name": "Ada", "custom_fields": [{"key": "plan", "value": "free"}]}))
        .await;
    let updated = app
        .patch_contact(json!({"id": "alt:ext_id:crm-1", "email": "ada@example.com", "custom_fields": {"set": [{"key": "plan", "value": "pro"}]}}))
        .await;
    updated.assert_status(200);
    // Changing nothing records nothing.
    app.patch_contact(json!({"id": "alt:ext_id:crm-1", "first_name": "Ada"}))
        .await
        .assert_status(200);
    app.request(
        Method::PATCH,
        "/api/v1/custom-fields/plan",
        Some(json!({"display_name": "Plan"})),
    )
    .await
    .assert_status(200);
    app.delete_contact("alt:ext_id:crm-1")
        .await
        .assert_status(200);
    app.request(Method::DELETE, "/api/v1/custom-fields/plan", None)
        .await
        .assert_status(200);

    let events = feed(&app, "", 100, 6).await;

    assert_eq!(
        types_of(&events),
        [
            "custom_field.created",
            "contact.created",
            "contact.updated",
            "custom_field.updated",
            "contact.deleted",
            "custom_field.deleted",
        ]
    );
    let key = key_id(&app).await;
    for event in &events {
        assert_eq!(event["actor"], json!({"type": "api_key", "id": key}));
        assert!(event["id"].as_str().expect("an id").starts_with("evt_"));
        assert!(
            event["occurred_at"]
                .as_str()
                .expect("a time")
                .ends_with('Z')
        );
    }
    let ids: HashSet<&Value> = events.iter().map(|event| &event["id"]).collect();
    assert_eq!(ids.len(), events.len(), "every event has its own id");
    assert_eq!(events[1]["data"]["contact"], ada);
    assert_eq!(events[1]["data"].get("changes"), None);
    assert_eq!(events[2]["data"]["contact"], updated.body);
    assert_eq!(
        events[2]["data"]["changes"],
        json!({
            "email": {"before": null, "after": "ada@example.com"},
            "custom_fields.plan": {"before": "free", "after": "pro"},
        })
    );
    assert_eq!(events[3]["data"]["custom_field"]["display_name"], "Plan");
    let mut as_it_was = updated.body.clone();
    as_it_was["custom_fields"][0]["display_name"] = json!("Plan");
    assert_eq!(
        events[4]["data"]["contact"], as_it_was,
        "as it was, renamed field and all"
    );
    assert_eq!(events[5]["data"]["custom_field"]["key"], "plan");
}
contract_test!(every_change_is_one_event_in_order_with_what_changed);

async fn a_write_that_fails_records_nothing_and_fails_no_other_items_event() {
    let app = TestApp::spawn().await;
    app.given_contact(json!({"ext_id": "taken"})).await;
    app.create_contact(json!({"ext_id": "taken"}))
        .await
        .assert_status(409);
    let bulk = app
        .create_contact(
            json!([{"ext_id": "a"}, {"ext_id": "taken"}, {"ext_id": "b"}, {"ext_id": "a"}]),
        )
        .await;
    bulk.assert_status(200);
    assert_eq!(bulk.body["failed_imports_count"], 2);
    let upsert = app
        .request(
            Method::POST,
            "/api/v1/contacts/batch",
            Some(json!({"match_on": "ext_id", "contacts": [
                {"ext_id": "a", "first_name": "Ann"},
                {"ext_id": "b"},
                {"ext_id": "c"},
            ]})),
        )
        .await;
    upsert.assert_status(200);

    let events = feed(&app, "", 100, 5).await;

    let created: Vec<&Value> = events
        .iter()
        .map(|event| &event["data"]["contact"]["ext_id"])
        .collect();
    assert_eq!(
        types_of(&events),
        [
            "contact.created",
            "contact.created",
            "contact.created",
            "contact.updated",
            "contact.created"
        ]
    );
    assert_eq!(
        created,
        [
            &json!("taken"),
            &json!("a"),
            &json!("b"),
            &json!("a"),
            &json!("c")
        ]
    );
    assert_eq!(
        events[3]["data"]["changes"],
        json!({"first_name": {"before": null, "after": "Ann"}}),
        "an item that changes nothing (b) records nothing"
    );
}
contract_test!(a_write_that_fails_records_nothing_and_fails_no_other_items_event);

async fn the_feed_pages_in_order_and_its_cursor_waits_for_what_comes_next() {
    let app = TestApp::spawn().await;
    let items: Vec<Value> = (0..25)
        .map(|n| json!({"ext_id": format!("c-{n}")}))
        .collect();
    app.create_contact(Value::Array(items))
        .await
        .assert_status(200);

    let events = feed(&app, "", 7, 25).await;
    let ext_ids: Vec<String> = events
        .iter()
        .map(|event| {
            event["data"]["contact"]["ext_id"]
                .as_str()
                .expect("ext_id")
                .to_owned()
        })
        .collect();
    assert_eq!(
        ext_ids,
        (0..25).map(|n| format!("c-{n}")).collect::<Vec<_>>()
    );

    // An empty page still gives a cursor, and polling with it finds the next change only.
    let (_, cursor) = feed_after(&app, None, "", 1000, 25).await;
    let empty = app
        .request(Method::GET, &format!("/api/v1/events?after={cursor}"), None)
        .await;
    assert_eq!(empty.body["data"]["events"], json!([]));
    assert_eq!(empty.body["next_cursor"], cursor.as_str());
    app.given_contact(json!({"ext_id": "late"})).await;
    let (next, _) = feed_after(&app, Some(cursor), "", 100, 1).await;
    assert_eq!(next[0]["data"]["contact"]["ext_id"], "late");
}
contract_test!(the_feed_pages_in_order_and_its_cursor_waits_for_what_comes_next);

async fn the_feed_filters_by_type_and_moves_past_what_it_skipped() {
    let app = TestApp::spawn().await;
    app.given_field("seats", "number", None).await;
    for n in 0..5 {
        app.given_contact(json!({"ext_id": format!("c-{n}")})).await;
    }
    app.delete_contact("alt:ext_id:c-3")
        .await
        .assert_status(200);

    let deleted = feed(&app, "&type=contact.deleted,custom_field.created", 1, 2).await;
    assert_eq!(
        types_of(&deleted),
        ["custom_field.created", "contact.deleted"]
    );
    assert_eq!(deleted[1]["data"]["contact"]["ext_id"], "c-3");

    let unknown = app
        .request(
            Method::GET,
            "/api/v1/events?type=contact.created,contact.merged",
            None,
        )
        .await;
    unknown.assert_error(400, "invalid_event_type");
    assert_eq!(unknown.field(), Some("type"));
    unknown.assert_message_mentions("custom_field.deleted");
    for (query, code, field) in [
        ("limit=0", "invalid_limit", "limit"),
        ("limit=1001", "invalid_limit", "limit"),
        ("after=garbage", "invalid_cursor", "after"),
    ] {
        let refused = app
            .request(Method::GET, &format!("/api/v1/events?{query}"), None)
            .await;
        refused.assert_error(400, code);
        assert_eq!(refused.field(), Some(field), "{query}");
    }
    // A contact list's cursor is not a feed's.
    let list = app.list_contacts("?limit=1").await;
    let list_cursor = list.body["next_cursor"].as_str().expect("a cursor");
    app.request(
        Method::GET,
        &format!("/api/v1/events?after={list_cursor}"),
        None,
    )
    .await
    .assert_error(400, "invalid_cursor");
}
contract_test!(the_feed_filters_by_type_and_moves_past_what_it_skipped);

async fn another_company_sees_none_of_the_events_and_cannot_use_the_cursor() {
    let app = TestApp::spawn().await;
    app.given_contact(json!({"ext_id": "mine"})).await;
    let other = app.other_company_key().await;
    let page = app.request(Method::GET, "/api/v1/events", None).await;
    let cursor = page.body["next_cursor"].as_str().expect("a cursor");

    let theirs = app
        .request_as(&other, Method::GET, "/api/v1/events", None)
        .await;
    assert_eq!(theirs.body["data"]["events"], json!([]));
    app.request_as(
        &other,
        Method::GET,
        &format!("/api/v1/events?after={cursor}"),
        None,
    )
    .await
    .assert_error(400, "invalid_cursor");
}
contract_test!(another_company_sees_none_of_the_events_and_cannot_use_the_cursor);

async fn a_history_lists_one_contacts_changes_newest_first_also_once_deleted() {
    let app = TestApp::spawn().await;
    let ada = app.given_contact(json!({"ext_id": "ada"})).await;
    app.given_contact(json!({"ext_id": "bob"})).await;
    for n in 0..4 {
        app.patch_contact(json!({"id": "alt:ext_id:ada", "first_name": format!("Ada {n}")}))
            .await
            .assert_status(200);
    }
    let id = ada["id"].as_str().expect("an id").to_owned();

    let first = app
        .request(
            Method::GET,
            "/api/v1/contacts/alt:ext_id:ada/history?limit=3",
            None,
        )
        .await;
    first.assert_status(200);
    let names: Vec<&Value> = first.body["data"]["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|event| &event["data"]["contact"]["first_name"])
        .collect();
    assert_eq!(names, [&json!("Ada 3"), &json!("Ada 2"), &json!("Ada 1")]);
    let cursor = first.body["next_cursor"].as_str().expect("a next page");
    let second = app
        .request(
            Method::GET,
            &format!("/api/v1/contacts/{id}/history?limit=3&cursor={cursor}"),
            None,
        )
        .await;
    assert_eq!(
        types_of(second.body["data"]["events"].as_array().expect("events")),
        ["contact.updated", "contact.created"]
    );
    assert_eq!(second.body["next_cursor"], Value::Null);

    app.delete_contact(&id).await.assert_status(200);
    let deleted = app
        .request(Method::GET, &format!("/api/v1/contacts/{id}/history"), None)
        .await;
    deleted.assert_status(200);
    let events = deleted.body["data"]["events"].as_array().expect("events");
    assert_eq!(events.len(), 6);
    assert_eq!(events[0]["type"], "contact.deleted");
    app.request(Method::GET, "/api/v1/contacts/alt:ext_id:ada/history", None)
        .await
        .assert_error(404, "contact_not_found");
    app.request(
        Method::GET,
        "/api/v1/contacts/0192f3a4-7b1c-7d2e-9f00-1234567890ab/history",
        None,
    )
    .await
    .assert_error(404, "contact_not_found");
}
contract_test!(a_history_lists_one_contacts_changes_newest_first_also_once_deleted);

/// A history recorded before schema version 7 linked each contact's events
/// (`migrations/sqlite/0007_history_chain.sql`) reads the same once the migration linked
/// them: the database is taken back to version 6's shape, then migrated again.
async fn a_history_recorded_before_its_chain_existed_reads_the_same_after_the_upgrade() {
    let app = TestApp::spawn().await;
    let ada = app.given_contact(json!({"ext_id": "ada"})).await;
    let bob = app.given_contact(json!({"ext_id": "bob"})).await;
    for n in 0..3 {
        for name in ["ada", "bob"] {
            app.patch_contact(
                json!({"id": format!("alt:ext_id:{name}"), "first_name": format!("{name} {n}")}),
            )
            .await
            .assert_status(200);
        }
    }
    let bob = bob["id"].as_str().expect("an id").to_owned();
    app.delete_contact(&bob).await.assert_status(200);
    let histories = async || {
        let mut histories = Vec::new();
        for id in [ada["id"].as_str().expect("an id"), &bob] {
            let history = app
                .request(Method::GET, &format!("/api/v1/contacts/{id}/history"), None)
                .await;
            history.assert_status(200);
            histories.push(history.body["data"]["events"].clone());
        }
        histories
    };
    let before = histories().await;
    assert_eq!(before[0].as_array().map(Vec::len), Some(4));
    assert_eq!(before[1].as_array().map(Vec::len), Some(5));

    app.database
        .execute(
            "DROP INDEX events_deleted; \
             CREATE INDEX events_contact ON events (company_id, contact_id, position) \
             WHERE contact_id IS NOT NULL; \
             ALTER TABLE events DROP COLUMN previous; \
             ALTER TABLE contacts DROP COLUMN last_event; \
             DELETE FROM _sqlx_migrations WHERE version = 7",
        )
        .await;
    admin(&app.database.url, &["migrate"]);
    assert_eq!(histories().await, before);
    // A change after the upgrade goes on from the linked chain.
    app.patch_contact(json!({"id": "alt:ext_id:ada", "first_name": "after"}))
        .await
        .assert_status(200);
    let after = histories().await;
    assert_eq!(after[0][0]["data"]["contact"]["first_name"], "after");
    assert_eq!(
        after[0].as_array().expect("events")[1..],
        before[0].as_array().expect("events")[..]
    );
}
contract_test!(a_history_recorded_before_its_chain_existed_reads_the_same_after_the_upgrade);

/// Writers of one contact at once (on PostgreSQL, in transactions that queue on its row)
/// each link their event to the one before: the history holds every change once, in the
/// order the feed has them, none lost from the chain.
async fn concurrent_changes_of_one_contact_each_join_its_history_once() {
    let app = TestApp::spawn().await;
    let ada = app.given_contact(json!({"ext_id": "ada"})).await;
    let writes = (0..20).map(|n| {
        app.patch_contact(json!({"id": "alt:ext_id:ada", "first_name": format!("Ada {n}")}))
    });
    for answer in futures_util::future::join_all(writes).await {
        answer.assert_status(200);
    }
    let id = ada["id"].as_str().expect("an id");
    let history = app
        .request(
            Method::GET,
            &format!("/api/v1/contacts/{id}/history?limit=100"),
            None,
        )
        .await;
    history.assert_status(200);
    let events = history.body["data"]["events"].as_array().expect("events");
    assert_eq!(events.len(), 21, "{events:?}");
    assert_eq!(events[20]["type"], "contact.created");
    let names: HashSet<&str> = events[..20]
        .iter()
        .map(|event| {
            event["data"]["contact"]["first_name"]
                .as_str()
                .expect("a name")
        })
        .collect();
    assert_eq!(names.len(), 20, "every change once");
    // Newest first is the feed's order reversed.
    let feed: Vec<Value> = feed(&app, "", 100, 21).await;
    let ids: Vec<&Value> = events.iter().rev().map(|event| &event["id"]).collect();
    let feed_ids: Vec<&Value> = feed.iter().map(|event| &event["id"]).collect();
    assert_eq!(ids, feed_ids);
}
contract_test!(concurrent_changes_of_one_contact_each_join_its_history_once);

async fn the_dashboard_and_the_cli_are_recorded_as_their_actors() {
    let app = TestApp::spawn().await;
    app.given_user(app.company_id, "ann@example.com", "correct horse battery")
        .await;
    let ada = app.given_contact(json!({"ext_id": "ada"})).await;
    let user = app.log_in("ann@example.com", "correct horse battery").await;
    let id = ada["id"].as_str().expect("an id");
    user.post(&format!("/dashboard/contacts/{id}/delete"), &[])
        .await
        .assert_status(303);
    admin(
        &app.database.url,
        &[
            "field",
            "create",
            "--company",
            "acme",
            "--key",
            "seats",
            "--type",
            "number",
            "--display-name",
            "Seats",
        ],
    );

    let events = feed(&app, "&type=contact.deleted,custom_field.created", 10, 2).await;

    let users = app.store.list_users(app.company_id).await.expect("users");
    assert_eq!(
        events[0]["actor"],
        json!({"type": "user", "id": users[0].id.to_string()})
    );
    assert_eq!(
        events[1]["actor"],
        json!({"type": "cli", "id": "field create"})
    );
}
contract_test!(the_dashboard_and_the_cli_are_recorded_as_their_actors);

async fn retention_deletes_old_events_and_an_older_cursor_is_gone() {
    let app = TestApp::spawn().await;
    app.given_contact(json!({"ext_id": "old"})).await;
    let (_, before_retention) = feed_after(&app, None, "", 100, 1).await;
    app.given_contact(json!({"ext_id": "older"})).await;
    let (_, caught_up) = feed_after(&app, Some(before_retention.clone()), "", 100, 1).await;

    tokio::time::sleep(Duration::from_millis(5)).await;
    let deleted = contactd::events::delete_expired(app.store.as_ref(), Duration::ZERO)
        .await
        .expect("retention");
    assert_eq!(deleted, 2);

    let gone = app
        .request(
            Method::GET,
            &format!("/api/v1/events?after={before_retention}"),
            None,
        )
        .await;
    gone.assert_error(410, "cursor_expired");
    // A reader that had seen everything goes on, and one without a cursor starts after
    // what was deleted.
    app.given_contact(json!({"ext_id": "new"})).await;
    for after in [Some(caught_up), None] {
        let (events, _) = feed_after(&app, after, "", 100, 1).await;
        assert_eq!(events[0]["data"]["contact"]["ext_id"], "new");
    }
    // A deleted event is gone from the history too.
    let history = app
        .request(Method::GET, "/api/v1/contacts/alt:ext_id:old/history", None)
        .await;
    assert_eq!(history.body["data"]["events"], json!([]));
}
contract_test!(retention_deletes_old_events_and_an_older_cursor_is_gone);
