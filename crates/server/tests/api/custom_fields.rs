//! Custom field definitions (docs/reference.md#7-custom-field-definitions): create, list, fetch, rename, grow options, delete, and how
//! definitions shape the values contacts hold (docs/reference.md#3-the-contact-object, docs/reference.md#5-normalisation-and-validation).

use axum::http::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestResponse, contract_test};

const FIELDS: &str = "/api/v1/custom-fields";

fn field_path(key: &str) -> String {
    format!("{FIELDS}/{key}")
}

/// Asserts a timestamp in the API's form, `2026-11-26T21:00:00.123Z`.
#[track_caller]
fn assert_timestamp(value: &Value) {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("not a string: {value}"));
    assert_eq!(text.len(), 24, "{text}");
    assert!(text.ends_with('Z'), "{text}");
    assert!(chrono::DateTime::parse_from_rfc3339(text).is_ok(), "{text}");
}

/// The body without `created_at`, after checking it is a timestamp.
#[track_caller]
fn without_created_at(mut body: Value) -> Value {
    assert_timestamp(&body["created_at"]);
    body.as_object_mut()
        .expect("an object")
        .remove("created_at");
    body
}

async fn get_field(app: &TestApp, key: &str) -> TestResponse {
    app.request(Method::GET, &field_path(key), None).await
}

async fn patch_field(app: &TestApp, key: &str, body: Value) -> TestResponse {
    app.request(Method::PATCH, &field_path(key), Some(body))
        .await
}

async fn delete_field(app: &TestApp, key: &str) -> TestResponse {
    app.request(Method::DELETE, &field_path(key), None).await
}

async fn an_admin_creates_a_field_of_each_plain_type_and_gets_its_definition_back() {
    let app = TestApp::spawn().await;
    for field_type in ["text", "number", "boolean", "date"] {
        let key = format!("{field_type}_field");
        let response = app
            .create_field(json!({"key": key, "display_name": "My Field", "type": field_type}))
            .await;
        response.assert_status(200);
        assert_eq!(
            without_created_at(response.body.clone()),
            json!({"key": key, "display_name": "My Field", "type": field_type}),
            "no `options` member on a {field_type} field"
        );
    }
}
contract_test!(an_admin_creates_a_field_of_each_plain_type_and_gets_its_definition_back);

async fn an_admin_creates_a_select_field_with_its_options_in_order() {
    let app = TestApp::spawn().await;
    let response = app
        .create_field(json!({
            "key": "plan",
            "display_name": "Plan",
            "type": "select",
            "options": ["pro", "free", "enterprise"],
        }))
        .await;
    response.assert_status(200);
    assert_eq!(
        without_created_at(response.body.clone()),
        json!({
            "key": "plan",
            "display_name": "Plan",
            "type": "select",
            "options": ["pro", "free", "enterprise"],
        })
    );
}
contract_test!(an_admin_creates_a_select_field_with_its_options_in_order);

async fn a_key_that_breaks_the_naming_rule_is_refused_naming_the_key() {
    let app = TestApp::spawn().await;
    let too_long = format!("a{}", "b".repeat(63));
    for key in [
        "Plan",
        "1x",
        "a-b",
        "",
        "_plan",
        "plan!",
        "pl an",
        "é",
        too_long.as_str(),
    ] {
        let response = app
            .create_field(json!({"key": key, "display_name": "Field", "type": "text"}))
            .await;
        response.assert_error(400, "invalid_custom_field_key");
        assert_eq!(
            response.field(),
            Some("key"),
            "key {key:?}: {}",
            response.text
        );
    }
    let listed = app.request(Method::GET, FIELDS, None).await;
    assert_eq!(listed.body, json!({"data": {"custom_fields": []}}));
}
contract_test!(a_key_that_breaks_the_naming_rule_is_refused_naming_the_key);

/// A field under a contact member's name or an export column's would give an export two
/// columns of that name, which no import can tell apart.
async fn a_key_that_names_a_contact_member_or_an_export_column_is_refused() {
    let app = TestApp::spawn().await;
    for key in [
        "id",
        "email",
        "phone_number",
        "ext_id",
        "first_name",
        "last_name",
        "created_at",
        "updated_at",
        "custom_fields",
    ] {
        let response = app
            .create_field(json!({"key": key, "display_name": "Field", "type": "text"}))
            .await;
        response.assert_error(400, "reserved_custom_field_key");
        assert_eq!(response.field(), Some("key"), "{}", response.text);
        response.assert_message_mentions(&format!("`{key}` is reserved"));
        response.assert_message_mentions("imported again");
    }
    let listed = app.request(Method::GET, FIELDS, None).await;
    assert_eq!(listed.body, json!({"data": {"custom_fields": []}}));
    // Keys that only start like one are fields like any other.
    app.given_field("email_2", "text", None).await;
    app.given_field("ids", "text", None).await;
}
contract_test!(a_key_that_names_a_contact_member_or_an_export_column_is_refused);

async fn a_key_of_one_to_sixty_three_characters_is_accepted() {
    let app = TestApp::spawn().await;
    let longest = format!("a{}", "b_9".repeat(21).chars().take(62).collect::<String>());
    assert_eq!(longest.len(), 63);
    for key in ["x", "plan_2", longest.as_str()] {
        let response = app
            .create_field(json!({"key": key, "display_name": "Field", "type": "text"}))
            .await;
        response.assert_status(200);
        assert_eq!(response.body["key"], json!(key));
    }
}
contract_test!(a_key_of_one_to_sixty_three_characters_is_accepted);

async fn a_key_already_defined_in_the_company_is_a_conflict() {
    let app = TestApp::spawn().await;
    app.given_field("plan", "text", None).await;
    let response = app
        .create_field(json!({"key": "plan", "display_name": "Other plan", "type": "number"}))
        .await;
    response.assert_error(409, "duplicate_custom_field");
    assert_eq!(response.field(), Some("key"));
    let kept = get_field(&app, "plan").await;
    assert_eq!(kept.body["type"], json!("text"));
    assert_eq!(kept.body["display_name"], json!("plan"));
}
contract_test!(a_key_already_defined_in_the_company_is_a_conflict);

async fn a_display_name_that_is_empty_or_longer_than_100_characters_is_refused() {
    let app = TestApp::spawn().await;
    let too_long = "x".repeat(101);
    for name in ["", "   ", too_long.as_str()] {
        let response = app
            .create_field(json!({"key": "plan", "display_name": name, "type": "text"}))
            .await;
        response.assert_error(400, "invalid_display_name");
        assert_eq!(response.field(), Some("display_name"));
    }
    let longest = "x".repeat(100);
    let response = app
        .create_field(json!({"key": "plan", "display_name": longest, "type": "text"}))
        .await;
    response.assert_status(200);
    assert_eq!(response.body["display_name"], json!(longest));
}
contract_test!(a_display_name_that_is_empty_or_longer_than_100_characters_is_refused);

async fn an_unknown_type_is_refused_naming_the_type() {
    let app = TestApp::spawn().await;
    let response = app
        .create_field(json!({"key": "colour", "display_name": "Colour", "type": "color"}))
        .await;
    response.assert_error(400, "invalid_request");
    assert_eq!(response.field(), Some("type"));
    assert!(
        response.body["message"]
            .as_str()
            .expect("a message")
            .contains("color"),
        "{}",
        response.text
    );
    get_field(&app, "colour")
        .await
        .assert_error(404, "custom_field_not_found");
}
contract_test!(an_unknown_type_is_refused_naming_the_type);

async fn a_select_field_needs_distinct_non_empty_options() {
    let app = TestApp::spawn().await;
    let missing = json!({"key": "plan", "display_name": "Plan", "type": "select"});
    let mut refused = vec![missing];
    for options in [
        json!([]),
        json!(["pro", "free", "pro"]),
        json!(["pro", " pro "]),
        json!(["pro", ""]),
        json!(["pro", "   "]),
        json!(numbered_options(501)),
    ] {
        refused.push(
            json!({"key": "plan", "display_name": "Plan", "type": "select", "options": options}),
        );
    }
    for body in refused {
        let response = app.create_field(body.clone()).await;
        response.assert_error(400, "invalid_options");
        assert_eq!(response.field(), Some("options"), "{body}");
    }
    get_field(&app, "plan")
        .await
        .assert_error(404, "custom_field_not_found");

    let most = numbered_options(500);
    let response = app
        .create_field(
            json!({"key": "plan", "display_name": "Plan", "type": "select", "options": most}),
        )
        .await;
    response.assert_status(200);
    assert_eq!(response.body["options"], json!(most));
}
contract_test!(a_select_field_needs_distinct_non_empty_options);

fn numbered_options(count: usize) -> Vec<String> {
    (1..=count).map(|n| format!("option {n}")).collect()
}

async fn options_on_a_field_that_is_not_a_select_are_refused() {
    let app = TestApp::spawn().await;
    for field_type in ["text", "number", "boolean", "date"] {
        let response = app
            .create_field(json!({
                "key": "plan",
                "display_name": "Plan",
                "type": field_type,
                "options": ["pro"],
            }))
            .await;
        response.assert_error(400, "invalid_options");
        assert_eq!(response.field(), Some("options"));
    }
}
contract_test!(options_on_a_field_that_is_not_a_select_are_refused);

async fn the_field_list_is_ordered_by_key() {
    let app = TestApp::spawn().await;
    app.given_field("seats", "number", None).await;
    app.given_field("active", "boolean", None).await;
    app.given_field("plan", "select", Some(&["pro", "free"]))
        .await;
    app.given_field("renewal_date", "date", None).await;

    let response = app.request(Method::GET, FIELDS, None).await;
    response.assert_status(200);
    let fields: Vec<Value> = response.body["data"]["custom_fields"]
        .as_array()
        .expect("data.custom_fields is an array")
        .iter()
        .cloned()
        .map(without_created_at)
        .collect();
    assert_eq!(
        fields,
        vec![
            json!({"key": "active", "display_name": "active", "type": "boolean"}),
            json!({"key": "plan", "display_name": "plan", "type": "select", "options": ["pro", "free"]}),
            json!({"key": "renewal_date", "display_name": "renewal date", "type": "date"}),
            json!({"key": "seats", "display_name": "seats", "type": "number"}),
        ]
    );
}
contract_test!(the_field_list_is_ordered_by_key);

async fn a_field_is_fetched_by_its_key_and_an_unknown_key_is_not_found() {
    let app = TestApp::spawn().await;
    let created = app
        .create_field(
            json!({"key": "plan", "display_name": "Plan", "type": "select", "options": ["pro"]}),
        )
        .await;
    created.assert_status(200);

    let fetched = get_field(&app, "plan").await;
    fetched.assert_status(200);
    assert_eq!(fetched.body, created.body);

    let missing = get_field(&app, "seats").await;
    missing.assert_error(404, "custom_field_not_found");
    assert!(
        missing.body["message"]
            .as_str()
            .expect("a message")
            .contains("seats")
    );
}
contract_test!(a_field_is_fetched_by_its_key_and_an_unknown_key_is_not_found);

async fn a_field_is_renamed_and_keeps_everything_else() {
    let app = TestApp::spawn().await;
    let created = app
        .create_field(json!({"key": "seats", "display_name": "Seats", "type": "number"}))
        .await;
    created.assert_status(200);

    let renamed = patch_field(&app, "seats", json!({"display_name": "Licensed seats"})).await;
    renamed.assert_status(200);
    assert_eq!(
        renamed.body,
        json!({
            "key": "seats",
            "display_name": "Licensed seats",
            "type": "number",
            "created_at": created.body["created_at"],
        })
    );
    assert_eq!(get_field(&app, "seats").await.body, renamed.body);

    let response = patch_field(&app, "seats", json!({"display_name": ""})).await;
    response.assert_error(400, "invalid_display_name");
    assert_eq!(response.field(), Some("display_name"));
    patch_field(&app, "nothing", json!({"display_name": "Nothing"}))
        .await
        .assert_error(404, "custom_field_not_found");
}
contract_test!(a_field_is_renamed_and_keeps_everything_else);

async fn a_select_field_gains_options_but_never_loses_one() {
    let app = TestApp::spawn().await;
    app.given_field("plan", "select", Some(&["free", "pro"]))
        .await;

    let grown = patch_field(
        &app,
        "plan",
        json!({"options": ["free", "pro", "enterprise"]}),
    )
    .await;
    grown.assert_status(200);
    assert_eq!(grown.body["options"], json!(["free", "pro", "enterprise"]));

    let shrunk = patch_field(&app, "plan", json!({"options": ["free", "enterprise"]})).await;
    shrunk.assert_error(409, "conflict");
    assert_eq!(shrunk.field(), Some("options"));
    assert!(
        shrunk.body["message"]
            .as_str()
            .expect("a message")
            .contains("pro")
    );

    let duplicated = patch_field(
        &app,
        "plan",
        json!({"options": ["free", "pro", "enterprise", "pro"]}),
    )
    .await;
    duplicated.assert_error(400, "invalid_options");

    assert_eq!(
        get_field(&app, "plan").await.body["options"],
        json!(["free", "pro", "enterprise"])
    );
}
contract_test!(a_select_field_gains_options_but_never_loses_one);

async fn a_value_of_a_newly_added_option_can_be_set_on_a_contact() {
    let app = TestApp::spawn().await;
    app.given_field("plan", "select", Some(&["free", "pro"]))
        .await;
    app.create_contact(
        json!({"ext_id": "crm-1", "custom_fields": [{"key": "plan", "value": "enterprise"}]}),
    )
    .await
    .assert_error(400, "invalid_custom_field_value");

    patch_field(
        &app,
        "plan",
        json!({"options": ["free", "pro", "enterprise"]}),
    )
    .await
    .assert_status(200);
    let contact = app
        .given_contact(
            json!({"ext_id": "crm-1", "custom_fields": [{"key": "plan", "value": "enterprise"}]}),
        )
        .await;
    assert_eq!(contact["custom_fields"][0]["value"], json!("enterprise"));
}
contract_test!(a_value_of_a_newly_added_option_can_be_set_on_a_contact);

async fn options_cannot_be_given_to_a_field_that_is_not_a_select() {
    let app = TestApp::spawn().await;
    app.given_field("notes", "text", None).await;
    let response = patch_field(&app, "notes", json!({"options": ["a"]})).await;
    response.assert_error(400, "invalid_options");
    assert_eq!(response.field(), Some("options"));
    assert!(get_field(&app, "notes").await.body.get("options").is_none());
}
contract_test!(options_cannot_be_given_to_a_field_that_is_not_a_select);

async fn the_key_and_type_of_a_field_never_change() {
    let app = TestApp::spawn().await;
    app.given_field("seats", "number", None).await;
    for (member, value) in [("type", json!("text")), ("key", json!("licences"))] {
        let response = patch_field(
            &app,
            "seats",
            json!({"display_name": "Seats", member: value}),
        )
        .await;
        response.assert_error(400, "invalid_request");
        assert_eq!(response.field(), Some(member));
        assert!(
            response.body["message"]
                .as_str()
                .expect("a message")
                .contains(member)
        );
    }
    let kept = get_field(&app, "seats").await;
    assert_eq!(kept.body["key"], json!("seats"));
    assert_eq!(kept.body["type"], json!("number"));
    assert_eq!(kept.body["display_name"], json!("seats"));
}
contract_test!(the_key_and_type_of_a_field_never_change);

async fn deleting_a_field_removes_its_values_from_every_contact() {
    let app = TestApp::spawn().await;
    app.given_field("plan", "select", Some(&["free", "pro"]))
        .await;
    app.given_field("seats", "number", None).await;
    let contact = app
        .given_contact(json!({
            "ext_id": "crm-1",
            "custom_fields": [{"key": "plan", "value": "pro"}, {"key": "seats", "value": 12}],
        }))
        .await;
    let other = app
        .given_contact(
            json!({"ext_id": "crm-2", "custom_fields": [{"key": "plan", "value": "free"}]}),
        )
        .await;
    let id = contact["id"].as_str().expect("a contact id");

    let deleted = delete_field(&app, "plan").await;
    deleted.assert_status(200);
    assert_eq!(deleted.body, json!({"key": "plan", "deleted": true}));

    let fetched = app.get_contact(id).await;
    fetched.assert_status(200);
    assert_eq!(
        fetched.body["custom_fields"],
        json!([{"key": "seats", "value": 12, "type": "number", "display_name": "seats"}])
    );
    let fetched = app
        .get_contact(other["id"].as_str().expect("a contact id"))
        .await;
    assert_eq!(fetched.body["custom_fields"], json!([]));
    get_field(&app, "plan")
        .await
        .assert_error(404, "custom_field_not_found");
    delete_field(&app, "plan")
        .await
        .assert_error(404, "custom_field_not_found");
}
contract_test!(deleting_a_field_removes_its_values_from_every_contact);

async fn a_field_created_again_with_a_deleted_key_starts_empty() {
    let app = TestApp::spawn().await;
    app.given_field("plan", "text", None).await;
    let contact = app
        .given_contact(
            json!({"ext_id": "crm-1", "custom_fields": [{"key": "plan", "value": "pro"}]}),
        )
        .await;
    let id = contact["id"].as_str().expect("a contact id");
    delete_field(&app, "plan").await.assert_status(200);

    app.given_field("plan", "text", None).await;

    assert_eq!(app.get_contact(id).await.body["custom_fields"], json!([]));
    let listed = app.list_contacts("").await;
    assert_eq!(
        listed.body["data"]["contacts"][0]["custom_fields"],
        json!([])
    );
}
contract_test!(a_field_created_again_with_a_deleted_key_starts_empty);

async fn a_deleted_field_can_no_longer_be_set_on_a_contact() {
    let app = TestApp::spawn().await;
    app.given_field("plan", "text", None).await;
    let contact = app.given_contact(json!({"ext_id": "crm-1"})).await;
    delete_field(&app, "plan").await.assert_status(200);

    let created = app
        .create_contact(
            json!({"ext_id": "crm-2", "custom_fields": [{"key": "plan", "value": "pro"}]}),
        )
        .await;
    created.assert_error(400, "unknown_custom_field");
    assert_eq!(created.field(), Some("custom_fields[0].key"));
    assert!(
        created.body["message"]
            .as_str()
            .expect("a message")
            .contains("plan")
    );

    let updated = app
        .patch_contact(json!({
            "id": contact["id"],
            "custom_fields": {"set": [{"key": "plan", "value": "pro"}]},
        }))
        .await;
    updated.assert_error(400, "unknown_custom_field");
    assert_eq!(updated.field(), Some("custom_fields.set[0].key"));
}
contract_test!(a_deleted_field_can_no_longer_be_set_on_a_contact);

async fn a_contact_lists_its_values_ordered_by_key_with_type_and_display_name() {
    let app = TestApp::spawn().await;
    for (key, display_name, field_type, options) in [
        ("seats", "Seats", "number", None),
        ("active", "Active", "boolean", None),
        ("plan", "Plan", "select", Some(json!(["free", "pro"]))),
        ("renews_on", "Renews on", "date", None),
        ("notes", "Notes", "text", None),
        ("unused", "Unused", "text", None),
    ] {
        let mut body = json!({"key": key, "display_name": display_name, "type": field_type});
        if let Some(options) = options {
            body["options"] = options;
        }
        app.create_field(body).await.assert_status(200);
    }
    let contact = app
        .given_contact(json!({
            "email": "jane@example.com",
            "custom_fields": [
                {"key": "seats", "value": "12"},
                {"key": "renews_on", "value": "2027-02-28"},
                {"key": "notes", "value": "met at the fair"},
                {"key": "active", "value": "TRUE"},
                {"key": "plan", "value": "pro"},
            ],
        }))
        .await;
    let expected = json!([
        {"key": "active", "value": true, "type": "boolean", "display_name": "Active"},
        {"key": "notes", "value": "met at the fair", "type": "text", "display_name": "Notes"},
        {"key": "plan", "value": "pro", "type": "select", "display_name": "Plan"},
        {"key": "renews_on", "value": "2027-02-28", "type": "date", "display_name": "Renews on"},
        {"key": "seats", "value": 12, "type": "number", "display_name": "Seats"},
    ]);
    assert_eq!(contact["custom_fields"], expected);
    let fetched = app
        .get_contact(contact["id"].as_str().expect("a contact id"))
        .await;
    assert_eq!(fetched.body["custom_fields"], expected);
}
contract_test!(a_contact_lists_its_values_ordered_by_key_with_type_and_display_name);

async fn a_renamed_field_shows_its_new_display_name_on_contacts() {
    let app = TestApp::spawn().await;
    app.given_field("seats", "number", None).await;
    let contact = app
        .given_contact(json!({"ext_id": "crm-1", "custom_fields": [{"key": "seats", "value": 3}]}))
        .await;
    patch_field(&app, "seats", json!({"display_name": "Licensed seats"}))
        .await
        .assert_status(200);

    let fetched = app
        .get_contact(contact["id"].as_str().expect("a contact id"))
        .await;
    assert_eq!(
        fetched.body["custom_fields"],
        json!([{"key": "seats", "value": 3, "type": "number", "display_name": "Licensed seats"}])
    );
    let listed = app.list_contacts("").await;
    assert_eq!(
        listed.body["data"]["contacts"][0]["custom_fields"][0]["display_name"],
        json!("Licensed seats")
    );
}
contract_test!(a_renamed_field_shows_its_new_display_name_on_contacts);
