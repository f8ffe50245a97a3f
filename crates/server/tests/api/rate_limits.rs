//! Per-key rate limits (docs/reference.md#rate-limits): a token bucket per key, the
//! `RateLimit-*` headers on every answer to a key, 429 `rate_limited` with `Retry-After`
//! past it, and nothing written by a refused request.

use std::sync::Arc;
use std::time::Duration;

use axum::http::{Method, header};
use contactd::api_key;
use contactd::store::RateLimit;
use contactd_api::Scope;
use serde_json::json;

use crate::helpers::{ServerProcess, TestApp, TestResponse, admin, contract_test};

#[track_caller]
fn rate_header(response: &TestResponse, name: &str) -> u64 {
    response.headers[name]
        .to_str()
        .expect("ASCII")
        .parse()
        .unwrap_or_else(|_| panic!("{name} is a number"))
}

async fn a_key_past_its_burst_is_refused_until_its_bucket_refills() {
    let app = TestApp::spawn_rate_limited(RateLimit {
        per_second: 1,
        burst: 3,
    })
    .await;
    for remaining in [2, 1, 0] {
        let answer = app.list_contacts("").await;
        answer.assert_status(200);
        assert_eq!(rate_header(&answer, "ratelimit-limit"), 3);
        assert_eq!(rate_header(&answer, "ratelimit-remaining"), remaining);
        assert_eq!(rate_header(&answer, "ratelimit-reset"), 3 - remaining);
    }
    let before = app.dump().await;
    let refused = app.create_contact(json!({"ext_id": "crm-1"})).await;
    refused.assert_error(429, "rate_limited");
    assert_eq!(refused.headers[header::RETRY_AFTER], "1");
    assert_eq!(rate_header(&refused, "ratelimit-remaining"), 0);
    assert_eq!(app.dump().await, before, "a refused request writes nothing");

    // Another key of the company has a bucket of its own.
    let other = api_key::generate(None, &Scope::ALL);
    app.store
        .create_api_key(app.company_id, &other.record)
        .await
        .expect("a second key");
    app.request_as(&other.secret, Method::GET, "/api/v1/contacts", None)
        .await
        .assert_status(200);

    // Waiting what Retry-After said lets the next request through.
    tokio::time::sleep(Duration::from_secs(1)).await;
    app.create_contact(json!({"ext_id": "crm-1"}))
        .await
        .assert_status(200);
}
contract_test!(a_key_past_its_burst_is_refused_until_its_bucket_refills);

/// A hundred requests at once against a burst of ten: ten get through (one more if a token
/// came back meanwhile), every other is a 429.
async fn concurrent_requests_never_get_past_the_burst() {
    let app = Arc::new(
        TestApp::spawn_rate_limited(RateLimit {
            per_second: 1,
            burst: 10,
        })
        .await,
    );
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let app = Arc::clone(&app);
            tokio::spawn(async move { app.list_contacts("").await })
        })
        .collect();
    let mut admitted = 0;
    for task in tasks {
        let answer = task.await.expect("the request ran");
        match answer.status.as_u16() {
            200 => admitted += 1,
            _ => {
                answer.assert_error(429, "rate_limited");
            }
        }
    }
    assert!((10..=11).contains(&admitted), "{admitted} admitted");
}
contract_test!(concurrent_requests_never_get_past_the_burst);

/// A key made with its own limit keeps it, whatever the server's.
async fn a_keys_own_limit_takes_the_place_of_the_servers() {
    let app = TestApp::spawn_rate_limited(RateLimit {
        per_second: 1000,
        burst: 1000,
    })
    .await;
    let mut tight = api_key::generate(Some("tight".to_owned()), &Scope::ALL);
    tight.record.rate_limit = Some(RateLimit {
        per_second: 1,
        burst: 1,
    });
    app.store
        .create_api_key(app.company_id, &tight.record)
        .await
        .expect("a key");
    let first = app
        .request_as(&tight.secret, Method::GET, "/api/v1/contacts", None)
        .await;
    first.assert_status(200);
    assert_eq!(rate_header(&first, "ratelimit-limit"), 1);
    app.request_as(&tight.secret, Method::GET, "/api/v1/contacts", None)
        .await
        .assert_error(429, "rate_limited");
    let other = app.list_contacts("").await;
    other.assert_status(200);
    assert_eq!(rate_header(&other, "ratelimit-limit"), 1000);
}
contract_test!(a_keys_own_limit_takes_the_place_of_the_servers);

/// The real binary limits every key by default (100/s, burst 200), `--rate-limit 0` turns
/// it off, and `contactd key create --rate-limit` gives a key its own.
#[tokio::test]
async fn the_server_limits_by_default_and_keys_take_their_own_limit() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("limits.db").display());
    admin(&url, &["company", "create", "acme"]);
    let key = admin(&url, &["key", "create", "--company", "acme"]);
    let tight = admin(
        &url,
        &[
            "key",
            "create",
            "--company",
            "acme",
            "--name",
            "tight",
            "--rate-limit",
            "2",
        ],
    );
    let listed = admin(&url, &["key", "list", "--company", "acme"]);
    assert!(listed.contains("\t-\n"), "{listed}");
    assert!(listed.contains("\t2/s burst 4\n"), "{listed}");

    let client = reqwest::Client::new();
    let get = async |server: &ServerProcess, key: &str| {
        client
            .get(format!("{}/api/v1/contacts", server.base_url))
            .bearer_auth(key.trim())
            .send()
            .await
            .expect("an answer")
    };
    let server = ServerProcess::start(&url, &[]);
    let answer = get(&server, &key).await;
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.headers()["ratelimit-limit"], "200");
    assert_eq!(answer.headers()["ratelimit-remaining"], "199");
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(get(&server, &tight).await.status().as_u16());
    }
    assert_eq!(statuses, [200, 200, 200, 200, 429]);
    drop(server);

    let unlimited = ServerProcess::start(&url, &[("CONTACTD_RATE_LIMIT", "0")]);
    let answer = get(&unlimited, &key).await;
    assert_eq!(answer.status(), 200);
    assert!(answer.headers().get("ratelimit-limit").is_none());
}
