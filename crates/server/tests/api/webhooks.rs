//! Webhooks (docs/reference.md#webhooks): endpoints, signed deliveries in feed order,
//! retries, and the destinations a server refuses.

use std::time::{Duration, SystemTime};

use axum::http::Method;
use contactd::webhooks::delivery::LEASE;
use contactd_api::{CreateContact, CreateWebhook, DeliveryOutcome, EventType, UpdateWebhook};
use contactd_client::Client;
use contactd_client::webhooks::verify;
use serde_json::{Value, json};

use crate::helpers::{
    Answer, Backend, Delivery, Receiver, ServerProcess, TestApp, TestDatabase, admin, contract_test,
};

/// Long enough for a delivery on a loaded test machine: the deliverer looks for work twice
/// a second.
const ARRIVES: Duration = Duration::from_secs(15);

async fn create_webhook(app: &TestApp, body: Value) -> Value {
    let created = app
        .request(Method::POST, "/api/v1/webhooks", Some(body))
        .await;
    created.assert_status(200);
    created.body
}

/// Checks a delivery's signature with the endpoint's secret, as a receiver does.
fn assert_signed(delivery: &Delivery, secret: &str) {
    let signed = verify(
        secret,
        delivery.id(),
        delivery.header("webhook-timestamp"),
        delivery.header("webhook-signature"),
        &delivery.body,
    );
    assert_eq!(signed, Ok(()), "{delivery:?}");
}

async fn attempts(app: &TestApp, webhook: &Value) -> Vec<Value> {
    let id = webhook["id"].as_str().expect("an id");
    let page = app
        .request(
            Method::GET,
            &format!("/api/v1/webhooks/{id}/deliveries"),
            None,
        )
        .await;
    page.assert_status(200);
    page.body["data"]["deliveries"]
        .as_array()
        .expect("deliveries")
        .clone()
}

/// Waits until the endpoint's attempts satisfy `done`.
async fn attempts_until(
    app: &TestApp,
    webhook: &Value,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + ARRIVES;
    loop {
        let attempts = attempts(app, webhook).await;
        if done(&attempts) {
            return attempts;
        }
        assert!(tokio::time::Instant::now() < deadline, "{attempts:#?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn endpoints_are_managed_and_their_secret_is_shown_once() {
    let app = TestApp::spawn_delivering().await;
    let created = create_webhook(
        &app,
        json!({"url": "http://127.0.0.1:9/hook", "description": "CRM sync"}),
    )
    .await;
    let id = created["id"].as_str().expect("an id").to_owned();
    let secret = created["secret"].as_str().expect("a secret");
    assert!(secret.starts_with("whsec_"), "{secret}");
    assert_eq!(created["event_types"], json!([]));
    assert_eq!(created["enabled"], json!(true));
    assert_eq!(created["description"], json!("CRM sync"));

    let path = format!("/api/v1/webhooks/{id}");
    let fetched = app.request(Method::GET, &path, None).await;
    fetched.assert_status(200);
    assert!(fetched.body.get("secret").is_none(), "{}", fetched.text);
    let listed = app.request(Method::GET, "/api/v1/webhooks", None).await;
    assert_eq!(listed.body["data"]["webhooks"][0]["id"], json!(id));
    assert!(!listed.text.contains(secret));

    let changed = app
        .request(
            Method::PATCH,
            &path,
            Some(json!({
                "event_types": ["contact.deleted", "contact.created", "contact.created"],
                "enabled": false,
                "description": "",
            })),
        )
        .await;
    changed.assert_status(200);
    assert_eq!(
        changed.body["event_types"],
        json!(["contact.created", "contact.deleted"])
    );
    assert_eq!(changed.body["enabled"], json!(false));
    assert!(changed.body.get("description").is_none());
    assert!(changed.body.get("secret").is_none());

    let rotated = app
        .request(Method::POST, &format!("{path}/rotate-secret"), None)
        .await;
    rotated.assert_status(200);
    let new_secret = rotated.body["secret"].as_str().expect("a secret");
    assert!(new_secret.starts_with("whsec_") && new_secret != secret);

    // Another company sees none of it.
    let other = app.other_company_key().await;
    app.request_as(&other, Method::GET, &path, None)
        .await
        .assert_error(404, "webhook_not_found");
    app.request_as(&other, Method::DELETE, &path, None)
        .await
        .assert_error(404, "webhook_not_found");

    let deleted = app.request(Method::DELETE, &path, None).await;
    deleted.assert_status(200);
    assert_eq!(deleted.body, json!({"id": id, "deleted": true}));
    app.request(Method::GET, &path, None)
        .await
        .assert_error(404, "webhook_not_found");
    app.request(Method::GET, "/api/v1/webhooks/not-a-uuid", None)
        .await
        .assert_error(400, "invalid_id");
}
contract_test!(endpoints_are_managed_and_their_secret_is_shown_once);

async fn internal_destinations_and_bad_settings_are_refused() {
    // A server without --webhook-allow-private.
    let app = TestApp::spawn().await;
    for url in [
        "http://127.0.0.1:8080/hook",
        "http://localhost/hook",
        "http://[::1]/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.7/hook",
        "http://[::ffff:192.168.1.1]/hook",
        "ftp://example.com/hook",
        "https://user:password@example.com/hook",
        "not a url",
    ] {
        let refused = app
            .request(Method::POST, "/api/v1/webhooks", Some(json!({"url": url})))
            .await;
        refused.assert_error(400, "invalid_webhook_url");
        assert_eq!(refused.field(), Some("url"), "{url}");
    }
    let long = app
        .request(
            Method::POST,
            "/api/v1/webhooks",
            Some(json!({"url": "https://1.1.1.1/hook", "description": "d".repeat(501)})),
        )
        .await;
    long.assert_error(400, "invalid_description");
    let unknown_type = app
        .request(
            Method::POST,
            "/api/v1/webhooks",
            Some(json!({"url": "https://1.1.1.1/hook", "event_types": ["contact.merged"]})),
        )
        .await;
    assert_eq!(unknown_type.status.as_u16(), 400, "{}", unknown_type.text);
    let list = app.request(Method::GET, "/api/v1/webhooks", None).await;
    assert_eq!(
        list.body["data"]["webhooks"],
        json!([]),
        "nothing was created"
    );
}
contract_test!(internal_destinations_and_bad_settings_are_refused);

async fn admins_creating_endpoints_at_once_stop_at_the_limit() {
    let app = TestApp::spawn_delivering().await;
    let creations = (0..60).map(|n| {
        app.request(
            Method::POST,
            "/api/v1/webhooks",
            Some(json!({"url": format!("http://127.0.0.1:9/hook/{n}")})),
        )
    });
    let answers = futures_util::future::join_all(creations).await;
    let created = answers.iter().filter(|answer| answer.status == 200).count();
    assert_eq!(created, 50);
    for refused in answers.iter().filter(|answer| answer.status != 200) {
        refused.assert_error(409, "too_many_webhooks");
    }
}
contract_test!(admins_creating_endpoints_at_once_stop_at_the_limit);

async fn deliveries_are_signed_and_go_out_in_feed_order() {
    let app = TestApp::spawn_delivering().await;
    // On PostgreSQL, a transaction left open elsewhere in the cluster holds the feed's
    // horizon back: the endpoint must still start after what was committed before it.
    let open_elsewhere = app.database.hold_a_transaction_open().await;
    app.given_contact(json!({"ext_id": "before-the-endpoint"}))
        .await;
    let receiver = Receiver::start(Answer::Status(204)).await;
    let webhook = create_webhook(&app, json!({"url": receiver.url()})).await;
    drop(open_elsewhere);
    let only_deletions = Receiver::start(Answer::Status(200)).await;
    create_webhook(
        &app,
        json!({"url": only_deletions.url(), "event_types": ["contact.deleted"]}),
    )
    .await;
    let secret = webhook["secret"].as_str().expect("a secret");

    let contact = app.given_contact(json!({"ext_id": "crm-1"})).await;
    let id = contact["id"].as_str().expect("an id");
    app.patch_contact_at(id, json!({"first_name": "Ada"}))
        .await
        .assert_status(200);
    app.delete_contact(id).await.assert_status(200);

    let deliveries = receiver.wait_for(3, ARRIVES).await;
    let types: Vec<Value> = deliveries
        .iter()
        .map(|delivery| delivery.json()["type"].clone())
        .collect();
    assert_eq!(
        types,
        [
            json!("contact.created"),
            json!("contact.updated"),
            json!("contact.deleted")
        ],
        "only what was listed after the endpoint was created, in feed order"
    );
    for delivery in &deliveries {
        assert_signed(delivery, secret);
        assert_eq!(delivery.header("content-type"), "application/json");
        assert_eq!(
            delivery.id(),
            delivery.json()["id"].as_str().expect("an id")
        );
        let sent: u64 = delivery
            .header("webhook-timestamp")
            .parse()
            .expect("seconds");
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .expect("now")
            .as_secs();
        assert!(now.abs_diff(sent) < 60);
    }
    assert_eq!(
        deliveries[1].json()["data"]["changes"],
        json!({"first_name": {"before": null, "after": "Ada"}})
    );
    // The feed holds the same events.
    let feed = app.request(Method::GET, "/api/v1/events", None).await;
    let feed_ids: Vec<&str> = feed.body["data"]["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|event| event["id"].as_str())
        .collect();
    assert!(
        deliveries
            .iter()
            .all(|delivery| feed_ids.contains(&delivery.id()))
    );

    let deletions = only_deletions.wait_for(1, ARRIVES).await;
    assert_eq!(deletions[0].json()["type"], json!("contact.deleted"));
    let done = attempts_until(&app, &webhook, |attempts| attempts.len() == 3).await;
    for attempt in &done {
        assert_eq!(attempt["outcome"], json!("delivered"), "{attempt}");
        assert_eq!(attempt["status"], json!(204));
        assert_eq!(attempt["attempt"], json!(1));
    }
    assert_eq!(
        done[0]["event_id"],
        json!(deliveries[2].id()),
        "newest first"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(receiver.deliveries().len(), 3, "each delivered once");
    assert_eq!(only_deletions.deliveries().len(), 1);
}
contract_test!(deliveries_are_signed_and_go_out_in_feed_order);

async fn a_failed_delivery_is_retried_on_schedule_and_by_hand() {
    let app = TestApp::spawn_delivering().await;
    let receiver = Receiver::start(Answer::Status(503)).await;
    let webhook = create_webhook(&app, json!({"url": receiver.url()})).await;
    app.given_contact(json!({"ext_id": "crm-1"})).await;

    let first = attempts_until(&app, &webhook, |attempts| !attempts.is_empty()).await;
    assert_eq!(first[0]["outcome"], json!("retrying"), "{first:#?}");
    assert_eq!(first[0]["status"], json!(503));
    assert!(
        first[0]["error"]
            .as_str()
            .expect("an error")
            .contains("503")
    );
    let attempted =
        chrono::DateTime::parse_from_rfc3339(first[0]["attempted_at"].as_str().expect("a time"))
            .expect("a time");
    let next =
        chrono::DateTime::parse_from_rfc3339(first[0]["next_attempt_at"].as_str().expect("a time"))
            .expect("a time");
    assert_eq!(
        (next - attempted).num_seconds(),
        5,
        "the first retry is 5 s later"
    );

    receiver.answer(Answer::Status(200));
    let second = attempts_until(&app, &webhook, |attempts| attempts.len() == 2).await;
    assert_eq!(second[0]["attempt"], json!(2));
    assert_eq!(second[0]["outcome"], json!("delivered"));
    let deliveries = receiver.deliveries();
    assert_eq!(
        deliveries[0].id(),
        deliveries[1].id(),
        "the same event again"
    );

    let id = webhook["id"].as_str().expect("an id");
    let event_id = deliveries[0].id().to_owned();
    let retried = app
        .request(
            Method::POST,
            &format!("/api/v1/webhooks/{id}/deliveries/{event_id}/retry"),
            None,
        )
        .await;
    retried.assert_status(200);
    assert_eq!(retried.body["attempt"], json!(3));
    let third = attempts_until(&app, &webhook, |attempts| attempts.len() == 3).await;
    assert_eq!(third[0]["outcome"], json!("delivered"));
    assert_eq!(receiver.deliveries()[2].id(), event_id);

    app.request(
        Method::POST,
        &format!(
            "/api/v1/webhooks/{id}/deliveries/evt_{}/retry",
            "0".repeat(32)
        ),
        None,
    )
    .await
    .assert_error(404, "event_not_found");
    app.request(
        Method::POST,
        &format!("/api/v1/webhooks/{id}/deliveries/42/retry"),
        None,
    )
    .await
    .assert_error(400, "invalid_event_id");
}
contract_test!(a_failed_delivery_is_retried_on_schedule_and_by_hand);

async fn hostile_receivers_cost_a_bounded_attempt_each() {
    let app = TestApp::spawn_delivering().await;
    let redirecting = Receiver::start(Answer::Redirect).await;
    let endless = Receiver::start(Answer::EndlessBody).await;
    let silent = Receiver::start(Answer::Slowly(Duration::from_secs(60))).await;
    let mut webhooks = Vec::new();
    for receiver in [&redirecting, &endless, &silent] {
        webhooks.push(create_webhook(&app, json!({"url": receiver.url()})).await);
    }
    app.given_contact(json!({"ext_id": "crm-1"})).await;

    let redirect = attempts_until(&app, &webhooks[0], |attempts| !attempts.is_empty()).await;
    assert_eq!(redirect[0]["status"], json!(302), "not followed");
    assert_eq!(redirect[0]["outcome"], json!("retrying"));
    let endless_attempt = attempts_until(&app, &webhooks[1], |attempts| !attempts.is_empty()).await;
    assert_eq!(
        endless_attempt[0]["outcome"],
        json!("delivered"),
        "64 KiB read, then done"
    );
    assert!(endless_attempt[0]["duration_ms"].as_u64().expect("ms") < 10_000);
    let timed_out = attempts_until(&app, &webhooks[2], |attempts| !attempts.is_empty()).await;
    assert_eq!(timed_out[0]["outcome"], json!("retrying"));
    assert!(timed_out[0].get("status").is_none());
    assert!(timed_out[0]["duration_ms"].as_u64().expect("ms") >= 10_000);
}
contract_test!(hostile_receivers_cost_a_bounded_attempt_each);

async fn a_rotated_secret_signs_next_to_the_new_one_for_a_day() {
    let app = TestApp::spawn_delivering().await;
    let receiver = Receiver::start(Answer::Status(200)).await;
    let webhook = create_webhook(&app, json!({"url": receiver.url()})).await;
    let id = webhook["id"].as_str().expect("an id");
    let rotated = app
        .request(
            Method::POST,
            &format!("/api/v1/webhooks/{id}/rotate-secret"),
            None,
        )
        .await;
    app.given_contact(json!({"ext_id": "crm-1"})).await;
    let delivery = &receiver.wait_for(1, ARRIVES).await[0];
    assert_eq!(delivery.header("webhook-signature").split(' ').count(), 2);
    assert_signed(delivery, webhook["secret"].as_str().expect("old"));
    assert_signed(delivery, rotated.body["secret"].as_str().expect("new"));
}
contract_test!(a_rotated_secret_signs_next_to_the_new_one_for_a_day);

async fn an_endpoint_failing_for_five_days_is_disabled_until_enabled_again() {
    let app = TestApp::spawn_delivering().await;
    let receiver = Receiver::start(Answer::Status(500)).await;
    let webhook = create_webhook(&app, json!({"url": receiver.url()})).await;
    let id = webhook["id"].as_str().expect("an id");
    // Its failures began six days ago.
    let six_days_ago = chrono::Utc::now().timestamp_millis() - 6 * 24 * 60 * 60 * 1000;
    app.database
        .execute(&format!(
            "UPDATE webhooks SET failing_since = {six_days_ago}"
        ))
        .await;
    app.given_contact(json!({"ext_id": "crm-1"})).await;
    attempts_until(&app, &webhook, |attempts| !attempts.is_empty()).await;
    let path = format!("/api/v1/webhooks/{id}");
    let deadline = tokio::time::Instant::now() + ARRIVES;
    let disabled = loop {
        let fetched = app.request(Method::GET, &path, None).await;
        if fetched.body["enabled"] == json!(false) {
            break fetched.body;
        }
        assert!(tokio::time::Instant::now() < deadline, "{}", fetched.text);
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(disabled["disabled_reason"], json!("failing"));

    receiver.answer(Answer::Status(200));
    app.given_contact(json!({"ext_id": "crm-2"})).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        receiver.deliveries().len(),
        1,
        "a disabled endpoint gets nothing"
    );
    let enabled = app
        .request(Method::PATCH, &path, Some(json!({"enabled": true})))
        .await;
    assert_eq!(enabled.body["enabled"], json!(true));
    assert!(enabled.body.get("disabled_reason").is_none());
    // It resumes where it stopped: the second contact, and the retry of the first.
    let deliveries = receiver.wait_for(3, ARRIVES).await;
    let mut resumed: Vec<Value> = deliveries[1..]
        .iter()
        .map(|delivery| delivery.json()["data"]["contact"]["ext_id"].clone())
        .collect();
    resumed.sort_by_key(Value::to_string);
    assert_eq!(resumed, [json!("crm-1"), json!("crm-2")]);
}
contract_test!(an_endpoint_failing_for_five_days_is_disabled_until_enabled_again);

/// A company and an API key on a fresh database, and a server on it that may deliver to
/// this machine's receivers, started as an operator runs it.
fn delivering_server(database: &TestDatabase) -> ServerProcess {
    ServerProcess::start(&database.url, &[("CONTACTD_WEBHOOK_ALLOW_PRIVATE", "1")])
}

async fn a_delivery_cut_off_by_sigkill_is_sent_again_after_a_restart() {
    let database = TestDatabase::create(Backend::current()).await;
    admin(&database.url, &["company", "create", "acme"]);
    let key = admin(&database.url, &["key", "create", "--company", "acme"])
        .trim()
        .to_owned();
    // The receiver holds the first delivery well past the kill.
    let receiver = Receiver::start(Answer::Slowly(Duration::from_secs(120))).await;
    let server = delivering_server(&database);
    let client = Client::new(&server.base_url, &key);
    let webhook = client
        .create_webhook(&receiver.endpoint())
        .await
        .expect("endpoint created");
    client
        .create_contact(&CreateContact {
            ext_id: Some("crm-1".to_owned()),
            ..CreateContact::default()
        })
        .await
        .expect("contact created");
    let held = receiver.wait_for(1, ARRIVES).await;

    server.kill();
    receiver.answer(Answer::Status(204));
    let restarted = delivering_server(&database);
    // The dead process's lease runs out within LEASE; then the new one sends again.
    let deliveries = receiver.wait_for(2, LEASE + ARRIVES).await;
    assert_eq!(deliveries[1].id(), held[0].id(), "the same delivery");
    assert_eq!(deliveries[1].body, held[0].body, "byte for byte");

    let client = Client::new(&restarted.base_url, &key);
    let id = webhook.id.to_string();
    let deadline = tokio::time::Instant::now() + ARRIVES;
    let attempts = loop {
        let page = client
            .list_deliveries(&id, None, None)
            .await
            .expect("attempts");
        if !page.data.deliveries.is_empty() {
            break page.data.deliveries;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no attempt recorded"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // The attempt cut off was never recorded: the one after the restart is the first.
    assert_eq!(attempts.len(), 1, "{attempts:?}");
    assert_eq!(attempts[0].event_id, held[0].id());
    assert_eq!(attempts[0].attempt, 1);
    assert_eq!(attempts[0].outcome, DeliveryOutcome::Delivered);
    assert_eq!(receiver.deliveries().len(), 2, "sent twice, no more");
}
contract_test!(a_delivery_cut_off_by_sigkill_is_sent_again_after_a_restart);

async fn the_typed_client_manages_endpoints_and_follows_the_feed() {
    let database = TestDatabase::create(Backend::current()).await;
    admin(&database.url, &["company", "create", "acme"]);
    let key = admin(&database.url, &["key", "create", "--company", "acme"])
        .trim()
        .to_owned();
    let server = delivering_server(&database);
    let client = Client::new(&server.base_url, &key);
    let receiver = Receiver::start(Answer::Status(500)).await;
    let created = client
        .create_webhook(&CreateWebhook {
            url: receiver.url(),
            event_types: Some(vec![EventType::ContactCreated]),
            description: Some("CRM sync".to_owned()),
        })
        .await
        .expect("created");
    let id = created.id.to_string();
    assert!(
        created
            .secret
            .as_deref()
            .is_some_and(|secret| secret.starts_with("whsec_"))
    );
    let listed = client.list_webhooks().await.expect("listed");
    assert_eq!(listed.data.webhooks.len(), 1);
    assert_eq!(listed.data.webhooks[0].secret, None, "shown once");
    let updated = client
        .update_webhook(
            &id,
            &UpdateWebhook {
                description: Some("CRM".to_owned()),
                ..UpdateWebhook::default()
            },
        )
        .await
        .expect("updated");
    assert_eq!(updated.description.as_deref(), Some("CRM"));
    assert_eq!(client.get_webhook(&id).await.expect("fetched"), updated);
    let rotated = client.rotate_webhook_secret(&id).await.expect("rotated");
    assert_ne!(rotated.secret, created.secret);

    // 150 events: the iterator crosses pages of 100 and stops where the feed ends.
    let contacts: Vec<CreateContact> = (0..150)
        .map(|n| CreateContact {
            ext_id: Some(format!("crm-{n}")),
            ..CreateContact::default()
        })
        .collect();
    client.create_contacts(&contacts).await.expect("created");
    let mut events = client.events(None, &[]);
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + ARRIVES;
    while seen.len() < 150 {
        match events.next().await.expect("the feed") {
            Some(event) => seen.push(event),
            None => {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "{} events",
                    seen.len()
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    let ext_ids: Vec<String> = seen
        .iter()
        .map(|event| {
            event
                .data
                .contact
                .as_ref()
                .expect("a contact")
                .ext_id
                .clone()
                .expect("an ext_id")
        })
        .collect();
    let expected: Vec<String> = (0..150).map(|n| format!("crm-{n}")).collect();
    assert_eq!(ext_ids, expected, "oldest first, each once");
    assert_eq!(events.next().await.expect("the feed"), None, "caught up");
    // Resuming from its cursor gives what came after, and nothing before.
    client
        .create_contact(&CreateContact {
            ext_id: Some("crm-last".to_owned()),
            ..CreateContact::default()
        })
        .await
        .expect("created");
    let mut resumed = client.events(events.cursor(), &[EventType::ContactCreated]);
    let deadline = tokio::time::Instant::now() + ARRIVES;
    let next = loop {
        if let Some(event) = resumed.next().await.expect("the feed") {
            break event;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "nothing after the cursor"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        next.data
            .contact
            .and_then(|contact| contact.ext_id)
            .as_deref(),
        Some("crm-last")
    );

    // The receiver fails: the attempt is listed, and a retry is scheduled by hand.
    let deadline = tokio::time::Instant::now() + ARRIVES;
    let failed = loop {
        let page = client
            .list_deliveries(&id, Some(1), None)
            .await
            .expect("attempts");
        if let Some(attempt) = page.data.deliveries.into_iter().next() {
            break attempt;
        }
        assert!(tokio::time::Instant::now() < deadline, "no attempt");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(failed.outcome, DeliveryOutcome::Retrying);
    let scheduled = client
        .retry_delivery(&id, &failed.event_id)
        .await
        .expect("scheduled");
    assert_eq!(scheduled.event_id, failed.event_id);
    let deleted = client.delete_webhook(&id).await.expect("deleted");
    assert!(deleted.deleted);
    match client.get_webhook(&id).await {
        Err(contactd_client::Error::Api(error)) => {
            assert_eq!(error.code.as_deref(), Some("webhook_not_found"));
        }
        other => panic!("expected 404, got {other:?}"),
    }
}
contract_test!(the_typed_client_manages_endpoints_and_follows_the_feed);
