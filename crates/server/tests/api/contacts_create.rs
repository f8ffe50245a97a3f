//! `POST /api/v1/contacts` (docs/reference.md#6-contact-endpoints): the bare contact it returns (docs/reference.md#3-the-contact-object), how each member is
//! normalised and validated (docs/reference.md#5-normalisation-and-validation), and uniqueness, including racing creates.

use std::sync::Arc;

use axum::http::Method;
use chrono::{DateTime, SecondsFormat};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{TestApp, contract_test, race_for_one_winner};

/// The members every contact body has, and nothing else.
const CONTACT_MEMBERS: [&str; 9] = [
    "created_at",
    "custom_fields",
    "email",
    "ext_id",
    "first_name",
    "id",
    "last_name",
    "phone_number",
    "updated_at",
];

/// Asserts a timestamp is RFC 3339 in UTC with exactly three fraction digits.
#[track_caller]
fn assert_millisecond_timestamp(value: &Value) {
    let text = value.as_str().expect("a timestamp string");
    let parsed = DateTime::parse_from_rfc3339(text).expect("an RFC 3339 timestamp");
    assert_eq!(
        parsed.to_utc().to_rfc3339_opts(SecondsFormat::Millis, true),
        text,
        "timestamps look like 2026-11-26T21:00:00.123Z"
    );
}

/// The members of a contact object, sorted.
fn members_of(contact: &Value) -> Vec<&str> {
    let mut members: Vec<&str> = contact
        .as_object()
        .expect("a bare contact object")
        .keys()
        .map(String::as_str)
        .collect();
    members.sort_unstable();
    members
}

async fn a_new_contact_is_returned_bare_with_every_member() {
    let app = TestApp::spawn().await;

    let response = app
        .create_contact(json!({
            "email": "jane@example.com",
            "phone_number": "+14155552671",
            "ext_id": "crm-42",
            "first_name": "Jane",
            "last_name": "Doe",
        }))
        .await;

    response.assert_status(200);
    let contact = &response.body;
    assert_eq!(members_of(contact), CONTACT_MEMBERS);
    assert_eq!(contact["email"], "jane@example.com");
    assert_eq!(contact["phone_number"], "+14155552671");
    assert_eq!(contact["ext_id"], "crm-42");
    assert_eq!(contact["first_name"], "Jane");
    assert_eq!(contact["last_name"], "Doe");
    assert_eq!(contact["custom_fields"], json!([]));
    let id = contact["id"].as_str().expect("id is a string");
    assert_eq!(
        Uuid::parse_str(id)
            .expect("id is a UUID")
            .hyphenated()
            .to_string(),
        id
    );
    assert_millisecond_timestamp(&contact["created_at"]);
    assert_eq!(contact["created_at"], contact["updated_at"]);
    let fetched = app.get_contact(id).await;
    fetched.assert_status(200);
    assert_eq!(&fetched.body, contact);
}
contract_test!(a_new_contact_is_returned_bare_with_every_member);

/// The seed types `email`, `phone_number`, `ext_id` and the names as plain strings, so a
/// member with no value is left out of every contact object, never `null`
/// (docs/reference.md#contact-members): in what create, fetch, update, list, batch, export
/// and events answer.
async fn a_member_with_no_value_is_omitted_wherever_a_contact_is_answered() {
    const PRESENT: [&str; 5] = ["created_at", "custom_fields", "email", "id", "updated_at"];
    let app = TestApp::spawn().await;
    let created = app
        .create_contact(json!({"email": "jane@example.com", "first_name": "Jane"}))
        .await;
    created.assert_status(200);
    let id = created.body["id"].as_str().expect("id").to_owned();
    let updated = app
        .patch_contact(json!({"id": id, "first_name": null}))
        .await;
    updated.assert_status(200);
    assert_eq!(members_of(&updated.body), PRESENT, "{}", updated.text);

    let batch = app
        .request(
            Method::POST,
            "/api/v1/contacts/batch",
            Some(json!({"match_on": "email", "contacts": [{"email": "jane@example.com"}]})),
        )
        .await;
    batch.assert_status(200);
    let mut answered = vec![
        ("fetch", app.get_contact(&id).await.body),
        (
            "list",
            app.list_contacts("").await.body["data"]["contacts"][0].clone(),
        ),
        ("batch", batch.body["results"][0]["contact"].clone()),
    ];
    let export = app.open("/api/v1/contacts/export?format=ndjson").await;
    let bytes = axum::body::to_bytes(export.into_body(), usize::MAX)
        .await
        .expect("the export");
    let line = String::from_utf8(bytes.to_vec()).expect("UTF-8");
    answered.push((
        "export",
        serde_json::from_str(line.trim_end()).expect("one NDJSON line"),
    ));
    // A history shows its contact's events at once (the feed may hold the newest back a
    // moment on PostgreSQL), and both answer the same event objects.
    let history = app
        .request(Method::GET, &format!("/api/v1/contacts/{id}/history"), None)
        .await;
    let updated_event = &history.body["data"]["events"][0];
    assert_eq!(updated_event["type"], "contact.updated", "{}", history.text);
    answered.push(("event", updated_event["data"]["contact"].clone()));
    for (answer, contact) in answered {
        assert_eq!(members_of(&contact), PRESENT, "{answer}: {contact}");
    }
}
contract_test!(a_member_with_no_value_is_omitted_wherever_a_contact_is_answered);

async fn custom_field_values_are_listed_by_key_with_their_type_and_display_name() {
    let app = TestApp::spawn().await;
    app.given_field("seats", "number", None).await;
    app.given_field("plan", "select", Some(&["free", "pro"]))
        .await;
    app.given_field("is_active", "boolean", None).await;
    app.given_field("notes", "text", None).await;

    let contact = app
        .given_contact(json!({
            "ext_id": "crm-1",
            "custom_fields": [
                {"key": "seats", "value": "3"},
                {"key": "plan", "value": "pro"},
                {"key": "is_active", "value": "false"},
            ],
        }))
        .await;

    assert_eq!(
        contact["custom_fields"],
        json!([
            {"key": "is_active", "value": false, "type": "boolean", "display_name": "is active"},
            {"key": "plan", "value": "pro", "type": "select", "display_name": "plan"},
            {"key": "seats", "value": 3, "type": "number", "display_name": "seats"},
        ])
    );
}
contract_test!(custom_field_values_are_listed_by_key_with_their_type_and_display_name);

async fn a_phone_number_in_any_accepted_format_is_stored_in_e164() {
    let app = TestApp::spawn().await;
    let cases = [
        (json!(4155552671_u64), "+14155552671"),
        (json!("(415) 555-2671"), "+14155552671"),
        (json!(14155552671_u64), "+14155552671"),
        // A client that holds the number as a float sends it with a zero fraction.
        (json!(14155552671.0_f64), "+14155552671"),
        (json!(4155552671.0_f64), "+14155552671"),
        (json!("+1 415 555 2671"), "+14155552671"),
        (json!(" 415.555.2671 "), "+14155552671"),
        (json!("0044 20 7946 0958"), "+442079460958"),
        (json!("+44 20 7946 0958"), "+442079460958"),
    ];

    for (input, e164) in cases {
        let contact = app.given_contact(json!({"phone_number": input})).await;
        assert_eq!(contact["phone_number"], e164, "{input} is {e164}");
        let id = contact["id"].as_str().expect("id");
        app.delete_contact(id).await.assert_status(200);
    }
}
contract_test!(a_phone_number_in_any_accepted_format_is_stored_in_e164);

async fn a_malformed_phone_number_is_refused() {
    let app = TestApp::spawn().await;
    let malformed = [
        json!("+1234567890"),
        json!("abc"),
        json!(""),
        json!("   "),
        json!("555-2671"),
        json!("+1 415 555 2671 ext 12"),
        json!(-4155552671_i64),
        json!(4155552671.5_f64),
    ];

    for input in malformed {
        let response = app
            .create_contact(json!({"email": "jane@example.com", "phone_number": input}))
            .await;
        response.assert_error(400, "invalid_phone_number");
        assert_eq!(response.field(), Some("phone_number"), "{input}");
    }
    let listed = app.list_contacts("").await;
    assert_eq!(listed.body["data"]["contacts"], json!([]));
}
contract_test!(a_malformed_phone_number_is_refused);

async fn an_email_is_trimmed_and_lower_cased() {
    let app = TestApp::spawn().await;

    let contact = app
        .given_contact(json!({"email": "  Jane.Doe@Example.COM \n"}))
        .await;

    assert_eq!(contact["email"], "jane.doe@example.com");
}
contract_test!(an_email_is_trimmed_and_lower_cased);

async fn an_invalid_email_is_refused() {
    let app = TestApp::spawn().await;

    for email in [
        "jane",
        "jane@",
        "@example.com",
        "jane doe@example.com",
        "Jane <jane@example.com>",
        "",
    ] {
        let response = app.create_contact(json!({"email": email})).await;
        response.assert_error(400, "invalid_email");
        assert_eq!(response.field(), Some("email"), "{email:?}");
    }
}
contract_test!(an_invalid_email_is_refused);

async fn members_longer_than_their_limit_are_refused() {
    let app = TestApp::spawn().await;
    let label = "a".repeat(63);
    let domain = format!("{label}.{label}.{label}");
    let longest_email = format!("{}@{domain}", "j".repeat(254 - 1 - domain.len()));
    let too_long = [
        ("email", json!(format!("j{longest_email}")), "invalid_email"),
        ("ext_id", json!("x".repeat(256)), "invalid_ext_id"),
        ("first_name", json!("n".repeat(256)), "invalid_name"),
        ("last_name", json!("n".repeat(256)), "invalid_name"),
    ];

    for (member, value, code) in too_long {
        let mut body = json!({"phone_number": "+14155552671"});
        body[member] = value;
        let response = app.create_contact(body).await;
        response.assert_error(400, code);
        assert_eq!(response.field(), Some(member));
    }

    let longest = app
        .given_contact(json!({
            "email": longest_email,
            "ext_id": "x".repeat(255),
            "first_name": "é".repeat(255),
            "last_name": "n".repeat(255),
        }))
        .await;
    assert_eq!(longest["email"], json!(longest_email));
    assert_eq!(longest["ext_id"], json!("x".repeat(255)));
    assert_eq!(longest["first_name"], json!("é".repeat(255)));
}
contract_test!(members_longer_than_their_limit_are_refused);

async fn an_empty_ext_id_is_refused() {
    let app = TestApp::spawn().await;

    let response = app
        .create_contact(json!({"email": "jane@example.com", "ext_id": ""}))
        .await;

    response.assert_error(400, "invalid_ext_id");
    assert_eq!(response.field(), Some("ext_id"));
}
contract_test!(an_empty_ext_id_is_refused);

async fn an_ext_id_is_stored_exactly_as_given() {
    let app = TestApp::spawn().await;

    let contact = app.given_contact(json!({"ext_id": " CRM:42/b "})).await;

    assert_eq!(contact["ext_id"], " CRM:42/b ");
}
contract_test!(an_ext_id_is_stored_exactly_as_given);

async fn an_empty_name_is_stored_as_null() {
    let app = TestApp::spawn().await;

    let contact = app
        .given_contact(json!({"ext_id": "crm-1", "first_name": "", "last_name": ""}))
        .await;

    assert_eq!(contact["first_name"], Value::Null);
    assert_eq!(contact["last_name"], Value::Null);
}
contract_test!(an_empty_name_is_stored_as_null);

async fn a_contact_without_any_identifier_is_refused() {
    let app = TestApp::spawn().await;

    for body in [
        json!({}),
        json!({"first_name": "Jane", "last_name": "Doe"}),
        json!({"email": null, "phone_number": null, "ext_id": null, "first_name": "Jane"}),
    ] {
        app.create_contact(body)
            .await
            .assert_error(400, "identifier_required");
    }
    let listed = app.list_contacts("").await;
    assert_eq!(listed.body["data"]["contacts"], json!([]));
}
contract_test!(a_contact_without_any_identifier_is_refused);

async fn custom_field_values_are_read_by_their_fields_type() {
    let app = TestApp::spawn().await;
    app.given_field("notes", "text", None).await;
    app.given_field("price", "number", None).await;
    app.given_field("seats", "number", None).await;
    app.given_field("is_active", "boolean", None).await;
    app.given_field("is_trial", "boolean", None).await;
    app.given_field("renews_on", "date", None).await;
    app.given_field("plan", "select", Some(&["free", "pro"]))
        .await;

    let response = app
        .create_contact(json!({
            "email": "jane@example.com",
            "custom_fields": [
                {"key": "notes", "value": "likes 4.50"},
                {"key": "price", "value": "4.50"},
                {"key": "seats", "value": 12},
                {"key": "is_active", "value": "TRUE"},
                {"key": "is_trial", "value": true},
                {"key": "renews_on", "value": "2024-02-29"},
                {"key": "plan", "value": "pro"},
            ],
        }))
        .await;

    response.assert_status(200);
    let values: Vec<(&str, &Value)> = response.body["custom_fields"]
        .as_array()
        .expect("custom_fields is an array")
        .iter()
        .map(|field| (field["key"].as_str().expect("key"), &field["value"]))
        .collect();
    assert_eq!(
        values,
        [
            ("is_active", &json!(true)),
            ("is_trial", &json!(true)),
            ("notes", &json!("likes 4.50")),
            ("plan", &json!("pro")),
            ("price", &json!(4.5)),
            ("renews_on", &json!("2024-02-29")),
            ("seats", &json!(12)),
        ]
    );
    // An integral number is written without a fraction: `12`, not `12.0`.
    assert!(
        response.text.contains(r#""value":12,"#),
        "{}",
        response.text
    );
}
contract_test!(custom_field_values_are_read_by_their_fields_type);

async fn a_value_that_does_not_fit_its_field_is_refused_naming_the_key() {
    let app = TestApp::spawn().await;
    app.given_field("notes", "text", None).await;
    app.given_field("price", "number", None).await;
    app.given_field("is_active", "boolean", None).await;
    app.given_field("renews_on", "date", None).await;
    app.given_field("plan", "select", Some(&["free", "pro"]))
        .await;
    app.given_field("source", "text", None).await;
    let misfits = [
        ("price", json!("abc")),
        ("price", json!("4.5.0")),
        ("price", json!("NaN")),
        ("price", json!("inf")),
        ("price", json!("1e999")),
        ("price", json!(true)),
        ("is_active", json!("yes")),
        ("is_active", json!(1)),
        ("renews_on", json!("2023-02-29")),
        ("renews_on", json!("29/02/2024")),
        ("plan", json!("enterprise")),
        ("plan", json!("Pro")),
        ("notes", json!(12)),
        ("notes", json!("n".repeat(10_001))),
    ];
    let before = app.dump().await;

    for (key, value) in misfits {
        let response = app
            .create_contact(json!({
                "email": "jane@example.com",
                "custom_fields": [
                    {"key": "source", "value": "web"},
                    {"key": key, "value": value},
                ],
            }))
            .await;
        response.assert_error(400, "invalid_custom_field_value");
        assert_eq!(response.field(), Some("custom_fields[1].value"));
        response.assert_message_mentions(key);
    }
    assert_eq!(app.dump().await, before);
}
contract_test!(a_value_that_does_not_fit_its_field_is_refused_naming_the_key);

async fn a_text_value_may_hold_ten_thousand_characters() {
    let app = TestApp::spawn().await;
    app.given_field("notes", "text", None).await;
    let longest = "é".repeat(10_000);

    let contact = app
        .given_contact(json!({
            "email": "jane@example.com",
            "custom_fields": [{"key": "notes", "value": longest}],
        }))
        .await;

    assert_eq!(contact["custom_fields"][0]["value"], json!(longest));
}
contract_test!(a_text_value_may_hold_ten_thousand_characters);

async fn custom_fields_in_the_update_shape_are_refused_on_create() {
    let app = TestApp::spawn().await;
    app.given_field("plan", "select", Some(&["free", "pro"]))
        .await;

    let response = app
        .create_contact(json!({
            "email": "jane@example.com",
            "custom_fields": {"set": [{"key": "plan", "value": "pro"}]},
        }))
        .await;

    response.assert_error(400, "invalid_request");
    assert_eq!(response.field(), Some("custom_fields"));
}
contract_test!(custom_fields_in_the_update_shape_are_refused_on_create);

async fn a_custom_field_value_written_as_an_array_is_refused() {
    let app = TestApp::spawn().await;
    app.given_field("plan", "select", Some(&["free", "pro"]))
        .await;

    let response = app
        .create_contact(json!({
            "email": "jane@example.com",
            "custom_fields": [["plan", "pro"]],
        }))
        .await;

    response.assert_error(400, "invalid_request");
    assert_eq!(response.field(), Some("custom_fields[0]"));
    let listed = app.list_contacts("").await;
    assert_eq!(listed.body["data"]["contacts"], json!([]));
}
contract_test!(a_custom_field_value_written_as_an_array_is_refused);

async fn a_custom_field_that_is_not_defined_is_refused_naming_the_key() {
    let app = TestApp::spawn().await;
    app.given_field("plan", "select", Some(&["free", "pro"]))
        .await;

    let response = app
        .create_contact(json!({
            "email": "jane@example.com",
            "custom_fields": [
                {"key": "plan", "value": "pro"},
                {"key": "lead_score", "value": "7"},
            ],
        }))
        .await;

    response.assert_error(400, "unknown_custom_field");
    assert_eq!(response.field(), Some("custom_fields[1].key"));
    response.assert_message_mentions("lead_score");
    let listed = app.list_contacts("").await;
    assert_eq!(listed.body["data"]["contacts"], json!([]));
}
contract_test!(a_custom_field_that_is_not_defined_is_refused_naming_the_key);

async fn a_null_custom_field_value_is_refused() {
    let app = TestApp::spawn().await;
    app.given_field("notes", "text", None).await;

    let response = app
        .create_contact(json!({
            "email": "jane@example.com",
            "custom_fields": [{"key": "notes", "value": null}],
        }))
        .await;

    response.assert_error(400, "invalid_custom_field_value");
    assert_eq!(response.field(), Some("custom_fields[0].value"));
}
contract_test!(a_null_custom_field_value_is_refused);

async fn the_same_custom_field_twice_is_refused() {
    let app = TestApp::spawn().await;
    app.given_field("plan", "select", Some(&["free", "pro"]))
        .await;

    let response = app
        .create_contact(json!({
            "email": "jane@example.com",
            "custom_fields": [
                {"key": "plan", "value": "free"},
                {"key": "plan", "value": "pro"},
            ],
        }))
        .await;

    response.assert_error(400, "duplicate_custom_field");
    assert_eq!(response.field(), Some("custom_fields[1].key"));
}
contract_test!(the_same_custom_field_twice_is_refused);

async fn a_misspelt_member_is_refused_by_name_not_dropped() {
    let app = TestApp::spawn().await;

    let response = app
        .create_contact(json!({"email": "jane@example.com", "phone": "+14155552671"}))
        .await;

    response.assert_error(400, "invalid_request");
    assert_eq!(response.field(), Some("phone"));
    response.assert_message_mentions("phone");
    let listed = app.list_contacts("").await;
    assert_eq!(listed.body["data"]["contacts"], json!([]));
}
contract_test!(a_misspelt_member_is_refused_by_name_not_dropped);

async fn an_email_taken_in_any_case_is_a_conflict_naming_its_holder() {
    let app = TestApp::spawn().await;
    let holder = app
        .given_contact(json!({"email": "jane@example.com"}))
        .await;

    let response = app
        .create_contact(json!({"email": " JANE@Example.com", "ext_id": "crm-2"}))
        .await;

    response.assert_error(409, "duplicate_email");
    assert_eq!(response.field(), Some("email"));
    assert_eq!(response.body["conflicting_contact_id"], holder["id"]);
}
contract_test!(an_email_taken_in_any_case_is_a_conflict_naming_its_holder);

async fn a_phone_number_taken_in_another_format_is_a_conflict_naming_its_holder() {
    let app = TestApp::spawn().await;
    let holder = app
        .given_contact(json!({"phone_number": "+1 415 555 2671"}))
        .await;

    for taken in [json!(4155552671_u64), json!("(415) 555-2671")] {
        let response = app
            .create_contact(json!({"phone_number": taken, "email": "other@example.com"}))
            .await;
        response.assert_error(409, "duplicate_phone_number");
        assert_eq!(response.field(), Some("phone_number"));
        assert_eq!(response.body["conflicting_contact_id"], holder["id"]);
    }
}
contract_test!(a_phone_number_taken_in_another_format_is_a_conflict_naming_its_holder);

async fn an_ext_id_taken_exactly_is_a_conflict_but_another_case_is_not() {
    let app = TestApp::spawn().await;
    let holder = app.given_contact(json!({"ext_id": "crm-42"})).await;

    let response = app.create_contact(json!({"ext_id": "crm-42"})).await;

    response.assert_error(409, "duplicate_ext_id");
    assert_eq!(response.field(), Some("ext_id"));
    assert_eq!(response.body["conflicting_contact_id"], holder["id"]);
    let other = app.given_contact(json!({"ext_id": "CRM-42"})).await;
    assert_ne!(other["id"], holder["id"]);
}
contract_test!(an_ext_id_taken_exactly_is_a_conflict_but_another_case_is_not);

async fn a_refused_create_leaves_the_database_unchanged() {
    let app = TestApp::spawn().await;
    app.given_field("plan", "select", Some(&["free", "pro"]))
        .await;
    app.given_field("seats", "number", None).await;
    app.given_contact(json!({"email": "jane@example.com", "ext_id": "crm-1"}))
        .await;
    let before = app.dump().await;
    let refused = [
        (
            json!({
                "email": "new@example.com",
                "ext_id": "crm-1",
                "custom_fields": [{"key": "plan", "value": "pro"}],
            }),
            409,
            "duplicate_ext_id",
        ),
        (
            json!({
                "email": "new@example.com",
                "custom_fields": [
                    {"key": "plan", "value": "pro"},
                    {"key": "seats", "value": "lots"},
                ],
            }),
            400,
            "invalid_custom_field_value",
        ),
        (
            json!({"email": "new@example.com", "phone_number": "+1234567890"}),
            400,
            "invalid_phone_number",
        ),
        (json!({"first_name": "Nobody"}), 400, "identifier_required"),
    ];

    for (body, status, code) in refused {
        app.create_contact(body).await.assert_error(status, code);
    }

    assert_eq!(app.dump().await, before);
}
contract_test!(a_refused_create_leaves_the_database_unchanged);

async fn racing_creates_with_one_email_make_exactly_one_contact() {
    let app = Arc::new(TestApp::spawn().await);

    let winner = race_for_one_winner(&app, 64, "duplicate_email", |app, index| async move {
        app.create_contact(json!({
            "email": "race@example.com",
            "ext_id": format!("racer-{index}"),
        }))
        .await
    })
    .await;
    let listed = app.list_contacts("?limit=100").await;
    listed.assert_status(200);
    assert_eq!(listed.body["data"]["contacts"], json!([winner]));
}
contract_test!(racing_creates_with_one_email_make_exactly_one_contact);
