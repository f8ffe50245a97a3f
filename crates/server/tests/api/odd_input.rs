//! Odd input is never a 500 (`docs/robustness.md`, "Errors in the shape, whatever the
//! input"): a NUL, bytes that are not UTF-8, or a lone surrogate in a dashboard form or
//! address, an API query string or a JSON string is refused, and nothing is written.

use axum::body::Body;
use axum::http::{Request, header};

use crate::helpers::{DashboardUser, TestApp, TestResponse, contract_test};

const EMAIL: &str = "ann@example.com";
const PASSWORD: &str = "correct horse battery";

/// Percent-encoded values no input may hold: a NUL alone and inside text, bytes that are
/// not UTF-8, and a UTF-16 surrogate encoded as UTF-8 (which UTF-8 forbids).
const ODD_VALUES: [&str; 5] = ["%00", "a%00b", "%FF", "caf%C3", "%ED%A0%80"];

/// Asserts a refusal: a 400, never a 500, on a page or in the error shape (docs/reference.md#the-error-body).
#[track_caller]
fn assert_refused(response: &TestResponse, what: &str) {
    assert_eq!(
        response.status.as_u16(),
        400,
        "{what} must be refused; body: {}",
        response.text
    );
}

/// Posts a raw form body as a signed-in browser would, with the session's CSRF token.
async fn post_raw(app: &TestApp, user: &DashboardUser<'_>, path: &str, body: &str) -> TestResponse {
    app.send(
        Request::post(path)
            .header(header::COOKIE, &user.cookie)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(format!("{body}&csrf_token={}", user.csrf)))
            .expect("valid request"),
    )
    .await
}

contract_test!(odd_bytes_in_a_dashboard_address_or_form_are_refused_and_change_nothing);
async fn odd_bytes_in_a_dashboard_address_or_form_are_refused_and_change_nothing() {
    let app = TestApp::spawn().await;
    app.given_user(app.company_id, EMAIL, PASSWORD).await;
    app.given_field("plan", "select", Some(&["free"])).await;
    let contact = app
        .given_contact(serde_json::json!({"email": "ada@example.com", "first_name": "Ada"}))
        .await;
    let contact_path = format!("/dashboard/contacts/{}", contact["id"].as_str().unwrap());
    let user = app.log_in(EMAIL, PASSWORD).await;
    let before = app.dump().await;

    for odd in ODD_VALUES {
        for address in [
            format!("/dashboard/contacts?q={odd}"),
            format!("/dashboard/contacts?q=Ada{odd}"),
            format!("/dashboard/contacts?after={odd}"),
            format!("/dashboard/fields?done={odd}"),
            format!("/dashboard/keys?done={odd}"),
            format!("{contact_path}?done={odd}"),
        ] {
            assert_refused(&user.get(&address).await, &address);
        }
        for (path, body) in [
            ("/dashboard/keys", format!("name={odd}")),
            ("/dashboard/keys", format!("name=deploy{odd}")),
            (
                "/dashboard/fields",
                format!("key=tier&display_name=Tier{odd}&type=text&options="),
            ),
            (
                "/dashboard/fields",
                format!("key=tier&display_name=Tier&type=select&options=gold{odd}"),
            ),
            (
                "/dashboard/fields/plan",
                format!("display_name=Plan{odd}&new_options="),
            ),
            (
                "/dashboard/fields/plan",
                format!("display_name=Plan&new_options={odd}"),
            ),
            ("/dashboard/contacts", format!("email=bob{odd}@example.com")),
            (
                "/dashboard/contacts",
                format!("email=bob@example.com&first_name={odd}"),
            ),
            (contact_path.as_str(), format!("first_name=Ada{odd}")),
            (contact_path.as_str(), format!("field.plan={odd}")),
            (contact_path.as_str(), format!("shown.first_name={odd}")),
        ] {
            let response = post_raw(&app, &user, path, &body).await;
            assert_refused(&response, &format!("POST {path} {body}"));
        }
    }
    assert_eq!(app.dump().await, before, "nothing was written");
}

contract_test!(odd_bytes_in_the_login_form_are_refused_and_change_nothing);
async fn odd_bytes_in_the_login_form_are_refused_and_change_nothing() {
    let app = TestApp::spawn().await;
    app.given_user(app.company_id, EMAIL, PASSWORD).await;
    let before = app.dump().await;
    for odd in ODD_VALUES {
        for fields in [
            format!("email=ann{odd}%40example.com&password=x"),
            format!("email=ann%40example.com&password={odd}"),
        ] {
            let (page, cookie) = app.login_page().await;
            let csrf = crate::helpers::csrf_token_in(&page.text).expect("a login token");
            let response = app
                .send(
                    Request::post("/dashboard/login")
                        .header(header::COOKIE, &cookie)
                        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                        .body(Body::from(format!("{fields}&csrf_token={csrf}")))
                        .expect("valid request"),
                )
                .await;
            assert_refused(&response, &fields);
        }
    }
    assert_eq!(app.dump().await, before, "no failed login was even counted");
}

/// Sends a raw JSON body with the app's key.
async fn send_json(app: &TestApp, method: &str, path: &str, json: &str) -> TestResponse {
    app.send(
        Request::builder()
            .method(method)
            .uri(path)
            .header(header::AUTHORIZATION, format!("Bearer {}", app.key))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(json.to_owned()))
            .expect("valid request"),
    )
    .await
}

contract_test!(a_lone_surrogate_in_a_json_string_or_odd_bytes_in_a_query_are_refused);
async fn a_lone_surrogate_in_a_json_string_or_odd_bytes_in_a_query_are_refused() {
    let app = TestApp::spawn().await;
    app.given_field("plan", "select", Some(&["free"])).await;
    app.given_contact(serde_json::json!({"ext_id": "crm-1"}))
        .await;
    // The key's first use is recorded; later ones in the same minute write nothing.
    let before = app.dump().await;
    for surrogate in [r"\ud800", r"\udfff", r"a\ud800b", r"\udc00\ud800"] {
        for (method, path, json) in [
            (
                "POST",
                "/api/v1/custom-fields",
                format!(r#"{{"key": "tier", "display_name": "{surrogate}", "type": "text"}}"#),
            ),
            (
                "POST",
                "/api/v1/custom-fields",
                format!(
                    r#"{{"key": "tier", "display_name": "Tier", "type": "select", "options": ["{surrogate}"]}}"#
                ),
            ),
            (
                "PATCH",
                "/api/v1/custom-fields/plan",
                format!(r#"{{"options": ["free", "{surrogate}"]}}"#),
            ),
            (
                "POST",
                "/api/v1/contacts",
                format!(r#"{{"ext_id": "crm-2", "first_name": "{surrogate}"}}"#),
            ),
            (
                "POST",
                "/api/v1/contacts",
                format!(r#"{{"ext_id": "{surrogate}"}}"#),
            ),
            (
                "PATCH",
                "/api/v1/contacts",
                format!(r#"{{"id": "alt:ext_id:crm-1", "last_name": "{surrogate}"}}"#),
            ),
        ] {
            let response = send_json(&app, method, path, &json).await;
            response.assert_status(400);
            assert!(
                response.body["code"].is_string(),
                "{method} {path} {json}: {}",
                response.text
            );
        }
    }
    for odd in ODD_VALUES {
        for query in [
            format!("limit={odd}"),
            format!("cursor={odd}"),
            format!("{odd}=1"),
        ] {
            // Each parameter's own parser refuses it, naming the parameter.
            let response = app.list_contacts(&format!("?{query}")).await;
            response.assert_status(400);
            assert!(
                response.body["code"].is_string(),
                "{query}: {}",
                response.text
            );
        }
    }
    assert_eq!(app.dump().await, before, "nothing was written");
}
