//! The dashboard through the real router: signing in and out, the login throttle, CSRF on
//! every form, tenant isolation, and each page's forms giving the API's own answers; a
//! webhook endpoint's secret shown once and its deliveries made by a real deliverer.

use axum::body::Body;
use axum::http::{Method, Request, header};
use serde_json::json;

use crate::helpers::{
    Answer, DashboardUser, Receiver, TestApp, contract_test, csrf_token_in, input_error,
    set_cookie, unescape_html,
};

const EMAIL: &str = "ann@example.com";
const PASSWORD: &str = "correct horse battery";

/// An app with a dashboard user in its company.
async fn app_with_user() -> TestApp {
    let app = TestApp::spawn().await;
    app.given_user(app.company_id, EMAIL, PASSWORD).await;
    app
}

/// Where a redirect leads, without its query.
fn location(response: &crate::helpers::TestResponse) -> &str {
    let location = response.headers[header::LOCATION]
        .to_str()
        .expect("ASCII location");
    location.split('?').next().unwrap_or(location)
}

/// The sentence saying what a form did, on the page it redirected to.
async fn notice_after(user: &DashboardUser<'_>, response: &crate::helpers::TestResponse) -> String {
    response.assert_status(303);
    let target = response.headers[header::LOCATION]
        .to_str()
        .unwrap()
        .to_owned();
    let page = user.get(&target).await;
    page.assert_status(200);
    let (_, rest) = page
        .text
        .split_once(r#"id="notice">"#)
        .unwrap_or_else(|| panic!("{target} says what was done"));
    unescape_html(rest.split("</p>").next().unwrap())
}

contract_test!(a_user_logs_in_and_out);
async fn a_user_logs_in_and_out() {
    let app = app_with_user().await;
    let anonymous = app
        .send(
            Request::get("/dashboard/contacts")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    anonymous.assert_status(303);
    assert_eq!(location(&anonymous), "/dashboard/login");

    for (email, password) in [(EMAIL, "wrong password"), ("bob@example.com", PASSWORD)] {
        let refused = app.submit_login(email, password).await;
        refused.assert_status(401);
        assert!(refused.text.contains("Wrong email or password."));
        assert!(set_cookie(&refused, "contactd_session").is_none());
    }

    let response = app.submit_login("  ANN@example.com ", PASSWORD).await;
    response.assert_status(303);
    let cookie = set_cookie(&response, "contactd_session").unwrap();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain HTTP: {cookie}");

    let user = app.log_in(EMAIL, PASSWORD).await;
    let page = user.get("/dashboard/contacts").await;
    page.assert_status(200);
    assert!(page.text.contains("acme") && page.text.contains(EMAIL));
    let signed_in = user.get("/dashboard/login").await;
    signed_in.assert_status(303);
    assert_eq!(location(&signed_in), "/dashboard");

    let logout = user.post("/dashboard/logout", &[]).await;
    logout.assert_status(303);
    assert_eq!(location(&logout), "/dashboard/login");
    let cleared = set_cookie(&logout, "contactd_session").unwrap();
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    // The session is gone from the database: the old cookie opens nothing.
    let after = user.get("/dashboard/contacts").await;
    after.assert_status(303);
    assert_eq!(location(&after), "/dashboard/login");
}

contract_test!(a_new_password_or_a_deleted_user_ends_every_session);
async fn a_new_password_or_a_deleted_user_ends_every_session() {
    let app = app_with_user().await;
    let first = app.log_in(EMAIL, PASSWORD).await;
    let second = app.log_in(EMAIL, PASSWORD).await;
    for _ in 0..5 {
        app.submit_login(EMAIL, "wrong password")
            .await
            .assert_status(401);
    }
    let email = contactd::domain::Email::parse(EMAIL).unwrap();
    let new_password = "a brand new passphrase";
    let hash = contactd::password::Password::parse(new_password)
        .unwrap()
        .hash();
    app.store.set_password(&email, &hash).await.unwrap();
    for session in [&first, &second] {
        session.get("/dashboard/contacts").await.assert_status(303);
    }
    app.submit_login(EMAIL, PASSWORD).await.assert_status(401);
    let third = app.log_in(EMAIL, new_password).await;
    let users = app.store.list_users(app.company_id).await.unwrap();
    assert_eq!(users.len(), 1);
    assert_eq!(users[0].email, EMAIL);

    app.store.delete_user(&email).await.unwrap();
    third.get("/dashboard/contacts").await.assert_status(303);
    app.submit_login(EMAIL, new_password)
        .await
        .assert_status(401);
    assert!(matches!(
        app.store.delete_user(&email).await,
        Err(contactd::store::StoreError::NotFound)
    ));
    assert!(matches!(
        app.store.set_password(&email, &hash).await,
        Err(contactd::store::StoreError::NotFound)
    ));
}

contract_test!(the_session_cookie_is_secure_behind_an_https_proxy);
async fn the_session_cookie_is_secure_behind_an_https_proxy() {
    let app = app_with_user().await;
    let (page, login_cookie) = app.login_page().await;
    let csrf = csrf_token_in(&page.text).unwrap();
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("email", EMAIL),
            ("password", PASSWORD),
            ("csrf_token", &csrf),
        ])
        .finish();
    let response = app
        .send(
            Request::post("/dashboard/login")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .header(header::COOKIE, login_cookie)
                .header("x-forwarded-proto", "https")
                .body(Body::from(body))
                .unwrap(),
        )
        .await;
    response.assert_status(303);
    let cookie = set_cookie(&response, "contactd_session").unwrap();
    assert!(cookie.contains("Secure"), "{cookie}");
}

contract_test!(a_form_without_its_csrf_token_is_refused_and_changes_nothing);
async fn a_form_without_its_csrf_token_is_refused_and_changes_nothing() {
    let app = app_with_user().await;
    let user = app.log_in(EMAIL, PASSWORD).await;
    let before = app.dump().await;
    let field = [("key", "plan"), ("display_name", "Plan"), ("type", "text")];
    let missing = user.post_without_csrf("/dashboard/fields", &field).await;
    missing.assert_status(403);
    assert!(missing.text.contains("This form has expired"));
    assert!(missing.text.contains(EMAIL), "signed-in navigation");
    let mut forged = field.to_vec();
    forged.push(("csrf_token", "0000"));
    user.post_without_csrf("/dashboard/fields", &forged)
        .await
        .assert_status(403);
    user.post_without_csrf("/dashboard/logout", &[])
        .await
        .assert_status(403);
    assert_eq!(app.dump().await, before, "a refused form writes nothing");
    user.get("/dashboard/contacts").await.assert_status(200);

    // The login form's own token: no login without the cookie the login page set.
    let (page, _cookie) = app.login_page().await;
    let csrf = csrf_token_in(&page.text).unwrap();
    app.post_form(
        "/dashboard/login",
        None,
        &[
            ("email", EMAIL),
            ("password", PASSWORD),
            ("csrf_token", &csrf),
        ],
    )
    .await
    .assert_status(403);
}

contract_test!(repeated_failed_logins_hold_the_account_back_for_a_while);
async fn repeated_failed_logins_hold_the_account_back_for_a_while() {
    let app = app_with_user().await;
    for _ in 0..5 {
        app.submit_login(EMAIL, "wrong password")
            .await
            .assert_status(401);
    }
    let held = app.submit_login(EMAIL, PASSWORD).await;
    held.assert_status(429);
    assert!(
        held.text
            .contains("Too many failed logins with this email address. Try again in 15 minutes."),
        "{}",
        held.text
    );
    // Fifteen minutes later the right password works, and clears the count.
    app.database
        .execute("UPDATE login_attempts SET window_started_at = window_started_at - 900001")
        .await;
    app.submit_login(EMAIL, PASSWORD).await.assert_status(303);
    app.submit_login(EMAIL, "wrong password")
        .await
        .assert_status(401);
    app.submit_login(EMAIL, PASSWORD).await.assert_status(303);
}

contract_test!(a_user_of_one_company_cannot_reach_another_companys_data);
async fn a_user_of_one_company_cannot_reach_another_companys_data() {
    let app = app_with_user().await;
    app.given_field("plan", "select", Some(&["free", "pro"]))
        .await;
    let contact = app
        .given_contact(
            json!({"email": "ada@example.com", "custom_fields": [{"key": "plan", "value": "pro"}]}),
        )
        .await;
    let id = contact["id"].as_str().unwrap().to_owned();
    let keys = app.store.list_api_keys(app.company_id).await.unwrap();
    let key_id = keys[0].id.to_string();

    let other = app.store.create_company("globex").await.unwrap();
    app.given_user(other.id, "bob@globex.example", PASSWORD)
        .await;
    let bob = app.log_in("bob@globex.example", PASSWORD).await;
    let before = app.dump().await;

    let contact_url = format!("/dashboard/contacts/{id}");
    for path in [
        contact_url.clone(),
        format!("{contact_url}/edit"),
        format!("{contact_url}/delete"),
        "/dashboard/fields/plan".to_owned(),
        "/dashboard/fields/plan/delete".to_owned(),
    ] {
        let page = bob.get(&path).await;
        page.assert_status(404);
        assert!(!page.text.contains("ada@example.com"), "{path}");
        assert!(
            page.text.contains("bob@globex.example"),
            "signed-in navigation"
        );
    }
    bob.post(&contact_url, &[("email", "bob@example.com")])
        .await
        .assert_status(404);
    bob.post(&format!("{contact_url}/delete"), &[])
        .await
        .assert_status(404);
    bob.post("/dashboard/fields/plan/delete", &[])
        .await
        .assert_status(404);
    bob.post(&format!("/dashboard/keys/{key_id}/revoke"), &[])
        .await
        .assert_status(404);
    assert_eq!(app.dump().await, before, "nothing of acme changed");

    let list = bob.get("/dashboard/contacts").await;
    assert!(list.text.contains("No contacts yet."));
    let search = bob.get("/dashboard/contacts?q=ada%40example.com").await;
    assert!(search.text.contains("0 contacts found"));
    let fields = bob.get("/dashboard/fields").await;
    assert!(!fields.text.contains("/dashboard/fields/plan"));
    let keys_page = bob.get("/dashboard/keys").await;
    assert!(!keys_page.text.contains(&keys[0].prefix));
    app.get_contact(&id).await.assert_status(200);
}

/// The sentence the API answers `PATCH /contacts/{id}` with for this body.
async fn api_message(app: &TestApp, id: &str, body: serde_json::Value) -> String {
    let response = app.patch_contact_at(id, body).await;
    assert!(response.status.is_client_error(), "{}", response.text);
    response.body["message"].as_str().unwrap().to_owned()
}

contract_test!(contacts_are_created_edited_found_and_deleted_through_forms);
async fn contacts_are_created_edited_found_and_deleted_through_forms() {
    let app = app_with_user().await;
    app.given_field("plan", "select", Some(&["free", "pro"]))
        .await;
    app.given_field("age", "number", None).await;
    app.given_contact(json!({"email": "taken@example.com"}))
        .await;
    let user = app.log_in(EMAIL, PASSWORD).await;

    let form = user.get("/dashboard/contacts/new").await;
    form.assert_status(200);
    assert!(
        form.text.contains(r#"name="field.plan""#) && form.text.contains(r#"name="field.age""#)
    );
    let created = user
        .post(
            "/dashboard/contacts",
            &[
                ("email", "Ada@Example.com"),
                ("phone_number", "(415) 555-2671"),
                ("ext_id", "crm-1"),
                ("first_name", "Ada"),
                ("last_name", "Lovelace"),
                ("field.plan", "pro"),
                ("field.age", "36"),
            ],
        )
        .await;
    created.assert_status(303);
    let url = location(&created).to_owned();
    let id = url.rsplit('/').next().unwrap().to_owned();
    let stored = app.get_contact(&id).await;
    assert_eq!(stored.body["email"], "ada@example.com");
    assert_eq!(stored.body["phone_number"], "+14155552671");
    assert_eq!(stored.body["custom_fields"][0]["value"], 36);
    assert_eq!(stored.body["custom_fields"][1]["value"], "pro");
    let page = user.get(&url).await;
    for shown in ["Ada Lovelace", "+14155552671", "crm-1", "pro", "36"] {
        assert!(page.text.contains(shown), "{shown}");
    }

    // Refused edits show the API's own sentence at the input, and change nothing.
    let before = app.dump().await;
    let edit = |phone: &'static str, age: &'static str, email: &'static str| {
        [
            ("email", email),
            ("phone_number", phone),
            ("ext_id", "crm-1"),
            ("first_name", "Ada"),
            ("last_name", "Lovelace"),
            ("field.plan", "pro"),
            ("field.age", age),
        ]
    };
    let bad_phone = user.post(&url, &edit("12", "36", "ada@example.com")).await;
    bad_phone.assert_status(400);
    assert_eq!(
        input_error(&bad_phone.text, "phone_number").unwrap(),
        api_message(&app, &id, json!({"phone_number": "12"})).await
    );
    assert!(
        bad_phone.text.contains(r#"value="12""#),
        "the form keeps what was typed"
    );
    let bad_age = user
        .post(&url, &edit("(415) 555-2671", "old", "ada@example.com"))
        .await;
    bad_age.assert_status(400);
    assert_eq!(
        input_error(&bad_age.text, "field.age").unwrap(),
        api_message(
            &app,
            &id,
            json!({"custom_fields": {"set": [{"key": "age", "value": "old"}]}})
        )
        .await
    );
    // Every problem of one submit is shown at once, each at its input; the API answers
    // the first alone.
    let all_bad = user.post(&url, &edit("12", "old", "not-an-email")).await;
    all_bad.assert_status(400);
    for input in ["email", "phone_number", "field.age"] {
        assert!(
            input_error(&all_bad.text, input).is_some(),
            "{input}: {}",
            all_bad.text
        );
    }
    assert_eq!(all_bad.text.matches("<li><a href=\"#input-").count(), 3);
    let api = app
        .patch_contact_at(
            &id,
            json!({"email": "not-an-email", "phone_number": "12",
            "custom_fields": {"set": [{"key": "age", "value": "old"}]}}),
        )
        .await;
    api.assert_error(400, "invalid_custom_field_value");
    let taken = user
        .post(&url, &edit("(415) 555-2671", "36", "taken@example.com"))
        .await;
    taken.assert_status(409);
    assert_eq!(
        input_error(&taken.text, "email").unwrap(),
        "another contact already has this email"
    );
    assert_eq!(app.dump().await, before, "refused edits write nothing");

    // Fixed: a new phone number, and the age cleared.
    let saved = user
        .post(&url, &edit("+44 20 7946 0958", "", "ada@example.com"))
        .await;
    assert_eq!(notice_after(&user, &saved).await, "Changes saved.");
    let stored = app.get_contact(&id).await;
    assert_eq!(stored.body["phone_number"], "+442079460958");
    assert_eq!(stored.body["custom_fields"].as_array().unwrap().len(), 1);

    for query in [
        "ADA%40example.com",
        "%2B44%20%2820%29%207946-0958",
        "crm-1",
        "love",
        "ada%20lovelace",
        &id,
    ] {
        let found = user.get(&format!("/dashboard/contacts?q={query}")).await;
        found.assert_status(200);
        assert!(
            found.text.contains("1 contact found"),
            "{query}: {}",
            found.text
        );
        assert!(found.text.contains(&url), "{query}");
    }
    let nothing = user.get("/dashboard/contacts?q=nobody").await;
    assert!(nothing.text.contains("0 contacts found"));

    let confirm = user.get(&format!("{url}/delete")).await;
    confirm.assert_status(200);
    assert!(confirm.text.contains("Delete Ada Lovelace?"));
    let deleted = user.post(&format!("{url}/delete"), &[]).await;
    assert_eq!(location(&deleted), "/dashboard/contacts");
    assert_eq!(notice_after(&user, &deleted).await, "Contact deleted.");
    app.get_contact(&id).await.assert_status(404);
    user.get(&url).await.assert_status(404);
}

contract_test!(the_contact_list_is_newest_first_a_page_at_a_time);
async fn the_contact_list_is_newest_first_a_page_at_a_time() {
    let app = app_with_user().await;
    for index in 0..30 {
        app.given_contact(json!({"ext_id": format!("c{index:02}")}))
            .await;
    }
    let user = app.log_in(EMAIL, PASSWORD).await;
    let first = user.get("/dashboard/contacts").await;
    assert_eq!(first.text.matches("<tr>").count(), 1 + 25);
    assert!(first.text.find(">c29<").unwrap() < first.text.find(">c05<").unwrap());
    assert!(!first.text.contains(">c04<"));
    let (_, rest) = first
        .text
        .split_once(r#"href="/dashboard/contacts?after="#)
        .unwrap();
    let next = format!(
        "/dashboard/contacts?after={}",
        rest.split('"').next().unwrap()
    );
    let second = user.get(&next).await;
    assert_eq!(second.text.matches("<tr>").count(), 1 + 5);
    assert!(second.text.contains(">c00<") && !second.text.contains("rel=\"next\""));
    user.get("/dashboard/contacts?after=forged")
        .await
        .assert_status(400);
    let unknown_notice = user.get("/dashboard/contacts?done=%3Cb%3Ehi").await;
    unknown_notice.assert_status(200);
    assert!(!unknown_notice.text.contains(r#"id="notice""#));
    assert!(!unknown_notice.text.contains("<b>hi"));
}

/// The sentence the API answers `POST /custom-fields` with for this body.
async fn api_field_message(app: &TestApp, body: serde_json::Value) -> String {
    let response = app.create_field(body).await;
    assert!(response.status.is_client_error(), "{}", response.text);
    response.body["message"].as_str().unwrap().to_owned()
}

contract_test!(custom_fields_are_defined_changed_and_deleted_through_forms);
async fn custom_fields_are_defined_changed_and_deleted_through_forms() {
    let app = app_with_user().await;
    let user = app.log_in(EMAIL, PASSWORD).await;
    // The key's first use is recorded; later ones in the same minute write nothing.
    app.request(Method::GET, "/api/v1/custom-fields", None)
        .await
        .assert_status(200);
    let before = app.dump().await;
    let refusals = [
        (
            ("Plan", "Plan", "text", ""),
            "key",
            json!({"key": "Plan", "display_name": "Plan", "type": "text"}),
        ),
        (
            ("plan", "Plan", "select", ""),
            "options",
            json!({"key": "plan", "display_name": "Plan", "type": "select"}),
        ),
        (
            ("plan", "Plan", "text", "a"),
            "options",
            json!({"key": "plan", "display_name": "Plan", "type": "text", "options": ["a"]}),
        ),
        (
            ("plan", "", "text", ""),
            "display_name",
            json!({"key": "plan", "display_name": "", "type": "text"}),
        ),
    ];
    for ((key, display_name, field_type, options), input, api_body) in refusals {
        let refused = user
            .post(
                "/dashboard/fields",
                &[
                    ("key", key),
                    ("display_name", display_name),
                    ("type", field_type),
                    ("options", options),
                ],
            )
            .await;
        refused.assert_status(400);
        assert_eq!(
            input_error(&refused.text, input).unwrap(),
            api_field_message(&app, api_body).await,
            "{input}"
        );
    }
    assert_eq!(app.dump().await, before);

    let created = user
        .post(
            "/dashboard/fields",
            &[
                ("key", "plan"),
                ("display_name", "Plan"),
                ("type", "select"),
                ("options", "free\r\npro\r\n"),
            ],
        )
        .await;
    created.assert_status(303);
    let duplicate = user
        .post(
            "/dashboard/fields",
            &[("key", "plan"), ("display_name", "Plan"), ("type", "text")],
        )
        .await;
    duplicate.assert_status(409);
    assert!(input_error(&duplicate.text, "key").is_some());
    let list = user.get("/dashboard/fields").await;
    assert!(list.text.contains("free, pro"));

    let changed = user
        .post(
            "/dashboard/fields/plan",
            &[
                ("display_name", "Pricing plan"),
                ("new_options", "enterprise"),
            ],
        )
        .await;
    changed.assert_status(303);
    let field = app
        .request(Method::GET, "/api/v1/custom-fields/plan", None)
        .await;
    assert_eq!(field.body["display_name"], "Pricing plan");
    assert_eq!(field.body["options"], json!(["free", "pro", "enterprise"]));
    let unnamed = user
        .post("/dashboard/fields/plan", &[("display_name", " ")])
        .await;
    unnamed.assert_status(400);
    assert!(input_error(&unnamed.text, "display_name").is_some());
    let repeated = user
        .post(
            "/dashboard/fields/plan",
            &[("display_name", "Plan"), ("new_options", "pro")],
        )
        .await;
    repeated.assert_status(400);
    assert!(input_error(&repeated.text, "new_options").is_some());

    for email in ["a@example.com", "b@example.com"] {
        app.given_contact(
            json!({"email": email, "custom_fields": [{"key": "plan", "value": "pro"}]}),
        )
        .await;
    }
    app.given_contact(json!({"email": "c@example.com"})).await;
    let confirm = user.get("/dashboard/fields/plan/delete").await;
    assert!(
        unescape_html(&confirm.text).contains("2 contacts hold a value of it"),
        "{}",
        confirm.text
    );
    let deleted = user.post("/dashboard/fields/plan/delete", &[]).await;
    assert_eq!(
        notice_after(&user, &deleted).await,
        "Custom field deleted, with every value of it."
    );
    app.request(Method::GET, "/api/v1/custom-fields/plan", None)
        .await
        .assert_status(404);
    let contact = app.get_contact("alt:email:a@example.com").await;
    assert_eq!(contact.body["custom_fields"], json!([]));
}

contract_test!(api_keys_are_created_once_listed_and_revoked);
async fn api_keys_are_created_once_listed_and_revoked() {
    let app = app_with_user().await;
    let user = app.log_in(EMAIL, PASSWORD).await;
    let form = user.get("/dashboard/keys").await;
    for scope in contactd_api::Scope::ALL {
        assert!(
            form.text
                .contains(&format!(r#"name="scope:{scope}" checked"#)),
            "{scope} is offered, checked"
        );
    }
    let created = user
        .post(
            "/dashboard/keys",
            &[
                ("name", "zapier"),
                ("scope:contacts:read", "on"),
                ("scope:contacts:write", "on"),
            ],
        )
        .await;
    created.assert_status(200);
    let (_, rest) = created
        .text
        .split_once(r#"id="new-key" class="secret" type="text" value=""#)
        .unwrap();
    let secret = rest.split('"').next().unwrap().to_owned();
    assert!(secret.starts_with("cd_"));
    assert!(created.text.contains(r#"data-copy="new-key""#));

    app.request_as(&secret, Method::GET, "/api/v1/contacts", None)
        .await
        .assert_status(200);
    app.request_as(&secret, Method::GET, "/api/v1/events", None)
        .await
        .assert_error(403, "insufficient_scope");
    // A key's use is recorded just after the request, which never waits for that write.
    let used = std::time::Instant::now();
    let list = loop {
        let list = user.get("/dashboard/keys").await;
        if list.text.matches("never").count() == 1 {
            break list;
        }
        assert!(
            used.elapsed() < std::time::Duration::from_secs(5),
            "the new key's use was never recorded"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert!(!list.text.contains(&secret), "the secret is shown once");
    assert!(list.text.contains(&secret[..11]) && list.text.contains("zapier"));
    assert!(list.text.contains("contacts:read, contacts:write"));

    let keys = app.store.list_api_keys(app.company_id).await.unwrap();
    let zapier = keys
        .iter()
        .find(|key| key.name.as_deref() == Some("zapier"))
        .unwrap();
    // The State column says "active", and revoking asks first, naming the key.
    assert!(list.text.contains("active <a"), "{}", list.text);
    let revoke = format!("/dashboard/keys/{}/revoke", zapier.id);
    assert!(list.text.contains(&format!(r#"href="{revoke}""#)));
    let asked = user.get(&revoke).await;
    asked.assert_status(200);
    assert!(
        asked
            .text
            .contains(&format!("Revoke key {}", &secret[..11]))
    );
    assert!(asked.text.contains("(zapier)?"));
    assert!(
        asked
            .text
            .contains(r#"<a href="/dashboard/keys">Keep it</a>"#)
    );
    app.request_as(&secret, Method::GET, "/api/v1/contacts", None)
        .await
        .assert_status(200);
    let revoked = user.post(&revoke, &[]).await;
    assert!(
        notice_after(&user, &revoked)
            .await
            .starts_with("API key revoked")
    );
    app.request_as(&secret, Method::GET, "/api/v1/contacts", None)
        .await
        .assert_error(401, "unauthorized");
    assert!(user.get("/dashboard/keys").await.text.contains("revoked "));
    user.get(&revoke).await.assert_status(404);

    let long = "x".repeat(101);
    let refused = user
        .post(
            "/dashboard/keys",
            &[("name", &long), ("scope:events:read", "on")],
        )
        .await;
    refused.assert_status(400);
    assert!(input_error(&refused.text, "name").is_some());
    assert!(
        refused.text.contains(r#"name="scope:events:read" checked"#)
            && !refused
                .text
                .contains(r#"name="scope:contacts:read" checked"#),
        "the form keeps the scopes chosen"
    );
    let keys_before = app.store.list_api_keys(app.company_id).await.unwrap().len();
    let without = user.post("/dashboard/keys", &[("name", "nothing")]).await;
    without.assert_status(400);
    assert!(without.text.contains("choose at least one scope"));
    let keys_after = app.store.list_api_keys(app.company_id).await.unwrap().len();
    assert_eq!(keys_after, keys_before, "no key was made");
}

contract_test!(pages_carry_protective_headers_and_assets_need_no_login);
async fn pages_carry_protective_headers_and_assets_need_no_login() {
    let app = app_with_user().await;
    let (page, cookie) = app.login_page().await;
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/dashboard/login"] {
        assert!(
            set_cookie(&page, "contactd_login")
                .unwrap()
                .contains(attribute),
            "{cookie}"
        );
    }
    assert!(
        page.headers["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
    assert_eq!(page.headers["x-frame-options"], "DENY");
    assert_eq!(page.headers["cache-control"], "no-store");
    assert!(
        page.text
            .contains(r#"<label for="input-email">Email</label>"#)
    );

    for (asset, content_type) in [
        ("dashboard.css", "text/css; charset=utf-8"),
        ("dashboard.js", "text/javascript; charset=utf-8"),
    ] {
        let response = app
            .send(
                Request::get(format!("/dashboard/assets/{asset}"))
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        response.assert_status(200);
        assert_eq!(response.headers[header::CONTENT_TYPE], content_type);
    }
    let missing = app
        .send(
            Request::get("/dashboard/assets/nope.css")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    missing.assert_status(404);
    let root = app
        .send(Request::get("/").body(Body::empty()).unwrap())
        .await;
    root.assert_status(303);
    assert_eq!(location(&root), "/dashboard");
}

async fn a_contacts_page_shows_who_changed_what_newest_first() {
    let app = app_with_user().await;
    app.given_field("plan", "select", Some(&["free", "pro"]))
        .await;
    let ada = app
        .given_contact(
            json!({"ext_id": "ada", "custom_fields": [{"key": "plan", "value": "free"}]}),
        )
        .await;
    app.patch_contact(json!({"id": "alt:ext_id:ada", "first_name": "Ada", "custom_fields": {"set": [{"key": "plan", "value": "pro"}]}}))
        .await
        .assert_status(200);
    let user = app.log_in(EMAIL, PASSWORD).await;

    let page = user
        .get(&format!(
            "/dashboard/contacts/{}",
            ada["id"].as_str().expect("an id")
        ))
        .await;

    page.assert_status(200);
    let text = unescape_html(&page.text);
    let key = &app.store.list_api_keys(app.company_id).await.expect("keys")[0];
    let who = format!("API key {}…", key.prefix);
    let updated = text
        .find("plan: free → pro<br>first_name: none → Ada")
        .expect("the update, a line per change");
    let created = text.rfind("Created").expect("the creation");
    assert!(updated < created, "newest first: {text}");
    assert_eq!(text.matches(&who).count(), 2, "{text}");
}
contract_test!(a_contacts_page_shows_who_changed_what_newest_first);

/// The secret a page shows once, in the box with its copy button.
fn shown_secret(html: &str) -> Option<String> {
    let (_, rest) = html.split_once(r#"id="new-secret" class="secret" type="text" value=""#)?;
    rest.split('"').next().map(str::to_owned)
}

/// The company's endpoints as the API lists them.
async fn listed_webhooks(app: &TestApp) -> Vec<serde_json::Value> {
    let list = app.request(Method::GET, "/api/v1/webhooks", None).await;
    list.assert_status(200);
    list.body["data"]["webhooks"].as_array().unwrap().clone()
}

/// The secret the store keeps for the company's only endpoint.
async fn stored_secret(app: &TestApp) -> String {
    let webhooks = app.store.list_webhooks(app.company_id).await.unwrap();
    assert_eq!(webhooks.len(), 1);
    webhooks[0].secret.clone()
}

contract_test!(a_webhook_endpoint_is_created_disabled_rotated_and_deleted_through_forms);
async fn a_webhook_endpoint_is_created_disabled_rotated_and_deleted_through_forms() {
    let app = app_with_user().await;
    let user = app.log_in(EMAIL, PASSWORD).await;
    let empty = user.get("/dashboard/webhooks").await;
    empty.assert_status(200);
    assert!(empty.text.contains("No webhook endpoints yet."));
    assert!(empty.text.contains(r#"aria-current="page">Webhooks<"#));

    let created = user
        .post(
            "/dashboard/webhooks",
            &[
                ("url", "https://1.1.1.1/hook"),
                ("description", "CRM sync"),
                ("event_type.contact.deleted", "on"),
                ("event_type.contact.created", "on"),
            ],
        )
        .await;
    created.assert_status(200);
    let secret = shown_secret(&created.text).expect("the new secret is shown");
    assert!(secret.starts_with("whsec_"), "{secret}");
    assert_eq!(secret, stored_secret(&app).await);
    assert!(created.text.contains("It will not be shown again"));
    assert!(created.text.contains(r#"data-copy="new-secret""#));
    let webhooks = listed_webhooks(&app).await;
    assert_eq!(webhooks.len(), 1);
    assert_eq!(
        webhooks[0]["event_types"],
        json!(["contact.created", "contact.deleted"])
    );
    assert_eq!(webhooks[0]["description"], "CRM sync");
    let id = webhooks[0]["id"].as_str().unwrap().to_owned();
    let page_url = format!("/dashboard/webhooks/{id}");

    // The secret is on that one answer only.
    let list = user.get("/dashboard/webhooks").await;
    list.assert_status(200);
    assert!(!list.text.contains(&secret), "the secret is shown once");
    for shown in [
        "https://1.1.1.1/hook",
        "CRM sync",
        "contact.created, contact.deleted",
        ">enabled<",
        &page_url,
    ] {
        assert!(list.text.contains(shown), "{shown}");
    }
    let page = user.get(&page_url).await;
    page.assert_status(200);
    assert!(!page.text.contains(&secret));
    assert!(page.text.contains("No delivery attempts yet."));

    let disabled = user.post(&format!("{page_url}/disable"), &[]).await;
    assert_eq!(location(&disabled), page_url);
    assert!(
        notice_after(&user, &disabled)
            .await
            .starts_with("Endpoint disabled")
    );
    assert_eq!(listed_webhooks(&app).await[0]["enabled"], json!(false));
    let page = user.get(&page_url).await;
    assert!(page.text.contains(">disabled since "), "{}", page.text);
    assert!(
        page.text
            .contains(&format!(r#"action="{page_url}/enable""#))
    );
    let enabled = user.post(&format!("{page_url}/enable"), &[]).await;
    assert!(
        notice_after(&user, &enabled)
            .await
            .starts_with("Endpoint enabled")
    );
    assert_eq!(listed_webhooks(&app).await[0]["enabled"], json!(true));

    // Rotating asks first, then shows the new secret once; the old one still signs.
    let confirm = user.get(&format!("{page_url}/rotate-secret")).await;
    confirm.assert_status(200);
    assert!(
        confirm
            .text
            .contains("Rotate the secret of https://1.1.1.1/hook?")
    );
    assert!(
        confirm
            .text
            .contains(&format!(r#"action="{page_url}/rotate-secret""#))
    );
    assert_eq!(stored_secret(&app).await, secret, "asking changes nothing");
    let rotated = user.post(&format!("{page_url}/rotate-secret"), &[]).await;
    rotated.assert_status(200);
    let new_secret = shown_secret(&rotated.text).expect("the new secret is shown");
    assert!(new_secret.starts_with("whsec_") && new_secret != secret);
    assert_eq!(new_secret, stored_secret(&app).await);
    assert!(!rotated.text.contains(&secret), "nor the old one");
    let stored = app.store.list_webhooks(app.company_id).await.unwrap();
    assert_eq!(stored[0].previous_secret.as_ref().unwrap().0, secret);
    for path in [page_url.as_str(), "/dashboard/webhooks"] {
        let later = user.get(path).await;
        assert!(!later.text.contains(&new_secret), "{path}");
        assert!(shown_secret(&later.text).is_none(), "{path}");
    }

    let confirm = user.get(&format!("{page_url}/delete")).await;
    confirm.assert_status(200);
    assert!(
        confirm
            .text
            .contains("Delete the endpoint https://1.1.1.1/hook?")
    );
    assert_eq!(
        listed_webhooks(&app).await.len(),
        1,
        "asking deletes nothing"
    );
    let deleted = user.post(&format!("{page_url}/delete"), &[]).await;
    assert_eq!(location(&deleted), "/dashboard/webhooks");
    assert_eq!(
        notice_after(&user, &deleted).await,
        "Webhook endpoint deleted, with its delivery attempts."
    );
    assert!(listed_webhooks(&app).await.is_empty());
    user.get(&page_url).await.assert_status(404);
    user.post(&format!("{page_url}/disable"), &[])
        .await
        .assert_status(404);
    user.get("/dashboard/webhooks/not-a-uuid")
        .await
        .assert_status(404);
}

/// The sentence the API answers `POST /webhooks` with for this body.
async fn api_webhook_message(app: &TestApp, body: serde_json::Value) -> String {
    let response = app
        .request(Method::POST, "/api/v1/webhooks", Some(body))
        .await;
    assert!(response.status.is_client_error(), "{}", response.text);
    response.body["message"].as_str().unwrap().to_owned()
}

contract_test!(a_refused_webhook_form_shows_the_apis_sentence_and_creates_nothing);
async fn a_refused_webhook_form_shows_the_apis_sentence_and_creates_nothing() {
    // A server without --webhook-allow-private.
    let app = app_with_user().await;
    let user = app.log_in(EMAIL, PASSWORD).await;
    let before = app.dump().await;
    for url in ["http://10.0.0.1/hook", "ftp://x", "not a url", ""] {
        let refused = user
            .post(
                "/dashboard/webhooks",
                &[
                    ("url", url),
                    ("description", "kept"),
                    ("event_type.custom_field.updated", "on"),
                ],
            )
            .await;
        refused.assert_status(400);
        assert_eq!(
            input_error(&refused.text, "url").unwrap(),
            api_webhook_message(&app, json!({"url": url})).await,
            "{url}"
        );
        assert!(refused.text.contains(r##"<a href="#input-url">"##), "{url}");
        // The form comes back as sent.
        assert!(refused.text.contains(&format!(r#"value="{url}""#)), "{url}");
        assert!(refused.text.contains(r#"value="kept""#));
        assert!(
            refused
                .text
                .contains(r#"name="event_type.custom_field.updated" value="on" checked"#)
        );
        assert!(
            !refused
                .text
                .contains(r#"name="event_type.contact.created" value="on" checked"#)
        );
        assert!(shown_secret(&refused.text).is_none());
    }
    let long = "d".repeat(501);
    let refused = user
        .post(
            "/dashboard/webhooks",
            &[("url", "https://1.1.1.1/hook"), ("description", &long)],
        )
        .await;
    refused.assert_status(400);
    assert_eq!(
        input_error(&refused.text, "description").unwrap(),
        api_webhook_message(
            &app,
            json!({"url": "https://1.1.1.1/hook", "description": long})
        )
        .await
    );
    assert_eq!(app.dump().await, before, "refused forms create nothing");
    assert!(listed_webhooks(&app).await.is_empty());
}

contract_test!(a_user_cannot_reach_another_companys_webhook_endpoints);
async fn a_user_cannot_reach_another_companys_webhook_endpoints() {
    let app = app_with_user().await;
    let created = app
        .request(
            Method::POST,
            "/api/v1/webhooks",
            Some(json!({"url": "https://1.1.1.1/acme-hook"})),
        )
        .await;
    created.assert_status(200);
    let id = created.body["id"].as_str().unwrap().to_owned();
    let event_id = "0".repeat(32);
    let other = app.store.create_company("globex").await.unwrap();
    app.given_user(other.id, "bob@globex.example", PASSWORD)
        .await;
    let bob = app.log_in("bob@globex.example", PASSWORD).await;
    let before = app.dump().await;

    let page_url = format!("/dashboard/webhooks/{id}");
    for path in [
        page_url.clone(),
        format!("{page_url}/rotate-secret"),
        format!("{page_url}/delete"),
    ] {
        let page = bob.get(&path).await;
        page.assert_status(404);
        assert!(!page.text.contains("acme-hook"), "{path}");
        assert!(
            page.text.contains("bob@globex.example"),
            "signed-in navigation"
        );
    }
    for action in [
        "disable",
        "enable",
        "rotate-secret",
        "delete",
        &format!("deliveries/{event_id}/retry"),
    ] {
        let refused = bob.post(&format!("{page_url}/{action}"), &[]).await;
        refused.assert_status(404);
        assert!(shown_secret(&refused.text).is_none(), "{action}");
    }
    assert_eq!(app.dump().await, before, "nothing of acme changed");
    let list = bob.get("/dashboard/webhooks").await;
    assert!(list.text.contains("No webhook endpoints yet."));
    assert!(!list.text.contains("acme-hook"));
}

contract_test!(webhook_forms_without_their_csrf_token_are_refused_and_change_nothing);
async fn webhook_forms_without_their_csrf_token_are_refused_and_change_nothing() {
    let app = app_with_user().await;
    let created = app
        .request(
            Method::POST,
            "/api/v1/webhooks",
            Some(json!({"url": "https://1.1.1.1/hook"})),
        )
        .await;
    created.assert_status(200);
    let page_url = format!(
        "/dashboard/webhooks/{}",
        created.body["id"].as_str().unwrap()
    );
    let user = app.log_in(EMAIL, PASSWORD).await;
    let before = app.dump().await;
    let new_endpoint = [("url", "https://1.1.1.2/hook")];
    let missing = user
        .post_without_csrf("/dashboard/webhooks", &new_endpoint)
        .await;
    missing.assert_status(403);
    assert!(missing.text.contains("This form has expired"));
    assert!(shown_secret(&missing.text).is_none());
    let forged = [("url", "https://1.1.1.2/hook"), ("csrf_token", "0000")];
    user.post_without_csrf("/dashboard/webhooks", &forged)
        .await
        .assert_status(403);
    for action in ["disable", "rotate-secret", "delete"] {
        let refused = user
            .post_without_csrf(&format!("{page_url}/{action}"), &[])
            .await;
        refused.assert_status(403);
        assert!(shown_secret(&refused.text).is_none(), "{action}");
    }
    assert_eq!(app.dump().await, before, "a refused form writes nothing");
}

/// Waits until the endpoint's page satisfies `done`; the deliverer looks for work twice a
/// second, a delivery may take longer on a loaded machine.
async fn webhook_page_until(
    user: &DashboardUser<'_>,
    path: &str,
    done: impl Fn(&str) -> bool,
) -> String {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let page = user.get(path).await;
        page.assert_status(200);
        if done(&page.text) {
            return page.text;
        }
        assert!(tokio::time::Instant::now() < deadline, "{}", page.text);
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// The rows of an endpoint page's attempt table, newest first, each as its cells' text.
fn attempt_rows(html: &str) -> Vec<String> {
    let Some((_, table)) = html.split_once(r#"<table id="attempts">"#) else {
        return Vec::new();
    };
    let body = table.split("</tbody>").next().unwrap();
    body.split("<tr>").skip(2).map(unescape_html).collect()
}

contract_test!(an_endpoints_page_lists_its_delivery_attempts_newest_first_and_retries_by_hand);
async fn an_endpoints_page_lists_its_delivery_attempts_newest_first_and_retries_by_hand() {
    let app = TestApp::spawn_delivering().await;
    app.given_user(app.company_id, EMAIL, PASSWORD).await;
    let receiver = Receiver::start(Answer::Status(200)).await;
    let user = app.log_in(EMAIL, PASSWORD).await;
    // A receiver on this machine: accepted, as the server allows private addresses.
    let url = receiver.url();
    user.post("/dashboard/webhooks", &[("url", url.as_str())])
        .await
        .assert_status(200);
    let id = listed_webhooks(&app).await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let page_url = format!("/dashboard/webhooks/{id}");

    app.given_contact(json!({"ext_id": "crm-1"})).await;
    let page = webhook_page_until(&user, &page_url, |page| attempt_rows(page).len() == 1).await;
    let delivered = receiver.deliveries()[0].id().to_owned();
    let rows = attempt_rows(&page);
    for cell in [
        "contact.created",
        delivered.as_str(),
        ">1<",
        ">delivered<",
        ">200<",
        " ms<",
    ] {
        assert!(rows[0].contains(cell), "{cell}: {}", rows[0]);
    }
    assert!(
        !rows[0].contains("/retry"),
        "a delivered event has no retry"
    );

    // A failing receiver: the attempt waits for its retry, which can be asked for now.
    receiver.answer(Answer::Status(503));
    app.patch_contact(json!({"id": "alt:ext_id:crm-1", "first_name": "Ada"}))
        .await
        .assert_status(200);
    let page = webhook_page_until(&user, &page_url, |page| attempt_rows(page).len() == 2).await;
    let failed = receiver.deliveries()[1].id().to_owned();
    let rows = attempt_rows(&page);
    assert!(rows[0].contains("contact.updated") && rows[0].contains(&failed));
    assert!(rows[0].contains(">retrying, next at "), "{}", rows[0]);
    assert!(rows[0].contains(">503<") && rows[0].contains("the receiver answered 503"));
    assert!(rows[1].contains(&delivered), "newest first");
    let event_uuid = failed.strip_prefix("evt_").unwrap();
    let uuid = uuid::Uuid::try_parse(event_uuid).unwrap();
    let retry = format!("{page_url}/deliveries/{uuid}/retry");
    assert!(
        rows[0].contains(&format!(r#"action="{retry}""#)),
        "{}",
        rows[0]
    );

    receiver.answer(Answer::Status(200));
    let retried = user.post(&retry, &[]).await;
    assert_eq!(location(&retried), page_url);
    assert!(
        notice_after(&user, &retried)
            .await
            .starts_with("Another attempt is scheduled now")
    );
    let page = webhook_page_until(&user, &page_url, |page| attempt_rows(page).len() == 3).await;
    let rows = attempt_rows(&page);
    assert!(
        rows[0].contains(&failed) && rows[0].contains(">2<"),
        "{}",
        rows[0]
    );
    assert!(rows[0].contains(">delivered<"), "{}", rows[0]);
    assert!(!page.contains("/retry\""), "every event is delivered now");

    user.post(
        &format!("{page_url}/deliveries/{}/retry", uuid::Uuid::nil()),
        &[],
    )
    .await
    .assert_status(404);
}

contract_test!(the_pages_say_what_a_new_user_needs);
/// What a new user asked of the pages: the API's own sentence for a contact that does not
/// exist, a field type chosen from the start, the search button beside its input, a way to
/// the API reference.
async fn the_pages_say_what_a_new_user_needs() {
    let app = app_with_user().await;
    let user = app.log_in(EMAIL, PASSWORD).await;
    let missing = "0192f3a4-7b1c-7d2e-9f00-1234567890ab";
    let page = user.get(&format!("/dashboard/contacts/{missing}")).await;
    page.assert_status(404);
    assert!(
        page.text.contains(&format!("no contact matches {missing}")),
        "{}",
        page.text
    );
    let page = user.get("/dashboard/contacts/not-a-uuid").await;
    page.assert_status(404);
    assert!(page.text.contains("no contact matches not-a-uuid"));

    let fields = user.get("/dashboard/fields").await;
    assert!(
        fields
            .text
            .contains(r#"<option value="text" selected>text</option>"#)
    );
    assert!(
        !fields.text.contains("(none)"),
        "a required select has no empty choice"
    );

    let contacts = user.get("/dashboard/contacts").await;
    let row = contacts
        .text
        .split(r#"<div class="search-row">"#)
        .nth(1)
        .unwrap();
    let row = row.split("</div>").next().unwrap();
    assert!(row.contains(r#"id="input-q""#) && row.contains("Search</button>"));
    assert!(
        contacts
            .text
            .contains(r#"<a href="/docs">API reference</a>"#)
    );
}

contract_test!(the_contact_list_filters_sorts_counts_and_shows_chosen_columns);
/// The list takes the API's filters (docs/reference.md#finding-contacts) from its form: a
/// custom field test, an order, the columns to show; it says how many contacts it holds
/// and its page links keep the form.
async fn the_contact_list_filters_sorts_counts_and_shows_chosen_columns() {
    let app = app_with_user().await;
    app.given_field("seats", "number", None).await;
    app.given_field("plan", "select", Some(&["free", "pro"]))
        .await;
    for seats in 1..=30 {
        let plan = if seats % 2 == 0 { "pro" } else { "free" };
        app.given_contact(json!({
            "ext_id": format!("crm-{seats}"),
            "custom_fields": [{"key": "seats", "value": seats}, {"key": "plan", "value": plan}],
        }))
        .await;
    }
    let user = app.log_in(EMAIL, PASSWORD).await;
    let all = user.get("/dashboard/contacts").await;
    assert!(
        all.text
            .contains(r#"<p id="result-count" role="status">30 contacts</p>"#)
    );
    assert!(
        all.text.contains(r#"<option value="seats">"#),
        "the filter offers the fields"
    );

    let filtered = user
        .get("/dashboard/contacts?field=seats&test=gt&value=2&sort=created_at&column.plan=on")
        .await;
    filtered.assert_status(200);
    assert!(
        filtered.text.contains("28 contacts found"),
        "{}",
        filtered.text
    );
    assert!(!filtered.text.contains(">crm-2<"));
    let first = filtered
        .text
        .find(">crm-3<")
        .expect("crm-3 on the first page");
    let second = filtered
        .text
        .find(">crm-4<")
        .expect("crm-4 on the first page");
    assert!(first < second, "oldest first");
    assert!(filtered.text.contains("<td>pro</td>"), "the plan column");
    assert!(filtered.text.contains(r#"name="column.plan" checked"#));
    let next = filtered
        .text
        .split(r#"<a href=""#)
        .find_map(|link| {
            link.split_once(r#"" rel="next""#)
                .map(|(href, _)| href.to_owned())
        })
        .expect("a next page");
    let next = unescape_html(&next);
    assert!(
        next.contains("field=seats") && next.contains("column.plan=on"),
        "{next}"
    );
    let page_two = user.get(&next).await;
    page_two.assert_status(200);
    assert!(page_two.text.contains(">crm-30<") && !page_two.text.contains(">crm-3<"));
    assert!(page_two.text.contains("First page"));
    // A page link of one search is refused by another.
    let cursor = next.split("after=").nth(1).unwrap();
    user.get(&format!("/dashboard/contacts?after={cursor}"))
        .await
        .assert_status(400);

    let pro = user
        .get("/dashboard/contacts?field=plan&test=is&value=pro")
        .await;
    assert!(pro.text.contains("15 contacts found"));
    let refused = user
        .get("/dashboard/contacts?field=plan&test=gt&value=pro")
        .await;
    refused.assert_status(400);
    assert!(
        refused.text.contains("compares numbers and dates"),
        "{}",
        refused.text
    );
    let short = user.get("/dashboard/contacts?q=ab").await;
    short.assert_status(400);
    assert!(short.text.contains("at least 3"));
}
