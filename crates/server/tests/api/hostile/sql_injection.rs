//! SQL, `LIKE` and shell metacharacters: stored literally where a member is free text,
//! refused where it has a grammar, and never matching another contact.

use axum::http::Method;
use serde_json::json;

use super::{
    Attempt, Seeded, assert_all_refused, at_every_route_of, field_definition_attempts,
    field_value_attempts, json_attempt, request, seeded,
};
use crate::helpers::{contract_test, encode_segment};

/// Strings that mean something to SQL, to `LIKE`, or to a shell.
const SQL_METACHARACTERS: [&str; 12] = [
    "'; DROP TABLE contacts; --",
    "\" OR 1=1 --",
    "' OR '1'='1",
    "%",
    "_",
    "\\",
    "crm-%",
    "crm_1",
    "\\'; --",
    "$1",
    "?",
    "*/ SELECT 1; /*",
];

async fn sql_metacharacters_in_string_members_are_stored_and_returned_literally() {
    let Seeded { app, jane, john } = seeded().await;
    for (index, text) in SQL_METACHARACTERS.iter().enumerate() {
        let key = format!("meta_{index}");
        let field = app
            .create_field(json!({
                "key": key,
                "display_name": text,
                "type": "select",
                "options": [text, format!("{text}-other")],
            }))
            .await;
        field.assert_status(200);
        assert_eq!(field.body["display_name"], json!(text));
        assert_eq!(
            field.body["options"],
            json!([text, format!("{text}-other")])
        );

        let created = app
            .create_contact(json!({
                "ext_id": text,
                "first_name": text,
                "last_name": text,
                "custom_fields": [
                    {"key": "notes", "value": text},
                    {"key": key, "value": text},
                ],
            }))
            .await;
        created.assert_status(200);
        for member in ["ext_id", "first_name", "last_name"] {
            assert_eq!(created.body[member], json!(text), "{member}");
        }
        let fetched = app.get_contact(&format!("alt:ext_id:{text}")).await;
        fetched.assert_status(200);
        assert_eq!(fetched.body, created.body, "{text}");
        let notes = fetched.body["custom_fields"]
            .as_array()
            .unwrap()
            .iter()
            .find(|field| field["key"] == "notes")
            .unwrap()
            .clone();
        assert_eq!(notes["value"], json!(text));

        let updated = app
            .patch_contact(json!({
                "id": format!("alt:ext_id:{text}"),
                "first_name": format!("{text}{text}"),
                "custom_fields": {"set": [{"key": "notes", "value": format!("{text}{text}")}]},
            }))
            .await;
        updated.assert_status(200);
        assert_eq!(updated.body["first_name"], json!(format!("{text}{text}")));
    }
    // Every table survived, and the seeded contacts are as they were.
    assert_eq!(
        app.get_contact(jane["id"].as_str().unwrap()).await.body,
        jane
    );
    assert_eq!(
        app.get_contact(john["id"].as_str().unwrap()).await.body,
        john
    );
    let listed = app.list_contacts("?limit=100").await;
    assert_eq!(
        listed.body["data"]["contacts"].as_array().unwrap().len(),
        2 + SQL_METACHARACTERS.len()
    );
    // `%` and `_` found exactly the contact that holds them, never a LIKE match.
    for (pattern, holder) in [
        ("%", "%"),
        ("_", "_"),
        ("crm_1", "crm_1"),
        ("crm-%", "crm-%"),
    ] {
        let found = app.get_contact(&format!("alt:ext_id:{pattern}")).await;
        assert_eq!(found.body["ext_id"], json!(holder));
    }
}
contract_test!(sql_metacharacters_in_string_members_are_stored_and_returned_literally);

async fn sql_metacharacters_in_emails_are_stored_literally_or_refused() {
    let Seeded { app, .. } = seeded().await;
    let refused = ["x;y", "a\"b", "'; DROP TABLE contacts; --", "\\"]
        .map(|local_part| {
            let body = json!({"email": format!("{local_part}@example.com"), "ext_id": "mail"});
            Attempt::refused(
                format!("email {local_part}@example.com"),
                request(
                    &app,
                    Method::POST,
                    "/api/v1/contacts",
                    Some(body.to_string().as_bytes()),
                ),
                400,
                Some("invalid_email"),
            )
        })
        .into_iter()
        .collect();
    assert_all_refused(&app, refused).await;

    for (index, local_part) in [
        "o'brien",
        "'or'1'='1",
        "%",
        "_",
        "j%",
        "j_ne",
        "a--b",
        "jane'--",
    ]
    .into_iter()
    .enumerate()
    {
        let email = format!("{local_part}@example.com");
        let created = app
            .create_contact(json!({"email": email, "ext_id": format!("mail-{index}")}))
            .await;
        created.assert_status(200);
        assert_eq!(created.body["email"], json!(email));
        let found = app.get_contact(&format!("alt:email:{email}")).await;
        assert_eq!(found.body["id"], created.body["id"], "{email}");
    }
}
contract_test!(sql_metacharacters_in_emails_are_stored_literally_or_refused);

async fn a_pattern_or_injection_in_an_identifier_matches_no_other_contact() {
    let Seeded { app, jane, .. } = seeded().await;
    let jane_id = jane["id"].as_str().unwrap();
    let mut attempts = Vec::new();
    let mut identifiers: Vec<String> = SQL_METACHARACTERS
        .iter()
        .map(|text| format!("alt:ext_id:{text}"))
        .collect();
    identifiers.extend(
        [
            "alt:ext_id:crm-_",
            "alt:ext_id:_rm-1",
            "alt:ext_id:crm-1' --",
            "alt:ext_id:crm-1' OR '1'='1",
            "alt:ext_id:crm-1\" OR \"1\"=\"1",
            "alt:email:%@example.com",
            "alt:email:j_ne@example.com",
            "alt:email:'or'1'='1@example.com",
        ]
        .map(str::to_owned),
    );
    for id in &identifiers {
        attempts.push(Attempt::refused(
            format!("PATCH /api/v1/contacts id {id}"),
            request(
                &app,
                Method::PATCH,
                "/api/v1/contacts",
                Some(
                    json!({"id": id, "first_name": "Mallory"})
                        .to_string()
                        .as_bytes(),
                ),
            ),
            404,
            Some("contact_not_found"),
        ));
        attempts.extend(at_every_route_of(
            &app,
            "contacts",
            &encode_segment(id),
            404,
            Some("contact_not_found"),
        ));
    }
    for (id, code) in [
        (format!("{jane_id}' OR '1'='1"), "invalid_identifier"),
        (format!("{}%", &jane_id[..35]), "invalid_identifier"),
        (
            "alt:phone_number:+1415555267%".to_owned(),
            "invalid_identifier",
        ),
        (
            "alt:phone_number:' OR 1=1 --".to_owned(),
            "invalid_identifier",
        ),
        ("alt:ext_id'--:crm-1".to_owned(), "invalid_identifier"),
    ] {
        attempts.extend(at_every_route_of(
            &app,
            "contacts",
            &encode_segment(&id),
            400,
            Some(code),
        ));
    }
    for key in ["plan'--", "plan%", "pl%an", "plan;", "Plan"] {
        attempts.extend(at_every_route_of(
            &app,
            "custom-fields",
            &encode_segment(key),
            400,
            Some("invalid_custom_field_key"),
        ));
    }
    attempts.extend(at_every_route_of(
        &app,
        "custom-fields",
        "p_an",
        404,
        Some("custom_field_not_found"),
    ));
    assert_all_refused(&app, attempts).await;
}
contract_test!(a_pattern_or_injection_in_an_identifier_matches_no_other_contact);

async fn sql_metacharacters_in_a_member_with_a_grammar_are_refused() {
    let Seeded { app, .. } = seeded().await;
    let mut attempts = Vec::new();
    for text in SQL_METACHARACTERS {
        attempts.extend(
            [
                (
                    json!({"ext_id": "crm-9", "phone_number": text}),
                    "invalid_phone_number",
                ),
                (json!({"ext_id": "crm-9", "email": text}), "invalid_email"),
            ]
            .map(|(body, code)| {
                json_attempt(
                    &app,
                    "create",
                    (Method::POST, "/api/v1/contacts"),
                    body,
                    code,
                )
            }),
        );
        for key in ["plan", "seats", "vip", "renewal"] {
            attempts.extend(field_value_attempts(
                &app,
                &json!([{"key": key, "value": text}]),
                "invalid_custom_field_value",
            ));
        }
        attempts.extend(field_value_attempts(
            &app,
            &json!([{"key": text, "value": "x"}]),
            "unknown_custom_field",
        ));
        attempts.push(json_attempt(
            &app,
            "remove",
            (Method::PATCH, "/api/v1/contacts"),
            json!({"id": "alt:ext_id:crm-1", "custom_fields": {"remove": [text]}}),
            "unknown_custom_field",
        ));
        // `crm_1` is a well-formed key; every other text holds a character no key may.
        if text != "crm_1" {
            attempts.extend(field_definition_attempts(
                &app,
                "key",
                json!(text),
                "invalid_custom_field_key",
            ));
        }
        attempts.extend(field_definition_attempts(
            &app,
            "type",
            json!(text),
            "invalid_request",
        ));
    }
    assert_all_refused(&app, attempts).await;
}
contract_test!(sql_metacharacters_in_a_member_with_a_grammar_are_refused);
