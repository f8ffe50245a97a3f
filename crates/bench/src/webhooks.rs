//! The webhook delivery figures (docs/reference.md#delivery): how many signed deliveries
//! the server makes per second to a receiver on this machine, to one endpoint and to
//! several, beside the receiver's own ceiling in the same run: the same POSTs sent one after
//! another by the benchmark, which is what one endpoint's deliveries are (first attempts go
//! out in feed order, one at a time).

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::time::Instant;

use crate::contactd::RunningServer;
use crate::http::Connection;

/// Contacts each bulk create writes, so events each one records.
const BULK: usize = 1_000;

/// The longest the deliveries of one measurement may take before the run fails.
const DELIVERIES_WITHIN: Duration = Duration::from_secs(120);

/// A receiver on loopback that answers every POST 204 at once and counts them.
struct Receiver {
    addr: SocketAddr,
    received: Arc<AtomicU64>,
}

impl Receiver {
    async fn start() -> anyhow::Result<Self> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .context("could not start the webhook receiver")?;
        let addr = listener.local_addr()?;
        let received = Arc::new(AtomicU64::new(0));
        let counted = Arc::clone(&received);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let counted = Arc::clone(&counted);
                let service = service_fn(move |request: Request<hyper::body::Incoming>| {
                    let counted = Arc::clone(&counted);
                    async move {
                        // The body is read to its end, as a receiver that verifies does.
                        request.into_body().collect().await?;
                        counted.fetch_add(1, Ordering::Relaxed);
                        let mut answer = Response::new(Empty::<Bytes>::new());
                        *answer.status_mut() = StatusCode::NO_CONTENT;
                        Ok::<_, hyper::Error>(answer)
                    }
                });
                tokio::spawn(async move {
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Self { addr, received })
    }

    fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }
}

/// Measures and prints the receiver's ceiling, then the server's deliveries to one endpoint
/// and to `ENDPOINTS`, each a table row.
pub async fn run(server: &RunningServer, authorization: &HeaderValue) -> anyhow::Result<()> {
    const ENDPOINTS: usize = 8;
    let receiver = Receiver::start().await?;
    let mut api = Api {
        connection: Connection::open(server.addr)
            .await
            .map_err(anyhow_failure)?,
        authorization: authorization.clone(),
        endpoints: 0,
        written: 0,
    };
    println!(
        "\n| webhook deliveries | endpoints | deliveries | seconds | deliveries/s | of the receiver's ceiling |"
    );
    println!("|---|--:|--:|--:|--:|--:|");

    let ceiling = receiver_ceiling(&receiver, 2 * BULK).await?;
    println!(
        "| the receiver's ceiling: the same POSTs, one after another | 1 | {} | {:.2} | {:.0} | 100% |",
        2 * BULK,
        ceiling.seconds,
        ceiling.per_second()
    );
    for (endpoints, bulks) in [(1, 2), (ENDPOINTS, 1)] {
        while api.endpoints < endpoints {
            api.create_endpoint(receiver.addr).await?;
        }
        let measured = deliveries(&mut api, &receiver, endpoints, bulks).await?;
        println!(
            "| delivered by contactd, signed, in feed order per endpoint | {endpoints} | {} | {:.2} | {:.0} | {:.0}% |",
            measured.count,
            measured.seconds,
            measured.per_second(),
            100.0 * measured.per_second() / ceiling.per_second()
        );
    }
    Ok(())
}

/// How many requests were made in how long.
struct Rate {
    count: u64,
    seconds: f64,
}

impl Rate {
    fn per_second(&self) -> f64 {
        self.count as f64 / self.seconds
    }
}

/// The receiver's ceiling: `count` POSTs of a delivery's size, sent one after another on
/// one connection.
async fn receiver_ceiling(receiver: &Receiver, count: usize) -> anyhow::Result<Rate> {
    let mut connection = Connection::open(receiver.addr)
        .await
        .map_err(anyhow_failure)?;
    // A contact.created event of the benchmark's contacts is about this size.
    let body = Bytes::from(vec![b'x'; 700]);
    let before = receiver.received();
    let started = Instant::now();
    for _ in 0..count {
        let request = Request::post("/hook")
            .header(HOST, "127.0.0.1")
            .header(CONTENT_TYPE, "application/json")
            .body(Full::new(body.clone()))?;
        let answer = connection.exchange(request).await.map_err(anyhow_failure)?;
        ensure!(
            answer.status() == StatusCode::NO_CONTENT,
            "receiver answered {}",
            answer.status()
        );
    }
    let seconds = started.elapsed().as_secs_f64();
    ensure!(
        receiver.received() - before == count as u64,
        "the receiver lost requests"
    );
    Ok(Rate {
        count: count as u64,
        seconds,
    })
}

/// Writes `bulks` bulk creates and times them until every endpoint had each event.
async fn deliveries(
    api: &mut Api,
    receiver: &Receiver,
    endpoints: usize,
    bulks: usize,
) -> anyhow::Result<Rate> {
    let expected = (endpoints * bulks * BULK) as u64;
    let before = receiver.received();
    let started = Instant::now();
    for _ in 0..bulks {
        api.create_contacts().await?;
    }
    let deadline = started + DELIVERIES_WITHIN;
    while receiver.received() - before < expected {
        if Instant::now() > deadline {
            bail!(
                "{} of {expected} webhook deliveries arrived in {DELIVERIES_WITHIN:?}",
                receiver.received() - before
            );
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(Rate {
        count: expected,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// The API calls the measurement makes, on one connection.
struct Api {
    connection: Connection,
    authorization: HeaderValue,
    /// Endpoints created so far.
    endpoints: usize,
    /// Contacts created so far, to name the next ones.
    written: usize,
}

impl Api {
    async fn create_endpoint(&mut self, receiver: SocketAddr) -> anyhow::Result<()> {
        let body = json!({"url": format!("http://{receiver}/hook/{}", self.endpoints)});
        self.send(Method::POST, "/api/v1/webhooks", body).await?;
        self.endpoints += 1;
        Ok(())
    }

    async fn create_contacts(&mut self) -> anyhow::Result<()> {
        let contacts: Vec<_> = (self.written..self.written + BULK)
            .map(|n| json!({"ext_id": format!("webhook-bench-{n}"), "first_name": "Ada"}))
            .collect();
        self.written += BULK;
        self.send(Method::POST, "/api/v1/contacts", json!(contacts))
            .await
    }

    async fn send(
        &mut self,
        method: Method,
        path: &str,
        body: serde_json::Value,
    ) -> anyhow::Result<()> {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header(HOST, "127.0.0.1")
            .header(AUTHORIZATION, self.authorization.clone())
            .header(CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(serde_json::to_vec(&body)?)))?;
        let answer = self
            .connection
            .exchange(request)
            .await
            .map_err(anyhow_failure)?;
        ensure!(
            answer.status() == StatusCode::OK,
            "{path} answered {}: {}",
            answer.status(),
            String::from_utf8_lossy(answer.body())
        );
        Ok(())
    }
}

fn anyhow_failure(failure: crate::http::Failure) -> anyhow::Error {
    anyhow::anyhow!("{failure}")
}
