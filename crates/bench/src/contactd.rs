//! The `contactd` under test: built by cargo (in release mode unless told otherwise), set up with its own admin
//! commands, served on a free loopback port, watched through `/proc`, and stopped.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio::time::{Instant, sleep, timeout};

/// How long a fresh server may take to answer `/readyz`.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a stopped server may take to finish in-flight requests and exit.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// Builds `contactd` in a cargo profile (`release` to measure; `dev` only for a smoke run)
/// with the cargo that runs this benchmark and returns the path of the binary, wherever the
/// target directory is.
pub async fn build(profile: &str) -> anyhow::Result<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    eprintln!("building contactd in the {profile} profile…");
    let output = Command::new(cargo)
        .current_dir(&workspace)
        .args(["build", "--profile", profile, "-p", "contactd"])
        .arg("--message-format=json-render-diagnostics")
        .stderr(Stdio::inherit())
        .output()
        .await
        .context("could not run cargo")?;
    if !output.status.success() {
        bail!(
            "cargo build --profile {profile} -p contactd failed ({})",
            output.status
        );
    }
    // Cargo reports each artifact as one JSON line; the binary's names its path.
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|message| {
            message["reason"] == "compiler-artifact" && message["target"]["name"] == "contactd"
        })
        .find_map(|message| message["executable"].as_str().map(PathBuf::from))
        .ok_or_else(|| anyhow!("cargo built no contactd executable"))
}

/// The built binary, pointed at one database.
#[derive(Debug)]
pub struct Contactd {
    pub binary: PathBuf,
    pub database_url: String,
}

impl Contactd {
    /// Runs an admin command (`migrate`, `company create …`) and returns its stdout.
    pub async fn admin(&self, args: &[&str]) -> anyhow::Result<String> {
        let output = Command::new(&self.binary)
            .arg("--database-url")
            .arg(&self.database_url)
            .args(args)
            .output()
            .await
            .with_context(|| format!("could not run contactd {}", args.join(" ")))?;
        if !output.status.success() {
            bail!(
                "contactd {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(String::from_utf8(output.stdout)?.trim().to_owned())
    }

    /// Starts `contactd serve` on a free loopback port, its log lines going to `log`, and
    /// waits until it is ready.
    pub async fn serve(&self, log: &Path) -> anyhow::Result<RunningServer> {
        let addr = free_loopback_port()?;
        let log = std::fs::File::create(log)
            .with_context(|| format!("could not create {}", log.display()))?;
        let child = Command::new(&self.binary)
            .arg("--database-url")
            .arg(&self.database_url)
            .args(["serve", "--bind", &addr.to_string()])
            // The webhook figures deliver to a receiver on loopback.
            .arg("--webhook-allow-private")
            // The load comes from one key at the server's ceiling, far past any per-key
            // limit (docs/reference.md#rate-limits).
            .args(["--rate-limit", "0"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            // The safety net for an early return; `stop` is the orderly way out.
            .kill_on_drop(true)
            .spawn()
            .context("could not start contactd serve")?;
        let pid = child
            .id()
            .ok_or_else(|| anyhow!("contactd exited at once"))?;
        let mut server = RunningServer { child, addr, pid };
        server.wait_until_ready().await?;
        Ok(server)
    }
}

/// A port the kernel just handed out, free again for the server to bind.
fn free_loopback_port() -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .context("could not find a free port on 127.0.0.1")?;
    Ok(listener.local_addr()?)
}

/// A running `contactd serve`.
#[derive(Debug)]
pub struct RunningServer {
    child: Child,
    pub addr: SocketAddr,
    pub pid: u32,
}

impl RunningServer {
    async fn wait_until_ready(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                bail!("contactd serve exited before it was ready ({status})");
            }
            if self.is_ready().await {
                return Ok(());
            }
            sleep(Duration::from_millis(50)).await;
        }
        bail!("contactd serve was not ready within {READY_TIMEOUT:?}")
    }

    /// Whether `GET /readyz` answers 200, asked on a connection of its own.
    async fn is_ready(&self) -> bool {
        let ask = async {
            let mut stream = TcpStream::connect(self.addr).await?;
            stream
                .write_all(b"GET /readyz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                .await?;
            let mut answer = Vec::new();
            stream.read_to_end(&mut answer).await?;
            Ok::<_, std::io::Error>(answer.starts_with(b"HTTP/1.1 200"))
        };
        matches!(timeout(Duration::from_secs(1), ask).await, Ok(Ok(true)))
    }

    /// Stops the server as an operator would (SIGTERM) and waits for it to exit.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        let pid = Pid::from_raw(i32::try_from(self.pid)?);
        kill(pid, Signal::SIGTERM).context("could not send SIGTERM to contactd")?;
        match timeout(STOP_TIMEOUT, self.child.wait()).await {
            Ok(status) => {
                let status = status?;
                if !status.success() {
                    bail!("contactd exited with {status} after SIGTERM");
                }
                Ok(())
            }
            Err(_) => {
                self.child.kill().await?;
                bail!("contactd did not exit within {STOP_TIMEOUT:?} of SIGTERM; killed it")
            }
        }
    }
}

/// Memory and CPU time of a process, as `/proc` reports them.
#[derive(Debug, Clone, Copy)]
pub struct ProcessUsage {
    /// Resident set now, in KiB (`VmRSS`).
    pub rss_kib: u64,
    /// The largest resident set since the process started, in KiB (`VmHWM`).
    pub peak_rss_kib: u64,
    /// User plus system CPU time, in seconds.
    pub cpu_seconds: f64,
}

/// Reads the usage of process `pid` (`"self"` for this one) from `/proc`.
pub fn process_usage(pid: &str, clock_ticks: f64) -> anyhow::Result<ProcessUsage> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kib = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|value| value.parse::<u64>().ok())
            .ok_or_else(|| anyhow!("/proc/{pid}/status has no {name}"))
    };
    // Fields of /proc/PID/stat after the parenthesised command name, which may hold spaces:
    // state is the 3rd field of the line, utime the 14th and stime the 15th.
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let after_name = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .ok_or_else(|| anyhow!("unexpected /proc/{pid}/stat"))?;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |index: usize| -> anyhow::Result<u64> {
        Ok(fields
            .get(index)
            .ok_or_else(|| anyhow!("/proc/{pid}/stat is too short"))?
            .parse()?)
    };
    Ok(ProcessUsage {
        rss_kib: kib("VmRSS:")?,
        peak_rss_kib: kib("VmHWM:")?,
        cpu_seconds: (ticks(11)? + ticks(12)?) as f64 / clock_ticks,
    })
}

/// How many file descriptors process `pid` has open: the entries of `/proc/PID/fd`.
pub fn open_fds(pid: &str) -> anyhow::Result<u64> {
    let entries = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .with_context(|| format!("could not list /proc/{pid}/fd"))?;
    Ok(entries.count() as u64)
}

/// Clock ticks per second, the unit of `/proc/PID/stat` times (`getconf CLK_TCK`; 100 on
/// every Linux this runs on, which is the fallback).
pub fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|output| String::from_utf8(output.stdout).ok())
        .and_then(|ticks| ticks.trim().parse().ok())
        .unwrap_or(100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_reports_its_usage() {
        let usage = process_usage("self", clock_ticks()).expect("usage");
        assert!(usage.rss_kib > 0);
        assert!(usage.peak_rss_kib >= usage.rss_kib);
        assert!(usage.cpu_seconds >= 0.0);
    }

    #[test]
    fn this_process_has_its_standard_streams_open() {
        assert!(open_fds("self").expect("fds") >= 3);
    }
}
