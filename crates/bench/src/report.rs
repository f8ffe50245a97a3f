//! The results as Markdown tables, printed row by row as each measurement ends, so a run
//! can be pasted into `BENCHMARKS.md` as it is.

use crate::contactd::ProcessUsage;
use crate::load::Outcome;

const KIB_PER_MIB: f64 = 1024.0;

/// What the server and the load generator used during one scenario's measured window.
#[derive(Debug, Clone, Copy)]
pub struct Usage {
    /// The largest server `VmRSS` sampled during the window, in KiB.
    pub server_rss_max_kib: u64,
    /// The server at the end of the window; its `peak_rss_kib` is the peak since it started.
    pub server_end: ProcessUsage,
    /// Server CPU seconds spent in the window.
    pub server_cpu_seconds: f64,
    /// CPU seconds of this process (the load generator) in the window.
    pub load_cpu_seconds: f64,
}

impl Usage {
    /// This window and a later one as one: the larger RSS, the server as at the end, the
    /// CPU of both.
    pub fn followed_by(&self, later: &Usage) -> Usage {
        Usage {
            server_rss_max_kib: self.server_rss_max_kib.max(later.server_rss_max_kib),
            server_end: later.server_end,
            server_cpu_seconds: self.server_cpu_seconds + later.server_cpu_seconds,
            load_cpu_seconds: self.load_cpu_seconds + later.load_cpu_seconds,
        }
    }
}

pub fn print_scenario_header() {
    println!(
        "| scenario | req/s | p50 ms | p90 ms | p99 ms | max ms | errors | server RSS max MiB \
         | server VmHWM MiB | server CPU s | server CPU µs/req | load generator CPU s |"
    );
    println!("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
}

pub fn print_scenario(name: &str, outcome: &Outcome, usage: &Usage) {
    let requests = outcome.latency.len() + outcome.error_count();
    let cpu_per_request = if requests == 0 {
        0.0
    } else {
        usage.server_cpu_seconds * 1e6 / requests as f64
    };
    println!(
        "| {name} | {:.0} | {:.2} | {:.2} | {:.2} | {:.1} | {} | {:.1} | {:.1} | {:.1} | {:.0} | {:.1} |",
        outcome.per_second(),
        outcome.quantile_ms(0.5),
        outcome.quantile_ms(0.9),
        outcome.quantile_ms(0.99),
        outcome.max_ms(),
        outcome.error_count(),
        usage.server_rss_max_kib as f64 / KIB_PER_MIB,
        usage.server_end.peak_rss_kib as f64 / KIB_PER_MIB,
        usage.server_cpu_seconds,
        cpu_per_request,
        usage.load_cpu_seconds,
    );
}

pub fn print_ceiling_header() {
    println!(
        "| ceiling | connections | ops/s | rows/s | p50 ms | p99 ms | endpoint req/s | endpoint ÷ ceiling |"
    );
    println!("|---|---|--:|--:|--:|--:|--:|--:|");
}

/// One ceiling row; `endpoint` is the requests/s of the endpoint whose SQL it runs, when
/// that scenario ran in this benchmark.
pub fn print_ceiling(
    name: &str,
    connections: &str,
    rows_per_op: usize,
    outcome: &Outcome,
    endpoint: Option<f64>,
) {
    let per_second = outcome.per_second();
    let (endpoint, ratio) = match endpoint {
        Some(endpoint) => (
            format!("{endpoint:.0}"),
            format!("{:.2}", endpoint / per_second),
        ),
        None => ("—".to_owned(), "—".to_owned()),
    };
    println!(
        "| {name} | {connections} | {per_second:.0} | {:.0} | {:.2} | {:.2} | {endpoint} | {ratio} |",
        per_second * rows_per_op as f64,
        outcome.quantile_ms(0.5),
        outcome.quantile_ms(0.99),
    );
}

/// The failures of a measurement, by label, if any.
pub fn print_errors(name: &str, outcome: &Outcome) {
    for (label, count) in &outcome.errors {
        println!("  {name}: {count} × {label}");
    }
}
