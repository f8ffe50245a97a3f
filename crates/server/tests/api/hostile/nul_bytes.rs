//! A NUL, escaped or raw, in any member, identifier or path segment.

use axum::http::Method;
use serde_json::json;

use super::{
    Attempt, Seeded, assert_all_refused, at_every_route_of, field_definition_attempts,
    field_value_attempts, json_attempt, request, seeded,
};
use crate::helpers::{contact_path, contract_test};

async fn a_nul_in_a_contact_member_or_identifier_is_refused() {
    let Seeded { app, jane, .. } = seeded().await;
    let jane_id = jane["id"].as_str().unwrap();
    let mut attempts = Vec::new();
    for (member, nul_value, code) in [
        ("email", json!("jane\u{0}@example.com"), "invalid_email"),
        ("email", json!("mallory@example.com\u{0}"), "invalid_email"),
        (
            "phone_number",
            json!("+1 415 555 2671\u{0}"),
            "invalid_phone_number",
        ),
        (
            "phone_number",
            json!("\u{0}+14155552672"),
            "invalid_phone_number",
        ),
        ("ext_id", json!("crm-9\u{0}"), "invalid_ext_id"),
        ("ext_id", json!("\u{0}"), "invalid_ext_id"),
        ("first_name", json!("Ja\u{0}ne"), "invalid_name"),
        ("last_name", json!("\u{0}"), "invalid_name"),
    ] {
        let mut create = json!({"ext_id": "crm-9", "email": "zoe@example.com"});
        create[member] = nul_value.clone();
        let mut update = json!({"id": "alt:ext_id:crm-1"});
        update[member] = nul_value.clone();
        let mut update_at = json!({});
        update_at[member] = nul_value;
        let story = format!("a NUL in {member}");
        let by_path = contact_path("alt:ext_id:crm-2");
        attempts.extend([
            json_attempt(
                &app,
                &story,
                (Method::POST, "/api/v1/contacts"),
                create,
                code,
            ),
            json_attempt(
                &app,
                &story,
                (Method::PATCH, "/api/v1/contacts"),
                update,
                code,
            ),
            json_attempt(&app, &story, (Method::PATCH, &by_path), update_at, code),
        ]);
    }
    for (key, value) in [
        ("notes\u{0}", "x"),
        ("plan", "pro\u{0}"),
        ("renewal", "2027-01-31\u{0}"),
        ("seats", "12\u{0}"),
        ("vip", "true\u{0}"),
    ] {
        let code = if key.contains('\u{0}') {
            "unknown_custom_field"
        } else {
            "invalid_custom_field_value"
        };
        attempts.extend(field_value_attempts(
            &app,
            &json!([{"key": key, "value": value}]),
            code,
        ));
    }
    attempts.push(json_attempt(
        &app,
        "remove a custom field",
        (Method::PATCH, "/api/v1/contacts"),
        json!({"id": "alt:ext_id:crm-1", "custom_fields": {"remove": ["notes\u{0}"]}}),
        "unknown_custom_field",
    ));
    for id in [
        "alt:ext_id:crm-1\u{0}".to_owned(),
        "alt:ext_id:\u{0}".to_owned(),
        "alt:email:jane@example.com\u{0}".to_owned(),
        "alt:phone_number:+14155552671\u{0}".to_owned(),
        "alt\u{0}:ext_id:crm-1".to_owned(),
        format!("{jane_id}\u{0}"),
        format!("\u{0}{jane_id}"),
    ] {
        attempts.push(json_attempt(
            &app,
            "name the contact",
            (Method::PATCH, "/api/v1/contacts"),
            json!({"id": id, "first_name": "Mallory"}),
            "invalid_identifier",
        ));
    }
    attempts.extend(field_definition_attempts(
        &app,
        "key",
        json!("tier\u{0}"),
        "invalid_custom_field_key",
    ));
    attempts.extend(field_definition_attempts(
        &app,
        "type",
        json!("select\u{0}"),
        "invalid_request",
    ));
    for raw in [
        b"{\"ext_id\": \"crm-9\x00\"}".as_slice(),
        b"{\"ext_id\": \"crm-9\"}\x00",
        b"\x00{\"ext_id\": \"crm-9\"}",
        b"{\"ext_id\":\x00\"crm-9\"}",
    ] {
        attempts.push(Attempt::refused(
            format!("a raw NUL byte: {}", String::from_utf8_lossy(raw)),
            request(&app, Method::POST, "/api/v1/contacts", Some(raw)),
            400,
            Some("invalid_json"),
        ));
    }
    assert_all_refused(&app, attempts).await;
}
contract_test!(a_nul_in_a_contact_member_or_identifier_is_refused);

async fn a_nul_in_a_custom_field_text_value_display_name_or_option_is_refused() {
    let Seeded { app, .. } = seeded().await;
    let mut attempts = Vec::new();
    for text in ["tea\u{0}", "\u{0}"] {
        attempts.extend(field_value_attempts(
            &app,
            &json!([{"key": "notes", "value": text}]),
            "invalid_custom_field_value",
        ));
    }
    for (member, value, code) in [
        ("display_name", json!("Tier\u{0}"), "invalid_display_name"),
        ("display_name", json!("\u{0}"), "invalid_display_name"),
        ("options", json!(["gold\u{0}"]), "invalid_options"),
        ("options", json!(["\u{0}"]), "invalid_options"),
    ] {
        attempts.extend(field_definition_attempts(&app, member, value, code));
    }
    assert_all_refused(&app, attempts).await;
}
contract_test!(a_nul_in_a_custom_field_text_value_display_name_or_option_is_refused);

async fn a_nul_in_a_path_identifier_is_refused() {
    let Seeded { app, jane, .. } = seeded().await;
    let jane_id = jane["id"].as_str().unwrap();
    let mut attempts = Vec::new();
    for segment in [
        "%00".to_owned(),
        "alt:ext_id:crm-1%00".to_owned(),
        "alt:ext_id:%00".to_owned(),
        "alt:ext_id:%00crm-1".to_owned(),
        "alt:email:jane@example.com%00".to_owned(),
        "alt:phone_number:%2B14155552671%00".to_owned(),
        "alt%00:ext_id:crm-1".to_owned(),
        format!("{jane_id}%00"),
        format!("%00{jane_id}"),
    ] {
        attempts.extend(at_every_route_of(
            &app,
            "contacts",
            &segment,
            400,
            Some("invalid_identifier"),
        ));
    }
    for segment in ["plan%00", "%00", "%00plan"] {
        attempts.extend(at_every_route_of(
            &app,
            "custom-fields",
            segment,
            400,
            Some("invalid_custom_field_key"),
        ));
    }
    assert_all_refused(&app, attempts).await;
}
contract_test!(a_nul_in_a_path_identifier_is_refused);
