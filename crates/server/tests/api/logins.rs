//! Dashboard logins under attack: a burst of logins cannot exhaust memory, and the lockout
//! holds when the guesses arrive in parallel, for known and unknown emails alike.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::helpers::{
    Backend, ServerProcess, TestApp, TestDatabase, TestResponse, contract_test, csrf_token_in,
    login_client,
};

const EMAIL: &str = "ann@example.com";
const PASSWORD: &str = "correct horse battery";
const UNKNOWN_EMAIL: &str = "nobody@example.com";

/// A figure of `/proc/PID/status`, such as `VmHWM`, in bytes.
fn process_status(pid: u32, name: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read status");
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
        .and_then(|value| value.trim().strip_suffix("kB"))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} in {status}"));
    kib * 1024
}

/// Sends 200 logins at once, each for an email of its own (so none is held back by the
/// lockout and each would cost a password check), and checks every answer: 401 when its
/// password was checked, 503 with `Retry-After` when it got no turn in time.
async fn two_hundred_logins_at_once(server: &ServerProcess, burst: usize) {
    let client = login_client();
    let form = Arc::new(server.login_form(&client).await);
    let started = Instant::now();
    let mut logins = tokio::task::JoinSet::new();
    for index in 0..200 {
        let (client, form) = (client.clone(), form.clone());
        logins.spawn(async move {
            let email = format!("guess{burst}-{index}@example.com");
            let response = form
                .submit(&client, &email, "a wrong password")
                .await
                .expect("every login is answered");
            let status = response.status().as_u16();
            let retry_after = response.headers().get("retry-after").cloned();
            (status, retry_after, response.text().await.expect("a page"))
        });
    }
    let answers = tokio::time::timeout(Duration::from_secs(30), logins.join_all())
        .await
        .expect("no login hangs");
    let elapsed = started.elapsed();
    let (mut checked, mut busy) = (0, 0);
    for (status, retry_after, text) in &answers {
        match status {
            401 => {
                checked += 1;
                assert!(text.contains("Wrong email or password."), "{text}");
            }
            503 => {
                busy += 1;
                assert!(retry_after.is_some(), "a 503 says when to retry");
                assert!(text.contains("Try again in a few seconds."), "{text}");
            }
            other => panic!("unexpected status {other}: {text}"),
        }
    }
    eprintln!(
        "burst {burst}: {checked} checked, {busy} busy in {elapsed:?}; peak RSS {} MiB, \
         now {} MiB",
        process_status(server.pid(), "VmHWM") >> 20,
        process_status(server.pid(), "VmRSS") >> 20
    );
    assert!(checked > 0, "the logins that got a turn were checked");
    assert!(
        elapsed < Duration::from_secs(15),
        "a login waits a few seconds at most: {elapsed:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_concurrent_logins_are_all_answered_within_256_mib() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("logins.db").display());
    let server = ServerProcess::start(&url, &[]);
    two_hundred_logins_at_once(&server, 1).await;
    let peak = process_status(server.pid(), "VmHWM");
    assert!(peak < 256 << 20, "peak RSS {} MiB", peak >> 20);
    // What a burst leaves behind does not pile up: the next one needs no more.
    two_hundred_logins_at_once(&server, 2).await;
    let second_peak = process_status(server.pid(), "VmHWM");
    assert!(
        second_peak < peak + (16 << 20),
        "peak RSS grew from {} to {} MiB",
        peak >> 20,
        second_peak >> 20
    );
}

/// How many password checks the database counts for an email in its current window.
async fn attempts_counted(database: &TestDatabase, email: &str) -> i64 {
    const ATTEMPTS: &str = "SELECT CAST(attempts AS BIGINT) FROM login_attempts WHERE email = $1";
    use sqlx::Connection;
    let count: Option<i64> = match database.backend {
        Backend::Sqlite => {
            let mut conn = sqlx::SqliteConnection::connect(&database.url)
                .await
                .unwrap();
            sqlx::query_scalar(ATTEMPTS)
                .bind(email)
                .fetch_optional(&mut conn)
                .await
                .unwrap()
        }
        Backend::Postgres => {
            let mut conn = sqlx::PgConnection::connect(&database.url).await.unwrap();
            sqlx::query_scalar(ATTEMPTS)
                .bind(email)
                .fetch_optional(&mut conn)
                .await
                .unwrap()
        }
    };
    count.unwrap_or(0)
}

/// Sends 40 wrong passwords for `email` at once; returns the 429 answers after checking
/// that exactly 5 were checked (401) and every other was held back (429).
async fn forty_parallel_guesses(app: &Arc<TestApp>, email: &'static str) -> Vec<TestResponse> {
    let guesses: Vec<_> = (0..40)
        .map(|_| {
            let app = Arc::clone(app);
            tokio::spawn(async move { app.submit_login(email, "a wrong password").await })
        })
        .collect();
    let mut held = Vec::new();
    let mut checked = 0;
    for guess in guesses {
        let response = guess.await.expect("the login task ran");
        match response.status.as_u16() {
            401 => checked += 1,
            429 => held.push(response),
            _ => panic!("unexpected answer: {response:?}"),
        }
    }
    assert_eq!(
        checked, 5,
        "{email}: 5 password checks, however many arrive at once"
    );
    assert_eq!(held.len(), 35);
    assert_eq!(attempts_counted(&app.database, email).await, 5);
    held
}

/// A page with what differs between two logins (the form's token, the email as typed) put
/// out of the way.
fn without_tokens(page: &TestResponse, email: &str) -> String {
    let token = csrf_token_in(&page.text).expect("the login form has a token");
    page.text
        .replace(&token, "TOKEN")
        .replace(&format!("value=\"{email}\""), "value=\"EMAIL\"")
}

contract_test!(parallel_guesses_get_five_checks_per_email_known_or_not);
async fn parallel_guesses_get_five_checks_per_email_known_or_not() {
    let app = TestApp::spawn().await;
    app.given_user(app.company_id, EMAIL, PASSWORD).await;
    let app = Arc::new(app);
    let known = forty_parallel_guesses(&app, EMAIL).await;
    let unknown = forty_parallel_guesses(&app, UNKNOWN_EMAIL).await;
    // The answer after the limit does not tell whether the email has an account.
    assert_eq!(
        without_tokens(&known[0], EMAIL),
        without_tokens(&unknown[0], UNKNOWN_EMAIL)
    );
    assert!(
        known[0]
            .text
            .contains("Too many failed logins with this email address. Try again in 15 minutes."),
        "{}",
        known[0].text
    );
    for page in [&known[0], &unknown[0]] {
        assert_eq!(page.headers["retry-after"], "900");
    }
    // Even the right password waits for the window to end.
    app.submit_login(EMAIL, PASSWORD).await.assert_status(429);

    // Fifteen minutes later each email has its checks again.
    app.database
        .execute("UPDATE login_attempts SET window_started_at = window_started_at - 900001")
        .await;
    app.submit_login(UNKNOWN_EMAIL, PASSWORD)
        .await
        .assert_status(401);
    assert_eq!(attempts_counted(&app.database, UNKNOWN_EMAIL).await, 1);
    app.submit_login(EMAIL, PASSWORD).await.assert_status(303);
    assert_eq!(
        attempts_counted(&app.database, EMAIL).await,
        0,
        "a successful login clears the count"
    );
}

contract_test!(guessing_many_emails_keeps_only_the_current_window);
async fn guessing_many_emails_keeps_only_the_current_window() {
    let app = TestApp::spawn().await;
    for index in 0..3 {
        app.submit_login(&format!("guess{index}@example.com"), PASSWORD)
            .await
            .assert_status(401);
    }
    app.database
        .execute("UPDATE login_attempts SET window_started_at = window_started_at - 900001")
        .await;
    app.submit_login("latest@example.com", PASSWORD)
        .await
        .assert_status(401);
    let dump = app.dump().await;
    assert!(
        !dump.contains("guess0@example.com"),
        "expired rows are purged: {dump}"
    );
    assert_eq!(
        attempts_counted(&app.database, "latest@example.com").await,
        1
    );
}
