//! `ServerProcess`: the real `contactd serve` on a free port, as an operator runs it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::contactd;

/// A running `contactd serve` on a free port, its stderr collected.
pub struct ServerProcess {
    child: Child,
    pub base_url: String,
    pub stderr: Arc<Mutex<String>>,
}

impl ServerProcess {
    /// Starts `contactd serve` on a database and waits until it listens.
    pub fn start(database_url: &str, extra_env: &[(&str, &str)]) -> Self {
        let mut child = contactd()
            .args(["serve", "--bind", "127.0.0.1:0"])
            .env("CONTACTD_DATABASE_URL", database_url)
            .env("RUST_LOG", "debug")
            .envs(extra_env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start contactd");
        let stderr = Arc::new(Mutex::new(String::new()));
        let (address_tx, address_rx) = std::sync::mpsc::channel();
        let reader = BufReader::new(child.stderr.take().expect("piped stderr"));
        let collected = stderr.clone();
        std::thread::spawn(move || {
            for line in reader.lines().map_while(Result::ok) {
                if let Some(address) = line
                    .split_once("contactd is listening")
                    .and_then(|(_, rest)| rest.split("address=").nth(1))
                {
                    let _ = address_tx.send(address.trim().to_owned());
                }
                let mut collected = collected.lock().expect("lock");
                collected.push_str(&line);
                collected.push('\n');
            }
        });
        let address = address_rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("contactd did not start: {}", stderr.lock().expect("lock")));
        Self {
            child,
            base_url: format!("http://{address}"),
            stderr,
        }
    }

    /// Everything the server wrote to stderr so far.
    pub fn log(&self) -> String {
        self.stderr.lock().expect("lock").clone()
    }

    /// The address of the metrics listener, as the server logged it (`--metrics-bind`).
    pub fn metrics_url(&self) -> String {
        let address = self
            .log()
            .lines()
            .find_map(|line| {
                line.split_once("serving metrics at /metrics")
                    .and_then(|(_, rest)| rest.split("address=").nth(1))
                    .map(|address| address.trim().to_owned())
            })
            .expect("the server logs its metrics address");
        format!("http://{address}")
    }

    /// The TCP ports the process listens on, read from `/proc`: its sockets, and which of
    /// them the kernel lists as listening.
    pub fn listening_ports(&self) -> Vec<u16> {
        let sockets: Vec<String> = std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .expect("the server's descriptors")
            .filter_map(|entry| std::fs::read_link(entry.ok()?.path()).ok())
            .filter_map(|target| {
                let target = target.to_string_lossy();
                Some(
                    target
                        .strip_prefix("socket:[")?
                        .strip_suffix(']')?
                        .to_owned(),
                )
            })
            .collect();
        let mut ports = Vec::new();
        for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
            let Ok(table) = std::fs::read_to_string(table) else {
                continue;
            };
            for line in table.lines().skip(1) {
                let columns: Vec<&str> = line.split_whitespace().collect();
                // local_address is ADDRESS:PORT in hex, st 0A is LISTEN, inode the 10th.
                let (Some(local), Some(&"0A"), Some(inode)) =
                    (columns.get(1), columns.get(3), columns.get(9))
                else {
                    continue;
                };
                if sockets.iter().any(|socket| socket == inode) {
                    let port = local.rsplit(':').next().expect("a port");
                    ports.push(u16::from_str_radix(port, 16).expect("a hex port"));
                }
            }
        }
        ports.sort_unstable();
        ports
    }

    /// The port of the API's address.
    pub fn port(&self) -> u16 {
        self.base_url
            .rsplit(':')
            .next()
            .and_then(|port| port.parse().ok())
            .expect("a port in the base URL")
    }

    /// The API key a first run printed to stderr.
    pub fn first_run_key(&self) -> String {
        self.log()
            .split_whitespace()
            .find(|word| word.starts_with("cd_"))
            .expect("the first run prints a key")
            .to_owned()
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM and waits for the exit, returning its status code.
    pub fn terminate(self) -> Option<i32> {
        Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("send SIGTERM");
        self.wait()
    }

    /// Kills the process with SIGKILL, as a crash or the kernel's OOM killer does, and
    /// reaps it.
    pub fn kill(self) {
        let sent = Command::new("kill")
            .args(["-KILL", &self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success(), "SIGKILL sent");
        assert_eq!(self.wait(), None, "contactd died of the signal");
    }

    /// Waits (at most 30 s) for the process to exit, returning its status code.
    pub fn wait(mut self) -> Option<i32> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status.code();
            }
            assert!(Instant::now() < deadline, "contactd did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends raw bytes to a real server and returns the status and the body of its answer.
pub fn send_raw(server: &ServerProcess, head: &[u8]) -> (u16, String) {
    let address = server.base_url.trim_start_matches("http://");
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    // The server may answer and close before the whole head is written.
    let _ = stream.write_all(head);
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|status| status.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP status in the answer: {answer:.500}"));
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// Checks an answer of the real server is a 4xx in the SPEC shape.
#[track_caller]
pub fn assert_spec_refusal(status: u16, body: &str) {
    assert!((400..500).contains(&status), "status {status}: {body:.300}");
    let body: Value = serde_json::from_str(body)
        .unwrap_or_else(|_| panic!("{status} with a body that is not JSON: {body:?}"));
    assert_eq!(body["error"], json!(status), "{body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert!(
        body["code"].as_str().is_some_and(|c| !c.is_empty()),
        "{body}"
    );
}

/// A runtime of its own, for a synchronous test of the real server to make or read its
/// database.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}
