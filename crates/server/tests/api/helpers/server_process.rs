//! `ServerProcess`: the real `contactd serve` on a free port, as an operator runs it.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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
