//! The HTTP side: what each scenario asks of the server, sent by workers that each keep one
//! HTTP/1.1 keep-alive connection.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use clap::ValueEnum;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST, HeaderValue};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::Deserialize;
use tokio::net::TcpStream;
use uuid::Uuid;

use crate::database::PLAN_OPTIONS;
use crate::load::Worker;

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
}

/// One kind of request; a scenario sends one kind, or a mix of them.
#[derive(Debug, Clone, Copy)]
enum RequestKind {
    Patch,
    Create,
    Get,
    GetEmail,
    ListPage,
    Healthz,
}

/// The server, the key, and the seeded contacts a scenario draws from.
#[derive(Debug)]
pub struct Workload {
    pub scenario: Scenario,
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
    connection: Option<Connection>,
    rng: SmallRng,
    /// Where this worker's walk of the contact list is; `None` at the first page.
    cursor: Option<String>,
}

impl HttpWorker {
    pub fn new(workload: Arc<Workload>, seed: u64) -> Self {
        Self {
            workload,
            connection: None,
            rng: SmallRng::seed_from_u64(seed),
            cursor: None,
        }
    }

    async fn connect(&self) -> Result<Connection, String> {
        let stream = TcpStream::connect(self.workload.addr)
            .await
            .map_err(|error| format!("connect: {error}"))?;
        stream
            .set_nodelay(true)
            .map_err(|error| format!("connect: {error}"))?;
        let (sender, driver) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|error| format!("handshake: {error}"))?;
        Ok(Connection {
            sender,
            driver: Box::pin(driver),
        })
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

    /// What to send next: the scenario's one kind of request, or a mix's pick.
    fn next_kind(&mut self) -> RequestKind {
        match self.workload.scenario {
            Scenario::Patch => RequestKind::Patch,
            Scenario::Create => RequestKind::Create,
            Scenario::Get => RequestKind::Get,
            Scenario::GetEmail => RequestKind::GetEmail,
            Scenario::List => RequestKind::ListPage,
            Scenario::Healthz => RequestKind::Healthz,
            Scenario::Mix => match self.rng.random_range(0..10) {
                0..=1 => RequestKind::Patch,
                2..=5 => RequestKind::Get,
                _ => RequestKind::GetEmail,
            },
        }
    }

    /// The method, path and body of the next request.
    fn next_request(&mut self) -> (Method, String, Option<String>) {
        match self.next_kind() {
            RequestKind::Patch => {
                let (index, _) = self.seeded();
                let n = self.next_number();
                let body = format!(
                    r#"{{"id":"alt:ext_id:ext-{index}","first_name":"N{n}","custom_fields":{{"set":[{{"key":"seats","value":{n}}}]}}}}"#
                );
                (Method::PATCH, "/api/v1/contacts".to_owned(), Some(body))
            }
            RequestKind::Create => {
                let n = self.next_number();
                let plan = PLAN_OPTIONS[(n % 3) as usize];
                let body = format!(
                    r#"{{"email":"new{n}@bench.example","ext_id":"new-{n}","first_name":"New","last_name":"Bench","custom_fields":[{{"key":"plan","value":"{plan}"}},{{"key":"seats","value":{seats}}},{{"key":"note","value":"created by the benchmark"}}]}}"#,
                    seats = n % 50 + 1
                );
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
}

/// A keep-alive HTTP/1.1 connection: the handle requests are sent on, and the future that
/// does the connection's I/O while a request is in flight.
struct Connection {
    sender: SendRequest<Full<Bytes>>,
    driver: Pin<Box<http1::Connection<TokioIo<TcpStream>, Full<Bytes>>>>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection").finish_non_exhaustive()
    }
}

/// The only member of a list page the walk needs; serde skips the contacts.
#[derive(Deserialize)]
struct ListPage {
    next_cursor: Option<String>,
}

impl Worker for HttpWorker {
    async fn call(&mut self) -> Result<(), String> {
        let (method, path, body) = self.next_request();
        let mut connection = match self.connection.take() {
            Some(connection) if !connection.sender.is_closed() => connection,
            _ => match self.connect().await {
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
            .map_err(|error| format!("request: {error}"))?;
        let transport = |error: hyper::Error| format!("transport: {error}");
        let exchange = async {
            let response = connection.sender.send_request(request).await?;
            let status = response.status();
            let body = response.into_body().collect().await?;
            Ok::<_, hyper::Error>((status, body))
        };
        // The connection is driven in this task, beside the request, rather than in a task
        // of its own: every exchange would otherwise cost two task wake-ups in the load
        // generator, on the cores the server is measured on.
        let (status, body) = tokio::select! {
            exchanged = exchange => exchanged.map_err(transport)?,
            ended = &mut connection.driver => {
                return Err(match ended {
                    Ok(()) => "transport: the server closed the connection".to_owned(),
                    Err(error) => transport(error),
                });
            }
        };
        self.connection = Some(connection);
        if !status.is_success() {
            return Err(format!("HTTP {}", status.as_u16()));
        }
        if self.workload.scenario == Scenario::List {
            let page: ListPage = serde_json::from_slice(&body.to_bytes())
                .map_err(|error| format!("list page: {error}"))?;
            self.cursor = page.next_cursor;
        }
        Ok(())
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn percent_encode(text: &str) -> String {
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

    #[test]
    fn percent_encoding_keeps_unreserved_characters_only() {
        assert_eq!(percent_encode("a-Z_0.~"), "a-Z_0.~");
        assert_eq!(percent_encode("c1@x+/="), "c1%40x%2B%2F%3D");
    }

    #[test]
    fn a_mix_sends_reads_and_patches() {
        let workload = Arc::new(Workload {
            scenario: Scenario::Mix,
            addr: SocketAddr::from(([127, 0, 0, 1], 1)),
            authorization: HeaderValue::from_static("Bearer k"),
            contact_ids: Arc::new(vec![Uuid::now_v7(); 10]),
            counter: AtomicU64::new(0),
        });
        let mut worker = HttpWorker::new(workload, 7);
        let methods: Vec<Method> = (0..1000).map(|_| worker.next_request().0).collect();
        let patches = methods.iter().filter(|m| **m == Method::PATCH).count();
        assert!((150..250).contains(&patches), "{patches} patches in 1000");
    }
}
