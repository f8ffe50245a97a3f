//! The HTTP side: what each scenario asks of the server, sent by workers that each keep one
//! HTTP/1.1 keep-alive connection.

use std::fmt;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use clap::ValueEnum;
use contactd_api::ImportSummary;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST, HeaderValue};
use hyper::{Method, Request, Response};
use hyper_util::rt::TokioIo;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::Deserialize;
use tokio::net::TcpStream;
use uuid::Uuid;

use crate::database::PLAN_OPTIONS;
use crate::load::Worker;

/// Contacts in each array create: the size the issue saw grow the SQLite WAL without bound.
pub const ARRAY_CREATE_ITEMS: u64 = 50;

/// What one run of a scenario sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    /// The seed operation: `PATCH /api/v1/contacts` by `alt:ext_id:`, setting `first_name`
    /// and the `seats` custom field.
    Patch,
    /// `POST /api/v1/contacts` of a new contact with all three custom fields.
    Create,
    /// `GET /api/v1/contacts/{uuid}` of a random seeded contact.
    Get,
    /// `GET /api/v1/contacts/alt:email:…` of a random seeded contact.
    GetEmail,
    /// Pages of 100 of `GET /api/v1/contacts`, walked with the cursor, again from the start
    /// at the end.
    List,
    /// 80% reads (half by id, half by email), 20% seed PATCHes.
    Mix,
    /// `GET /healthz`: the whole HTTP stack (request id, log line, routing) without a key
    /// or the database, so the floor under every other scenario.
    Healthz,
}

impl Scenario {
    /// The name on the command line and in the results.
    pub fn name(self) -> &'static str {
        match self {
            Self::Patch => "patch",
            Self::Create => "create",
            Self::Get => "get",
            Self::GetEmail => "get-email",
            Self::List => "list",
            Self::Mix => "mix",
            Self::Healthz => "healthz",
        }
    }

    /// The requests a worker of this scenario sends.
    pub fn mix(self) -> Mix {
        use RequestKind::*;
        match self {
            Self::Patch => Mix(&[(Patch, 1)]),
            Self::Create => Mix(&[(Create, 1)]),
            Self::Get => Mix(&[(Get, 1)]),
            Self::GetEmail => Mix(&[(GetEmail, 1)]),
            Self::List => Mix(&[(ListPage, 1)]),
            Self::Mix => Mix(&[(Patch, 2), (Get, 4), (GetEmail, 4)]),
            Self::Healthz => Mix(&[(Healthz, 1)]),
        }
    }
}

/// One kind of request; a worker sends one kind, or a mix of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestKind {
    Patch,
    Create,
    /// `POST /api/v1/contacts` of an array of [`ARRAY_CREATE_ITEMS`] new contacts.
    CreateArray,
    Get,
    GetEmail,
    ListPage,
    Healthz,
}

impl RequestKind {
    /// The name in the results.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Patch => "patch",
            Self::Create => "create",
            Self::CreateArray => "array-create",
            Self::Get => "get",
            Self::GetEmail => "get-email",
            Self::ListPage => "list",
            Self::Healthz => "healthz",
        }
    }
}

/// The kinds of request a worker sends, each with its weight: a kind of weight 2 in a mix
/// whose weights add up to 10 is a fifth of the requests.
#[derive(Debug, Clone, Copy)]
pub struct Mix(pub &'static [(RequestKind, u32)]);

/// Why a request did not get the answer it should have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The server answered, but not as the request expects: its status, or its body.
    Unexpected(String),
    /// No whole answer: connecting failed, the connection broke, or time ran out.
    Transport(String),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unexpected(label) | Self::Transport(label) => f.write_str(label),
        }
    }
}

/// The server, the key, and the seeded contacts a worker draws from.
#[derive(Debug)]
pub struct Workload {
    pub addr: SocketAddr,
    pub authorization: HeaderValue,
    pub contact_ids: Arc<Vec<Uuid>>,
    /// Numbers every write uniquely across workers: new names, values, emails.
    pub counter: AtomicU64,
}

/// One connection's worth of load: its own connection, random numbers and list position.
#[derive(Debug)]
pub struct HttpWorker {
    workload: Arc<Workload>,
    mix: Mix,
    connection: Option<Connection>,
    rng: SmallRng,
    /// Where this worker's walk of the contact list is; `None` at the first page.
    cursor: Option<String>,
}

impl HttpWorker {
    pub fn new(workload: Arc<Workload>, mix: Mix, seed: u64) -> Self {
        Self {
            workload,
            mix,
            connection: None,
            rng: SmallRng::seed_from_u64(seed),
            cursor: None,
        }
    }

    /// A random seeded contact's index and id.
    fn seeded(&mut self) -> (usize, Uuid) {
        let ids = &self.workload.contact_ids;
        let index = self.rng.random_range(0..ids.len());
        (index, ids[index])
    }

    fn next_number(&self) -> u64 {
        self.workload.counter.fetch_add(1, Ordering::Relaxed)
    }

    /// What to send next: the mix's pick, by weight.
    pub fn next_kind(&mut self) -> RequestKind {
        let Mix(kinds) = self.mix;
        let total: u32 = kinds.iter().map(|(_, weight)| weight).sum();
        let mut pick = self.rng.random_range(0..total.max(1));
        for &(kind, weight) in kinds {
            if pick < weight {
                return kind;
            }
            pick -= weight;
        }
        kinds
            .first()
            .map_or(RequestKind::Healthz, |(kind, _)| *kind)
    }

    /// One new contact's create payload, numbered `n`, with all three custom values.
    fn new_contact(n: u64) -> String {
        let plan = PLAN_OPTIONS[(n % 3) as usize];
        format!(
            r#"{{"email":"new{n}@bench.example","ext_id":"new-{n}","first_name":"New","last_name":"Bench","custom_fields":[{{"key":"plan","value":"{plan}"}},{{"key":"seats","value":{seats}}},{{"key":"note","value":"created by the benchmark"}}]}}"#,
            seats = n % 50 + 1
        )
    }

    /// The method, path and body of a request of this kind.
    fn request(&mut self, kind: RequestKind) -> (Method, String, Option<String>) {
        match kind {
            RequestKind::Patch => {
                let (index, _) = self.seeded();
                let n = self.next_number();
                let body = format!(
                    r#"{{"id":"alt:ext_id:ext-{index}","first_name":"N{n}","custom_fields":{{"set":[{{"key":"seats","value":{n}}}]}}}}"#
                );
                (Method::PATCH, "/api/v1/contacts".to_owned(), Some(body))
            }
            RequestKind::Create => {
                let body = Self::new_contact(self.next_number());
                (Method::POST, "/api/v1/contacts".to_owned(), Some(body))
            }
            RequestKind::CreateArray => {
                let items: Vec<String> = (0..ARRAY_CREATE_ITEMS)
                    .map(|_| Self::new_contact(self.next_number()))
                    .collect();
                let body = format!("[{}]", items.join(","));
                (Method::POST, "/api/v1/contacts".to_owned(), Some(body))
            }
            RequestKind::Get => {
                let (_, id) = self.seeded();
                (Method::GET, format!("/api/v1/contacts/{id}"), None)
            }
            RequestKind::GetEmail => {
                let (index, _) = self.seeded();
                let path = format!("/api/v1/contacts/alt:email:c{index}%40bench.example");
                (Method::GET, path, None)
            }
            RequestKind::Healthz => (Method::GET, "/healthz".to_owned(), None),
            RequestKind::ListPage => {
                let path = match &self.cursor {
                    None => "/api/v1/contacts?limit=100".to_owned(),
                    Some(cursor) => format!(
                        "/api/v1/contacts?limit=100&cursor={}",
                        percent_encode(cursor)
                    ),
                };
                (Method::GET, path, None)
            }
        }
    }

    /// Sends one request of this kind on the worker's connection (a new one if it has
    /// none) and checks the answer: a 2xx, and for an array create every item created.
    pub async fn send(&mut self, kind: RequestKind) -> Result<(), Failure> {
        let (method, path, body) = self.request(kind);
        let mut connection = match self.connection.take() {
            Some(connection) if !connection.sender.is_closed() => connection,
            _ => match Connection::open(self.workload.addr).await {
                Ok(connection) => connection,
                Err(error) => {
                    // The server is gone or refusing: do not spin on it.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    return Err(error);
                }
            },
        };
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(HOST, self.workload.addr.to_string())
            .header(AUTHORIZATION, self.workload.authorization.clone());
        if body.is_some() {
            request = request.header(CONTENT_TYPE, "application/json");
        }
        let request = request
            .body(Full::new(body.map(Bytes::from).unwrap_or_default()))
            .map_err(|error| Failure::Transport(format!("request: {error}")))?;
        let response = connection.exchange(request).await?;
        self.connection = Some(connection);
        let status = response.status();
        if !status.is_success() {
            return Err(Failure::Unexpected(format!("HTTP {}", status.as_u16())));
        }
        match kind {
            RequestKind::ListPage => {
                let page: ListPage = serde_json::from_slice(response.body())
                    .map_err(|error| Failure::Unexpected(format!("list page: {error}")))?;
                self.cursor = page.next_cursor;
            }
            RequestKind::CreateArray => {
                let summary: ImportSummary = serde_json::from_slice(response.body())
                    .map_err(|error| Failure::Unexpected(format!("array create: {error}")))?;
                if let Some(failed) = summary.failed_contacts.first() {
                    let why = failed
                        .error
                        .code
                        .as_deref()
                        .unwrap_or(&failed.error.message);
                    return Err(Failure::Unexpected(format!(
                        "array create: an item failed ({why})"
                    )));
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// A keep-alive HTTP/1.1 connection: the handle requests are sent on, and the future that
/// does the connection's I/O while a request is in flight.
pub struct Connection {
    sender: SendRequest<Full<Bytes>>,
    driver: Pin<Box<http1::Connection<TokioIo<TcpStream>, Full<Bytes>>>>,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection").finish_non_exhaustive()
    }
}

impl Connection {
    /// Connects to the server, with `TCP_NODELAY` as a client that cares about latency.
    pub async fn open(addr: SocketAddr) -> Result<Self, Failure> {
        let connect = |error: std::io::Error| Failure::Transport(format!("connect: {error}"));
        let stream = TcpStream::connect(addr).await.map_err(connect)?;
        stream.set_nodelay(true).map_err(connect)?;
        let (sender, driver) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|error| Failure::Transport(format!("handshake: {error}")))?;
        Ok(Self {
            sender,
            driver: Box::pin(driver),
        })
    }

    /// Sends one request and reads its whole answer.
    pub async fn exchange(
        &mut self,
        request: Request<Full<Bytes>>,
    ) -> Result<Response<Bytes>, Failure> {
        let transport = |error: hyper::Error| Failure::Transport(format!("transport: {error}"));
        let exchange = async {
            let (parts, body) = self.sender.send_request(request).await?.into_parts();
            let body = body.collect().await?.to_bytes();
            Ok::<_, hyper::Error>(Response::from_parts(parts, body))
        };
        // The connection is driven in this task, beside the request, rather than in a task
        // of its own: every exchange would otherwise cost two task wake-ups in the load
        // generator, on the cores the server is measured on.
        tokio::select! {
            exchanged = exchange => exchanged.map_err(transport),
            ended = &mut self.driver => Err(match ended {
                Ok(()) => Failure::Transport("transport: the server closed the connection".to_owned()),
                Err(error) => transport(error),
            }),
        }
    }
}

/// The only member of a list page the walk needs; serde skips the contacts.
#[derive(Deserialize)]
struct ListPage {
    next_cursor: Option<String>,
}

impl Worker for HttpWorker {
    async fn call(&mut self) -> Result<(), String> {
        let kind = self.next_kind();
        self.send(kind).await.map_err(|failure| failure.to_string())
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
pub fn percent_encode(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workload() -> Arc<Workload> {
        Arc::new(Workload {
            addr: SocketAddr::from(([127, 0, 0, 1], 1)),
            authorization: HeaderValue::from_static("Bearer k"),
            contact_ids: Arc::new(vec![Uuid::now_v7(); 10]),
            counter: AtomicU64::new(0),
        })
    }

    #[test]
    fn percent_encoding_keeps_unreserved_characters_only() {
        assert_eq!(percent_encode("a-Z_0.~"), "a-Z_0.~");
        assert_eq!(percent_encode("c1@x+/="), "c1%40x%2B%2F%3D");
    }

    #[test]
    fn a_mix_sends_reads_and_patches() {
        let mut worker = HttpWorker::new(workload(), Scenario::Mix.mix(), 7);
        let kinds: Vec<RequestKind> = (0..1000).map(|_| worker.next_kind()).collect();
        let patches = kinds.iter().filter(|k| **k == RequestKind::Patch).count();
        assert!((150..250).contains(&patches), "{patches} patches in 1000");
        assert!(kinds.iter().all(|k| *k != RequestKind::Create));
    }

    #[test]
    fn an_array_create_sends_new_contacts_that_all_differ() {
        let mut worker = HttpWorker::new(workload(), Mix(&[(RequestKind::CreateArray, 1)]), 7);
        let (method, _, body) = worker.request(RequestKind::CreateArray);
        assert_eq!(method, Method::POST);
        let items: Vec<serde_json::Value> =
            serde_json::from_str(&body.expect("a body")).expect("a JSON array");
        assert_eq!(items.len() as u64, ARRAY_CREATE_ITEMS);
        let emails: std::collections::BTreeSet<&str> =
            items.iter().filter_map(|i| i["email"].as_str()).collect();
        assert_eq!(emails.len() as u64, ARRAY_CREATE_ITEMS);
    }
}
