//! Percent-encoding tricks, dot segments and case games in a path: each resolves to the
//! contact it names, or to none.

use axum::http::Method;
use serde_json::json;

use super::{Attempt, Seeded, Snapshot, assert_all_refused, at_every_route_of, request, seeded};
use crate::helpers::contract_test;

async fn a_percent_encoding_trick_in_a_path_resolves_only_to_the_contact_it_names() {
    let Seeded { app, jane, .. } = seeded().await;
    let jane_id = jane["id"].as_str().unwrap();
    let mut ids = std::collections::HashMap::new();
    ids.insert("crm-1", jane_id.to_owned());
    for (ext_id, email) in [
        ("a/b", None),
        ("%2F", None),
        ("a b", None),
        ("a+b", None),
        ("a:b", None),
        ("plus", Some("j+x@example.com")),
    ] {
        let contact = app
            .given_contact(json!({"ext_id": ext_id, "email": email}))
            .await;
        ids.insert(ext_id, contact["id"].as_str().unwrap().to_owned());
    }
    let encoded_id: String = jane_id.bytes().map(|byte| format!("%{byte:02x}")).collect();
    let upper_id = jane_id.to_uppercase();
    let resolving = [
        ("alt:ext_id:a%2Fb", "a/b"),
        ("alt:ext_id:a%2fb", "a/b"),
        ("alt%3Aext_id%3Aa%2Fb", "a/b"),
        ("alt%3aext_id%3acrm-1", "crm-1"),
        ("alt:ext_id:crm%2D1", "crm-1"),
        ("alt:ext_id:%252F", "%2F"),
        ("alt:ext_id:a+b", "a+b"),
        ("alt:ext_id:a%2Bb", "a+b"),
        ("alt:ext_id:a%20b", "a b"),
        ("alt:ext_id:a:b", "a:b"),
        ("alt:ext_id:a%3Ab", "a:b"),
        ("alt:email:JANE%40Example.COM", "crm-1"),
        ("alt:email:j+x@example.com", "plus"),
        ("alt:email:j%2Bx@example.com", "plus"),
        ("alt:phone_number:+14155552671", "crm-1"),
        ("alt:phone_number:%2B14155552671", "crm-1"),
        ("alt:phone_number:%2B1%20(415)%20555-2671", "crm-1"),
        (&upper_id, "crm-1"),
        (&encoded_id, "crm-1"),
    ];
    let before = Snapshot::take(&app).await;
    for (segment, ext_id) in resolving {
        let path = format!("/api/v1/contacts/{segment}");
        for (method, body) in [(Method::GET, None), (Method::PATCH, Some(b"{}".as_slice()))] {
            let response = app.send(request(&app, method.clone(), &path, body)).await;
            response.assert_status(200);
            assert_eq!(
                response.body["id"],
                json!(ids[ext_id]),
                "{method} {path} must name {ext_id:?}"
            );
        }
    }
    before
        .assert_unchanged(&app, "fetching and empty updates")
        .await;

    let mut attempts = Vec::new();
    for segment in [
        "alt:ext_id:a%252Fb",
        "alt:ext_id:%252f",
        "alt:ext_id:a%2520b",
        "alt:ext_id:a%252Bb",
        "alt:ext_id:..%2Fx",
        "alt:ext_id:..%2F..%2Fcustom-fields%2Fplan",
        "alt:ext_id:a%2Fb%2F",
        "alt:ext_id:%2Fa%2Fb",
        "alt:ext_id:crm-1%3F",
        "alt:ext_id:crm-1%23",
        "alt:ext_id:crm-1;x=1",
        "alt:ext_id:%",
        "alt:ext_id:%zz",
        "alt:ext_id:crm-1%2",
        "alt:ext_id:CRM-1",
        "alt:ext_id:crm-1%20",
        "alt:ext_id:%20crm-1",
        "alt:ext_id:a%09b",
    ] {
        attempts.extend(at_every_route_of(
            &app,
            "contacts",
            segment,
            404,
            Some("contact_not_found"),
        ));
    }
    for segment in [
        "..",
        ".",
        "%2E%2E",
        "%2e",
        "..%2F..%2Fcustom-fields",
        "alt%253Aext_id%253Acrm-1",
        "alt:email:jane%2540example.com",
        "alt:email:j%20x%40example.com",
        "alt:phone_number:+1+415+555+2671",
        "alt:ext_id%2Fcrm-1",
        "ALT:ext_id:crm-1",
        "alt:EXT_ID:crm-1",
        "alt%3Aext_id%3A",
        "%7B{JANE}%7D",
        "{JANE}%20",
        "%20{JANE}",
        "{JANE}%2F",
    ] {
        let segment = segment.replace("{JANE}", jane_id);
        attempts.extend(at_every_route_of(
            &app,
            "contacts",
            &segment,
            400,
            Some("invalid_identifier"),
        ));
    }
    for path in [
        "/api/v1/contacts/alt:ext_id:a/b".to_owned(),
        "/api/v1/contacts/alt:ext_id:crm-1/".to_owned(),
        "/api/v1/contacts//alt:ext_id:crm-1".to_owned(),
        "/api/v1/contacts/../custom-fields/plan".to_owned(),
        "/api/v1/contacts/%2E%2E/custom-fields/plan".to_owned(),
        "/api/v1/custom-fields/../contacts/alt:ext_id:crm-1".to_owned(),
        format!("/api/v1/contacts/{jane_id}/.."),
        "/api/v1%2Fcontacts%2Falt:ext_id:crm-1".to_owned(),
        "/api/v1/contacts%2Falt:ext_id:crm-1".to_owned(),
        "/api/v1/custom-fields%2Fplan".to_owned(),
        "/api/v1/custom-fields/plan/".to_owned(),
    ] {
        for method in [Method::GET, Method::PATCH, Method::DELETE] {
            let body =
                (method == Method::PATCH).then_some(br#"{"first_name": "Mallory"}"#.as_slice());
            attempts.push(Attempt::refused(
                format!("{method} {path}"),
                request(&app, method, &path, body),
                404,
                Some("route_not_found"),
            ));
        }
    }
    for segment in [
        "PLAN",
        "plan%2F..",
        "pl%C3%A0n",
        "plan%20",
        "%20plan",
        "..",
        "plan:x",
    ] {
        attempts.extend(at_every_route_of(
            &app,
            "custom-fields",
            segment,
            400,
            Some("invalid_custom_field_key"),
        ));
    }
    assert_all_refused(&app, attempts).await;

    for segment in ["pl%61n", "%70lan", "pl%61%6E"] {
        let response = app
            .request(
                Method::GET,
                &format!("/api/v1/custom-fields/{segment}"),
                None,
            )
            .await;
        response.assert_status(200);
        assert_eq!(response.body["key"], json!("plan"), "{segment}");
    }
}
contract_test!(a_percent_encoding_trick_in_a_path_resolves_only_to_the_contact_it_names);
