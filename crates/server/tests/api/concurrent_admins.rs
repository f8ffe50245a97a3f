//! Concurrent admins lose nothing (`docs/robustness.md`, "Concurrent admins"): custom field
//! option changes racing through the API or the dashboard, and dashboard forms saved after
//! someone else changed what they show.

use std::sync::Arc;

use axum::http::{Method, header};
use serde_json::{Value, json};

use crate::helpers::{DashboardUser, TestApp, TestResponse, contract_test, unescape_html};

const EMAIL: &str = "ann@example.com";
const OTHER_EMAIL: &str = "bob@example.com";
const PASSWORD: &str = "correct horse battery";
/// Rounds of racing changes: before the fix every one of 12 lost an option.
const ROUNDS: usize = 12;
/// Changes racing in each round.
const RACERS: usize = 3;

async fn stored_options(app: &TestApp, key: &str) -> Vec<String> {
    let field = app
        .request(Method::GET, &format!("/api/v1/custom-fields/{key}"), None)
        .await;
    field.assert_status(200);
    serde_json::from_value(field.body["options"].clone()).expect("a select field's options")
}

async fn patch_options(app: &TestApp, key: &str, options: &[String]) -> TestResponse {
    app.request(
        Method::PATCH,
        &format!("/api/v1/custom-fields/{key}"),
        Some(json!({ "options": options })),
    )
    .await
}

contract_test!(racing_option_additions_through_the_api_lose_no_acknowledged_option);
async fn racing_option_additions_through_the_api_lose_no_acknowledged_option() {
    let app = Arc::new(TestApp::spawn().await);
    app.given_field("plan", "select", Some(&["free"])).await;
    let mut acknowledged = vec!["free".to_owned()];
    for round in 0..ROUNDS {
        // Every racer read the same list and adds its own option, as a client would.
        let read = stored_options(&app, "plan").await;
        let tasks: Vec<_> = (0..RACERS)
            .map(|racer| {
                let (app, mut list) = (Arc::clone(&app), read.clone());
                let option = format!("r{round}-{racer}");
                list.push(option.clone());
                tokio::spawn(async move { (option, patch_options(&app, "plan", &list).await) })
            })
            .collect();
        let mut refused = Vec::new();
        for task in tasks {
            let (option, response) = task.await.expect("the request ran");
            if response.status.as_u16() == 200 {
                acknowledged.push(option);
            } else {
                response.assert_error(409, "conflict");
                assert_eq!(response.field(), Some("options"));
                assert!(
                    response.body["message"]
                        .as_str()
                        .unwrap()
                        .contains(&format!("\"r{round}-")),
                    "the refusal names the option added meanwhile: {}",
                    response.text
                );
                refused.push(option);
            }
        }
        assert!(
            refused.len() < RACERS,
            "the first change to be written wins"
        );
        let stored = stored_options(&app, "plan").await;
        for option in &acknowledged {
            assert!(stored.contains(option), "round {round}: {option} was lost");
        }
        for option in &refused {
            assert!(
                !stored.contains(option),
                "round {round}: {option} was refused"
            );
        }
        assert_eq!(stored.len(), acknowledged.len(), "nothing else is stored");
    }
}

contract_test!(a_list_that_leaves_out_a_stored_option_is_refused_and_names_it);
async fn a_list_that_leaves_out_a_stored_option_is_refused_and_names_it() {
    let app = TestApp::spawn().await;
    app.given_field("plan", "select", Some(&["free", "pro", "team"]))
        .await;
    let before = app.dump().await;
    let refused = patch_options(&app, "plan", &["free".to_owned(), "gold".to_owned()]).await;
    refused.assert_error(409, "conflict");
    assert_eq!(refused.field(), Some("options"));
    refused.assert_message_mentions(r#"options "pro", "team" of plan"#);
    refused.assert_message_mentions("send the full list again");
    assert_eq!(app.dump().await, before, "a refused change writes nothing");
}

/// An app with two dashboard users of its company, signed in.
async fn two_admins(app: &TestApp) -> (DashboardUser<'_>, DashboardUser<'_>) {
    app.given_user(app.company_id, EMAIL, PASSWORD).await;
    app.given_user(app.company_id, OTHER_EMAIL, PASSWORD).await;
    (
        app.log_in(EMAIL, PASSWORD).await,
        app.log_in(OTHER_EMAIL, PASSWORD).await,
    )
}

/// The name and value of each input a page's form would send, as a browser sends them: text
/// and hidden inputs, the selected option of each select, each textarea's text.
fn form_inputs(html: &str) -> Vec<(String, String)> {
    fn attribute(tag: &str, name: &str) -> Option<String> {
        let (_, rest) = tag.split_once(&format!(" {name}=\""))?;
        rest.split('"').next().map(unescape_html)
    }
    let mut inputs = Vec::new();
    let mut rest = html;
    while let Some(at) = rest.find('<') {
        rest = &rest[at..];
        let tag = &rest[..rest.find('>').expect("tags close")];
        if tag.starts_with("<input ") {
            if let Some(name) = attribute(tag, "name") {
                inputs.push((name, attribute(tag, "value").unwrap_or_default()));
            }
        } else if tag.starts_with("<select ") {
            let body = &rest[..rest.find("</select>").expect("selects close")];
            let selected = body
                .split("<option ")
                .find(|option| option.split('>').next().unwrap().contains(" selected"))
                .and_then(|option| attribute(&format!(" {option}"), "value"))
                .unwrap_or_default();
            inputs.push((attribute(tag, "name").expect("a named select"), selected));
        } else if tag.starts_with("<textarea ") {
            let text = &rest[tag.len() + 1..rest.find("</textarea>").expect("textareas close")];
            inputs.push((
                attribute(tag, "name").expect("a named textarea"),
                unescape_html(text),
            ));
        }
        rest = &rest[1..];
    }
    inputs
}

/// Posts the form of `page` with some inputs set to new values, as a browser would after the
/// user typed them; the form's own CSRF token and hidden inputs go with it.
async fn submit(
    user: &DashboardUser<'_>,
    path: &str,
    page: &TestResponse,
    typed: &[(&str, &str)],
) -> TestResponse {
    page.assert_status(200);
    let mut inputs = form_inputs(&page.text);
    // The page's first form is its logout button; the form under test is the last one.
    let form_starts = inputs
        .iter()
        .rposition(|(name, _)| name == "csrf_token")
        .expect("the form has its CSRF token");
    let mut inputs = inputs.split_off(form_starts);
    for (name, value) in typed {
        let input = inputs
            .iter_mut()
            .find(|(shown, _)| shown == name)
            .unwrap_or_else(|| panic!("the form has an input {name}"));
        input.1 = (*value).to_owned();
    }
    let pairs: Vec<(&str, &str)> = inputs
        .iter()
        .filter(|(name, _)| name != "csrf_token")
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect();
    user.post(path, &pairs).await
}

contract_test!(racing_option_additions_through_the_dashboard_all_take_effect);
async fn racing_option_additions_through_the_dashboard_all_take_effect() {
    let app = TestApp::spawn().await;
    app.given_field("plan", "select", Some(&["free"])).await;
    let (ann, bob) = two_admins(&app).await;
    let mut added = vec!["free".to_owned()];
    for round in 0..ROUNDS {
        let (ann_page, bob_page) = (
            ann.get("/dashboard/fields/plan").await,
            bob.get("/dashboard/fields/plan").await,
        );
        let (ann_option, bob_option) = (format!("ann-{round}"), format!("bob-{round}"));
        let (ann_typed, bob_typed) = (
            [("new_options", ann_option.as_str())],
            [("new_options", bob_option.as_str())],
        );
        let (ann_saved, bob_saved) = tokio::join!(
            submit(&ann, "/dashboard/fields/plan", &ann_page, &ann_typed),
            submit(&bob, "/dashboard/fields/plan", &bob_page, &bob_typed),
        );
        ann_saved.assert_status(303);
        bob_saved.assert_status(303);
        added.extend([ann_option, bob_option]);
        let stored = stored_options(&app, "plan").await;
        for option in &added {
            assert!(stored.contains(option), "round {round}: {option} was lost");
        }
    }
}

contract_test!(saving_new_options_in_the_dashboard_keeps_a_rename_made_meanwhile);
async fn saving_new_options_in_the_dashboard_keeps_a_rename_made_meanwhile() {
    let app = TestApp::spawn().await;
    app.given_field("plan", "select", Some(&["free"])).await;
    let (ann, _) = two_admins(&app).await;
    let page = ann.get("/dashboard/fields/plan").await;
    app.request(
        Method::PATCH,
        "/api/v1/custom-fields/plan",
        Some(json!({"display_name": "Pricing tier", "options": ["free", "pro"]})),
    )
    .await
    .assert_status(200);

    let saved = submit(
        &ann,
        "/dashboard/fields/plan",
        &page,
        &[("new_options", "team")],
    )
    .await;
    saved.assert_status(303);
    let field = app
        .request(Method::GET, "/api/v1/custom-fields/plan", None)
        .await;
    assert_eq!(field.body["display_name"], "Pricing tier");
    assert_eq!(field.body["options"], json!(["free", "pro", "team"]));

    // A rename this user made is written.
    let page = ann.get("/dashboard/fields/plan").await;
    let renamed = submit(
        &ann,
        "/dashboard/fields/plan",
        &page,
        &[("display_name", "Plan")],
    )
    .await;
    renamed.assert_status(303);
    assert_eq!(
        stored_display_name(&app, "plan").await,
        "Plan",
        "{}",
        renamed.headers[header::LOCATION].to_str().unwrap()
    );
}

async fn stored_display_name(app: &TestApp, key: &str) -> Value {
    app.request(Method::GET, &format!("/api/v1/custom-fields/{key}"), None)
        .await
        .body["display_name"]
        .clone()
}

/// The value a contact holds for a custom field, `Null` when it holds none.
fn custom_value(contact: &Value, key: &str) -> Value {
    contact["custom_fields"]
        .as_array()
        .expect("custom fields")
        .iter()
        .find(|field| field["key"] == key)
        .map_or(Value::Null, |field| field["value"].clone())
}

/// A contact with a select value, an edit form of it loaded by a dashboard user, and the
/// path the form posts to.
async fn contact_with_loaded_form(app: &TestApp) -> (String, DashboardUser<'_>, TestResponse) {
    app.given_field("plan", "select", Some(&["free", "pro"]))
        .await;
    let contact = app
        .given_contact(json!({
            "email": "ada@example.com",
            "first_name": "Ada",
            "custom_fields": [{"key": "plan", "value": "free"}],
        }))
        .await;
    let id = contact["id"].as_str().unwrap().to_owned();
    let (ann, _) = two_admins(app).await;
    let form = ann.get(&format!("/dashboard/contacts/{id}/edit")).await;
    form.assert_status(200);
    (id, ann, form)
}

contract_test!(an_edit_form_saved_late_keeps_a_field_defined_and_set_after_it_was_loaded);
async fn an_edit_form_saved_late_keeps_a_field_defined_and_set_after_it_was_loaded() {
    let app = TestApp::spawn().await;
    let (id, ann, form) = contact_with_loaded_form(&app).await;
    app.given_field("seats", "number", None).await;
    app.patch_contact_at(
        &id,
        json!({"custom_fields": {"set": [{"key": "seats", "value": 12}]}}),
    )
    .await
    .assert_status(200);

    let saved = submit(
        &ann,
        &format!("/dashboard/contacts/{id}"),
        &form,
        &[("last_name", "Lovelace")],
    )
    .await;
    saved.assert_status(303);
    let stored = app.get_contact(&id).await.body;
    assert_eq!(stored["last_name"], "Lovelace");
    assert_eq!(custom_value(&stored, "seats"), json!(12), "{stored}");
    assert_eq!(custom_value(&stored, "plan"), json!("free"));
}

contract_test!(an_edit_form_saved_late_keeps_what_others_changed_in_inputs_left_alone);
async fn an_edit_form_saved_late_keeps_what_others_changed_in_inputs_left_alone() {
    let app = TestApp::spawn().await;
    let (id, ann, form) = contact_with_loaded_form(&app).await;
    app.patch_contact_at(
        &id,
        json!({
            "first_name": "Augusta",
            "phone_number": "+14155552671",
            "custom_fields": {"set": [{"key": "plan", "value": "pro"}]},
        }),
    )
    .await
    .assert_status(200);

    let saved = submit(
        &ann,
        &format!("/dashboard/contacts/{id}"),
        &form,
        &[("last_name", "Lovelace")],
    )
    .await;
    saved.assert_status(303);
    let stored = app.get_contact(&id).await.body;
    assert_eq!(stored["first_name"], "Augusta");
    assert_eq!(stored["phone_number"], "+14155552671");
    assert_eq!(custom_value(&stored, "plan"), json!("pro"));
    assert_eq!(stored["last_name"], "Lovelace");

    // What the user did change is written: a value cleared, a member replaced.
    let form = ann.get(&format!("/dashboard/contacts/{id}/edit")).await;
    let saved = submit(
        &ann,
        &format!("/dashboard/contacts/{id}"),
        &form,
        &[("field.plan", ""), ("first_name", "Ada")],
    )
    .await;
    saved.assert_status(303);
    let stored = app.get_contact(&id).await.body;
    assert_eq!(stored["first_name"], "Ada");
    assert_eq!(custom_value(&stored, "plan"), Value::Null);
    assert_eq!(stored["phone_number"], "+14155552671");
}

contract_test!(a_refused_edit_form_shown_again_still_saves_only_what_the_user_changed);
async fn a_refused_edit_form_shown_again_still_saves_only_what_the_user_changed() {
    let app = TestApp::spawn().await;
    let (id, ann, form) = contact_with_loaded_form(&app).await;
    let path = format!("/dashboard/contacts/{id}");
    let refused = submit(&ann, &path, &form, &[("phone_number", "12")]).await;
    refused.assert_status(400);
    app.patch_contact_at(&id, json!({"first_name": "Augusta"}))
        .await
        .assert_status(200);

    let saved = submit(
        &ann,
        &path,
        &refused_as_page(refused),
        &[("phone_number", "")],
    )
    .await;
    saved.assert_status(303);
    let stored = app.get_contact(&id).await.body;
    assert_eq!(stored["first_name"], "Augusta");
    assert!(stored["phone_number"].is_null(), "{stored}");
}

/// A form page answered with an error status, to be submitted again as a browser would.
fn refused_as_page(mut page: TestResponse) -> TestResponse {
    page.status = axum::http::StatusCode::OK;
    page
}
