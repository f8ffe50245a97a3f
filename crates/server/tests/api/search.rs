//! Finding contacts (docs/reference.md#finding-contacts): the filters and sorts of
//! `GET /api/v1/contacts`, its cursors bound to them, and `GET /api/v1/contacts/count`.

use contactd_api::{ContactSort, CreateContact, CreateCustomField, FieldType};
use contactd_client::{Client, ContactFilter};
use serde_json::{Value, json};

use crate::helpers::{
    Backend, ServerProcess, TestApp, TestDatabase, TestResponse, admin, contract_test,
};

/// `GET /api/v1/contacts` with these query parameters, percent-encoded.
async fn find(app: &TestApp, params: &[(&str, &str)]) -> TestResponse {
    app.list_contacts(&query_string(params)).await
}

async fn count(app: &TestApp, params: &[(&str, &str)]) -> TestResponse {
    let path = format!("/api/v1/contacts/count{}", query_string(params));
    app.request(axum::http::Method::GET, &path, None).await
}

fn query_string(params: &[(&str, &str)]) -> String {
    let mut query = form_urlencoded::Serializer::new(String::from("?"));
    for (name, value) in params {
        query.append_pair(name, value);
    }
    query.finish()
}

/// The ext_ids of a page's contacts, in order.
fn ext_ids(response: &TestResponse) -> Vec<String> {
    response.assert_status(200);
    response.body["data"]["contacts"]
        .as_array()
        .expect("contacts")
        .iter()
        .map(|contact| contact["ext_id"].as_str().expect("ext_id").to_owned())
        .collect()
}

/// The ext_ids the filters find, in order, read a page at a time through the cursors.
async fn found(app: &TestApp, params: &[(&str, &str)]) -> Vec<String> {
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut page_params = params.to_vec();
        page_params.push(("limit", "2"));
        if let Some(cursor) = &cursor {
            page_params.push(("cursor", cursor));
        }
        let page = find(app, &page_params).await;
        all.extend(ext_ids(&page));
        match page.body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
        assert!(all.len() < 100, "the cursors never end");
    }
    let counted = count(app, params).await;
    counted.assert_status(200);
    assert_eq!(counted.body, json!({"count": all.len()}), "{params:?}");
    all
}

async fn people(app: &TestApp) {
    for body in [
        json!({"ext_id": "crm-1", "first_name": "Ada", "last_name": "Lovelace", "email": "ada@analytical.org"}),
        json!({"ext_id": "crm-2", "first_name": "Grace", "last_name": "Hopper", "email": "grace@navy.mil"}),
        json!({"ext_id": "crm-3", "first_name": "Alan", "phone_number": "+14155552671"}),
        json!({"ext_id": "xy\"z%_", "last_name": "Ó Súilleabháin"}),
    ] {
        app.given_contact(body).await;
    }
}

async fn q_finds_contacts_by_any_part_of_their_name_email_or_ext_id() {
    let app = TestApp::spawn().await;
    people(&app).await;
    assert_eq!(found(&app, &[("q", "love")]).await, ["crm-1"]);
    assert_eq!(
        found(&app, &[("q", "ACE HOP")]).await,
        ["crm-2"],
        "the full name"
    );
    assert_eq!(
        found(&app, &[("q", "navy.m")]).await,
        ["crm-2"],
        "the email"
    );
    assert_eq!(
        found(&app, &[("q", "Alan")]).await,
        ["crm-3"],
        "a first name alone"
    );
    assert_eq!(
        found(&app, &[("q", "rm-")]).await,
        ["crm-3", "crm-2", "crm-1"]
    );
    assert_eq!(found(&app, &[("q", "súil")]).await, ["xy\"z%_"]);
    assert_eq!(
        found(&app, &[("q", "y\"z%_")]).await,
        ["xy\"z%_"],
        "quotes and wildcards are text"
    );
    assert!(found(&app, &[("q", "a%a")]).await.is_empty());
    assert!(found(&app, &[("q", "lovelace grace")]).await.is_empty());

    let short = find(&app, &[("q", " ad ")]).await;
    short.assert_error(400, "invalid_query");
    assert_eq!(short.field(), Some("q"));
    short.assert_message_mentions("at least 3");
}
contract_test!(q_finds_contacts_by_any_part_of_their_name_email_or_ext_id);

async fn a_write_is_found_by_its_new_values_as_soon_as_it_is_answered() {
    let app = TestApp::spawn().await;
    people(&app).await;
    app.patch_contact(json!({"id": "alt:ext_id:crm-1", "last_name": "King", "email": null}))
        .await
        .assert_status(200);
    assert!(found(&app, &[("q", "lovelace")]).await.is_empty());
    assert!(found(&app, &[("q", "analytical")]).await.is_empty());
    assert_eq!(found(&app, &[("q", "ada king")]).await, ["crm-1"]);
    app.delete_contact("alt:ext_id:crm-2")
        .await
        .assert_status(200);
    assert!(found(&app, &[("q", "grace")]).await.is_empty());
    let created = app
        .given_contact(json!({"ext_id": "crm-9", "first_name": "Gracie"}))
        .await;
    assert_eq!(created["ext_id"], "crm-9");
    assert_eq!(found(&app, &[("q", "grac")]).await, ["crm-9"]);
}
contract_test!(a_write_is_found_by_its_new_values_as_soon_as_it_is_answered);

async fn identifier_filters_match_exactly_in_normal_form() {
    let app = TestApp::spawn().await;
    people(&app).await;
    assert_eq!(
        found(&app, &[("email", " ADA@Analytical.org")]).await,
        ["crm-1"]
    );
    assert_eq!(
        found(&app, &[("phone_number", "(415) 555-2671")]).await,
        ["crm-3"]
    );
    assert_eq!(found(&app, &[("ext_id", "crm-2")]).await, ["crm-2"]);
    assert!(
        found(&app, &[("ext_id", "crm")]).await.is_empty(),
        "exact, not contains"
    );
    assert!(
        found(&app, &[("ext_id", "crm-2"), ("q", "lovelace")])
            .await
            .is_empty(),
        "filters combine with AND"
    );
    let bad = find(&app, &[("email", "not-an-email")]).await;
    bad.assert_error(400, "invalid_email");
    assert_eq!(bad.field(), Some("email"));
}
contract_test!(identifier_filters_match_exactly_in_normal_form);

async fn time_ranges_are_strict_and_take_rfc_3339() {
    let app = TestApp::spawn().await;
    let first = app.given_contact(json!({"ext_id": "first"})).await;
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let second = app.given_contact(json!({"ext_id": "second"})).await;
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    app.patch_contact(json!({"id": "alt:ext_id:first", "first_name": "Later"}))
        .await
        .assert_status(200);
    let at = |contact: &Value, member: &str| contact[member].as_str().expect("time").to_owned();
    let first_created = at(&first, "created_at");
    let second_created = at(&second, "created_at");
    assert_eq!(
        found(&app, &[("created_after", &first_created)]).await,
        ["second"]
    );
    assert_eq!(
        found(&app, &[("created_before", &second_created)]).await,
        ["first"]
    );
    assert_eq!(
        found(&app, &[("updated_after", &second_created)]).await,
        ["first"]
    );
    assert_eq!(
        found(&app, &[("updated_before", &at(&second, "updated_at"))]).await,
        Vec::<String>::new()
    );
    let bad = find(&app, &[("created_after", "yesterday")]).await;
    bad.assert_error(400, "invalid_query");
    assert_eq!(bad.field(), Some("created_after"));
    bad.assert_message_mentions("RFC 3339");
}
contract_test!(time_ranges_are_strict_and_take_rfc_3339);

async fn custom_field_filters_compare_by_the_fields_type() {
    let app = TestApp::spawn().await;
    app.given_field("plan", "select", Some(&["free", "pro", "team", "a,b"]))
        .await;
    app.given_field("seats", "number", None).await;
    app.given_field("renews", "date", None).await;
    app.given_field("vip", "boolean", None).await;
    app.given_field("note", "text", None).await;
    let contact = |ext_id: &str, fields: Value| {
        let mut body = json!({"ext_id": ext_id});
        body["custom_fields"] = fields;
        body
    };
    for body in [
        contact(
            "c9",
            json!([{"key": "plan", "value": "pro"}, {"key": "seats", "value": 9}, {"key": "renews", "value": "2026-12-31"}]),
        ),
        contact(
            "c10",
            json!([{"key": "plan", "value": "team"}, {"key": "seats", "value": "10.0"}, {"key": "vip", "value": true}]),
        ),
        contact(
            "c25",
            json!([{"key": "plan", "value": "free"}, {"key": "seats", "value": 2.5}, {"key": "renews", "value": "2027-01-01"}, {"key": "note", "value": "Call back"}]),
        ),
        contact("ab", json!([{"key": "plan", "value": "a,b"}])),
        contact("none", json!([])),
    ] {
        app.given_contact(body).await;
    }
    assert_eq!(found(&app, &[("cf.plan", "pro")]).await, ["c9"]);
    assert_eq!(found(&app, &[("cf.plan", "pro,team")]).await, ["c10", "c9"]);
    assert_eq!(
        found(&app, &[("cf.plan", "a,b")]).await,
        ["ab"],
        "an option holding a comma"
    );
    assert_eq!(
        found(&app, &[("cf.seats.gt", "9")]).await,
        ["c10"],
        "10 > 9, as numbers"
    );
    assert_eq!(found(&app, &[("cf.seats.gte", "9")]).await, ["c10", "c9"]);
    assert_eq!(found(&app, &[("cf.seats.lt", "9.5")]).await, ["c25", "c9"]);
    assert_eq!(found(&app, &[("cf.seats.lte", "2.5")]).await, ["c25"]);
    assert_eq!(found(&app, &[("cf.seats", "10")]).await, ["c10"]);
    assert_eq!(
        found(&app, &[("cf.seats.gt", "2"), ("cf.seats.lt", "10")]).await,
        ["c25", "c9"]
    );
    assert_eq!(
        found(&app, &[("cf.renews.gt", "2026-12-31")]).await,
        ["c25"],
        "dates as dates"
    );
    assert_eq!(
        found(&app, &[("cf.renews.lte", "2026-12-31")]).await,
        ["c9"]
    );
    assert_eq!(found(&app, &[("cf.vip", "TRUE")]).await, ["c10"]);
    assert_eq!(found(&app, &[("cf.note", "Call back")]).await, ["c25"]);
    assert!(
        found(&app, &[("cf.note", "call back")]).await.is_empty(),
        "equality is exact"
    );
    assert_eq!(
        found(&app, &[("cf.renews.exists", "true")]).await,
        ["c25", "c9"]
    );
    assert_eq!(
        found(&app, &[("cf.renews.exists", "false")]).await,
        ["none", "ab", "c10"]
    );
    assert_eq!(
        found(
            &app,
            &[("cf.plan", "pro,team,free"), ("cf.renews.exists", "false")]
        )
        .await,
        ["c10"]
    );

    for (params, code, field, mention) in [
        (
            [("cf.nope", "1")],
            "unknown_custom_field",
            "cf.nope",
            "no custom field `nope`",
        ),
        (
            [("cf.plan", "gold")],
            "invalid_custom_field_value",
            "cf.plan",
            "free",
        ),
        (
            [("cf.seats.gt", "many")],
            "invalid_custom_field_value",
            "cf.seats.gt",
            "number",
        ),
        (
            [("cf.renews", "2026-02-30")],
            "invalid_custom_field_value",
            "cf.renews",
            "YYYY-MM-DD",
        ),
        (
            [("cf.plan.gt", "pro")],
            "invalid_query",
            "cf.plan.gt",
            "compares numbers and dates",
        ),
        (
            [("cf.seats.between", "1")],
            "invalid_query",
            "cf.seats.between",
            ".gte",
        ),
        (
            [("cf.seats.exists", "yes")],
            "invalid_query",
            "cf.seats.exists",
            "`true` or `false`",
        ),
    ] {
        let refused = find(&app, &params).await;
        refused.assert_error(400, code);
        assert_eq!(refused.field(), Some(field), "{params:?}");
        refused.assert_message_mentions(mention);
        count(&app, &params).await.assert_error(400, code);
    }
}
contract_test!(custom_field_filters_compare_by_the_fields_type);

async fn every_sort_pages_through_every_contact_once() {
    let app = TestApp::spawn().await;
    for ext_id in ["a", "b", "c", "d", "e"] {
        app.given_contact(json!({"ext_id": ext_id})).await;
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    for ext_id in ["b", "d", "a"] {
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        app.patch_contact(json!({"id": format!("alt:ext_id:{ext_id}"), "first_name": "x"}))
            .await
            .assert_status(200);
    }
    let mut oldest: Vec<String> = found(&app, &[("sort", "created_at")]).await;
    assert_eq!(oldest, ["a", "b", "c", "d", "e"]);
    oldest.reverse();
    assert_eq!(found(&app, &[]).await, oldest);
    assert_eq!(found(&app, &[("sort", "-created_at")]).await, oldest);
    assert_eq!(
        found(&app, &[("sort", "updated_at")]).await,
        ["c", "e", "b", "d", "a"]
    );
    assert_eq!(
        found(&app, &[("sort", "-updated_at")]).await,
        ["a", "d", "b", "e", "c"]
    );
    let bad = find(&app, &[("sort", "name")]).await;
    bad.assert_error(400, "invalid_query");
    assert_eq!(bad.field(), Some("sort"));
    bad.assert_message_mentions("`-updated_at`");
}
contract_test!(every_sort_pages_through_every_contact_once);

async fn a_cursor_is_taken_back_only_with_its_own_filters_and_sort() {
    let app = TestApp::spawn().await;
    for ext_id in ["crm-1", "crm-2", "crm-3"] {
        app.given_contact(json!({"ext_id": ext_id})).await;
    }
    let cursor_of = |page: &TestResponse| {
        page.body["next_cursor"]
            .as_str()
            .expect("cursor")
            .to_owned()
    };
    let filtered = find(&app, &[("q", "crm"), ("limit", "1")]).await;
    let cursor = cursor_of(&filtered);
    find(&app, &[("q", "crm"), ("limit", "1"), ("cursor", &cursor)])
        .await
        .assert_status(200);
    find(&app, &[("cursor", &cursor)])
        .await
        .assert_error(400, "invalid_cursor");
    for other in [
        vec![("q", "crm-"), ("cursor", cursor.as_str())],
        vec![("q", "crm"), ("sort", "created_at"), ("cursor", &cursor)],
    ] {
        let refused = find(&app, &other).await;
        refused.assert_error(400, "invalid_cursor");
        assert_eq!(refused.field(), Some("cursor"));
        refused.assert_message_mentions("filters");
    }
    // The plain list's cursors are what they were before filters existed.
    let plain = cursor_of(&find(&app, &[("limit", "1")]).await);
    find(&app, &[("cursor", &plain)]).await.assert_status(200);
    find(&app, &[("sort", "-created_at"), ("cursor", &plain)])
        .await
        .assert_status(200);
    find(&app, &[("q", "crm"), ("cursor", &plain)])
        .await
        .assert_error(400, "invalid_cursor");
}
contract_test!(a_cursor_is_taken_back_only_with_its_own_filters_and_sort);

async fn unknown_and_repeated_parameters_are_refused() {
    let app = TestApp::spawn().await;
    let unknown = find(&app, &[("name", "ada")]).await;
    unknown.assert_error(400, "invalid_query");
    assert_eq!(unknown.field(), Some("name"));
    unknown.assert_message_mentions("`cf.KEY`");
    let repeated = find(&app, &[("q", "ada"), ("q", "bob")]).await;
    repeated.assert_error(400, "invalid_query");
    repeated.assert_message_mentions("more than once");
    count(&app, &[("limit", "5")])
        .await
        .assert_error(400, "invalid_query");
    count(&app, &[]).await.assert_status(200);
}
contract_test!(unknown_and_repeated_parameters_are_refused);

async fn the_typed_client_builds_filters_and_pages_through_them() {
    let database = TestDatabase::create(Backend::current()).await;
    admin(&database.url, &["company", "create", "acme"]);
    let key = admin(&database.url, &["key", "create", "--company", "acme"])
        .trim()
        .to_owned();
    let server = ServerProcess::start(&database.url, &[]);
    let client = Client::new(&server.base_url, &key);
    client
        .create_custom_field(&CreateCustomField {
            key: "seats".to_owned(),
            display_name: "Seats".to_owned(),
            field_type: FieldType::Number,
            options: None,
        })
        .await
        .expect("field");
    for seats in 1..=5 {
        let contact: CreateContact = serde_json::from_value(json!({
            "ext_id": format!("crm-{seats}"),
            "first_name": "Ada",
            "custom_fields": [{"key": "seats", "value": seats}],
        }))
        .expect("a create body");
        client.create_contact(&contact).await.expect("created");
    }
    let filter = ContactFilter::new()
        .text("ada")
        .at_least("seats", 2)
        .less_than("seats", 5)
        .sort(ContactSort::OldestCreated);
    assert_eq!(client.count_contacts(&filter).await.expect("count"), 3);
    let mut ext_ids = Vec::new();
    let mut cursor = None;
    loop {
        let page = client
            .find_contacts(&filter, Some(2), cursor.as_deref())
            .await
            .expect("page");
        ext_ids.extend(
            page.data
                .contacts
                .into_iter()
                .filter_map(|contact| contact.ext_id),
        );
        cursor = page.next_cursor;
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(ext_ids, ["crm-2", "crm-3", "crm-4"]);
    let refused = client
        .count_contacts(&ContactFilter::new().greater_than("plan", 1))
        .await
        .expect_err("no such field");
    assert!(
        refused.to_string().contains("no custom field `plan`"),
        "{refused}"
    );
}
contract_test!(the_typed_client_builds_filters_and_pages_through_them);

/// Twenty creates at once: each is found by `q` and by its field as soon as its own write
/// is answered, whatever the others are doing, and the count holds them all.
async fn concurrent_writes_are_each_found_as_soon_as_they_are_answered() {
    let app = std::sync::Arc::new(TestApp::spawn().await);
    app.given_field("seats", "number", None).await;
    let writes: Vec<_> = (0..20)
        .map(|i| {
            let app = app.clone();
            tokio::spawn(async move {
                let ext_id = format!("burst-{i:02}");
                app.given_contact(json!({
                    "ext_id": ext_id,
                    "first_name": format!("Quinn{i:02}"),
                    "custom_fields": [{"key": "seats", "value": i}],
                }))
                .await;
                let by_text = find(&app, &[("q", &format!("quinn{i:02}"))]).await;
                assert_eq!(ext_ids(&by_text), std::slice::from_ref(&ext_id));
                let seats = i.to_string();
                let by_field = find(&app, &[("cf.seats", seats.as_str())]).await;
                assert_eq!(ext_ids(&by_field), [ext_id]);
            })
        })
        .collect();
    for write in writes {
        write.await.expect("a write and its searches");
    }
    let counted = count(&app, &[("q", "quinn")]).await;
    assert_eq!(counted.body, json!({"count": 20}));
}
contract_test!(concurrent_writes_are_each_found_as_soon_as_they_are_answered);
