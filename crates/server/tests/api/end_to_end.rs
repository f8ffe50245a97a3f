//! The real `contactd` binary on a free port, driven through the typed client crate.

use contactd_api::{
    CreateContact, CreateCustomField, CustomFieldChanges, CustomFieldInput, FieldType,
    PhoneNumberInput, UpdateContact, UpdateCustomField,
};
use contactd_client::{Client, Error};
use serde_json::json;

use crate::helpers::{ServerProcess, admin};

/// A database with a company and a key made by the admin CLI, and a server on it.
fn started_server() -> (tempfile::TempDir, ServerProcess, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let database_url = format!("sqlite://{}", dir.path().join("e2e.db").display());
    admin(&database_url, &["company", "create", "acme"]);
    let key = admin(&database_url, &["key", "create", "--company", "acme"])
        .trim()
        .to_owned();
    let server = ServerProcess::start(&database_url, &[]);
    (dir, server, key)
}

#[tokio::test]
async fn a_client_walks_the_whole_api_against_a_real_server() {
    let (_dir, server, key) = started_server();
    let client = Client::new(&server.base_url, &key);
    client.health().await.expect("alive");
    client.ready().await.expect("ready");

    let field = client
        .create_custom_field(&CreateCustomField {
            key: "plan".to_owned(),
            display_name: "Plan".to_owned(),
            field_type: FieldType::Select,
            options: Some(vec!["free".to_owned(), "pro".to_owned()]),
        })
        .await
        .expect("field created");
    assert_eq!(
        field.options,
        Some(vec!["free".to_owned(), "pro".to_owned()])
    );

    let created = client
        .create_contact(&CreateContact {
            email: Some("Jane@Example.com".to_owned()),
            phone_number: Some(PhoneNumberInput::from(4_155_552_671)),
            first_name: Some("Jane".to_owned()),
            ..CreateContact::default()
        })
        .await
        .expect("contact created");
    assert_eq!(created.email.as_deref(), Some("jane@example.com"));
    assert_eq!(created.phone_number.as_deref(), Some("+14155552671"));

    let updated = client
        .update_contact(&UpdateContact {
            id: Some("alt:email:JANE@example.com".to_owned()),
            first_name: Some(Some("Janet".to_owned())),
            ext_id: Some(Some("crm/42".to_owned())),
            custom_fields: Some(CustomFieldChanges {
                set: vec![CustomFieldInput {
                    key: "plan".to_owned(),
                    value: json!("pro"),
                }],
                remove: Vec::new(),
            }),
            ..UpdateContact::default()
        })
        .await
        .expect("contact updated");
    assert_eq!(updated.id, created.id);
    assert_eq!(updated.first_name.as_deref(), Some("Janet"));
    assert_eq!(updated.custom_fields[0].value, json!("pro"));

    let fetched = client
        .get_contact("alt:ext_id:crm/42")
        .await
        .expect("fetched by an ext_id with a slash");
    assert_eq!(fetched, updated);

    let cleared = client
        .update_contact_at(
            &created.id.to_string(),
            &UpdateContact {
                first_name: Some(None),
                ..UpdateContact::default()
            },
        )
        .await
        .expect("updated by path");
    assert_eq!(cleared.first_name, None);

    // A read-modify-write cycle with If-Match: a stale version is refused, the current
    // one writes.
    let tagged = client
        .get_contact_tagged(&created.id.to_string())
        .await
        .expect("fetched with its ETag");
    assert_eq!(tagged.value, cleared);
    let rename = UpdateContact {
        id: Some(created.id.to_string()),
        last_name: Some(Some("Doe".to_owned())),
        ..UpdateContact::default()
    };
    let renamed_contact = client
        .update_contact_if_match(&rename, &tagged.etag)
        .await
        .expect("written at its version");
    assert_ne!(renamed_contact.etag, tagged.etag);
    match client.update_contact_if_match(&rename, &tagged.etag).await {
        Err(Error::Api(body)) => assert_eq!(body.code.as_deref(), Some("precondition_failed")),
        other => panic!("a stale version is refused: {other:?}"),
    }

    let page = client.list_contacts(Some(10), None).await.expect("listed");
    assert_eq!(page.data.contacts.len(), 1);
    assert_eq!(page.next_cursor, None);

    let renamed = client
        .update_custom_field(
            "plan",
            &UpdateCustomField {
                display_name: Some("Pricing plan".to_owned()),
                options: None,
            },
        )
        .await
        .expect("field renamed");
    assert_eq!(renamed.display_name, "Pricing plan");
    assert_eq!(
        client
            .list_custom_fields()
            .await
            .expect("fields")
            .data
            .custom_fields,
        vec![renamed.clone()]
    );
    assert_eq!(
        client.get_custom_field("plan").await.expect("field"),
        renamed
    );

    // The field's rename changed the contact object, so the version read before is stale.
    let phone = "alt:phone_number:+1 415 555 2671";
    match client
        .delete_contact_if_match(phone, &renamed_contact.etag)
        .await
    {
        Err(Error::Api(body)) => assert_eq!(body.code.as_deref(), Some("precondition_failed")),
        other => panic!("a stale version is refused: {other:?}"),
    }
    let current = client.get_contact_tagged(phone).await.expect("fetched");
    let deleted = client
        .delete_contact_if_match(phone, &current.etag)
        .await
        .expect("deleted");
    assert!(deleted.deleted);
    assert_eq!(deleted.id, created.id);
    client
        .delete_custom_field("plan")
        .await
        .expect("field deleted");
}

#[tokio::test]
async fn api_errors_reach_the_client_as_typed_error_bodies() {
    let (_dir, server, key) = started_server();
    let client = Client::new(&server.base_url, &key);
    let refused = client
        .create_contact(&CreateContact {
            phone_number: Some(PhoneNumberInput::from("+1234567890")),
            ..CreateContact::default()
        })
        .await
        .expect_err("invalid phone number");
    let Error::Api(body) = refused else {
        panic!("expected an API error, got {refused:?}");
    };
    assert_eq!(body.error, 400);
    assert_eq!(body.code.as_deref(), Some("invalid_phone_number"));
    assert_eq!(body.field.as_deref(), Some("phone_number"));

    let unauthorized = Client::new(&server.base_url, "cd_not-a-key")
        .list_contacts(None, None)
        .await
        .expect_err("unknown key");
    assert!(matches!(unauthorized, Error::Api(body) if body.error == 401));

    let missing = client
        .get_contact("alt:email:nobody@example.com")
        .await
        .expect_err("no such contact");
    assert!(
        matches!(missing, Error::Api(body) if body.code.as_deref() == Some("contact_not_found"))
    );
}

#[tokio::test]
async fn the_server_log_has_one_line_per_request_and_never_a_key_or_a_body() {
    let (_dir, server, key) = started_server();
    let client = Client::new(&server.base_url, &key);
    let marker = "body-marker-6c1f@example.com";
    client
        .create_contact(&CreateContact {
            email: Some(marker.to_owned()),
            ..CreateContact::default()
        })
        .await
        .expect("created");
    client
        .get_contact(&format!("alt:email:{marker}"))
        .await
        .expect("fetched");
    let wrong_key = format!("{key}x");
    Client::new(&server.base_url, &wrong_key)
        .list_contacts(None, None)
        .await
        .expect_err("refused");

    // Give the server a moment to flush the line of the last request.
    std::thread::sleep(std::time::Duration::from_millis(200));
    let log = server.log();
    let secret = key.trim_start_matches("cd_");
    assert!(!log.contains(secret), "the log holds an API key:\n{log}");
    assert!(!log.contains(marker), "the log holds request data:\n{log}");
    let request_lines: Vec<&str> = log
        .lines()
        .filter(|line| line.contains("contactd::http") && line.contains("status="))
        .collect();
    assert_eq!(request_lines.len(), 3, "one line per request:\n{log}");
    for line in &request_lines {
        for part in ["method=", "route=", "request_id=", "latency="] {
            assert!(line.contains(part), "{part} missing from {line}");
        }
    }
    assert!(request_lines[1].contains(r#"route="/api/v1/contacts/{id}""#));
    assert!(request_lines[2].contains("status=401"));
}
