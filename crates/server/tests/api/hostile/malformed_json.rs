//! JSON that is cut off, nested ten thousand deep, lenient or ambiguous: refused as a whole.

use axum::http::Method;
use serde_json::json;

use super::{Attempt, Seeded, assert_all_refused, request, seeded};
use crate::helpers::{contact_path, contract_test};

/// How deep the nested-JSON attacks go.
const DEPTH: usize = 10_000;

async fn a_valid_body_cut_off_at_any_byte_is_refused_and_changes_nothing() {
    let Seeded { app, .. } = seeded().await;
    let create = |n: u64| {
        json!({
        "email": format!("zoe{n}@example.com"),
        "phone_number": 14155552670_u64 + n,
        "ext_id": format!("crm-{n}"),
        "first_name": "Zoë",
        "last_name": "Ångström",
        "custom_fields": [
            {"key": "plan", "value": "pro"},
            {"key": "seats", "value": 4.5},
            {"key": "vip", "value": false},
            {"key": "renewal", "value": "2028-02-29"},
            {"key": "notes", "value": "✓ \"quoted\" \\ back"},
        ],
        })
    };
    let bodies = [
        (
            Method::POST,
            "/api/v1/contacts".to_owned(),
            serde_json::to_vec(&create(3)).unwrap(),
        ),
        (
            Method::POST,
            "/api/v1/contacts".to_owned(),
            serde_json::to_vec_pretty(&create(4)).unwrap(),
        ),
        (
            Method::PATCH,
            "/api/v1/contacts".to_owned(),
            serde_json::to_vec(&json!({
                "id": "alt:email:jane@example.com",
                "email": null,
                "phone_number": "(415) 555-2679",
                "first_name": "Jäne",
                "custom_fields": {
                    "set": [{"key": "seats", "value": "13"}, {"key": "vip", "value": "false"}],
                    "remove": ["notes", "renewal"],
                },
            }))
            .unwrap(),
        ),
        (
            Method::PATCH,
            contact_path("alt:ext_id:crm-2"),
            serde_json::to_vec(&json!({"last_name": null, "ext_id": "crm-2b"})).unwrap(),
        ),
        (
            Method::POST,
            "/api/v1/custom-fields".to_owned(),
            serde_json::to_vec(&json!({
                "key": "tier",
                "display_name": "Tier ✓",
                "type": "select",
                "options": ["gold", "silver"],
            }))
            .unwrap(),
        ),
        (
            Method::PATCH,
            "/api/v1/custom-fields/plan".to_owned(),
            serde_json::to_vec(
                &json!({"display_name": "Plan ✓", "options": ["free", "pro", "team"]}),
            )
            .unwrap(),
        ),
    ];
    let mut attempts = Vec::new();
    for (method, path, body) in &bodies {
        for cut in 0..body.len() {
            attempts.push(Attempt::refused(
                format!("{method} {path} cut after {cut} of {} bytes", body.len()),
                request(&app, method.clone(), path, Some(&body[..cut])),
                400,
                Some("invalid_json"),
            ));
        }
    }
    assert_all_refused(&app, attempts).await;

    // Whole, every body is accepted: each refusal above was the cut's doing.
    for (method, path, body) in &bodies {
        let response = app
            .send(request(&app, method.clone(), path, Some(body)))
            .await;
        response.assert_status(200);
    }
}
contract_test!(a_valid_body_cut_off_at_any_byte_is_refused_and_changes_nothing);

async fn json_nested_ten_thousand_deep_is_refused_without_exhausting_the_stack() {
    let Seeded { app, .. } = seeded().await;
    let arrays = format!("{}{}", "[".repeat(DEPTH), "]".repeat(DEPTH));
    let objects = format!("{}1{}", r#"{"a":"#.repeat(DEPTH), "}".repeat(DEPTH));
    let unclosed = "[{\"a\":".repeat(DEPTH / 2);
    let places = [
        (Method::POST, "/api/v1/contacts".to_owned(), "NESTED"),
        (Method::PATCH, "/api/v1/contacts".to_owned(), "NESTED"),
        (Method::PATCH, contact_path("alt:ext_id:crm-1"), "NESTED"),
        (Method::POST, "/api/v1/custom-fields".to_owned(), "NESTED"),
        (
            Method::PATCH,
            "/api/v1/custom-fields/plan".to_owned(),
            "NESTED",
        ),
        (
            Method::POST,
            "/api/v1/contacts".to_owned(),
            r#"{"ext_id": NESTED}"#,
        ),
        (
            Method::POST,
            "/api/v1/contacts".to_owned(),
            r#"{"ext_id": "crm-9", "phone_number": NESTED}"#,
        ),
        (
            Method::POST,
            "/api/v1/contacts".to_owned(),
            r#"{"ext_id": "crm-9", "custom_fields": NESTED}"#,
        ),
        (
            Method::POST,
            "/api/v1/contacts".to_owned(),
            r#"{"ext_id": "crm-9", "custom_fields": [{"key": "notes", "value": NESTED}]}"#,
        ),
        (
            Method::POST,
            "/api/v1/contacts".to_owned(),
            r#"{"ext_id": "crm-9", "nested": NESTED}"#,
        ),
        (
            Method::PATCH,
            "/api/v1/contacts".to_owned(),
            r#"{"id": NESTED}"#,
        ),
        (
            Method::PATCH,
            "/api/v1/contacts".to_owned(),
            r#"{"id": "alt:ext_id:crm-1", "custom_fields": {"set": [{"key": "seats", "value": NESTED}]}}"#,
        ),
        (
            Method::PATCH,
            "/api/v1/contacts".to_owned(),
            r#"{"id": "alt:ext_id:crm-1", "custom_fields": {"remove": NESTED}}"#,
        ),
        (
            Method::PATCH,
            contact_path("alt:ext_id:crm-1"),
            r#"{"first_name": "Jane", "custom_fields": NESTED}"#,
        ),
        (
            Method::POST,
            "/api/v1/custom-fields".to_owned(),
            r#"{"key": "tier", "display_name": "Tier", "type": "select", "options": NESTED}"#,
        ),
        (
            Method::PATCH,
            "/api/v1/custom-fields/plan".to_owned(),
            r#"{"options": NESTED}"#,
        ),
    ];
    let mut attempts = Vec::new();
    for (shape, nested) in [
        ("arrays", &arrays),
        ("objects", &objects),
        ("unclosed arrays of objects", &unclosed),
    ] {
        for (method, path, template) in &places {
            let body = template.replace("NESTED", nested);
            attempts.push(Attempt::refused(
                format!("{method} {path} {template} with {DEPTH} nested {shape}"),
                request(&app, method.clone(), path, Some(body.as_bytes())),
                400,
                None,
            ));
        }
    }
    assert_all_refused(&app, attempts).await;
}
contract_test!(json_nested_ten_thousand_deep_is_refused_without_exhausting_the_stack);

async fn json_that_only_a_lenient_parser_would_read_is_refused() {
    let Seeded { app, .. } = seeded().await;
    let bodies: [(Method, &str, &[u8]); 24] = [
        (
            Method::POST,
            "/api/v1/contacts",
            br#"{"ext_id": "crm-9" /* a comment */}"#,
        ),
        (
            Method::POST,
            "/api/v1/contacts",
            b"// a comment\n{\"ext_id\": \"crm-9\"}",
        ),
        (Method::POST, "/api/v1/contacts", br#"{"ext_id": "crm-9"} # a comment"#),
        (
            Method::POST,
            "/api/v1/contacts",
            br#"{"ext_id": "crm-9", "custom_fields": [{"key": "notes", "value": "x"},]}"#,
        ),
        (
            Method::POST,
            "/api/v1/contacts",
            br#"{"ext_id": "crm-9", "custom_fields": [{"key": "seats", "value": NaN}]}"#,
        ),
        (
            Method::POST,
            "/api/v1/contacts",
            br#"{"ext_id": "crm-9", "custom_fields": [{"key": "seats", "value": Infinity}]}"#,
        ),
        (
            Method::POST,
            "/api/v1/contacts",
            br#"{"ext_id": "crm-9", "custom_fields": [{"key": "seats", "value": -Infinity}]}"#,
        ),
        (
            Method::POST,
            "/api/v1/contacts",
            br#"{"ext_id": "crm-9", "custom_fields": [{"key": "seats", "value": 0x10}]}"#,
        ),
        (
            Method::POST,
            "/api/v1/contacts",
            br#"{"ext_id": "crm-9", "custom_fields": [{"key": "seats", "value": +1}]}"#,
        ),
        (
            Method::POST,
            "/api/v1/contacts",
            br#"{"ext_id": "crm-9", "custom_fields": [{"key": "seats", "value": .5}]}"#,
        ),
        (
            Method::POST,
            "/api/v1/contacts",
            br#"{"ext_id": "crm-9", "custom_fields": [{"key": "seats", "value": 1.}]}"#,
        ),
        (
            Method::POST,
            "/api/v1/contacts",
            br#"{"ext_id": "crm-9", "custom_fields": [{"key": "seats", "value": 1e}]}"#,
        ),
        (
            Method::POST,
            "/api/v1/contacts",
            br#"{"ext_id": "crm-9", "phone_number": 04155552671}"#,
        ),
        (
            Method::POST,
            "/api/v1/contacts",
            br#"{"ext_id": "crm-9", "custom_fields": [{"key": "vip", "value": True}]}"#,
        ),
        (
            Method::POST,
            "/api/v1/contacts",
            br#"{"ext_id": "crm-9", "first_name": undefined}"#,
        ),
        (Method::POST, "/api/v1/contacts", b"{\"ext_id\": \"crm\n9\"}"),
        (Method::POST, "/api/v1/contacts", b"{\"ext_id\": \"crm\t9\"}"),
        (Method::POST, "/api/v1/contacts", b"{\"ext_id\": \"crm\x019\"}"),
        (Method::POST, "/api/v1/contacts", br#"{"ext_id": "crm\x41"}"#),
        (Method::POST, "/api/v1/contacts", br#"{"ext_id": "crm\u12"}"#),
        (Method::POST, "/api/v1/contacts", br#"{"ext_id": "crm\U00000041"}"#),
        (Method::POST, "/api/v1/contacts", b" \n\t\r "),
        (
            Method::PATCH,
            "/api/v1/contacts",
            br#"{"id": "alt:ext_id:crm-1", "first_name": "Jane"}}"#,
        ),
        (
            Method::POST,
            "/api/v1/custom-fields",
            br#"{"key": "tier", "display_name": "Tier", "type": "select", "options": ["gold",,"silver"]}"#,
        ),
    ];
    let attempts = bodies
        .into_iter()
        .map(|(method, path, body)| {
            Attempt::refused(
                format!("{method} {path} {}", String::from_utf8_lossy(body)),
                request(&app, method, path, Some(body)),
                400,
                Some("invalid_json"),
            )
        })
        .collect();
    assert_all_refused(&app, attempts).await;
}
contract_test!(json_that_only_a_lenient_parser_would_read_is_refused);

async fn a_member_given_twice_is_refused_so_no_parser_can_pick_a_different_one() {
    let Seeded { app, .. } = seeded().await;
    let bodies: [(Method, &str, &str); 8] = [
        (
            Method::POST,
            "/api/v1/contacts",
            r#"{"ext_id": "crm-9", "ext_id": "crm-10"}"#,
        ),
        (
            Method::PATCH,
            "/api/v1/contacts",
            r#"{"id": "alt:ext_id:crm-2", "id": "alt:ext_id:crm-1", "first_name": "Mallory"}"#,
        ),
        (
            Method::PATCH,
            "/api/v1/contacts",
            r#"{"id": "alt:ext_id:crm-1", "email": "mallory@example.com", "email": null}"#,
        ),
        (
            Method::PATCH,
            "/api/v1/contacts/alt:ext_id:crm-1",
            r#"{"id": "alt:ext_id:crm-1", "first_name": "Mallory", "id": "alt:ext_id:crm-2"}"#,
        ),
        (
            Method::PATCH,
            "/api/v1/contacts",
            r#"{"id": "alt:ext_id:crm-1", "custom_fields": {"set": [{"key": "notes", "value": "x"}], "set": []}}"#,
        ),
        (
            Method::POST,
            "/api/v1/contacts",
            r#"{"ext_id": "crm-9", "custom_fields": [{"key": "notes", "key": "plan", "value": "pro"}]}"#,
        ),
        (
            Method::POST,
            "/api/v1/custom-fields",
            r#"{"key": "tier", "key": "plan", "display_name": "Tier", "type": "text"}"#,
        ),
        (
            Method::PATCH,
            "/api/v1/custom-fields/plan",
            r#"{"display_name": "Plan", "display_name": "Mallory"}"#,
        ),
    ];
    let attempts = bodies
        .into_iter()
        .map(|(method, path, body)| {
            Attempt::refused(
                format!("{method} {path} {body}"),
                request(&app, method, path, Some(body.as_bytes())),
                400,
                Some("invalid_request"),
            )
        })
        .collect();
    assert_all_refused(&app, attempts).await;
}
contract_test!(a_member_given_twice_is_refused_so_no_parser_can_pick_a_different_one);
