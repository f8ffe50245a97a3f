//! `GET` and `DELETE /api/v1/contacts/{id}` (docs/reference.md#6-contact-endpoints): every identifier form of docs/reference.md#4-identifiers in a
//! percent-encoded path, not-found and malformed identifiers, and freeing identifiers.

use axum::http::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{Backend, TestApp, contact_path, contract_test};

/// A contact with every identifier, the `/` and space in its ext_id needing encoding.
async fn given_jane(app: &TestApp) -> Value {
    app.given_contact(json!({
        "email": "jane@example.com",
        "phone_number": "+14155552671",
        "ext_id": "crm/42 b",
        "first_name": "Jane",
    }))
    .await
}

fn id_of(contact: &Value) -> &str {
    contact["id"].as_str().expect("a contact id")
}

async fn a_contact_is_fetched_by_its_uuid_in_either_case() {
    let app = TestApp::spawn().await;
    let jane = given_jane(&app).await;
    app.given_contact(json!({"email": "john@example.com"}))
        .await;

    for id in [id_of(&jane).to_owned(), id_of(&jane).to_uppercase()] {
        let response = app.get_contact(&id).await;
        response.assert_status(200);
        assert_eq!(response.body, jane, "{id}");
    }
}
contract_test!(a_contact_is_fetched_by_its_uuid_in_either_case);

async fn an_ext_id_with_a_slash_and_a_space_is_fetched_through_a_percent_encoded_path() {
    let app = TestApp::spawn().await;
    let jane = given_jane(&app).await;
    assert_eq!(
        contact_path("alt:ext_id:crm/42 b"),
        "/api/v1/contacts/alt:ext_id:crm%2F42%20b"
    );

    let response = app.get_contact("alt:ext_id:crm/42 b").await;

    response.assert_status(200);
    assert_eq!(response.body, jane);
}
contract_test!(an_ext_id_with_a_slash_and_a_space_is_fetched_through_a_percent_encoded_path);

async fn an_ext_id_is_matched_exactly() {
    let app = TestApp::spawn().await;
    given_jane(&app).await;

    for id in [
        "alt:ext_id:CRM/42 b",
        "alt:ext_id:crm/42",
        "alt:ext_id:crm/42 b ",
    ] {
        app.get_contact(id)
            .await
            .assert_error(404, "contact_not_found");
    }
}
contract_test!(an_ext_id_is_matched_exactly);

async fn an_email_in_any_case_names_its_contact() {
    let app = TestApp::spawn().await;
    let jane = given_jane(&app).await;

    for id in [
        "alt:email:jane@example.com",
        "alt:email:JANE@Example.COM",
        "alt:email: Jane@example.com ",
    ] {
        let response = app.get_contact(id).await;
        response.assert_status(200);
        assert_eq!(response.body, jane, "{id}");
    }
}
contract_test!(an_email_in_any_case_names_its_contact);

async fn a_phone_number_in_any_accepted_format_names_its_contact() {
    let app = TestApp::spawn().await;
    let jane = given_jane(&app).await;

    for id in [
        "alt:phone_number:+14155552671",
        "alt:phone_number:+1 415 555 2671",
        "alt:phone_number:(415) 555-2671",
        "alt:phone_number:4155552671",
        "alt:phone_number:14155552671",
        "alt:phone_number:001 415 555 2671",
    ] {
        let response = app.get_contact(id).await;
        response.assert_status(200);
        assert_eq!(response.body, jane, "{id}");
    }
}
contract_test!(a_phone_number_in_any_accepted_format_names_its_contact);

async fn a_plus_sign_left_unencoded_in_the_path_stays_a_plus_sign() {
    let app = TestApp::spawn().await;
    let london = app
        .given_contact(json!({"email": "jane+news@example.com", "phone_number": "+442079460958"}))
        .await;

    let by_phone = app
        .request(
            Method::GET,
            "/api/v1/contacts/alt:phone_number:+442079460958",
            None,
        )
        .await;
    let by_email = app
        .request(
            Method::GET,
            "/api/v1/contacts/alt:email:jane+news@example.com",
            None,
        )
        .await;

    by_phone.assert_status(200);
    assert_eq!(by_phone.body, london);
    by_email.assert_status(200);
    assert_eq!(by_email.body, london);
}
contract_test!(a_plus_sign_left_unencoded_in_the_path_stays_a_plus_sign);

async fn an_unknown_contact_is_not_found() {
    let app = TestApp::spawn().await;
    given_jane(&app).await;

    for id in [
        Uuid::now_v7().to_string(),
        "alt:email:nobody@example.com".to_owned(),
        "alt:ext_id:nobody".to_owned(),
        "alt:phone_number:+442079460958".to_owned(),
    ] {
        let response = app.get_contact(&id).await;
        response.assert_error(404, "contact_not_found");
        assert_eq!(response.body["error"], 404);
    }
}
contract_test!(an_unknown_contact_is_not_found);

async fn a_malformed_identifier_is_refused() {
    let app = TestApp::spawn().await;
    given_jane(&app).await;

    for id in [
        "nope",
        "jane@example.com",
        "alt:foo:x",
        "alt:email:",
        "alt:ext_id:",
        "alt:email",
        "alt:email:not-an-email",
        "alt:phone_number:+1234567890",
        "0192f3a47b1c7d2e9f001234567890ab",
        "{0192f3a4-7b1c-7d2e-9f00-1234567890ab}",
    ] {
        app.get_contact(id)
            .await
            .assert_error(400, "invalid_identifier");
        app.delete_contact(id)
            .await
            .assert_error(400, "invalid_identifier");
    }
    assert_eq!(
        app.list_contacts("").await.body["data"]["contacts"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
}
contract_test!(a_malformed_identifier_is_refused);

async fn another_companys_contact_can_be_neither_fetched_nor_deleted() {
    let app = TestApp::spawn().await;
    let jane = given_jane(&app).await;
    let other_key = app.other_company_key().await;
    let path = contact_path(id_of(&jane));

    let fetched = app.request_as(&other_key, Method::GET, &path, None).await;
    let deleted = app
        .request_as(&other_key, Method::DELETE, &path, None)
        .await;

    fetched.assert_error(404, "contact_not_found");
    deleted.assert_error(404, "contact_not_found");
    assert_eq!(app.get_contact(id_of(&jane)).await.body, jane);
}
contract_test!(another_companys_contact_can_be_neither_fetched_nor_deleted);

async fn a_deleted_contact_is_gone() {
    let app = TestApp::spawn().await;
    let jane = given_jane(&app).await;
    let john = app
        .given_contact(json!({"email": "john@example.com"}))
        .await;

    let response = app.delete_contact(id_of(&jane)).await;

    response.assert_status(200);
    assert_eq!(response.body, json!({"id": jane["id"], "deleted": true}));
    app.get_contact(id_of(&jane))
        .await
        .assert_error(404, "contact_not_found");
    app.delete_contact(id_of(&jane))
        .await
        .assert_error(404, "contact_not_found");
    let listed = app.list_contacts("").await;
    assert_eq!(listed.body["data"]["contacts"], json!([john]));
}
contract_test!(a_deleted_contact_is_gone);

async fn a_contact_can_be_deleted_by_any_alternate_identifier() {
    let app = TestApp::spawn().await;
    let by_email = app
        .given_contact(json!({"email": "jane@example.com"}))
        .await;
    let by_phone = app
        .given_contact(json!({"phone_number": "+14155552671"}))
        .await;
    let by_ext_id = app.given_contact(json!({"ext_id": "crm/42 b"})).await;

    for (contact, id) in [
        (&by_email, "alt:email:Jane@Example.com"),
        (&by_phone, "alt:phone_number:(415) 555-2671"),
        (&by_ext_id, "alt:ext_id:crm/42 b"),
    ] {
        let response = app.delete_contact(id).await;
        response.assert_status(200);
        assert_eq!(
            response.body,
            json!({"id": contact["id"], "deleted": true}),
            "{id}"
        );
        app.get_contact(id_of(contact))
            .await
            .assert_error(404, "contact_not_found");
    }
    assert_eq!(
        app.list_contacts("").await.body["data"]["contacts"],
        json!([])
    );
}
contract_test!(a_contact_can_be_deleted_by_any_alternate_identifier);

async fn a_deleted_contacts_identifiers_are_free_for_reuse_at_once() {
    let app = TestApp::spawn().await;
    app.given_field("plan", "select", Some(&["free", "pro"]))
        .await;
    let old = app
        .given_contact(json!({
            "email": "jane@example.com",
            "phone_number": "+14155552671",
            "ext_id": "crm-42",
            "custom_fields": [{"key": "plan", "value": "pro"}],
        }))
        .await;
    let old_id = Uuid::parse_str(id_of(&old)).expect("a UUID");
    let stored_id = match app.database.backend {
        Backend::Sqlite => format!("X'{}'", old_id.simple().to_string().to_uppercase()),
        Backend::Postgres => old_id.to_string(),
    };
    assert!(
        app.dump().await.contains(&stored_id),
        "the dump shows ids as stored"
    );

    app.delete_contact(id_of(&old)).await.assert_status(200);
    let new = app
        .create_contact(json!({
            "email": "JANE@example.com",
            "phone_number": 4155552671_u64,
            "ext_id": "crm-42",
        }))
        .await;

    new.assert_status(200);
    assert_ne!(new.body["id"], old["id"]);
    assert_eq!(new.body["email"], "jane@example.com");
    assert_eq!(new.body["phone_number"], "+14155552671");
    assert_eq!(new.body["ext_id"], "crm-42");
    assert_eq!(
        new.body["custom_fields"],
        json!([]),
        "no value outlives its contact"
    );
    // Only its history keeps it, until the event retention.
    let dump = app.database.dump_of_data().await;
    assert!(
        !dump.contains(&stored_id),
        "no row of the deleted contact is left: {dump}"
    );
}
contract_test!(a_deleted_contacts_identifiers_are_free_for_reuse_at_once);
