//! `GET /api/v1/contacts` (docs/reference.md#6-contact-endpoints): newest first, `limit`, and keyset pagination with signed
//! cursors that survive concurrent writes and refuse tampering and other companies.

use std::collections::HashSet;
use std::time::Duration;

use axum::http::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, contract_test, encode_segment};

/// Creates `count` contacts with ext_ids `{prefix}-0`, `{prefix}-1`, …, returning their ids.
async fn given_contacts(app: &TestApp, prefix: &str, count: usize) -> Vec<String> {
    let mut ids = Vec::with_capacity(count);
    for index in 0..count {
        let contact = app
            .given_contact(json!({"ext_id": format!("{prefix}-{index}")}))
            .await;
        ids.push(contact["id"].as_str().expect("id").to_owned());
    }
    ids
}

/// One page: the ids it lists and its `next_cursor`.
async fn page(app: &TestApp, limit: usize, cursor: Option<&str>) -> (Vec<String>, Option<String>) {
    let query = match cursor {
        Some(cursor) => format!("?limit={limit}&cursor={}", encode_segment(cursor)),
        None => format!("?limit={limit}"),
    };
    let response = app.list_contacts(&query).await;
    response.assert_status(200);
    let ids = ids_of(&response.body);
    let next_cursor = match &response.body["next_cursor"] {
        Value::Null => None,
        Value::String(cursor) => Some(cursor.clone()),
        other => panic!("next_cursor is a string or null, not {other}"),
    };
    (ids, next_cursor)
}

fn ids_of(list: &Value) -> Vec<String> {
    list["data"]["contacts"]
        .as_array()
        .expect("data.contacts is an array")
        .iter()
        .map(|contact| contact["id"].as_str().expect("id").to_owned())
        .collect()
}

async fn an_empty_company_lists_no_contacts() {
    let app = TestApp::spawn().await;

    let response = app.list_contacts("").await;

    response.assert_status(200);
    assert_eq!(
        response.body,
        json!({"data": {"contacts": []}, "next_cursor": null})
    );
}
contract_test!(an_empty_company_lists_no_contacts);

async fn contacts_are_listed_newest_first() {
    let app = TestApp::spawn().await;
    let mut created = Vec::new();
    for index in 0..5 {
        // Distinct milliseconds, so the order is by created_at alone.
        tokio::time::sleep(Duration::from_millis(3)).await;
        created.push(
            app.given_contact(json!({"ext_id": format!("c-{index}")}))
                .await,
        );
    }

    let response = app.list_contacts("").await;

    response.assert_status(200);
    created.reverse();
    assert_eq!(
        response.body,
        json!({"data": {"contacts": created}, "next_cursor": null})
    );
}
contract_test!(contacts_are_listed_newest_first);

async fn contacts_created_in_one_millisecond_are_ordered_and_paged_by_id_descending() {
    let app = TestApp::spawn().await;
    let mut ids = given_contacts(&app, "burst", 20).await;
    // Creates through the API land in distinct milliseconds (each one waits for its fsync),
    // so the tie is made directly in the database.
    app.database
        .execute("UPDATE contacts SET created_at = 1764190800123, updated_at = 1764190800123")
        .await;
    ids.sort_unstable_by(|a, b| b.cmp(a));

    let listed = app.list_contacts("?limit=100").await;
    let mut walked = Vec::new();
    let mut cursor = None;
    loop {
        let (page_ids, next_cursor) = page(&app, 7, cursor.as_deref()).await;
        walked.extend(page_ids);
        match next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }

    assert_eq!(ids_of(&listed.body), ids);
    assert_eq!(
        listed.body["data"]["contacts"][0]["created_at"],
        "2025-11-26T21:00:00.123Z"
    );
    assert_eq!(walked, ids);
}
contract_test!(contacts_created_in_one_millisecond_are_ordered_and_paged_by_id_descending);

async fn a_listed_contact_is_the_same_as_a_fetched_one() {
    let app = TestApp::spawn().await;
    app.given_field("plan", "select", Some(&["free", "pro"]))
        .await;
    let contact = app
        .given_contact(json!({
            "email": "jane@example.com",
            "phone_number": "+14155552671",
            "first_name": "Jane",
            "custom_fields": [{"key": "plan", "value": "pro"}],
        }))
        .await;

    let response = app.list_contacts("").await;

    assert_eq!(response.body["data"]["contacts"], json!([contact]));
}
contract_test!(a_listed_contact_is_the_same_as_a_fetched_one);

async fn twenty_contacts_are_listed_when_no_limit_is_given() {
    let app = TestApp::spawn().await;
    given_contacts(&app, "c", 25).await;

    let response = app.list_contacts("").await;

    response.assert_status(200);
    assert_eq!(ids_of(&response.body).len(), 20);
    assert!(
        response.body["next_cursor"].is_string(),
        "{}",
        response.text
    );
}
contract_test!(twenty_contacts_are_listed_when_no_limit_is_given);

async fn a_limit_from_1_to_100_is_accepted() {
    let app = TestApp::spawn().await;
    let created = given_contacts(&app, "c", 101).await;
    let newest_first: Vec<String> = created.iter().rev().cloned().collect();

    let (one, after_one) = page(&app, 1, None).await;
    let (hundred, after_hundred) = page(&app, 100, None).await;
    let (rest, after_rest) = page(&app, 100, after_hundred.as_deref()).await;

    assert_eq!(one.len(), 1);
    assert!(after_one.is_some());
    assert_eq!(hundred.len(), 100);
    assert_eq!(one[..], hundred[..1]);
    assert_eq!(rest.len(), 1);
    assert_eq!(after_rest, None);
    let all: Vec<String> = hundred.into_iter().chain(rest).collect();
    let all_set: HashSet<&String> = all.iter().collect();
    assert_eq!(all_set, newest_first.iter().collect::<HashSet<_>>());
}
contract_test!(a_limit_from_1_to_100_is_accepted);

async fn a_limit_outside_1_to_100_is_refused() {
    let app = TestApp::spawn().await;
    given_contacts(&app, "c", 2).await;

    for limit in ["0", "101", "-1", "abc", "1.5", "", "1e2", "+5", "%205"] {
        let response = app.list_contacts(&format!("?limit={limit}")).await;
        response.assert_error(400, "invalid_limit");
        assert_eq!(response.field(), Some("limit"), "limit={limit}");
    }
}
contract_test!(a_limit_outside_1_to_100_is_refused);

async fn an_unknown_query_parameter_is_refused() {
    let app = TestApp::spawn().await;

    let response = app.list_contacts("?limit=10&page=2").await;

    response.assert_error(400, "invalid_query");
    response.assert_message_mentions("page");
}
contract_test!(an_unknown_query_parameter_is_refused);

async fn walking_every_page_returns_each_contact_once_in_order() {
    let app = TestApp::spawn().await;
    given_contacts(&app, "c", 45).await;
    let everything = ids_of(&app.list_contacts("?limit=100").await.body);

    let mut walked = Vec::new();
    let mut page_sizes = Vec::new();
    let mut cursor = None;
    loop {
        let (ids, next_cursor) = page(&app, 10, cursor.as_deref()).await;
        page_sizes.push(ids.len());
        walked.extend(ids);
        match next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }

    assert_eq!(page_sizes, [10, 10, 10, 10, 5]);
    assert_eq!(walked, everything);
    assert_eq!(walked.iter().collect::<HashSet<_>>().len(), 45);
}
contract_test!(walking_every_page_returns_each_contact_once_in_order);

async fn a_last_page_that_is_exactly_full_has_no_next_cursor() {
    let app = TestApp::spawn().await;
    given_contacts(&app, "c", 20).await;

    let (first, cursor) = page(&app, 10, None).await;
    let (second, after_second) = page(&app, 10, cursor.as_deref()).await;

    assert_eq!(first.len(), 10);
    assert_eq!(second.len(), 10);
    assert_eq!(after_second, None);
}
contract_test!(a_last_page_that_is_exactly_full_has_no_next_cursor);

async fn a_tampered_cursor_is_refused() {
    let app = TestApp::spawn().await;
    given_contacts(&app, "c", 3).await;
    let (_, cursor) = page(&app, 1, None).await;
    let cursor = cursor.expect("a next page");

    for at in 0..cursor.len() {
        let mut tampered = cursor.clone().into_bytes();
        tampered[at] = if tampered[at] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).expect("ASCII");
        let response = app
            .list_contacts(&format!("?cursor={}", encode_segment(&tampered)))
            .await;
        response.assert_error(400, "invalid_cursor");
        assert_eq!(response.field(), Some("cursor"), "flipped at {at}");
    }
}
contract_test!(a_tampered_cursor_is_refused);

async fn a_garbage_cursor_is_refused() {
    let app = TestApp::spawn().await;
    given_contacts(&app, "c", 3).await;

    for cursor in ["garbage!", "", "AAAA", "null", "0", &"A".repeat(54)] {
        let response = app
            .list_contacts(&format!("?cursor={}", encode_segment(cursor)))
            .await;
        response.assert_error(400, "invalid_cursor");
        assert_eq!(response.field(), Some("cursor"), "cursor={cursor:?}");
    }
}
contract_test!(a_garbage_cursor_is_refused);

async fn a_cursor_from_another_company_is_refused() {
    let app = TestApp::spawn().await;
    given_contacts(&app, "mine", 3).await;
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
        .await;
    let foreign_cursor = theirs.body["next_cursor"].as_str().expect("a next page");

    let response = app
        .list_contacts(&format!("?cursor={}", encode_segment(foreign_cursor)))
        .await;

    response.assert_error(400, "invalid_cursor");
    assert_eq!(response.field(), Some("cursor"));
}
contract_test!(a_cursor_from_another_company_is_refused);

async fn another_companys_contacts_are_never_listed() {
    let app = TestApp::spawn().await;
    let mine = given_contacts(&app, "c", 2).await;
    let other_key = app.other_company_key().await;
    app.request_as(
        &other_key,
        Method::POST,
        "/api/v1/contacts",
        Some(json!({"ext_id": "c-0"})),
    )
    .await
    .assert_status(200);

    let listed = ids_of(&app.list_contacts("").await.body);

    assert_eq!(listed, mine.into_iter().rev().collect::<Vec<_>>());
}
contract_test!(another_companys_contacts_are_never_listed);

async fn walking_while_contacts_come_and_go_never_repeats_or_skips_a_survivor() {
    let app = TestApp::spawn().await;
    let initial = given_contacts(&app, "initial", 40).await;
    // Newest first: the order in which the walk meets the initial contacts.
    let walk_order: Vec<String> = initial.iter().rev().cloned().collect();
    let mut deleted = HashSet::new();
    let (mut deleted_behind, mut deleted_ahead) = (0, 0);
    let mut seen: Vec<String> = Vec::new();
    let mut cursor = None;

    for round in 0.. {
        let (ids, next_cursor) = page(&app, 7, cursor.as_deref()).await;
        seen.extend(ids);
        let Some(next) = next_cursor else { break };
        cursor = Some(next);
        // Between pages: newer contacts arrive, one contact already walked past is deleted
        // (in the first round the very one the cursor points at), and so is one not yet
        // reached.
        given_contacts(&app, &format!("round-{round}"), 3).await;
        let last_seen = seen
            .iter()
            .rev()
            .find_map(|id| walk_order.iter().position(|initial| initial == id))
            .expect("the walk has met an initial contact");
        let behind = &walk_order[last_seen - (round % 3).min(last_seen)];
        if deleted.insert(behind.clone()) {
            app.delete_contact(behind).await.assert_status(200);
            deleted_behind += 1;
        }
        let ahead = walk_order[last_seen + 1..]
            .iter()
            .skip(2)
            .find(|id| !deleted.contains(*id));
        if let Some(ahead) = ahead {
            deleted.insert(ahead.clone());
            app.delete_contact(ahead).await.assert_status(200);
            deleted_ahead += 1;
        }
    }

    assert!(
        deleted_behind >= 3 && deleted_ahead >= 3,
        "the walk saw deletes on both sides"
    );
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "no contact is listed twice");
    let survivors: Vec<&String> = walk_order
        .iter()
        .filter(|id| !deleted.contains(*id))
        .collect();
    let seen_survivors: Vec<&String> = seen
        .iter()
        .filter(|id| initial.contains(id) && !deleted.contains(*id))
        .collect();
    assert_eq!(seen_survivors, survivors, "every survivor, once, in order");
}
contract_test!(walking_while_contacts_come_and_go_never_repeats_or_skips_a_survivor);
