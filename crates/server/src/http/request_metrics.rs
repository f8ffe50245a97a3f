//! The request metrics (docs/reference.md#metrics): every request counted by route template,
//! method and status, timed by route template and method, and counted while in flight.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, Response, StatusCode};
use axum::middleware::Next;
use metrics::{Counter, Gauge, Histogram, counter, gauge, histogram};

use crate::prometheus::{
    HTTP_REQUEST_DURATION, HTTP_REQUESTS, HTTP_REQUESTS_IN_FLIGHT, UNMATCHED_ROUTE,
};

/// The handles requests record to, each taken from the recorder once and kept.
///
/// Asking the recorder for a series builds its whole key (labels and all), copies it and
/// looks it up in the recorder's registry: the records of one request took 1.8 µs that way,
/// against 0.3 µs with the handles kept here (BENCHMARKS.md, "The cost of the metrics").
/// The handles are those of the recorder installed when this is made (none, in which case
/// they record nothing).
#[derive(Debug, Clone)]
pub struct RequestMetrics(Arc<Handles>);

#[derive(Debug)]
struct Handles {
    in_flight: Gauge,
    /// By route template. Templates, standard methods and statuses are few, so the map
    /// stays small whatever clients send.
    routes: RwLock<HashMap<Box<str>, RouteSeries>>,
}

/// The series of one route template.
#[derive(Debug, Default)]
struct RouteSeries {
    /// By method.
    durations: HashMap<&'static str, Histogram>,
    /// By method and status.
    requests: HashMap<(&'static str, StatusCode), Counter>,
}

impl RequestMetrics {
    /// The request metrics of the recorder installed now.
    pub fn new() -> Self {
        Self(Arc::new(Handles {
            in_flight: gauge!(HTTP_REQUESTS_IN_FLIGHT),
            routes: RwLock::default(),
        }))
    }

    /// Counts a request answered with `status` after `elapsed`.
    fn record(&self, route: &str, method: &'static str, status: StatusCode, elapsed: Duration) {
        {
            let routes = self.0.routes.read().unwrap_or_else(PoisonError::into_inner);
            if let Some(series) = routes.get(route)
                && let (Some(duration), Some(requests)) = (
                    series.durations.get(method),
                    series.requests.get(&(method, status)),
                )
            {
                duration.record(elapsed);
                requests.increment(1);
                return;
            }
        }
        let mut routes = self
            .0
            .routes
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let series = routes.entry(route.into()).or_default();
        series
            .durations
            .entry(method)
            .or_insert_with(|| {
                histogram!(HTTP_REQUEST_DURATION, "route" => route.to_owned(), "method" => method)
            })
            .record(elapsed);
        series
            .requests
            .entry((method, status))
            .or_insert_with(|| {
                let status = status.as_u16().to_string();
                counter!(HTTP_REQUESTS, "route" => route.to_owned(), "method" => method, "status" => status)
            })
            .increment(1);
    }
}

/// Counts and times a request. The route is its template (`/api/v1/contacts/{id}`), never
/// the raw path: that may hold an email address or a phone number, and a client could make
/// a new series of every request with it. Methods outside the standard ones are `other`,
/// for the same reason.
pub async fn record_request(
    State(metrics): State<RequestMetrics>,
    request: Request,
    next: Next,
) -> Response<Body> {
    let started = Instant::now();
    let route = request.extensions().get::<MatchedPath>().cloned();
    let method = method_label(request.method());
    let in_flight = InFlight::start(&metrics.0.in_flight);
    let response = next.run(request).await;
    drop(in_flight);
    let route = route.as_ref().map_or(UNMATCHED_ROUTE, MatchedPath::as_str);
    metrics.record(route, method, response.status(), started.elapsed());
    response
}

/// A method as a label: one of the standard methods, or `other`.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::TRACE => "TRACE",
        Method::CONNECT => "CONNECT",
        _ => "other",
    }
}

/// One request in flight, counted until it is dropped: when its response is ready, or
/// when the client goes away and the request is cancelled.
struct InFlight<'a>(&'a Gauge);

impl<'a> InFlight<'a> {
    fn start(gauge: &'a Gauge) -> Self {
        gauge.increment(1);
        Self(gauge)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.decrement(1);
    }
}
