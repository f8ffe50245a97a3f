//! Prometheus metrics (docs/reference.md#metrics): the real binary with `--metrics-bind`,
//! scraped after requests of each kind on both backends; its listener held to the same
//! limits as the API's and stopped with it; off by default; refused on the API's address.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use contactd_api::CreateContact;
use reqwest::{Client, Method, StatusCode};
use serde_json::json;

use crate::helpers::{
    Answer, Backend, Receiver, ServerProcess, TestDatabase, admin, contactd, contract_test,
    runtime, send_raw,
};

/// One sample of a scrape: `name{labels} value`.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// A scrape, as text and as samples.
#[derive(Debug)]
struct Scrape {
    text: String,
    samples: Vec<Sample>,
}

impl Scrape {
    /// Reads the Prometheus text format: comments skipped, each other line one sample.
    fn parse(text: String) -> Self {
        let samples = text
            .lines()
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .map(|line| {
                let (series, value) = line.rsplit_once(' ').expect("a value");
                let value = value.parse().expect("a number");
                let Some((name, labels)) = series.split_once('{') else {
                    return Sample {
                        name: series.to_owned(),
                        labels: BTreeMap::new(),
                        value,
                    };
                };
                let mut parsed = BTreeMap::new();
                // `key="value",…}`; a route template holds braces, never a quote.
                let mut rest = labels.strip_suffix('}').expect("closed labels");
                while let Some((key, after)) = rest.split_once("=\"") {
                    let (label, after) = after.split_once('"').expect("a closed label value");
                    parsed.insert(key.to_owned(), label.to_owned());
                    rest = after.strip_prefix(',').unwrap_or(after);
                }
                Sample {
                    name: name.to_owned(),
                    labels: parsed,
                    value,
                }
            })
            .collect();
        Self { text, samples }
    }

    /// The sum of the samples of `name` that carry every label of `labels`.
    fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.matching(name, labels)
            .iter()
            .map(|sample| sample.value)
            .sum()
    }

    /// The value of the one sample of `name` with these labels, failing when there is none.
    #[track_caller]
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let found = self.matching(name, labels);
        assert_eq!(found.len(), 1, "{name} {labels:?} in:\n{}", self.text);
        found[0].value
    }

    /// The samples of `name` that carry every label of `labels`.
    fn matching(&self, name: &str, labels: &[(&str, &str)]) -> Vec<&Sample> {
        self.samples
            .iter()
            .filter(|sample| {
                sample.name == name
                    && labels.iter().all(|(key, value)| {
                        sample.labels.get(*key).map(String::as_str) == Some(value)
                    })
            })
            .collect()
    }
}

/// Scrapes the server's metrics listener.
async fn scrape(http: &Client, server: &ServerProcess) -> Scrape {
    let response = http
        .get(format!("{}/metrics", server.metrics_url()))
        .send()
        .await
        .expect("scraped");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    Scrape::parse(response.text().await.expect("a body"))
}

const REQUESTS: &str = "contactd_http_requests_total";
const DURATION: &str = "contactd_http_request_duration_seconds";

/// A contact created, updated through the group commit (or the pool), looked up by a raw
/// `alt:email:` path that finds nothing, paths no route matches, a probe and a made-up
/// method: each is counted under its route template and a method of a fixed few, and
/// nothing of the raw paths or the method reaches the scrape.
async fn a_scrape_counts_requests_by_route_template_and_shows_the_database() {
    let backend = Backend::current();
    let database = TestDatabase::create(backend).await;
    let server = ServerProcess::start(
        &database.url,
        &[
            ("CONTACTD_METRICS_BIND", "127.0.0.1:0"),
            ("CONTACTD_DATABASE_MAX_CONNECTIONS", "5"),
        ],
    );
    let key = server.first_run_key();
    let http = Client::new();
    let send = |method: Method, path: &str, body: Option<serde_json::Value>| {
        let request = http
            .request(method, format!("{}{path}", server.base_url))
            .bearer_auth(&key);
        let request = match body {
            Some(body) => request.json(&body),
            None => request,
        };
        async move { request.send().await.expect("sent").status() }
    };
    let created = send(
        Method::POST,
        "/api/v1/contacts",
        Some(json!({"email": "ada@example.com"})),
    );
    assert_eq!(created.await, StatusCode::OK);
    let patch = json!({"id": "alt:email:ada@example.com", "first_name": "Ada"});
    let patched = send(Method::PATCH, "/api/v1/contacts", Some(patch.clone()));
    assert_eq!(patched.await, StatusCode::OK);
    for _ in 0..2 {
        let missing = send(
            Method::GET,
            "/api/v1/contacts/alt:email:grace-hopper@example.com",
            None,
        );
        assert_eq!(missing.await, StatusCode::NOT_FOUND);
    }
    for nowhere in [
        "/nowhere/grace-hopper@example.com",
        "/elsewhere/+14155550100",
    ] {
        assert_eq!(
            send(Method::GET, nowhere, None).await,
            StatusCode::NOT_FOUND
        );
    }
    assert_eq!(send(Method::GET, "/healthz", None).await, StatusCode::OK);
    let brew = Method::from_bytes(b"BREW").expect("a method");
    let brewed = send(brew, "/healthz", None);
    assert_eq!(brewed.await, StatusCode::METHOD_NOT_ALLOWED);

    let scraped = scrape(&http, &server).await;
    for raw in [
        "grace-hopper",
        "ada@example.com",
        "alt:email",
        "/nowhere",
        "4155550100",
        "BREW",
    ] {
        assert!(!scraped.text.contains(raw), "{raw} in:\n{}", scraped.text);
    }
    let contact = ("route", "/api/v1/contacts/{id}");
    let contacts = ("route", "/api/v1/contacts");
    for (route, method, status, count) in [
        (contact, "GET", "404", 2.0),
        (("route", "unmatched"), "GET", "404", 2.0),
        (("route", "/healthz"), "other", "405", 1.0),
        (contacts, "POST", "200", 1.0),
        (contacts, "PATCH", "200", 1.0),
        (("route", "/healthz"), "GET", "200", 1.0),
    ] {
        let labels = [route, ("method", method), ("status", status)];
        assert_eq!(scraped.value(REQUESTS, &labels), count, "{labels:?}");
    }
    assert_eq!(scraped.sum(REQUESTS, &[contact, ("status", "200")]), 0.0);
    // The latency histogram: by route and method, in buckets from 250 µs to 10 s.
    let timed = [contact, ("method", "GET")];
    assert_eq!(scraped.value(&format!("{DURATION}_count"), &timed), 2.0);
    let buckets: Vec<&str> = scraped
        .matching(&format!("{DURATION}_bucket"), &timed)
        .into_iter()
        .map(|sample| sample.labels["le"].as_str())
        .collect();
    assert_eq!(
        buckets,
        [
            "0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1",
            "0.25", "0.5", "1", "2.5", "5", "10", "+Inf"
        ]
    );
    let inf = [contact, ("method", "GET"), ("le", "+Inf")];
    assert_eq!(scraped.value(&format!("{DURATION}_bucket"), &inf), 2.0);
    // The scrape is answered by another listener: no API request is in flight.
    assert_eq!(scraped.value("contactd_http_requests_in_flight", &[]), 0.0);
    assert!(
        scraped
            .text
            .contains("# HELP contactd_http_requests_total ")
    );

    match backend {
        Backend::Sqlite => {
            // The first run's writes, the create and the patch: each batch counted.
            let batches = scraped.value("contactd_sqlite_group_commit_writes_count", &[]);
            assert!(batches >= 2.0, "{}", scraped.text);
            let all = [("le", "256")];
            let bucketed = "contactd_sqlite_group_commit_writes_bucket";
            assert_eq!(scraped.value(bucketed, &all), batches);
            let timed = "contactd_sqlite_group_commit_duration_seconds_count";
            assert_eq!(scraped.value(timed, &[]), batches);
            assert!(!scraped.text.contains("contactd_postgres_"));
            // The checkpointer empties the WAL once writes pause for a second, so a write
            // and the scrape after it race that; the race is retried, never slept on.
            let mut wal = scraped.value("contactd_sqlite_wal_size_bytes", &[]);
            for _ in 0..20 {
                if wal > 0.0 {
                    break;
                }
                let patched = send(Method::PATCH, "/api/v1/contacts", Some(patch.clone()));
                assert_eq!(patched.await, StatusCode::OK);
                wal = scrape(&http, &server)
                    .await
                    .value("contactd_sqlite_wal_size_bytes", &[]);
            }
            assert!(wal > 0.0, "the WAL is never seen holding a write");
        }
        Backend::Postgres => {
            let max = scraped.value("contactd_postgres_pool_max_connections", &[]);
            assert_eq!(max, 5.0);
            let open = scraped.sum("contactd_postgres_pool_connections", &[]);
            let idle = scraped.value("contactd_postgres_pool_connections", &[("state", "idle")]);
            let in_use =
                scraped.value("contactd_postgres_pool_connections", &[("state", "in_use")]);
            assert!((1.0..=max).contains(&open), "{}", scraped.text);
            assert_eq!(open, idle + in_use);
            assert!(!scraped.text.contains("contactd_sqlite_"));
        }
    }
}
contract_test!(a_scrape_counts_requests_by_route_template_and_shows_the_database);

/// Webhook attempts are counted by outcome and timed; the gauges read at each scrape show
/// the endpoints, the retries waiting, and how far behind the deliveries are.
async fn webhook_deliveries_are_counted_and_their_backlog_shown() {
    let database = TestDatabase::create(Backend::current()).await;
    let server = ServerProcess::start(
        &database.url,
        &[
            ("CONTACTD_METRICS_BIND", "127.0.0.1:0"),
            ("CONTACTD_WEBHOOK_ALLOW_PRIVATE", "1"),
        ],
    );
    let http = Client::new();
    let scraped = scrape(&http, &server).await;
    for outcome in ["delivered", "retrying", "failed"] {
        let attempts = scraped.value(ATTEMPTS, &[("outcome", outcome)]);
        assert_eq!(attempts, 0.0, "{outcome} shown from the start");
    }
    assert_eq!(scraped.value(BACKLOG, &[]), 0.0);

    let client = contactd_client::Client::new(&server.base_url, server.first_run_key());
    // The receiver holds the first delivery: the event stays undelivered meanwhile.
    let receiver = Receiver::start(Answer::Slowly(Duration::from_secs(3))).await;
    client
        .create_webhook(&receiver.endpoint())
        .await
        .expect("endpoint created");
    let contact = |ext_id: &str| CreateContact {
        ext_id: Some(ext_id.to_owned()),
        ..CreateContact::default()
    };
    client
        .create_contact(&contact("crm-1"))
        .await
        .expect("contact created");
    receiver.wait_for(1, Duration::from_secs(15)).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let scraped = scrape(&http, &server).await;
    assert_eq!(scraped.value(ENDPOINTS, &[("state", "enabled")]), 1.0);
    assert_eq!(scraped.value(ENDPOINTS, &[("state", "disabled")]), 0.0);
    assert!(scraped.value(BACKLOG, &[]) >= 1.0, "{}", scraped.text);

    // Then it fails the next: counted as retrying, with its retry waiting. The attempt is
    // counted when it is made and its retry is written with the batch after it, so the
    // scrape that shows both may come a moment after the one that shows the count.
    receiver.answer(Answer::Status(503));
    client
        .create_contact(&contact("crm-2"))
        .await
        .expect("contact created");
    let deadline = Instant::now() + Duration::from_secs(15);
    let scraped = loop {
        let scraped = scrape(&http, &server).await;
        if scraped.value(ATTEMPTS, &[("outcome", "retrying")]) == 1.0
            && scraped.value(RETRIES, &[]) == 1.0
        {
            break scraped;
        }
        assert!(Instant::now() < deadline, "{}", scraped.text);
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(scraped.value(ATTEMPTS, &[("outcome", "delivered")]), 1.0);
    assert_eq!(
        scraped.value(BACKLOG, &[]),
        0.0,
        "caught up but for the retry"
    );
    assert_eq!(
        scraped.value("contactd_webhook_attempt_duration_seconds_count", &[]),
        2.0
    );
}
contract_test!(webhook_deliveries_are_counted_and_their_backlog_shown);

const ATTEMPTS: &str = "contactd_webhook_attempts_total";
const BACKLOG: &str = "contactd_webhook_backlog_age_seconds";
const ENDPOINTS: &str = "contactd_webhook_endpoints";
const RETRIES: &str = "contactd_webhook_retries_pending";

/// A connection past `--max-connections` and an export past its company's limit are
/// counted as refused.
#[tokio::test]
async fn refused_connections_and_exports_are_counted() {
    let database = TestDatabase::create(Backend::Sqlite).await;
    let server = ServerProcess::start(
        &database.url,
        &[
            ("CONTACTD_METRICS_BIND", "127.0.0.1:0"),
            ("CONTACTD_MAX_CONNECTIONS", "1"),
            ("CONTACTD_MAX_EXPORTS_PER_COMPANY", "0"),
        ],
    );
    let key = server.first_run_key();
    // The only place is taken by a kept-alive connection, whose export is refused.
    let mut kept =
        TcpStream::connect(server.base_url.trim_start_matches("http://")).expect("connect");
    kept.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(
        kept,
        "GET /api/v1/contacts/export HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n\r\n"
    )
    .expect("send");
    let mut head = [0; 12];
    kept.read_exact(&mut head).expect("an answer");
    assert_eq!(&head, b"HTTP/1.1 429");
    let (status, _) = send_raw(&server, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(status, 503);

    let scraped = scrape(&Client::new(), &server).await;
    let refused = "contactd_http_connections_refused_total";
    assert_eq!(scraped.value(refused, &[("listener", "api")]), 1.0);
    let exports = "contactd_exports_refused_total";
    assert_eq!(scraped.value(exports, &[("limit", "company")]), 1.0);
    assert_eq!(scraped.sum(exports, &[("limit", "server")]), 0.0);
}

/// The metrics listener serves `/metrics` alone, closes a client that sends its request
/// too slowly, refuses connections past its few, and stops with the server.
#[test]
fn the_metrics_listener_is_held_to_limits_and_stops_with_the_server() {
    let database = runtime().block_on(TestDatabase::create(Backend::Sqlite));
    let server = ServerProcess::start(
        &database.url,
        &[
            ("CONTACTD_METRICS_BIND", "127.0.0.1:0"),
            ("CONTACTD_HEADER_TIMEOUT", "2s"),
        ],
    );
    let metrics = server.metrics_url();
    let address = metrics.trim_start_matches("http://").to_owned();
    let ask = |head: &str| {
        let mut stream = TcpStream::connect(&address).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        stream.write_all(head.as_bytes()).expect("send");
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        answer
    };
    let close = "Host: x\r\nConnection: close\r\n\r\n";
    assert!(ask(&format!("GET /api/v1/contacts HTTP/1.1\r\n{close}")).starts_with("HTTP/1.1 404"));
    assert!(ask(&format!("POST /metrics HTTP/1.1\r\n{close}")).starts_with("HTTP/1.1 405"));
    // The API does not serve the metrics.
    let (status, _) = send_raw(
        &server,
        format!("GET /metrics HTTP/1.1\r\n{close}").as_bytes(),
    );
    assert_eq!(status, 404);

    // Eight half-sent requests take every place; a ninth connection is refused at once.
    let slow: Vec<TcpStream> = (0..8)
        .map(|_| {
            let mut stream = TcpStream::connect(&address).expect("connect");
            stream
                .write_all(b"GET /metrics HTTP/1.1\r\n")
                .expect("send");
            stream
                .set_read_timeout(Some(Duration::from_secs(10)))
                .expect("timeout");
            stream
        })
        .collect();
    // Connections are taken in the order they came: the ninth is past the limit.
    let refused = ask(&format!("GET /metrics HTTP/1.1\r\n{close}"));
    assert!(refused.starts_with("HTTP/1.1 503"), "{refused}");
    // The header timeout closes the slow ones, and the listener serves again.
    // (On a loaded machine the ninth may be accepted before a slow one, which is then the
    // one answered 503: each slow connection ends, none is served.)
    for mut stream in slow {
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
        let answer = String::from_utf8_lossy(&answer);
        assert!(
            answer.is_empty()
                || answer.starts_with("HTTP/1.1 503")
                || answer.starts_with("HTTP/1.1 408"),
            "a slow connection was served: {answer:.200}"
        );
    }
    let scraped = runtime().block_on(scrape(&Client::new(), &server));
    let refused = "contactd_http_connections_refused_total";
    assert!(scraped.value(refused, &[("listener", "metrics")]) >= 1.0);

    // A kept-alive scrape connection does not hold the shutdown up.
    let mut kept = TcpStream::connect(&address).expect("connect");
    kept.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("send");
    let mut head = [0; 12];
    kept.read_exact(&mut head).expect("an answer");
    assert_eq!(&head, b"HTTP/1.1 200");
    let stopping = Instant::now();
    assert_eq!(server.terminate(), Some(0));
    assert!(stopping.elapsed() < Duration::from_secs(5), "held up");
    assert!(TcpStream::connect(&address).is_err(), "still listening");
}

/// Without `--metrics-bind` the server listens on the API's address alone, and serves no
/// metrics there.
#[test]
fn metrics_are_off_by_default() {
    let database = runtime().block_on(TestDatabase::create(Backend::Sqlite));
    let server = ServerProcess::start(&database.url, &[]);
    assert_eq!(server.listening_ports(), [server.port()]);
    let (status, _) = send_raw(
        &server,
        b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status, 404);
    assert!(!server.log().contains("serving metrics"));
}

/// The metrics on the API's own address are refused before the database is touched, with
/// a sentence naming both options; so is an address that would collide with it.
#[test]
fn metrics_on_the_api_address_are_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("contactd.db");
    for (bind, metrics_bind) in [
        ("127.0.0.1:8080", "127.0.0.1:8080"),
        ("0.0.0.0:8080", "127.0.0.1:8080"),
        ("127.0.0.1:9090", "[::]:9090"),
    ] {
        let output = contactd()
            .args(["serve", "--bind", bind, "--metrics-bind", metrics_bind])
            .env(
                "CONTACTD_DATABASE_URL",
                format!("sqlite://{}", file.display()),
            )
            .output()
            .expect("run contactd");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            !output.status.success(),
            "{bind} and {metrics_bind}: {stderr}"
        );
        assert!(
            stderr.contains(&format!(
                "--metrics-bind ({metrics_bind}) must be another address than --bind ({bind})"
            )),
            "{stderr}"
        );
        assert!(!file.exists(), "the database was created");
    }
}

/// A metrics address that is taken stops the start before the first run creates anything,
/// as a taken API address does.
#[test]
fn a_taken_metrics_address_stops_the_start_before_the_first_run() {
    let database = runtime().block_on(TestDatabase::create(Backend::Sqlite));
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    let address = taken.local_addr().expect("its address").to_string();
    let failed = contactd()
        .args(["serve", "--bind", "127.0.0.1:0", "--metrics-bind", &address])
        .env("CONTACTD_DATABASE_URL", &database.url)
        .output()
        .expect("run contactd serve");
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(!failed.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("could not listen on {address} for the metrics")),
        "{stderr}"
    );
    assert_eq!(admin(&database.url, &["company", "list"]), "");
}
