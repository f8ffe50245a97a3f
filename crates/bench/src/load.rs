//! The load driver: a fixed set of workers, each running one operation after another in a
//! closed loop or at scheduled times in an open loop, timed from the end of a warm-up.
//!
//! The same driver runs HTTP requests and the direct-SQL ceilings, so both are counted,
//! timed and reported alike.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;
use hdrhistogram::Histogram;
use tokio::time::{Instant, sleep_until, timeout};

/// How long one operation may take before it counts as failed; it keeps every loop bounded
/// in time even if the server stops answering.
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(10);

/// How long after the end an open-loop operation due before the end may still start: the
/// timer wakes a sleeping worker up to a millisecond late, and a slot due just before the
/// end is not a backlog.
const TIMER_SLACK: Duration = Duration::from_millis(20);

/// Latencies are recorded in microseconds, from 1 µs to a minute, to 3 significant digits.
const LATENCY_MAX_MICROS: u64 = 60_000_000;

/// One operation, run again and again by one worker on its own connection.
pub trait Worker: Send + 'static {
    /// Runs the operation once; an error is a short label counted in the report (for
    /// example `HTTP 409`), never a reason to stop.
    fn call(&mut self) -> impl Future<Output = Result<(), String>> + Send;
}

/// The measured window of a run: operations started during the warm-up are not counted.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub warm_up: Duration,
    pub duration: Duration,
}

/// How workers decide when to start an operation.
#[derive(Debug, Clone, Copy)]
pub enum Pacing {
    /// Each worker starts its next operation as soon as the previous one ends: the
    /// throughput the system can sustain at this concurrency.
    Closed,
    /// Operations are due at a fixed rate (per second, over all workers), whoever is free
    /// takes the next one, and latency is measured from when it was due, so a server that
    /// falls behind shows its queueing instead of slowing the client down
    /// (coordinated omission).
    Open { rate: f64 },
}

/// What a run measured.
#[derive(Debug)]
pub struct Outcome {
    /// Latency of each successful operation, in microseconds.
    pub latency: Histogram<u64>,
    /// Failed operations by label.
    pub errors: BTreeMap<String, u64>,
    /// Length of the measured window.
    pub duration: Duration,
}

impl Outcome {
    /// Successful operations per second of the measured window.
    pub fn per_second(&self) -> f64 {
        self.latency.len() as f64 / self.duration.as_secs_f64()
    }

    /// How many operations failed.
    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    /// A latency quantile in milliseconds.
    pub fn quantile_ms(&self, quantile: f64) -> f64 {
        self.latency.value_at_quantile(quantile) as f64 / 1000.0
    }

    /// The slowest operation, in milliseconds.
    pub fn max_ms(&self) -> f64 {
        self.latency.max() as f64 / 1000.0
    }

    fn empty(duration: Duration) -> anyhow::Result<Self> {
        Ok(Self {
            latency: Histogram::new_with_bounds(1, LATENCY_MAX_MICROS, 3)
                .context("could not create a latency histogram")?,
            errors: BTreeMap::new(),
            duration,
        })
    }

    /// Adds a later measured window: its operations, and its length to this one's.
    pub fn add_window(&mut self, later: Outcome) -> anyhow::Result<()> {
        self.duration += later.duration;
        self.merge(later)
    }

    fn merge(&mut self, other: Outcome) -> anyhow::Result<()> {
        self.latency
            .add(&other.latency)
            .context("could not merge latency histograms")?;
        for (label, count) in other.errors {
            *self.errors.entry(label).or_default() += count;
        }
        Ok(())
    }
}

/// When the run starts, when measuring starts and ends, and (open loop) the next due slot.
#[derive(Debug)]
struct Schedule {
    start: Instant,
    measure_from: Instant,
    end: Instant,
    pacing: Pacing,
    next_slot: AtomicU64,
}

impl Schedule {
    /// When open-loop slot `slot` is due.
    fn due(&self, slot: u64, rate: f64) -> Instant {
        self.start + Duration::from_secs_f64(slot as f64 / rate)
    }

    /// How many open-loop slots fall due in the measured window.
    fn slots_in_window(&self, rate: f64) -> u64 {
        let slots_before = |at: Instant| ((at - self.start).as_secs_f64() * rate).ceil() as u64;
        slots_before(self.end) - slots_before(self.measure_from)
    }
}

/// Runs `workers` for the warm-up and then the measured window, and merges what they saw.
pub async fn drive<W: Worker>(
    workers: Vec<W>,
    timing: Timing,
    pacing: Pacing,
) -> anyhow::Result<Outcome> {
    let start = Instant::now();
    let schedule = Arc::new(Schedule {
        start,
        measure_from: start + timing.warm_up,
        end: start + timing.warm_up + timing.duration,
        pacing,
        next_slot: AtomicU64::new(0),
    });
    let tasks: Vec<_> = workers
        .into_iter()
        .map(|worker| tokio::spawn(run_worker(worker, Arc::clone(&schedule))))
        .collect();
    let mut outcome = Outcome::empty(timing.duration)?;
    let mut sent_in_window = 0;
    for task in tasks {
        let (worker_outcome, sent) = task.await.context("a load worker panicked")??;
        outcome.merge(worker_outcome)?;
        sent_in_window += sent;
    }
    if let Pacing::Open { rate } = pacing {
        let unsent = schedule
            .slots_in_window(rate)
            .saturating_sub(sent_in_window);
        if unsent > 0 {
            outcome
                .errors
                .insert("not sent by the end (backlog)".to_owned(), unsent);
        }
    }
    Ok(outcome)
}

/// One worker's loop; returns what it measured and how many operations it started in the
/// measured window.
async fn run_worker<W: Worker>(
    mut worker: W,
    schedule: Arc<Schedule>,
) -> anyhow::Result<(Outcome, u64)> {
    let mut outcome = Outcome::empty(schedule.end - schedule.measure_from)?;
    let mut started_in_window = 0;
    loop {
        // Latency counts from when the operation was due: at once in a closed loop, at its
        // slot in an open one, however late this worker gets to it.
        let due = match schedule.pacing {
            Pacing::Closed => Instant::now(),
            Pacing::Open { rate } => {
                let slot = schedule.next_slot.fetch_add(1, Ordering::Relaxed);
                let due = schedule.due(slot, rate);
                if due >= schedule.end {
                    break;
                }
                sleep_until(due).await;
                due
            }
        };
        let start_by = match schedule.pacing {
            Pacing::Closed => schedule.end,
            Pacing::Open { .. } => schedule.end + TIMER_SLACK,
        };
        if Instant::now() >= start_by {
            break;
        }
        let result = timeout(OPERATION_TIMEOUT, worker.call()).await;
        if due < schedule.measure_from {
            continue;
        }
        started_in_window += 1;
        match result {
            Ok(Ok(())) => {
                let micros = u64::try_from(due.elapsed().as_micros()).unwrap_or(u64::MAX);
                outcome.latency.saturating_record(micros.max(1));
            }
            Ok(Err(label)) => *outcome.errors.entry(label).or_default() += 1,
            Err(_) => *outcome.errors.entry("timeout".to_owned()).or_default() += 1,
        }
    }
    Ok((outcome, started_in_window))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An operation that takes a fixed time and fails every tenth call.
    struct Sleeper {
        calls: u64,
    }

    impl Worker for Sleeper {
        async fn call(&mut self) -> Result<(), String> {
            self.calls += 1;
            tokio::time::sleep(Duration::from_millis(1)).await;
            if self.calls.is_multiple_of(10) {
                Err("tenth".to_owned())
            } else {
                Ok(())
            }
        }
    }

    #[tokio::test]
    async fn a_closed_loop_counts_only_the_measured_window() {
        let timing = Timing {
            warm_up: Duration::from_millis(50),
            duration: Duration::from_millis(200),
        };
        let workers = (0..4).map(|_| Sleeper { calls: 0 }).collect();
        let outcome = drive(workers, timing, Pacing::Closed).await.expect("drive");
        let done = outcome.latency.len() + outcome.error_count();
        // Four workers of ~1 ms operations in 200 ms: far fewer than 4 × 250 counted.
        assert!(done > 0 && done < 4 * 200, "{done} operations counted");
        assert!(outcome.errors.contains_key("tenth"));
        assert!(outcome.quantile_ms(0.5) >= 1.0);
    }

    #[tokio::test]
    async fn an_open_loop_sends_at_the_rate() {
        let timing = Timing {
            warm_up: Duration::ZERO,
            duration: Duration::from_millis(500),
        };
        let workers = (0..4).map(|_| Sleeper { calls: 0 }).collect();
        let outcome = drive(workers, timing, Pacing::Open { rate: 200.0 })
            .await
            .expect("drive");
        let done = outcome.latency.len() + outcome.error_count();
        assert!(
            (90..=110).contains(&done),
            "{done} operations at 200/s in 0.5 s"
        );
    }
}
