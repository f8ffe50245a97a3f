//! Strings past their member's limit, up to 60 KiB: refused, and never echoed back.

use axum::http::Method;
use serde_json::{Value, json};

use super::{Attempt, Seeded, assert_all_refused, at_every_route_of, request, seeded};
use crate::helpers::{contact_path, contract_test};

/// Sixty KiB: far past every length limit, yet inside the tests' 64 KiB body limit.
const HUGE: usize = 60 * 1024;

/// A valid-looking address of exactly 255 characters: each part within its own limit, so
/// only the whole is too long.
fn email_of_255_characters() -> String {
    let label = "a".repeat(63);
    let domain = format!("{label}.{label}.{label}");
    let address = format!("{}@{domain}", "j".repeat(255 - 1 - domain.len()));
    assert_eq!(address.chars().count(), 255);
    address
}

async fn a_string_over_its_limit_in_any_member_is_refused() {
    let Seeded { app, .. } = seeded().await;
    let huge = "x".repeat(HUGE);
    let huge_digits = "9".repeat(HUGE);
    let long_email = email_of_255_characters();
    let huge_email = format!("{huge}@example.com");
    let long_key = "a".repeat(64);
    let contact_members = [
        ("email", long_email.clone(), "invalid_email"),
        ("email", huge_email.clone(), "invalid_email"),
        (
            "phone_number",
            format!("+1{}4155552671", " ".repeat(53)),
            "invalid_phone_number",
        ),
        ("phone_number", huge_digits.clone(), "invalid_phone_number"),
        ("ext_id", "x".repeat(256), "invalid_ext_id"),
        ("ext_id", "é".repeat(256), "invalid_ext_id"),
        ("ext_id", "😀".repeat(256), "invalid_ext_id"),
        ("ext_id", huge.clone(), "invalid_ext_id"),
        ("first_name", "x".repeat(256), "invalid_name"),
        ("first_name", "é".repeat(256), "invalid_name"),
        ("first_name", huge.clone(), "invalid_name"),
        ("last_name", "x".repeat(256), "invalid_name"),
        ("last_name", huge.clone(), "invalid_name"),
    ];
    let field_values = [
        ("notes", "x".repeat(10_001), "invalid_custom_field_value"),
        ("notes", "é".repeat(10_001), "invalid_custom_field_value"),
        ("notes", huge.clone(), "invalid_custom_field_value"),
        ("plan", huge.clone(), "invalid_custom_field_value"),
        (
            "renewal",
            format!("2027-01-31{}", "0".repeat(HUGE)),
            "invalid_custom_field_value",
        ),
        ("seats", huge_digits.clone(), "invalid_custom_field_value"),
        (
            "vip",
            format!("true{}", " ".repeat(HUGE)),
            "invalid_custom_field_value",
        ),
        (long_key.as_str(), "x".to_owned(), "unknown_custom_field"),
        (huge.as_str(), "x".to_owned(), "unknown_custom_field"),
    ];
    let mut attempts = Vec::new();
    let mut send = |story: String, method: Method, path: &str, body: Value, code| {
        let body = body.to_string();
        attempts.push(Attempt::refused(
            format!("{story}: {method} {path} ({} bytes)", body.len()),
            request(&app, method, path, Some(body.as_bytes())),
            400,
            code,
        ));
    };
    for (member, long, code) in &contact_members {
        let story = format!("{member} of {} characters", long.chars().count());
        let mut create = json!({"ext_id": "crm-9"});
        create[member] = json!(long);
        send(
            story.clone(),
            Method::POST,
            "/api/v1/contacts",
            create,
            Some(*code),
        );
        let mut update = json!({"id": "alt:ext_id:crm-1"});
        update[member] = json!(long);
        send(
            story.clone(),
            Method::PATCH,
            "/api/v1/contacts",
            update,
            Some(*code),
        );
        let mut update_at = json!({});
        update_at[member] = json!(long);
        send(
            story,
            Method::PATCH,
            &contact_path("alt:ext_id:crm-2"),
            update_at,
            Some(*code),
        );
    }
    for (key, long, code) in &field_values {
        let story = format!(
            "custom field {:.20} valued {} characters",
            key,
            long.chars().count()
        );
        let values = json!([{"key": key, "value": long}]);
        send(
            story.clone(),
            Method::POST,
            "/api/v1/contacts",
            json!({"ext_id": "crm-9", "custom_fields": values}),
            Some(*code),
        );
        send(
            story,
            Method::PATCH,
            "/api/v1/contacts",
            json!({"id": "alt:ext_id:crm-1", "custom_fields": {"set": values}}),
            Some(*code),
        );
    }
    send(
        "remove a key of 60 KiB".to_owned(),
        Method::PATCH,
        "/api/v1/contacts",
        json!({"id": "alt:ext_id:crm-1", "custom_fields": {"remove": [huge]}}),
        Some("unknown_custom_field"),
    );
    send(
        "a member name of 60 KiB".to_owned(),
        Method::POST,
        "/api/v1/contacts",
        json!({"ext_id": "crm-9", huge.clone(): "x"}),
        Some("invalid_request"),
    );
    for id in [
        format!("alt:ext_id:{}", "x".repeat(256)),
        format!("alt:ext_id:{huge}"),
        format!("alt:email:{long_email}"),
        format!("alt:email:{huge_email}"),
        format!("alt:phone_number:{huge_digits}"),
        format!("alt:{huge}:crm-1"),
        huge.clone(),
    ] {
        send(
            format!("an id of {} characters", id.len()),
            Method::PATCH,
            "/api/v1/contacts",
            json!({"id": id, "first_name": "Mallory"}),
            Some("invalid_identifier"),
        );
    }
    let too_many_options: Vec<String> = (0..501).map(|index| format!("option {index}")).collect();
    for (member, long, code) in [
        ("key", json!("a".repeat(64)), "invalid_custom_field_key"),
        ("key", json!(huge), "invalid_custom_field_key"),
        (
            "display_name",
            json!("x".repeat(101)),
            "invalid_display_name",
        ),
        (
            "display_name",
            json!("é".repeat(101)),
            "invalid_display_name",
        ),
        ("display_name", json!(huge), "invalid_display_name"),
        ("type", json!(huge), "invalid_request"),
        (
            "options",
            json!(["gold", "x".repeat(256)]),
            "invalid_options",
        ),
        ("options", json!([huge]), "invalid_options"),
        ("options", json!(too_many_options), "invalid_options"),
    ] {
        let mut field =
            json!({"key": "tier", "display_name": "Tier", "type": "select", "options": ["gold"]});
        field[member] = long;
        send(
            format!("a field's {member}"),
            Method::POST,
            "/api/v1/custom-fields",
            field,
            Some(code),
        );
    }
    for (change, code) in [
        (
            json!({"display_name": "x".repeat(101)}),
            "invalid_display_name",
        ),
        (json!({"display_name": huge}), "invalid_display_name"),
        (
            json!({"options": ["free", "pro", "x".repeat(256)]}),
            "invalid_options",
        ),
    ] {
        send(
            "change a field".to_owned(),
            Method::PATCH,
            "/api/v1/custom-fields/plan",
            change,
            Some(code),
        );
    }
    // In the path, 60 KiB is still a URI the http crate takes (its limit is 64 KiB).
    attempts.extend(at_every_route_of(
        &app,
        "contacts",
        &format!("alt:ext_id:{huge}"),
        400,
        Some("invalid_identifier"),
    ));
    attempts.extend(at_every_route_of(
        &app,
        "contacts",
        &huge,
        400,
        Some("invalid_identifier"),
    ));
    attempts.extend(at_every_route_of(
        &app,
        "custom-fields",
        &"a".repeat(HUGE),
        400,
        Some("invalid_custom_field_key"),
    ));
    assert_all_refused(&app, attempts).await;
}
contract_test!(a_string_over_its_limit_in_any_member_is_refused);

async fn a_refusal_never_echoes_a_huge_input_back() {
    let Seeded { app, .. } = seeded().await;
    let huge = "x".repeat(HUGE);
    let requests = [
        (
            Method::POST,
            "/api/v1/contacts".to_owned(),
            json!({"ext_id": "crm-9", huge.clone(): 1}),
        ),
        (
            Method::PATCH,
            "/api/v1/contacts".to_owned(),
            json!({"id": "alt:ext_id:crm-1", huge.clone(): 1}),
        ),
        (
            Method::PATCH,
            contact_path("alt:ext_id:crm-1"),
            json!({huge.clone(): 1}),
        ),
        (
            Method::POST,
            "/api/v1/custom-fields".to_owned(),
            json!({"key": "tier", "display_name": "Tier", "type": huge}),
        ),
        (
            Method::POST,
            "/api/v1/custom-fields".to_owned(),
            json!({"key": "tier", "display_name": "Tier", "type": "text", huge.clone(): 1}),
        ),
        (
            Method::POST,
            "/api/v1/contacts".to_owned(),
            json!({"ext_id": huge}),
        ),
        (
            Method::POST,
            "/api/v1/contacts".to_owned(),
            json!({"email": huge}),
        ),
        (
            Method::PATCH,
            "/api/v1/contacts".to_owned(),
            json!({"id": huge}),
        ),
        (
            Method::PATCH,
            "/api/v1/contacts".to_owned(),
            json!({"id": format!("alt:{huge}:x")}),
        ),
        (
            Method::PATCH,
            "/api/v1/contacts".to_owned(),
            json!({"id": "alt:ext_id:crm-1", "custom_fields": {"remove": [huge]}}),
        ),
        (
            Method::POST,
            "/api/v1/contacts".to_owned(),
            json!({"ext_id": "crm-9", "custom_fields": [{"key": "plan", "value": huge}]}),
        ),
        (
            Method::POST,
            "/api/v1/custom-fields".to_owned(),
            json!({"key": huge, "display_name": "Tier", "type": "text"}),
        ),
    ];
    let mut echoes = Vec::new();
    for (method, path, body) in requests {
        let response = app
            .send(request(
                &app,
                method.clone(),
                &path,
                Some(body.to_string().as_bytes()),
            ))
            .await;
        response.assert_status(400);
        // A sentence and a member path, not the attacker's 60 KiB (let alone three copies).
        if response.text.len() > 2048 {
            echoes.push(format!(
                "{method} {path} {:.80}: a refusal of {} bytes: {:.200}",
                body.to_string(),
                response.text.len(),
                response.text
            ));
        }
    }
    assert!(echoes.is_empty(), "{}", echoes.join("\n"));
}
contract_test!(a_refusal_never_echoes_a_huge_input_back);
