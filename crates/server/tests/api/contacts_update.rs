//! `PATCH /api/v1/contacts` (the seed) and `PATCH /api/v1/contacts/{id}` (docs/reference.md#6-contact-endpoints): naming the
//! contact (docs/reference.md#4-identifiers), omitted versus null members, custom field changes, atomicity and races.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, FixedOffset};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{TestApp, contract_test, race_for_one_winner};

/// A `plan` select field and the seed's contact, Jane, with an email and both names.
async fn given_jane(app: &TestApp) -> Value {
    app.given_field("plan", "select", Some(&["free", "pro"]))
        .await;
    app.given_contact(json!({
        "email": "jane@example.com",
        "first_name": "Jane",
        "last_name": "Doe",
    }))
    .await
}

fn id_of(contact: &Value) -> &str {
    contact["id"].as_str().expect("a contact id")
}

fn timestamp(value: &Value) -> DateTime<FixedOffset> {
    DateTime::parse_from_rfc3339(value.as_str().expect("a timestamp")).expect("RFC 3339")
}

/// Lets the clock move on, so a write that moves `updated_at` would show it.
async fn let_a_few_milliseconds_pass() {
    tokio::time::sleep(Duration::from_millis(10)).await;
}

async fn the_seed_example_updates_the_contact_named_by_its_email() {
    let app = TestApp::spawn().await;
    let jane = given_jane(&app).await;

    let response = app
        .patch_contact(json!({
            "id": "alt:email:Jane@Example.com",
            "first_name": "Janet",
            "custom_fields": {"set": [{"key": "plan", "value": "pro"}]},
        }))
        .await;

    response.assert_status(200);
    let updated = &response.body;
    assert_eq!(updated["id"], jane["id"]);
    assert_eq!(updated["first_name"], "Janet");
    assert_eq!(updated["last_name"], "Doe");
    assert_eq!(updated["email"], "jane@example.com");
    assert_eq!(
        updated["custom_fields"],
        json!([{"key": "plan", "value": "pro", "type": "select", "display_name": "plan"}])
    );
    assert_eq!(updated["created_at"], jane["created_at"]);
    let fetched = app.get_contact(id_of(&jane)).await;
    assert_eq!(&fetched.body, updated);
}
contract_test!(the_seed_example_updates_the_contact_named_by_its_email);

async fn a_contact_can_be_named_by_its_uuid_in_upper_case() {
    let app = TestApp::spawn().await;
    let jane = given_jane(&app).await;

    let response = app
        .patch_contact(json!({"id": id_of(&jane).to_uppercase(), "last_name": "Roe"}))
        .await;

    response.assert_status(200);
    assert_eq!(response.body["id"], jane["id"]);
    assert_eq!(response.body["last_name"], "Roe");
}
contract_test!(a_contact_can_be_named_by_its_uuid_in_upper_case);

async fn an_ext_id_containing_colons_names_its_contact() {
    let app = TestApp::spawn().await;
    let contact = app.given_contact(json!({"ext_id": "a:b"})).await;
    app.given_contact(json!({"ext_id": "a"})).await;

    let response = app
        .patch_contact(json!({"id": "alt:ext_id:a:b", "first_name": "Colon"}))
        .await;

    response.assert_status(200);
    assert_eq!(response.body["id"], contact["id"]);
    assert_eq!(response.body["first_name"], "Colon");
}
contract_test!(an_ext_id_containing_colons_names_its_contact);

async fn a_phone_number_written_another_way_names_its_contact() {
    let app = TestApp::spawn().await;
    let contact = app
        .given_contact(json!({"phone_number": "+14155552671"}))
        .await;

    for (index, id) in [
        "alt:phone_number:(415) 555-2671",
        "alt:phone_number:4155552671",
        "alt:phone_number:001 415 555 2671",
    ]
    .into_iter()
    .enumerate()
    {
        let response = app
            .patch_contact(json!({"id": id, "first_name": format!("Caller {index}")}))
            .await;
        response.assert_status(200);
        assert_eq!(response.body["id"], contact["id"], "{id}");
        assert_eq!(response.body["first_name"], format!("Caller {index}"));
    }
}
contract_test!(a_phone_number_written_another_way_names_its_contact);

async fn omitted_members_are_kept_and_null_members_cleared() {
    let app = TestApp::spawn().await;
    let contact = app
        .given_contact(json!({
            "email": "jane@example.com",
            "phone_number": "+14155552671",
            "ext_id": "crm-42",
            "first_name": "Jane",
            "last_name": "Doe",
        }))
        .await;

    let response = app
        .patch_contact(json!({
            "id": "alt:ext_id:crm-42",
            "phone_number": null,
            "last_name": null,
        }))
        .await;

    response.assert_status(200);
    let updated = &response.body;
    assert_eq!(updated["email"], "jane@example.com");
    assert_eq!(updated["ext_id"], "crm-42");
    assert_eq!(updated["first_name"], "Jane");
    assert_eq!(updated["phone_number"], Value::Null);
    assert_eq!(updated["last_name"], Value::Null);
    assert_eq!(app.get_contact(id_of(&contact)).await.body, *updated);
}
contract_test!(omitted_members_are_kept_and_null_members_cleared);

async fn new_identifiers_are_normalised_as_on_create() {
    let app = TestApp::spawn().await;
    let contact = app.given_contact(json!({"ext_id": "crm-42"})).await;

    let response = app
        .patch_contact(json!({
            "id": "alt:ext_id:crm-42",
            "email": " Jane@Example.COM ",
            "phone_number": 4155552671_u64,
        }))
        .await;

    response.assert_status(200);
    assert_eq!(response.body["id"], contact["id"]);
    assert_eq!(response.body["email"], "jane@example.com");
    assert_eq!(response.body["phone_number"], "+14155552671");
}
contract_test!(new_identifiers_are_normalised_as_on_create);

async fn invalid_new_values_are_refused_naming_the_member() {
    let app = TestApp::spawn().await;
    given_jane(&app).await;
    let before = app.dump().await;
    let refused = [
        ("phone_number", json!("+1234567890"), "invalid_phone_number"),
        (
            "phone_number",
            json!(-4155552671_i64),
            "invalid_phone_number",
        ),
        ("email", json!("jane@"), "invalid_email"),
        ("ext_id", json!(""), "invalid_ext_id"),
        ("first_name", json!("n".repeat(256)), "invalid_name"),
    ];

    for (member, value, code) in refused {
        let mut body = json!({"id": "alt:email:jane@example.com"});
        body[member] = value;
        let response = app.patch_contact(body).await;
        response.assert_error(400, code);
        assert_eq!(response.field(), Some(member));
    }
    assert_eq!(app.dump().await, before);
}
contract_test!(invalid_new_values_are_refused_naming_the_member);

async fn a_misspelt_member_is_refused_by_name_not_dropped() {
    let app = TestApp::spawn().await;
    given_jane(&app).await;
    let before = app.dump().await;

    let response = app
        .patch_contact(json!({"id": "alt:email:jane@example.com", "phone": "+14155552671"}))
        .await;

    response.assert_error(400, "invalid_request");
    assert_eq!(response.field(), Some("phone"));
    assert_eq!(app.dump().await, before);
}
contract_test!(a_misspelt_member_is_refused_by_name_not_dropped);

async fn an_empty_name_clears_it() {
    let app = TestApp::spawn().await;
    given_jane(&app).await;

    let response = app
        .patch_contact(json!({
            "id": "alt:email:jane@example.com",
            "first_name": "",
            "last_name": "",
        }))
        .await;

    response.assert_status(200);
    assert_eq!(response.body["first_name"], Value::Null);
    assert_eq!(response.body["last_name"], Value::Null);
}
contract_test!(an_empty_name_clears_it);

async fn clearing_the_last_identifier_is_refused_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let contact = app
        .given_contact(
            json!({"email": "jane@example.com", "ext_id": "crm-42", "first_name": "Jane"}),
        )
        .await;
    let before = app.dump().await;

    let response = app
        .patch_contact(json!({
            "id": id_of(&contact),
            "email": null,
            "ext_id": null,
            "first_name": "Janet",
        }))
        .await;

    response.assert_error(400, "identifier_required");
    assert_eq!(app.dump().await, before);
    let one_cleared = app
        .patch_contact(json!({"id": id_of(&contact), "ext_id": null}))
        .await;
    one_cleared.assert_status(200);
    assert_eq!(one_cleared.body["email"], "jane@example.com");
    assert_eq!(one_cleared.body["ext_id"], Value::Null);
    let last_cleared = app
        .patch_contact(json!({"id": id_of(&contact), "email": null}))
        .await;
    last_cleared.assert_error(400, "identifier_required");
    assert_eq!(
        app.get_contact(id_of(&contact)).await.body,
        one_cleared.body
    );
}
contract_test!(clearing_the_last_identifier_is_refused_and_changes_nothing);

async fn custom_field_values_can_be_set_and_removed_in_one_update() {
    let app = TestApp::spawn().await;
    app.given_field("plan", "select", Some(&["free", "pro"]))
        .await;
    app.given_field("seats", "number", None).await;
    app.given_field("notes", "text", None).await;
    let contact = app
        .given_contact(json!({
            "email": "jane@example.com",
            "custom_fields": [
                {"key": "plan", "value": "free"},
                {"key": "seats", "value": 3},
            ],
        }))
        .await;

    let response = app
        .patch_contact(json!({
            "id": id_of(&contact),
            "custom_fields": {
                "set": [
                    {"key": "seats", "value": "12"},
                    {"key": "notes", "value": "renewing"},
                ],
                "remove": ["plan"],
            },
        }))
        .await;

    response.assert_status(200);
    assert_eq!(
        response.body["custom_fields"],
        json!([
            {"key": "notes", "value": "renewing", "type": "text", "display_name": "notes"},
            {"key": "seats", "value": 12, "type": "number", "display_name": "seats"},
        ])
    );
}
contract_test!(custom_field_values_can_be_set_and_removed_in_one_update);

async fn removing_a_defined_field_that_holds_no_value_is_a_no_op() {
    let app = TestApp::spawn().await;
    let jane = given_jane(&app).await;
    let before = app.dump().await;
    let_a_few_milliseconds_pass().await;

    let response = app
        .patch_contact(json!({
            "id": "alt:email:jane@example.com",
            "custom_fields": {"remove": ["plan"]},
        }))
        .await;

    response.assert_status(200);
    assert_eq!(response.body, jane);
    assert_eq!(app.dump().await, before);
}
contract_test!(removing_a_defined_field_that_holds_no_value_is_a_no_op);

async fn removing_an_undefined_field_is_refused() {
    let app = TestApp::spawn().await;
    given_jane(&app).await;

    let response = app
        .patch_contact(json!({
            "id": "alt:email:jane@example.com",
            "custom_fields": {"remove": ["plan", "lead_score"]},
        }))
        .await;

    response.assert_error(400, "unknown_custom_field");
    assert_eq!(response.field(), Some("custom_fields.remove[1]"));
    response.assert_message_mentions("lead_score");
}
contract_test!(removing_an_undefined_field_is_refused);

async fn custom_fields_in_the_create_shape_are_refused_on_update() {
    let app = TestApp::spawn().await;
    given_jane(&app).await;
    let before = app.dump().await;

    let response = app
        .patch_contact(json!({
            "id": "alt:email:jane@example.com",
            "custom_fields": [{"key": "plan", "value": "pro"}],
        }))
        .await;

    response.assert_error(400, "invalid_request");
    let field = response.field().expect("the member at fault");
    assert!(field.starts_with("custom_fields"), "{field}");
    assert_eq!(app.dump().await, before);
}
contract_test!(custom_fields_in_the_create_shape_are_refused_on_update);

async fn custom_field_changes_written_as_an_array_of_arrays_are_refused() {
    let app = TestApp::spawn().await;
    let jane = given_jane(&app).await;
    app.patch_contact(json!({
        "id": id_of(&jane),
        "custom_fields": {"set": [{"key": "plan", "value": "pro"}]},
    }))
    .await
    .assert_status(200);
    let before = app.dump().await;

    let response = app
        .patch_contact(json!({"id": id_of(&jane), "custom_fields": [[], ["plan"]]}))
        .await;

    response.assert_error(400, "invalid_request");
    let field = response.field().expect("the member at fault");
    assert!(field.starts_with("custom_fields"), "{field}");
    assert_eq!(app.dump().await, before, "plan is still pro");
}
contract_test!(custom_field_changes_written_as_an_array_of_arrays_are_refused);

async fn setting_an_undefined_field_is_refused() {
    let app = TestApp::spawn().await;
    given_jane(&app).await;

    let response = app
        .patch_contact(json!({
            "id": "alt:email:jane@example.com",
            "custom_fields": {"set": [{"key": "lead_score", "value": "7"}]},
        }))
        .await;

    response.assert_error(400, "unknown_custom_field");
    assert_eq!(response.field(), Some("custom_fields.set[0].key"));
    response.assert_message_mentions("lead_score");
}
contract_test!(setting_an_undefined_field_is_refused);

async fn setting_one_field_twice_is_refused() {
    let app = TestApp::spawn().await;
    given_jane(&app).await;

    let response = app
        .patch_contact(json!({
            "id": "alt:email:jane@example.com",
            "custom_fields": {"set": [
                {"key": "plan", "value": "free"},
                {"key": "plan", "value": "pro"},
            ]},
        }))
        .await;

    response.assert_error(400, "duplicate_custom_field");
    assert_eq!(response.field(), Some("custom_fields.set[1].key"));
}
contract_test!(setting_one_field_twice_is_refused);

async fn setting_and_removing_one_field_is_refused() {
    let app = TestApp::spawn().await;
    given_jane(&app).await;

    let response = app
        .patch_contact(json!({
            "id": "alt:email:jane@example.com",
            "custom_fields": {
                "set": [{"key": "plan", "value": "pro"}],
                "remove": ["plan"],
            },
        }))
        .await;

    response.assert_error(400, "duplicate_custom_field");
    assert_eq!(response.field(), Some("custom_fields.remove[0]"));
}
contract_test!(setting_and_removing_one_field_is_refused);

async fn a_null_custom_field_value_is_refused() {
    let app = TestApp::spawn().await;
    given_jane(&app).await;

    let response = app
        .patch_contact(json!({
            "id": "alt:email:jane@example.com",
            "custom_fields": {"set": [{"key": "plan", "value": null}]},
        }))
        .await;

    response.assert_error(400, "invalid_custom_field_value");
    assert_eq!(response.field(), Some("custom_fields.set[0].value"));
}
contract_test!(a_null_custom_field_value_is_refused);

async fn an_update_that_changes_nothing_keeps_updated_at() {
    let app = TestApp::spawn().await;
    app.given_field("plan", "select", Some(&["free", "pro"]))
        .await;
    app.given_field("seats", "number", None).await;
    let contact = app
        .given_contact(json!({
            "email": "jane@example.com",
            "phone_number": "+14155552671",
            "first_name": "Jane",
            "custom_fields": [
                {"key": "plan", "value": "pro"},
                {"key": "seats", "value": 12},
            ],
        }))
        .await;
    let before = app.dump().await;
    let_a_few_milliseconds_pass().await;

    let response = app
        .patch_contact(json!({
            "id": id_of(&contact),
            "email": "JANE@example.com",
            "phone_number": "(415) 555-2671",
            "first_name": "Jane",
            "last_name": null,
            "custom_fields": {"set": [
                {"key": "plan", "value": "pro"},
                {"key": "seats", "value": "12.0"},
            ]},
        }))
        .await;

    response.assert_status(200);
    assert_eq!(response.body, contact);
    assert_eq!(app.dump().await, before);
}
contract_test!(an_update_that_changes_nothing_keeps_updated_at);

async fn a_real_change_moves_updated_at_forward() {
    let app = TestApp::spawn().await;
    let jane = given_jane(&app).await;
    let_a_few_milliseconds_pass().await;

    let renamed = app
        .patch_contact(json!({"id": id_of(&jane), "first_name": "Janet"}))
        .await;
    let_a_few_milliseconds_pass().await;
    let upgraded = app
        .patch_contact(json!({
            "id": id_of(&jane),
            "custom_fields": {"set": [{"key": "plan", "value": "pro"}]},
        }))
        .await;

    renamed.assert_status(200);
    upgraded.assert_status(200);
    assert_eq!(renamed.body["created_at"], jane["created_at"]);
    assert_eq!(upgraded.body["created_at"], jane["created_at"]);
    let created = timestamp(&jane["updated_at"]);
    let after_rename = timestamp(&renamed.body["updated_at"]);
    let after_upgrade = timestamp(&upgraded.body["updated_at"]);
    assert!(after_rename > created, "{after_rename} > {created}");
    assert!(
        after_upgrade > after_rename,
        "{after_upgrade} > {after_rename}"
    );
}
contract_test!(a_real_change_moves_updated_at_forward);

async fn an_update_without_an_id_is_refused() {
    let app = TestApp::spawn().await;
    given_jane(&app).await;
    let before = app.dump().await;

    let response = app.patch_contact(json!({"first_name": "Janet"})).await;

    response.assert_error(400, "missing_id");
    assert_eq!(response.field(), Some("id"));
    assert_eq!(app.dump().await, before);
}
contract_test!(an_update_without_an_id_is_refused);

async fn a_malformed_identifier_is_refused() {
    let app = TestApp::spawn().await;
    given_jane(&app).await;

    for id in [
        "nope",
        "alt:foo:x",
        "alt:email:",
        "alt:ext_id:",
        "alt:email",
        "alt:email:not-an-email",
        "alt:phone_number:+1234567890",
        "ALT:email:jane@example.com",
        "0192f3a47b1c7d2e9f001234567890ab",
    ] {
        let response = app
            .patch_contact(json!({"id": id, "first_name": "Janet"}))
            .await;
        response.assert_error(400, "invalid_identifier");
        assert_eq!(response.field(), Some("id"), "{id}");
    }
}
contract_test!(a_malformed_identifier_is_refused);

async fn an_unknown_contact_is_not_found() {
    let app = TestApp::spawn().await;
    given_jane(&app).await;
    let before = app.dump().await;

    for id in [
        Uuid::now_v7().to_string(),
        "alt:email:nobody@example.com".to_owned(),
        "alt:ext_id:nobody".to_owned(),
        "alt:phone_number:+14155552671".to_owned(),
    ] {
        app.patch_contact(json!({"id": id, "first_name": "Janet"}))
            .await
            .assert_error(404, "contact_not_found");
    }
    assert_eq!(app.dump().await, before);
}
contract_test!(an_unknown_contact_is_not_found);

async fn another_companys_contact_cannot_be_updated() {
    let app = TestApp::spawn().await;
    let jane = given_jane(&app).await;
    let other_key = app.other_company_key().await;

    let response = app
        .request_as(
            &other_key,
            axum::http::Method::PATCH,
            "/api/v1/contacts",
            Some(json!({"id": id_of(&jane), "first_name": "Mallory"})),
        )
        .await;

    response.assert_error(404, "contact_not_found");
    assert_eq!(app.get_contact(id_of(&jane)).await.body, jane);
}
contract_test!(another_companys_contact_cannot_be_updated);

async fn taking_another_contacts_identifier_is_a_conflict_naming_its_holder() {
    let app = TestApp::spawn().await;
    let holder = app
        .given_contact(json!({
            "email": "jane@example.com",
            "phone_number": "+14155552671",
            "ext_id": "crm-42",
        }))
        .await;
    app.given_contact(json!({"email": "john@example.com"}))
        .await;
    let taken = [
        ("email", json!("JANE@example.com"), "duplicate_email"),
        (
            "phone_number",
            json!("(415) 555-2671"),
            "duplicate_phone_number",
        ),
        ("ext_id", json!("crm-42"), "duplicate_ext_id"),
    ];

    for (member, value, code) in taken {
        let mut body = json!({"id": "alt:email:john@example.com"});
        body[member] = value;
        let response = app.patch_contact(body).await;
        response.assert_error(409, code);
        assert_eq!(response.field(), Some(member));
        assert_eq!(response.body["conflicting_contact_id"], holder["id"]);
    }

    let own = app
        .patch_contact(
            json!({"id": id_of(&holder), "email": "Jane@Example.com", "ext_id": "crm-42"}),
        )
        .await;
    own.assert_status(200);
    assert_eq!(own.body, holder);
}
contract_test!(taking_another_contacts_identifier_is_a_conflict_naming_its_holder);

async fn an_update_refused_by_its_last_custom_field_changes_nothing_at_all() {
    let app = TestApp::spawn().await;
    given_jane(&app).await;
    app.given_field("seats", "number", None).await;
    let before = app.dump().await;

    let response = app
        .patch_contact(json!({
            "id": "alt:email:jane@example.com",
            "email": "janet@example.com",
            "first_name": "Janet",
            "ext_id": "crm-9",
            "custom_fields": {"set": [
                {"key": "plan", "value": "pro"},
                {"key": "seats", "value": "many"},
            ]},
        }))
        .await;

    response.assert_error(400, "invalid_custom_field_value");
    assert_eq!(response.field(), Some("custom_fields.set[1].value"));
    response.assert_message_mentions("seats");
    assert_eq!(app.dump().await, before);
}
contract_test!(an_update_refused_by_its_last_custom_field_changes_nothing_at_all);

async fn an_update_refused_as_a_conflict_changes_nothing_at_all() {
    let app = TestApp::spawn().await;
    given_jane(&app).await;
    app.given_field("seats", "number", None).await;
    let holder = app
        .given_contact(json!({"ext_id": "crm-9", "first_name": "John"}))
        .await;
    let before = app.dump().await;

    let response = app
        .patch_contact(json!({
            "id": "alt:email:jane@example.com",
            "email": "janet@example.com",
            "first_name": "Janet",
            "ext_id": "crm-9",
            "custom_fields": {"set": [
                {"key": "plan", "value": "pro"},
                {"key": "seats", "value": 3},
            ]},
        }))
        .await;

    response.assert_error(409, "duplicate_ext_id");
    assert_eq!(response.body["conflicting_contact_id"], holder["id"]);
    assert_eq!(app.dump().await, before);
}
contract_test!(an_update_refused_as_a_conflict_changes_nothing_at_all);

async fn racing_updates_to_one_email_leave_it_with_exactly_one_contact() {
    let app = Arc::new(TestApp::spawn().await);
    for index in 0..64 {
        app.given_contact(json!({"ext_id": format!("racer-{index}")}))
            .await;
    }

    let winner = race_for_one_winner(&app, 64, "duplicate_email", |app, index| async move {
        app.patch_contact(json!({
            "id": format!("alt:ext_id:racer-{index}"),
            "email": "prize@example.com",
            "first_name": "Winner",
        }))
        .await
    })
    .await;
    let listed = app.list_contacts("?limit=100").await;
    let contacts = listed.body["data"]["contacts"]
        .as_array()
        .expect("contacts");
    assert_eq!(contacts.len(), 64);
    let holders: Vec<&Value> = contacts
        .iter()
        .filter(|contact| contact["email"] == "prize@example.com")
        .collect();
    assert_eq!(holders, [&winner]);
    let renamed = contacts
        .iter()
        .filter(|contact| contact["first_name"] == "Winner")
        .count();
    assert_eq!(
        renamed, 1,
        "a losing update changed nothing, not even its name"
    );
}
contract_test!(racing_updates_to_one_email_leave_it_with_exactly_one_contact);

async fn the_path_form_updates_the_contact_named_in_the_path() {
    let app = TestApp::spawn().await;
    let contact = app
        .given_contact(json!({"ext_id": "crm/42 b", "email": "jane@example.com"}))
        .await;

    let by_ext_id = app
        .patch_contact_at("alt:ext_id:crm/42 b", json!({"first_name": "Path"}))
        .await;
    let by_uuid = app
        .patch_contact_at(
            &id_of(&contact).to_uppercase(),
            json!({"last_name": "Form"}),
        )
        .await;

    by_ext_id.assert_status(200);
    assert_eq!(by_ext_id.body["id"], contact["id"]);
    assert_eq!(by_ext_id.body["first_name"], "Path");
    by_uuid.assert_status(200);
    assert_eq!(by_uuid.body["first_name"], "Path");
    assert_eq!(by_uuid.body["last_name"], "Form");
}
contract_test!(the_path_form_updates_the_contact_named_in_the_path);

async fn the_path_form_refuses_a_malformed_or_unknown_identifier() {
    let app = TestApp::spawn().await;
    given_jane(&app).await;

    app.patch_contact_at("alt:foo:x", json!({"first_name": "X"}))
        .await
        .assert_error(400, "invalid_identifier");
    app.patch_contact_at("alt:email:nobody@example.com", json!({"first_name": "X"}))
        .await
        .assert_error(404, "contact_not_found");
}
contract_test!(the_path_form_refuses_a_malformed_or_unknown_identifier);

async fn a_body_id_naming_the_same_contact_another_way_is_accepted_by_the_path_form() {
    let app = TestApp::spawn().await;
    let jane = given_jane(&app).await;

    let response = app
        .patch_contact_at(
            id_of(&jane),
            json!({"id": "alt:email:JANE@example.com", "first_name": "Janet"}),
        )
        .await;

    response.assert_status(200);
    assert_eq!(response.body["id"], jane["id"]);
    assert_eq!(response.body["first_name"], "Janet");
}
contract_test!(a_body_id_naming_the_same_contact_another_way_is_accepted_by_the_path_form);

async fn a_body_id_naming_another_contact_is_refused_by_the_path_form() {
    let app = TestApp::spawn().await;
    let jane = given_jane(&app).await;
    let john = app
        .given_contact(json!({"email": "john@example.com"}))
        .await;
    let before = app.dump().await;

    for body_id in [
        id_of(&john),
        "alt:email:john@example.com",
        "alt:ext_id:nobody",
    ] {
        let response = app
            .patch_contact_at(id_of(&jane), json!({"id": body_id, "first_name": "Janet"}))
            .await;
        response.assert_error(400, "id_mismatch");
        assert_eq!(response.field(), Some("id"), "{body_id}");
    }
    assert_eq!(app.dump().await, before);
}
contract_test!(a_body_id_naming_another_contact_is_refused_by_the_path_form);
