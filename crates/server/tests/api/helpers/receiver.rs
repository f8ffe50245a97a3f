//! `Receiver`: a webhook receiver on this machine, as an integrator runs one: it records
//! every delivery it gets and answers as the test tells it to.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use contactd_api::CreateWebhook;
use serde_json::Value;

/// One delivery as received.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Delivery {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }

    /// The delivery's `webhook-id`: its event's id.
    pub fn id(&self) -> &str {
        self.header("webhook-id")
    }
}

/// How the receiver answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Status(u16),
    /// Holds the request for this long, then answers 200.
    Slowly(Duration),
    /// A redirect to another URL.
    Redirect,
    /// 200 with a body that never ends.
    EndlessBody,
}

#[derive(Debug)]
struct Shared {
    deliveries: Mutex<Vec<Delivery>>,
    answer: Mutex<Answer>,
    /// The `webhook-id`s of the requests being answered now.
    in_flight: Mutex<HashSet<String>>,
    /// Ids that arrived while a request with the same id was still being answered.
    overlapping: Mutex<Vec<String>>,
}

/// A receiver listening on 127.0.0.1, until dropped.
#[derive(Debug)]
pub struct Receiver {
    pub address: SocketAddr,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

impl Receiver {
    pub async fn start(answer: Answer) -> Self {
        let shared = Arc::new(Shared {
            deliveries: Mutex::default(),
            answer: Mutex::new(answer),
            in_flight: Mutex::default(),
            overlapping: Mutex::default(),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = listener.local_addr().expect("address");
        let app = Router::new().fallback(receive).with_state(shared.clone());
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("serve");
        });
        Self {
            address,
            shared,
            server,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}/hook", self.address)
    }

    /// An endpoint of every event type delivering here, as the typed client creates it.
    pub fn endpoint(&self) -> CreateWebhook {
        CreateWebhook {
            url: self.url(),
            event_types: None,
            description: None,
        }
    }

    pub fn answer(&self, answer: Answer) {
        *self.shared.answer.lock().expect("lock") = answer;
    }

    pub fn deliveries(&self) -> Vec<Delivery> {
        self.shared.deliveries.lock().expect("lock").clone()
    }

    /// The ids of deliveries sent while the same delivery was still in flight: one sender
    /// racing another over one event.
    pub fn overlapping(&self) -> Vec<String> {
        self.shared.overlapping.lock().expect("lock").clone()
    }

    /// Waits until `count` deliveries arrived, for at most `within`.
    pub async fn wait_for(&self, count: usize, within: Duration) -> Vec<Delivery> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let deliveries = self.deliveries();
            if deliveries.len() >= count {
                return deliveries;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{} of {count} deliveries arrived in {within:?}",
                deliveries.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn receive(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let delivery = Delivery { headers, body };
    let _answering = Answering::start(&shared, delivery.id());
    shared.deliveries.lock().expect("lock").push(delivery);
    let answer = *shared.answer.lock().expect("lock");
    match answer {
        Answer::Status(status) => StatusCode::from_u16(status)
            .expect("a status")
            .into_response(),
        Answer::Slowly(wait) => {
            tokio::time::sleep(wait).await;
            StatusCode::OK.into_response()
        }
        Answer::Redirect => (
            StatusCode::FOUND,
            [("location", "http://127.0.0.1:9/elsewhere")],
        )
            .into_response(),
        Answer::EndlessBody => {
            let chunks = futures_util::stream::repeat_with(|| {
                Ok::<_, std::io::Error>(Bytes::from(vec![b'x'; 16 * 1024]))
            });
            Response::new(axum::body::Body::from_stream(chunks))
        }
    }
}

/// A delivery being answered, from its arrival until its handler ends or is dropped (the
/// sender went away).
struct Answering<'a> {
    shared: &'a Shared,
    id: String,
}

impl<'a> Answering<'a> {
    fn start(shared: &'a Shared, id: &str) -> Self {
        if !shared.in_flight.lock().expect("lock").insert(id.to_owned()) {
            shared.overlapping.lock().expect("lock").push(id.to_owned());
        }
        Self {
            shared,
            id: id.to_owned(),
        }
    }
}

impl Drop for Answering<'_> {
    fn drop(&mut self) {
        self.shared.in_flight.lock().expect("lock").remove(&self.id);
    }
}
