//! The soak's hostile clients: an export the client stops reading, bursts of dashboard
//! logins for unknown emails, and connections that trickle a request head or never send
//! the body they declared. Each runs until the soak aborts it, and reports how long the
//! server let it hold a connection.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{CONTENT_TYPE, COOKIE, HOST, SET_COOKIE};
use hyper::{Method, Request, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::task::JoinSet;
use tokio::time::{Instant, MissedTickBehavior, interval, interval_at, sleep, timeout};

use super::Tally;
use crate::http::{Connection, Failure, Workload, percent_encode};
use crate::load::OPERATION_TIMEOUT;

/// The name under which the stalled export's answers are counted.
pub const EXPORT: &str = "export";
/// The name under which login attempts' answers are counted.
pub const LOGIN: &str = "login";

/// Login attempts in each burst, all at once, each on a connection of its own: half of the
/// 200 concurrent logins that docs/reference.md#12-robustness says the server must survive
/// under 256 MiB.
pub const LOGIN_BURST_SIZE: usize = 100;
/// How often a burst of logins starts (the next waits for the last to be answered).
pub const LOGIN_BURST_EVERY: Duration = Duration::from_secs(10);
/// When the first burst starts, early so that even a short run sees one.
const FIRST_LOGIN_BURST_AFTER: Duration = Duration::from_secs(2);

/// Connections that send their request head one byte at a time.
pub const SLOW_HEAD_CLIENTS: usize = 3;
/// Connections that declare a body and never send it.
pub const SLOW_BODY_CLIENTS: usize = 1;
/// How long a slow head waits between bytes: well inside any gap timeout, so only a
/// deadline for the whole head closes it.
const SLOW_BYTE_EVERY: Duration = Duration::from_secs(2);
/// The body length a slow body declares.
const WITHHELD_BODY_BYTES: usize = 1_000;

/// How much of the export is read before the client stops reading.
const EXPORT_READ_FIRST: usize = 64 * 1024;
/// The stalled export's receive buffer: small, so the server's writes block at once rather
/// than after the kernel has taken megabytes off its hands.
const EXPORT_RECEIVE_BUFFER: u32 = 4 * 1024;
/// How often the stalled export looks whether the server has closed its connection.
const EXPORT_CLOSE_CHECK_EVERY: Duration = Duration::from_secs(1);
/// How long a hostile client waits after a failure before it starts again, so that a
/// refusing server is not spun on.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// How long the server let connections of one hostile kind stay open: those open now, and
/// the longest of those it closed.
#[derive(Debug, Default)]
pub struct Holds {
    /// When each open connection started to hold the server (by client number).
    open: BTreeMap<usize, Instant>,
    /// How many connections the server closed.
    pub closed: u64,
    /// The longest the server held one it closed.
    pub longest_closed: Duration,
    /// How the server ended them: `HTTP 408` when it answered first, `closed` when not.
    pub endings: BTreeMap<String, u64>,
}

impl Holds {
    fn start(&mut self, client: usize) {
        self.open.insert(client, Instant::now());
    }

    fn end(&mut self, client: usize, ending: String) {
        if let Some(since) = self.open.remove(&client) {
            self.closed += 1;
            self.longest_closed = self.longest_closed.max(since.elapsed());
            *self.endings.entry(ending).or_default() += 1;
        }
    }

    /// How long, at `at`, the oldest connection open has been held; zero when none is.
    pub fn longest_open(&self, at: Instant) -> Duration {
        self.open
            .values()
            .map(|since| at.saturating_duration_since(*since))
            .max()
            .unwrap_or_default()
    }

    /// The longest the server has held any of them, open at `at` or closed before.
    pub fn longest(&self, at: Instant) -> Duration {
        self.longest_closed.max(self.longest_open(at))
    }
}

/// What the hostile clients are doing, for the samples and the bounds.
#[derive(Debug, Default)]
pub struct Hostile {
    /// The export that stalls, from when it stopped reading.
    pub export: Mutex<Holds>,
    /// Slow heads, from their first byte.
    pub slow_head: Mutex<Holds>,
    /// Slow bodies, from when their head was sent.
    pub slow_body: Mutex<Holds>,
    /// Whether a burst of logins is in flight; memory is compared between bursts.
    pub login_burst: AtomicBool,
    /// The statuses logins were answered with.
    pub login_statuses: Mutex<BTreeMap<u16, u64>>,
}

/// Locks a mutex of the soak's bookkeeping; a task that panicked holding it left only
/// counts, which stay meaningful.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Starts every hostile client in `tasks`; they run until aborted.
pub fn start(
    tasks: &mut JoinSet<()>,
    workload: &Arc<Workload>,
    hostile: &Arc<Hostile>,
    tally: &Arc<Tally>,
) {
    {
        let (workload, hostile, tally) = (workload.clone(), hostile.clone(), tally.clone());
        tasks.spawn(async move {
            loop {
                let result = stall_export(&workload, &hostile.export, &tally).await;
                if let Err(failure) = result {
                    tally.record(EXPORT, Err(failure));
                    sleep(RETRY_AFTER).await;
                }
            }
        });
    }
    let slow = (0..SLOW_HEAD_CLIENTS)
        .map(|client| (Slowness::Head, client))
        .chain((0..SLOW_BODY_CLIENTS).map(|client| (Slowness::Body, client)));
    for (slowness, client) in slow {
        let (workload, hostile) = (workload.clone(), hostile.clone());
        tasks.spawn(async move {
            let holds = match slowness {
                Slowness::Head => &hostile.slow_head,
                Slowness::Body => &hostile.slow_body,
            };
            loop {
                hold_slowly(slowness, &workload, holds, client).await;
                sleep(Duration::from_millis(100)).await;
            }
        });
    }
}

/// Starts one `GET /api/v1/contacts/export`, reads a little of it, then stops reading but
/// keeps the socket open until the server closes its end.
///
/// Whether the server has closed it is read from `/proc/net/tcp`, the state of the
/// server's socket: the client itself cannot tell without reading, and reading is what it
/// must not do.
async fn stall_export(
    workload: &Workload,
    holds: &Mutex<Holds>,
    tally: &Tally,
) -> Result<(), Failure> {
    let transport =
        |what: &str, error: std::io::Error| Failure::Transport(format!("{what}: {error}"));
    let socket = TcpSocket::new_v4().map_err(|error| transport("socket", error))?;
    socket
        .set_recv_buffer_size(EXPORT_RECEIVE_BUFFER)
        .map_err(|error| transport("socket", error))?;
    let mut stream = socket
        .connect(workload.addr)
        .await
        .map_err(|error| transport("connect", error))?;
    let client_port = stream
        .local_addr()
        .map_err(|error| transport("connect", error))?
        .port();
    let authorization = workload.authorization.to_str().unwrap_or_default();
    let request = format!(
        "GET /api/v1/contacts/export?format=ndjson HTTP/1.1\r\nHost: {}\r\n\
         Authorization: {authorization}\r\nConnection: close\r\n\r\n",
        workload.addr
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|error| transport("write", error))?;
    let mut first = Vec::with_capacity(EXPORT_READ_FIRST);
    let mut finished = false;
    while first.len() < EXPORT_READ_FIRST {
        let read = timeout(OPERATION_TIMEOUT, stream.read_buf(&mut first))
            .await
            .map_err(|_| Failure::Transport("timeout".to_owned()))?
            .map_err(|error| transport("read", error))?;
        if read == 0 {
            finished = true;
            break;
        }
    }
    let status = first
        .strip_prefix(b"HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .map(String::from_utf8_lossy)
        .unwrap_or_default();
    if status != "200" {
        return Err(Failure::Unexpected(format!("HTTP {status}")));
    }
    tally.record(EXPORT, Ok(()));
    if finished {
        // The whole export fitted in what was read (a small database): nothing to stall.
        sleep(RETRY_AFTER).await;
        return Ok(());
    }
    lock(holds).start(0);
    loop {
        sleep(EXPORT_CLOSE_CHECK_EVERY).await;
        let tcp = tokio::fs::read_to_string("/proc/net/tcp")
            .await
            .map_err(|error| transport("/proc/net/tcp", error))?;
        if !server_end_is_open(&tcp, workload.addr, client_port) {
            break;
        }
    }
    lock(holds).end(0, "closed".to_owned());
    Ok(())
}

/// Whether `/proc/net/tcp` (text `tcp`) shows the server's end of the connection from
/// `client_port` still established. Addresses are not compared: both ends are on
/// 127.0.0.1, and the file writes addresses in the host's byte order.
fn server_end_is_open(tcp: &str, server: SocketAddr, client_port: u16) -> bool {
    const ESTABLISHED: &str = "01";
    let port = |address: &str| {
        address
            .rsplit_once(':')
            .and_then(|(_, port)| u16::from_str_radix(port, 16).ok())
    };
    tcp.lines().skip(1).any(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        matches!(
            fields.as_slice(),
            [_, local, remote, state, ..]
                if port(local) == Some(server.port())
                    && port(remote) == Some(client_port)
                    && *state == ESTABLISHED
        )
    })
}

/// What a slow connection withholds.
#[derive(Debug, Clone, Copy)]
enum Slowness {
    /// Its request head, sent a byte every [`SLOW_BYTE_EVERY`] and never finished.
    Head,
    /// The body its head declares.
    Body,
}

/// Opens one slow connection and holds it until the server closes it, noting how long
/// that took and whether the server answered first.
async fn hold_slowly(slowness: Slowness, workload: &Workload, holds: &Mutex<Holds>, client: usize) {
    let Ok(mut stream) = TcpStream::connect(workload.addr).await else {
        sleep(RETRY_AFTER).await;
        return;
    };
    let head = match slowness {
        // A header that never ends: the head is never complete.
        Slowness::Head => format!(
            "GET /healthz HTTP/1.1\r\nHost: {}\r\nX-Trickle: ",
            workload.addr
        ),
        Slowness::Body => format!(
            "POST /api/v1/contacts HTTP/1.1\r\nHost: {}\r\nAuthorization: {}\r\n\
             Content-Type: application/json\r\nContent-Length: {WITHHELD_BODY_BYTES}\r\n\r\n",
            workload.addr,
            workload.authorization.to_str().unwrap_or_default(),
        ),
    };
    let (mut reader, mut writer) = stream.split();
    if let Slowness::Body = slowness
        && writer.write_all(head.as_bytes()).await.is_err()
    {
        return;
    }
    lock(holds).start(client);
    let mut answer = Vec::new();
    let mut next_byte = interval(SLOW_BYTE_EVERY);
    next_byte.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut sent = 0;
    loop {
        tokio::select! {
            read = reader.read_buf(&mut answer) => match read {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            },
            _ = next_byte.tick(), if matches!(slowness, Slowness::Head) => {
                let byte = head.as_bytes().get(sent).copied().unwrap_or(b'a');
                if writer.write_all(&[byte]).await.is_err() {
                    break;
                }
                sent += 1;
            }
        }
    }
    let ending = answer
        .strip_prefix(b"HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .map_or_else(
            || "closed".to_owned(),
            |status| format!("HTTP {}", String::from_utf8_lossy(status)),
        );
    lock(holds).end(client, ending);
}

/// Every [`LOGIN_BURST_EVERY`] until `end`, a burst of [`LOGIN_BURST_SIZE`] logins at once
/// for unknown emails, each with a valid login CSRF token and cookie, so that every one
/// reaches the password check (whose argon2 hash is what costs memory).
pub async fn login_bursts(
    workload: Arc<Workload>,
    hostile: Arc<Hostile>,
    tally: Arc<Tally>,
    end: Instant,
) {
    let mut bursts = interval_at(Instant::now() + FIRST_LOGIN_BURST_AFTER, LOGIN_BURST_EVERY);
    bursts.set_missed_tick_behavior(MissedTickBehavior::Delay);
    for burst in 0.. {
        bursts.tick().await;
        if Instant::now() >= end {
            break;
        }
        hostile.login_burst.store(true, Ordering::Relaxed);
        match login_token(&workload).await {
            Err(failure) => tally.record(LOGIN, Err(failure)),
            Ok(token) => {
                let mut attempts = JoinSet::new();
                for attempt in 0..LOGIN_BURST_SIZE {
                    let email = format!("nobody-{burst}-{attempt}@bench.example");
                    attempts.spawn(log_in(workload.addr, token.clone(), email));
                }
                while let Some(answer) = attempts.join_next().await {
                    let result = match answer {
                        Ok(Ok(status)) => {
                            *lock(&hostile.login_statuses)
                                .entry(status.as_u16())
                                .or_default() += 1;
                            Ok(())
                        }
                        Ok(Err(failure)) => Err(failure),
                        Err(_) => Err(Failure::Transport("a login task panicked".to_owned())),
                    };
                    tally.record(LOGIN, result);
                }
            }
        }
        hostile.login_burst.store(false, Ordering::Relaxed);
    }
}

/// The login form's CSRF token, from the cookie `GET /dashboard/login` sets: the form
/// sends the same value back (a double-submit check), as a browser would.
async fn login_token(workload: &Workload) -> Result<String, Failure> {
    let request = Request::get("/dashboard/login")
        .header(HOST, workload.addr.to_string())
        .body(Full::new(Bytes::new()))
        .map_err(|error| Failure::Transport(format!("request: {error}")))?;
    let page = timeout(OPERATION_TIMEOUT, async {
        Connection::open(workload.addr)
            .await?
            .exchange(request)
            .await
    })
    .await
    .map_err(|_| Failure::Transport("login page: timeout".to_owned()))??;
    if page.status() != StatusCode::OK {
        return Err(Failure::Unexpected(format!(
            "login page: HTTP {}",
            page.status().as_u16()
        )));
    }
    page.headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|cookie| cookie.to_str().ok())
        .find_map(|cookie| cookie.strip_prefix("contactd_login="))
        .and_then(|rest| rest.split(';').next())
        .map(str::to_owned)
        .ok_or_else(|| Failure::Unexpected("login page: no contactd_login cookie".to_owned()))
}

/// One login attempt for `email`, with a wrong password, on a connection of its own; the
/// answers a server may give it (401 wrong, 429 throttled, 503 too busy to check) are its
/// status, any other is unexpected.
async fn log_in(addr: SocketAddr, token: String, email: String) -> Result<StatusCode, Failure> {
    let form = format!(
        "email={}&password=not-the-password&csrf_token={}",
        percent_encode(&email),
        percent_encode(&token)
    );
    let request = Request::builder()
        .method(Method::POST)
        .uri("/dashboard/login")
        .header(HOST, addr.to_string())
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(COOKIE, format!("contactd_login={token}"))
        .body(Full::new(Bytes::from(form)))
        .map_err(|error| Failure::Transport(format!("request: {error}")))?;
    let answer = timeout(OPERATION_TIMEOUT, async {
        Connection::open(addr).await?.exchange(request).await
    })
    .await
    .map_err(|_| Failure::Transport("timeout".to_owned()))??;
    match answer.status() {
        status @ (StatusCode::UNAUTHORIZED
        | StatusCode::TOO_MANY_REQUESTS
        | StatusCode::SERVICE_UNAVAILABLE) => Ok(status),
        status => Err(Failure::Unexpected(format!("HTTP {}", status.as_u16()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 1 1 0 100 0 0 10 0
   1: 0100007F:1F90 0100007F:C350 01 00000000:00000000 00:00000000 00000000  1000        0 2 1 0 20 4 30 10 -1
   2: 0100007F:1F90 0100007F:C351 04 0003F000:00000000 01:00000010 00000000  1000        0 0 3 0 20 4 30 10 -1
   3: 0100007F:C352 0100007F:1F90 01 00000000:00000000 00:00000000 00000000  1000        0 3 1 0 20 4 30 10 -1";

    #[test]
    fn the_server_end_is_open_only_while_established() {
        let server = SocketAddr::from(([127, 0, 0, 1], 0x1F90));
        assert!(server_end_is_open(TCP, server, 0xC350));
        // Closed by the server, its data still queued: FIN_WAIT1.
        assert!(!server_end_is_open(TCP, server, 0xC351));
        // Only the client's end is listed: the server's is gone.
        assert!(!server_end_is_open(TCP, server, 0xC352));
    }

    #[test]
    fn holds_remember_the_longest_closed_and_forget_the_open() {
        let mut holds = Holds::default();
        holds.start(0);
        holds.start(1);
        holds.end(0, "HTTP 408".to_owned());
        holds.end(2, "closed".to_owned());
        assert_eq!(holds.closed, 1);
        assert_eq!(holds.endings.get("HTTP 408"), Some(&1));
        let later = Instant::now() + Duration::from_secs(5);
        assert!(holds.longest(later) >= Duration::from_secs(5));
        holds.end(1, "closed".to_owned());
        assert_eq!(holds.longest_open(later), Duration::ZERO);
        assert!(holds.longest(later) < Duration::from_secs(5));
    }
}
