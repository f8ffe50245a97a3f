//! Bytes that are not UTF-8, in a body or in a path segment.

use axum::http::Method;

use super::{Attempt, Seeded, assert_all_refused, at_every_route_of, request, seeded};
use crate::helpers::contract_test;

async fn a_body_that_is_not_utf_8_anywhere_is_refused() {
    let Seeded { app, .. } = seeded().await;
    let utf_16: Vec<u8> = "\u{feff}{\"ext_id\": \"crm-9\"}"
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    let bodies: [(Method, &str, &[u8]); 17] = [
        (Method::POST, "/api/v1/contacts", b"{\"ext_id\": \"\xC0\xAF\"}"),
        (Method::POST, "/api/v1/contacts", b"{\"ext_id\": \"crm-\xFF\"}"),
        (Method::POST, "/api/v1/contacts", b"{\"ext_id\": \"\xED\xA0\x80\"}"),
        (Method::POST, "/api/v1/contacts", b"{\"ext_id\": \"\xE2\x82\"}"),
        (Method::POST, "/api/v1/contacts", b"{\"ext_id\": \"\xF4\x90\x80\x80\"}"),
        (Method::POST, "/api/v1/contacts", b"{\"ext_id\": \"\\ud800\"}"),
        (Method::POST, "/api/v1/contacts", b"{\"ext_id\": \"\\udc00\"}"),
        (Method::POST, "/api/v1/contacts", b"{\"ext_id\": \"\\ud800\\u0041\"}"),
        (Method::POST, "/api/v1/contacts", b"{\"\xFFext_id\": \"crm-9\"}"),
        (
            Method::POST,
            "/api/v1/contacts",
            b"{\"email\": \"jane\xC0\xAE@example.com\"}",
        ),
        (
            Method::POST,
            "/api/v1/contacts",
            b"{\"ext_id\": \"crm-9\", \"custom_fields\": [{\"key\": \"notes\", \"value\": \"\xFF\"}]}",
        ),
        (
            Method::POST,
            "/api/v1/contacts",
            b"{\"first_name\": \"Zo\xEB\", \"ext_id\": \"crm-9\"}",
        ),
        (Method::POST, "/api/v1/contacts", &utf_16),
        (
            Method::PATCH,
            "/api/v1/contacts",
            b"{\"id\": \"alt:ext_id:crm-1\xFF\", \"first_name\": \"Mallory\"}",
        ),
        (
            Method::PATCH,
            "/api/v1/contacts",
            b"{\"id\": \"alt:ext_id:crm-1\", \"first_name\": \"\xC0\xAF\"}",
        ),
        (
            Method::POST,
            "/api/v1/custom-fields",
            b"{\"key\": \"tier\", \"display_name\": \"\xFF\", \"type\": \"text\"}",
        ),
        (
            Method::PATCH,
            "/api/v1/custom-fields/plan",
            b"{\"options\": [\"free\", \"pro\", \"\xED\xBF\xBF\"]}",
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
contract_test!(a_body_that_is_not_utf_8_anywhere_is_refused);

async fn invalid_utf_8_in_a_path_segment_is_refused() {
    let Seeded { app, .. } = seeded().await;
    let mut attempts = Vec::new();
    for segment in [
        "%C0%AF",
        "%FF",
        "%ED%A0%80",
        "alt:ext_id:%FF",
        "alt:ext_id:crm-1%C0%AF",
        "alt:ext_id:%F4%90%80%80",
        "alt:email:jane%FF@example.com",
        "alt:phone_number:%2B1415555267%C1",
    ] {
        attempts.extend(at_every_route_of(&app, "contacts", segment, 400, None));
    }
    for segment in ["%FF", "plan%C0%AF", "pl%E0%80an"] {
        attempts.extend(at_every_route_of(&app, "custom-fields", segment, 400, None));
    }
    assert_all_refused(&app, attempts).await;
}
contract_test!(invalid_utf_8_in_a_path_segment_is_refused);
