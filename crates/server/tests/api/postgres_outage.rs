//! A PostgreSQL outage (docs/reference.md#8-operations): while the database is down, API requests fail fast with a 503
//! in the error shape (docs/reference.md#the-error-body) and `/readyz` says 503; once it is back, the server recovers unaided.
//!
//! The outage is real, so it needs a PostgreSQL of its own to stop: a throwaway cluster made
//! with `initdb` in a temp dir, never the shared server the other tests are using.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tempfile::TempDir;

use crate::helpers::{ServerProcess, TestResponse, admin, contact_path};

/// The acquire timeout the server runs with, in milliseconds: how long a request may wait
/// for a connection, and so how long an unreachable database may take to be reported.
const ACQUIRE_TIMEOUT_MS: &str = "1000";
/// How long a request may take while the database is down: the acquire timeout plus slack
/// for a loaded CI machine, and well short of a hang.
const FAIL_FAST_BOUND: Duration = Duration::from_secs(5);
/// How long the server may take to use the database again once it is back.
const RECOVERY_BOUND: Duration = Duration::from_secs(30);
/// The pause between two requests while waiting for the recovery.
const RECOVERY_POLL: Duration = Duration::from_millis(200);

/// A PostgreSQL cluster of the test's own, on a free port of 127.0.0.1, its data, socket and
/// log in a temp dir. Dropping it stops the server, so a failing test never leaves one running.
struct ThrowawayCluster {
    bin_dir: PathBuf,
    data_dir: PathBuf,
    log_file: PathBuf,
    port: u16,
    /// Declared last: the files go only after `Drop` has stopped the server using them.
    dir: TempDir,
}

impl ThrowawayCluster {
    /// Creates an empty cluster (`initdb`, trust authentication) and starts it.
    fn start() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("contactd-outage-")
            .tempdir()
            .expect("a temp dir for the throwaway cluster");
        if running_as_root() {
            // initdb and postgres refuse to run as root, so they run as `postgres`, which
            // must own the directory they write in (the temp dir's parent is world-readable).
            run(Command::new("chown").arg("postgres").arg(dir.path()));
        }
        let cluster = Self {
            bin_dir: postgres_bin_dir(),
            data_dir: dir.path().join("data"),
            log_file: dir.path().join("postgres.log"),
            port: free_port(),
            dir,
        };
        run(cluster
            .command("initdb")
            .arg("-D")
            .arg(&cluster.data_dir)
            .args(["-A", "trust", "-U", "postgres", "--no-sync"]));
        cluster.resume();
        cluster
    }

    /// The URL of its `postgres` database.
    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Starts the server on the cluster's data and port, waiting until it accepts
    /// connections.
    fn resume(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        let output = self
            .pg_ctl()
            .arg("-l")
            .arg(&self.log_file)
            .args(["-o", &options, "-w", "start"])
            .output()
            .expect("run pg_ctl start");
        assert!(
            output.status.success(),
            "pg_ctl start failed: {}\npostgres log:\n{}",
            describe(&output),
            std::fs::read_to_string(&self.log_file).unwrap_or_default()
        );
    }

    /// Stops the server the way an operator would (`fast`: connections are cut, the data
    /// is kept), waiting until it is gone.
    fn stop(&self) {
        run(self.pg_ctl().args(["-m", "fast", "-w", "stop"]));
    }

    fn pg_ctl(&self) -> Command {
        let mut command = self.command("pg_ctl");
        command.arg("-D").arg(&self.data_dir);
        command
    }

    /// A PostgreSQL program, run as the `postgres` user when the test runs as root.
    fn command(&self, program: &str) -> Command {
        let program = self.bin_dir.join(program);
        let mut command = if running_as_root() {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(program);
            command
        } else {
            Command::new(program)
        };
        // The test's own directory may be closed to `postgres`; this one is its own.
        command.current_dir(self.dir.path());
        command
    }
}

impl Drop for ThrowawayCluster {
    fn drop(&mut self) {
        // `immediate`: nothing here is worth a clean shutdown. Fails harmlessly when the
        // test had stopped the server already.
        let _ = self
            .pg_ctl()
            .args(["-m", "immediate", "-w", "stop"])
            .output();
    }
}

/// The newest installed PostgreSQL's programs, as Debian lays them out.
fn postgres_bin_dir() -> PathBuf {
    let mut installed: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL installed under /usr/lib/postgresql")
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin_dir = entry.path().join("bin");
            bin_dir
                .join("initdb")
                .exists()
                .then_some((version, bin_dir))
        })
        .collect();
    installed.sort();
    installed
        .pop()
        .expect("initdb in /usr/lib/postgresql/<version>/bin")
        .1
}

fn running_as_root() -> bool {
    let output = Command::new("id").arg("-u").output().expect("run id -u");
    String::from_utf8_lossy(&output.stdout).trim() == "0"
}

/// A port nothing listens on now: the kernel's pick for a listener that is then closed.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("bind a free port")
        .port()
}

/// Runs a command, asserting success.
fn run(command: &mut Command) {
    let output = command
        .output()
        .unwrap_or_else(|error| panic!("run {command:?}: {error}"));
    assert!(
        output.status.success(),
        "{command:?} failed: {}",
        describe(&output)
    );
}

fn describe(output: &Output) -> String {
    format!(
        "{}\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Sends a request and returns its response with how long the answer took.
async fn timed(request: reqwest::RequestBuilder) -> (TestResponse, Duration) {
    let started = Instant::now();
    let response = request.send().await.expect("contactd answers");
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.expect("read the body");
    let elapsed = started.elapsed();
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    let response = TestResponse {
        status,
        headers,
        body,
        text,
    };
    (response, elapsed)
}

/// Asserts that a request made during the outage failed fast.
#[track_caller]
fn assert_fast(elapsed: Duration, what: &str) {
    assert!(
        elapsed < FAIL_FAST_BOUND,
        "{what} took {elapsed:?} with the database down; the bound is {FAIL_FAST_BOUND:?}"
    );
}

#[tokio::test]
#[cfg_attr(
    not(postgres_tests),
    ignore = "CONTACTD_TEST_POSTGRES_URL is not set: PostgreSQL tests are skipped"
)]
async fn a_database_outage_is_answered_503_fast_and_recovered_from_unaided() {
    let cluster = ThrowawayCluster::start();
    let url = cluster.url();
    admin(&url, &["company", "create", "acme"]);
    let key = admin(&url, &["key", "create", "--company", "acme"])
        .trim()
        .to_owned();
    let server = ServerProcess::start(
        &url,
        &[("CONTACTD_DATABASE_ACQUIRE_TIMEOUT_MS", ACQUIRE_TIMEOUT_MS)],
    );
    // The client's own timeout only keeps a hung server from hanging the test; the bounds
    // asserted below are much tighter.
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("an HTTP client");
    let at = |path: &str| format!("{}{path}", server.base_url);
    let create_contact = |email: &str| {
        http.post(at("/api/v1/contacts"))
            .bearer_auth(&key)
            .json(&json!({"email": email}))
    };
    let before = contact_path("alt:email:before@example.com");

    timed(create_contact("before@example.com"))
        .await
        .0
        .assert_status(200);
    timed(http.get(at("/readyz"))).await.0.assert_status(200);

    cluster.stop();
    let (listed, elapsed) = timed(http.get(at("/api/v1/contacts")).bearer_auth(&key)).await;
    listed.assert_error(503, "database_unavailable");
    assert_fast(elapsed, "GET /api/v1/contacts");
    eprintln!("database down: GET /api/v1/contacts answered 503 in {elapsed:?}");
    let (created, elapsed) = timed(create_contact("during@example.com")).await;
    created.assert_error(503, "database_unavailable");
    assert_fast(elapsed, "POST /api/v1/contacts");
    eprintln!("database down: POST /api/v1/contacts answered 503 in {elapsed:?}");
    let (ready, elapsed) = timed(http.get(at("/readyz"))).await;
    ready.assert_status(503);
    assert_fast(elapsed, "GET /readyz");
    eprintln!("database down: GET /readyz answered 503 in {elapsed:?}");
    timed(http.get(at("/healthz"))).await.0.assert_status(200);

    cluster.resume();
    let resumed = Instant::now();
    // Bounded in time, and so in count: each turn takes at least `RECOVERY_POLL`.
    loop {
        let (fetched, _) = timed(http.get(at(&before)).bearer_auth(&key)).await;
        if fetched.status == 200 {
            break;
        }
        // Until the server has reconnected, it must keep saying "unavailable", never 500.
        fetched.assert_error(503, "database_unavailable");
        assert!(
            resumed.elapsed() < RECOVERY_BOUND,
            "no recovery {RECOVERY_BOUND:?} after the database came back; server log:\n{}",
            server.log()
        );
        tokio::time::sleep(RECOVERY_POLL).await;
    }
    eprintln!(
        "database back: the contact was served again after {:?}",
        resumed.elapsed()
    );
    timed(http.get(at("/readyz"))).await.0.assert_status(200);
    timed(create_contact("after@example.com"))
        .await
        .0
        .assert_status(200);

    assert_eq!(server.terminate(), Some(0));
}
