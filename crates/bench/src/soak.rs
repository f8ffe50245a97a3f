//! The soak (`--soak DURATION`): on a fresh seeded database, every load
//! docs/reference.md#12-robustness defends against at once for the whole run — saturating
//! writes and reads, an export that stalls, login bursts, slow clients — with the server's
//! disk, memory and file descriptors sampled throughout and checked at the end against the
//! bounds of `docs/robustness.md`.

mod hostile;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail};
use hyper::header::HeaderValue;
use tokio::task::JoinSet;
use tokio::time::{Instant, interval_at, timeout};
use uuid::Uuid;

use self::hostile::{EXPORT, Hostile, LOGIN, lock};
use crate::contactd::{RunningServer, clock_ticks, open_fds, process_usage};
use crate::database::{DiskProbe, FreshDatabase};
use crate::http::{ARRAY_CREATE_ITEMS, Failure, HttpWorker, Mix, RequestKind, Workload};
use crate::load::OPERATION_TIMEOUT;

const MIB: u64 = 1024 * 1024;
const KIB_PER_MIB: f64 = 1024.0;

/// The SQLite WAL at every sample: at most 64 MiB under saturating writes and a stalled
/// export (docs/robustness.md#disk-the-sqlite-write-ahead-log).
const WAL_MAX_BYTES: u64 = 64 * MIB;
/// "RSS flat": the server's RSS at the end at most this many times what it was once the
/// run had settled, both measured between login bursts, so what a burst takes is given
/// back and nothing accumulates (docs/robustness.md#dashboard-logins).
const RSS_GROWTH_MAX: f64 = 1.5;
/// When the run has settled, for "RSS flat": a minute in, or a fifth of the run if sooner.
const RSS_SETTLED_AFTER: Duration = Duration::from_secs(60);
/// Runs shorter than this skip "RSS flat": in seconds, caches and pools are still filling,
/// and growth is no sign of a leak.
const RSS_FLAT_FROM_RUNS_OF: Duration = Duration::from_secs(60);
/// The server's peak RSS (`VmHWM`) over the whole run: the 256 MiB that
/// docs/reference.md#12-robustness allows for 200 concurrent logins, and a burst here is 100
/// of them (docs/robustness.md#dashboard-logins).
const RSS_PEAK_MAX_KIB: u64 = 256 * 1024;
/// File descriptors of the server beyond one per connection the soak holds open at once:
/// its database files and pool, listener, log and runtime. More means a leak, and a leak
/// is what locks every client out once the process runs out of descriptors
/// (docs/robustness.md#timeouts-and-connection-limits).
const SERVER_OWN_FDS: u64 = 64;
/// The longest the server may hold a slow connection: its 30 s deadline for a request head
/// and for a gap in a body, plus time for its timer and this sampling
/// (docs/robustness.md#timeouts-and-connection-limits).
const SLOW_HELD_MAX: Duration = Duration::from_secs(45);
/// The longest the server may keep an export the client stopped reading: its 60 s stall
/// deadline, plus time for its timer and this sampling
/// (docs/robustness.md#fair-sharing-exports-and-long-reads).
const EXPORT_STALL_MAX: Duration = Duration::from_secs(75);

/// The soak stops early, and fails, once the server's RSS passes this share of the
/// machine's memory: every bound on memory has failed long before, and going on would
/// only have the kernel kill processes on a machine the soak shares (before the login
/// fixes, each burst kept about 1.7 GiB more).
const STOP_AT_SHARE_OF_MEMORY: f64 = 0.5;

/// How often the server and the database are measured; maxima are over these samples.
const SAMPLE_EVERY: Duration = Duration::from_secs(1);
/// Every how many samples a line is printed.
const PRINT_EVERY_SAMPLES: u32 = 5;

/// The requests the soak counts, in the order of the printed columns.
const KINDS: [&str; 7] = [
    RequestKind::CreateArray.name(),
    RequestKind::Patch.name(),
    RequestKind::Get.name(),
    RequestKind::GetEmail.name(),
    RequestKind::ListPage.name(),
    EXPORT,
    LOGIN,
];

/// Reads: by id and by email alike, and a list page (ten times the work of either) in five.
const READS: Mix = Mix(&[
    (RequestKind::Get, 2),
    (RequestKind::GetEmail, 2),
    (RequestKind::ListPage, 1),
]);

/// What a soak runs against.
#[derive(Debug)]
pub struct Soak<'a> {
    pub server: &'a RunningServer,
    pub database: &'a FreshDatabase,
    pub authorization: HeaderValue,
    pub contact_ids: Arc<Vec<Uuid>>,
    /// API connections: array creates, seed PATCHes and reads.
    pub concurrency: usize,
    pub duration: Duration,
}

/// How many API connections do array creates, PATCHes and reads, of `concurrency`: an
/// eighth array creates (four of the default 32, as the WAL measurement), a
/// quarter PATCHes, the rest reads, and at least one of each.
fn split(concurrency: usize) -> [(Mix, usize); 3] {
    let creates = (concurrency / 8).max(1);
    let patches = (concurrency / 4).max(1);
    let reads = concurrency.saturating_sub(creates + patches).max(1);
    [
        (Mix(&[(RequestKind::CreateArray, 1)]), creates),
        (Mix(&[(RequestKind::Patch, 1)]), patches),
        (READS, reads),
    ]
}

/// The soak in one sentence, for the report's first line.
pub fn describe(concurrency: usize, duration: Duration) -> String {
    let [(_, creates), (_, patches), (_, reads)] = split(concurrency);
    format!(
        "soak of {}: {creates} connections of array creates ({ARRAY_CREATE_ITEMS} contacts \
         each), {patches} of seed PATCHes, {reads} of reads, an export that stalls, {} \
         logins every {}, {} slow heads and {} slow bodies",
        humantime::format_duration(duration),
        hostile::LOGIN_BURST_SIZE,
        humantime::format_duration(hostile::LOGIN_BURST_EVERY),
        hostile::SLOW_HEAD_CLIENTS,
        hostile::SLOW_BODY_CLIENTS,
    )
}

/// Answers by kind of request, counted as they arrive.
#[derive(Debug, Default)]
pub struct Tally(Mutex<Counts>);

/// Every count of a [`Tally`] at one moment.
#[derive(Debug, Default, Clone)]
struct Counts {
    by_kind: BTreeMap<&'static str, KindCounts>,
    /// Failures by kind and label (`HTTP 503`, `timeout`).
    failures: BTreeMap<(&'static str, String), u64>,
}

#[derive(Debug, Default, Clone, Copy)]
struct KindCounts {
    /// Answers the request expects: a 2xx for the API; 401, 429 or 503 for a login.
    expected: u64,
    /// Answers it does not: any other status, or a body not as it should be.
    unexpected: u64,
    /// No answer: connecting, the connection or time failed.
    transport: u64,
}

impl Counts {
    fn of(&self, kind: &str) -> KindCounts {
        self.by_kind.get(kind).copied().unwrap_or_default()
    }

    /// Failures of every kind since `earlier`, as `kind count, …`, or `0`.
    fn failures_since(&self, earlier: &Counts, count: fn(&KindCounts) -> u64) -> String {
        let mut listed = String::new();
        for kind in KINDS {
            let new = count(&self.of(kind)) - count(&earlier.of(kind));
            if new > 0 {
                let separator = if listed.is_empty() { "" } else { ", " };
                let _ = write!(listed, "{separator}{kind} {new}");
            }
        }
        if listed.is_empty() {
            "0".to_owned()
        } else {
            listed
        }
    }
}

impl Tally {
    pub fn record(&self, kind: &'static str, result: Result<(), Failure>) {
        let mut counts = lock(&self.0);
        let counts = &mut *counts;
        let of_kind = counts.by_kind.entry(kind).or_default();
        match result {
            Ok(()) => of_kind.expected += 1,
            Err(failure) => {
                match failure {
                    Failure::Unexpected(_) => of_kind.unexpected += 1,
                    Failure::Transport(_) => of_kind.transport += 1,
                }
                *counts
                    .failures
                    .entry((kind, failure.to_string()))
                    .or_default() += 1;
            }
        }
    }

    fn snapshot(&self) -> Counts {
        lock(&self.0).clone()
    }
}

/// One measurement of the server and its database.
#[derive(Debug, Clone, Copy)]
struct Sample {
    at: Duration,
    wal_bytes: Option<u64>,
    database_bytes: u64,
    rss_kib: u64,
    fds: u64,
    /// Whether a burst of logins was in flight.
    in_burst: bool,
}

/// Runs the soak, prints a line every few seconds and the summary, and fails if a bound
/// was exceeded.
pub async fn run(soak: Soak<'_>) -> anyhow::Result<()> {
    let workload = Arc::new(Workload {
        addr: soak.server.addr,
        authorization: soak.authorization,
        contact_ids: soak.contact_ids,
        counter: AtomicU64::new(0),
    });
    let tally = Arc::new(Tally::default());
    let hostile = Arc::new(Hostile::default());
    let start = Instant::now();
    let end = start + soak.duration;

    // Workers that end by themselves at `end`, and whose answers all count.
    let mut workers = JoinSet::new();
    let mut seed = 0;
    for (mix, connections) in split(soak.concurrency) {
        for _ in 0..connections {
            let worker = HttpWorker::new(workload.clone(), mix, seed);
            seed += 1;
            workers.spawn(drive_api(worker, tally.clone(), end));
        }
    }
    workers.spawn(hostile::login_bursts(
        workload.clone(),
        hostile.clone(),
        tally.clone(),
        end,
    ));
    // Hostile clients that hold connections until aborted; dropping the set aborts them
    // too, should sampling fail.
    let mut holders = JoinSet::new();
    hostile::start(&mut holders, &workload, &hostile, &tally);

    let pid = soak.server.pid.to_string();
    let ticks = clock_ticks();
    let mut disk = DiskProbe::of(soak.database).await?;
    let mut samples = Vec::new();
    // Samples fall due on whole seconds of the run, the last one at its end; one the busy
    // load generator takes late does not push the later ones back.
    let mut sampling = interval_at(start + SAMPLE_EVERY, SAMPLE_EVERY);
    print_header();
    let mut printed = (start, tally.snapshot());
    let memory_guard_kib = (machine_memory_kib()? as f64 * STOP_AT_SHARE_OF_MEMORY) as u64;
    let mut stopped_early = None;
    for number in 1.. {
        sampling.tick().await;
        let disk_use = disk.measure().await?;
        let usage = process_usage(&pid, ticks).context("the server has exited")?;
        let sample = Sample {
            at: start.elapsed(),
            wal_bytes: disk_use.wal_bytes,
            database_bytes: disk_use.database_bytes,
            rss_kib: usage.rss_kib,
            fds: open_fds(&pid)?,
            in_burst: hostile.login_burst.load(Ordering::Relaxed),
        };
        samples.push(sample);
        if sample.rss_kib > memory_guard_kib {
            stopped_early = Some(sample);
        }
        let last = Instant::now() >= end || stopped_early.is_some();
        if number % PRINT_EVERY_SAMPLES == 0 || last {
            let counts = tally.snapshot();
            print_line(&sample, &counts, &printed, &hostile);
            printed = (Instant::now(), counts);
        }
        if last {
            break;
        }
    }
    // The hostile clients' holds are measured up to here, where the run ended.
    let ended = Instant::now();
    holders.shutdown().await;
    if let Some(sample) = stopped_early {
        println!(
            "\nStopped at {:.0} s: the server's RSS, {:.1} MiB, passed {:.0}% of the machine's \
             memory.",
            sample.at.as_secs_f64(),
            sample.rss_kib as f64 / KIB_PER_MIB,
            STOP_AT_SHARE_OF_MEMORY * 100.0
        );
        workers.abort_all();
    }
    while let Some(finished) = workers.join_next().await {
        if let Err(error) = finished
            && !error.is_cancelled()
        {
            return Err(error.into());
        }
    }
    let measured = Measured {
        samples,
        duration: soak.duration,
        lasted: ended - start,
        stopped_early: stopped_early.is_some(),
        peak_rss_kib: process_usage(&pid, ticks)?.peak_rss_kib,
        fd_limit: connections_at_once(soak.concurrency) as u64 + SERVER_OWN_FDS,
        counts: tally.snapshot(),
        hostile: &hostile,
        ended,
    };
    print_totals(&measured);
    let bounds = check_bounds(&measured);
    print_bounds(&bounds);
    let exceeded: Vec<&str> = bounds
        .iter()
        .filter(|bound| matches!(bound.verdict, Verdict::Exceeded))
        .map(|bound| bound.name)
        .collect();
    if !exceeded.is_empty() {
        bail!("the soak exceeded {}", exceeded.join("; "));
    }
    Ok(())
}

/// The most connections the soak holds open at once: its API connections, a whole burst
/// of logins, the slow connections and the stalled export.
fn connections_at_once(concurrency: usize) -> usize {
    let api: usize = split(concurrency)
        .iter()
        .map(|(_, connections)| connections)
        .sum();
    api + hostile::LOGIN_BURST_SIZE + hostile::SLOW_HEAD_CLIENTS + hostile::SLOW_BODY_CLIENTS + 1
}

/// What a soak measured, for its summary and its bounds.
#[derive(Debug)]
struct Measured<'a> {
    samples: Vec<Sample>,
    /// How long the soak was to run, and how long it did.
    duration: Duration,
    lasted: Duration,
    /// Whether it stopped before its end to spare the machine's memory.
    stopped_early: bool,
    /// The server's peak RSS since it started (`VmHWM`).
    peak_rss_kib: u64,
    /// The most file descriptors the server may hold.
    fd_limit: u64,
    counts: Counts,
    hostile: &'a Hostile,
    /// When the load ended: slow and stalled connections still open are held until then.
    ended: Instant,
}

/// One API connection's loop until `end`: the next request of its mix, counted.
async fn drive_api(mut worker: HttpWorker, tally: Arc<Tally>, end: Instant) {
    while Instant::now() < end {
        let kind = worker.next_kind();
        let result = timeout(OPERATION_TIMEOUT, worker.send(kind))
            .await
            .unwrap_or_else(|_| Err(Failure::Transport("timeout".to_owned())));
        tally.record(kind.name(), result);
    }
}

/// The machine's memory in KiB (`MemTotal` of `/proc/meminfo`).
fn machine_memory_kib() -> anyhow::Result<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo")?;
    meminfo
        .lines()
        .find_map(|line| line.strip_prefix("MemTotal:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
        .context("/proc/meminfo has no MemTotal")
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / MIB as f64
}

fn print_header() {
    let rates: String = KINDS
        .iter()
        .filter(|kind| **kind != EXPORT)
        .map(|kind| format!(" {kind}/s |"))
        .collect();
    println!(
        "| s | WAL MiB | DB MiB | server RSS MiB | server fds |{rates} export stalled s \
         | slow held s | unexpected | transport |"
    );
    let alignments = "--:|".repeat(KINDS.len() - 1 + 7);
    println!("|{alignments}---|---|");
}

/// One line of the run: the sample, and what was answered since the last line.
fn print_line(
    sample: &Sample,
    counts: &Counts,
    (since, earlier): &(Instant, Counts),
    hostile: &Hostile,
) {
    let seconds = since.elapsed().as_secs_f64().max(f64::EPSILON);
    let rates: String = KINDS
        .iter()
        .filter(|kind| **kind != EXPORT)
        .map(|kind| {
            let answered = counts.of(kind).expected - earlier.of(kind).expected;
            format!(" {:.0} |", answered as f64 / seconds)
        })
        .collect();
    let wal = sample
        .wal_bytes
        .map_or_else(|| "n/a".to_owned(), |bytes| format!("{:.1}", mib(bytes)));
    let now = Instant::now();
    let slow_held = lock(&hostile.slow_head)
        .longest_open(now)
        .max(lock(&hostile.slow_body).longest_open(now));
    println!(
        "| {:.0} | {wal} | {:.1} | {:.1} | {} |{rates} {:.0} | {:.0} | {} | {} |",
        sample.at.as_secs_f64(),
        mib(sample.database_bytes),
        sample.rss_kib as f64 / KIB_PER_MIB,
        sample.fds,
        lock(&hostile.export).longest_open(now).as_secs_f64(),
        slow_held.as_secs_f64(),
        counts.failures_since(earlier, |kind| kind.unexpected),
        counts.failures_since(earlier, |kind| kind.transport),
    );
}

/// The totals of the run by kind, then every failure by label and how the hostile clients
/// were answered.
fn print_totals(measured: &Measured) {
    let Measured {
        counts,
        lasted,
        hostile,
        ended,
        ..
    } = measured;
    println!();
    println!("| kind | expected answers | per second | unexpected | transport errors |");
    println!("|---|--:|--:|--:|--:|");
    for kind in KINDS {
        let of_kind = counts.of(kind);
        println!(
            "| {kind} | {} | {:.0} | {} | {} |",
            of_kind.expected,
            of_kind.expected as f64 / lasted.as_secs_f64(),
            of_kind.unexpected,
            of_kind.transport,
        );
    }
    for ((kind, label), count) in &counts.failures {
        println!("  {kind}: {count} × {label}");
    }
    let statuses = lock(&hostile.login_statuses);
    if !statuses.is_empty() {
        let answers: Vec<String> = statuses
            .iter()
            .map(|(status, count)| format!("{count} × {status}"))
            .collect();
        println!("  logins answered: {}", answers.join(", "));
    }
    for (name, holds) in [
        ("stalled export", &hostile.export),
        ("slow head", &hostile.slow_head),
        ("slow body", &hostile.slow_body),
    ] {
        let holds = lock(holds);
        let endings: Vec<String> = holds
            .endings
            .iter()
            .map(|(ending, count)| format!("{count} × {ending}"))
            .collect();
        println!(
            "  {name}: closed by the server {} times ({}), the longest after {:.1} s; open at \
             the end for {:.1} s",
            holds.closed,
            if endings.is_empty() {
                "—".to_owned()
            } else {
                endings.join(", ")
            },
            holds.longest_closed.as_secs_f64(),
            holds.longest_open(*ended).as_secs_f64(),
        );
    }
}

/// Whether a bound held.
#[derive(Debug)]
enum Verdict {
    Held,
    Exceeded,
    /// Not checked, and why.
    Skipped(&'static str),
}

/// One bound of the soak, as measured.
#[derive(Debug)]
struct Bound {
    name: &'static str,
    measured: String,
    limit: String,
    verdict: Verdict,
}

impl Bound {
    fn new(name: &'static str, measured: String, limit: String, held: bool) -> Self {
        let verdict = if held {
            Verdict::Held
        } else {
            Verdict::Exceeded
        };
        Self {
            name,
            measured,
            limit,
            verdict,
        }
    }
}

/// Every bound, as measured.
fn check_bounds(measured: &Measured) -> Vec<Bound> {
    let Measured {
        samples,
        duration,
        peak_rss_kib,
        fd_limit,
        counts,
        hostile,
        ended,
        ..
    } = measured;
    let (peak_rss_kib, fd_limit, ended) = (*peak_rss_kib, *fd_limit, *ended);
    let mut bounds = vec![Bound::new(
        "the run lasted its whole duration",
        humantime::format_duration(Duration::from_secs(measured.lasted.as_secs())).to_string(),
        format!(
            "{}, unless the server's RSS passes {:.0}% of the machine's memory",
            humantime::format_duration(*duration),
            STOP_AT_SHARE_OF_MEMORY * 100.0
        ),
        !measured.stopped_early,
    )];
    let wal_max = samples.iter().filter_map(|sample| sample.wal_bytes).max();
    if let Some(wal_max) = wal_max {
        bounds.push(Bound::new(
            "the WAL at every sample",
            format!("{:.1} MiB at most", mib(wal_max)),
            format!("{} MiB", WAL_MAX_BYTES / MIB),
            wal_max <= WAL_MAX_BYTES,
        ));
    }
    bounds.push(rss_flat(samples, *duration));
    bounds.push(Bound::new(
        "the server's peak RSS (VmHWM)",
        format!("{:.1} MiB", peak_rss_kib as f64 / KIB_PER_MIB),
        format!("{} MiB", RSS_PEAK_MAX_KIB / 1024),
        peak_rss_kib <= RSS_PEAK_MAX_KIB,
    ));
    let fds_max = samples.iter().map(|sample| sample.fds).max().unwrap_or(0);
    bounds.push(Bound::new(
        "the server's open file descriptors at every sample",
        format!("{fds_max} at most"),
        format!("{fd_limit} (one per connection of the soak, plus {SERVER_OWN_FDS})"),
        fds_max <= fd_limit,
    ));
    let slow = lock(&hostile.slow_head)
        .longest(ended)
        .max(lock(&hostile.slow_body).longest(ended));
    bounds.push(Bound::new(
        "how long a slow connection was held",
        format!("{:.1} s at most", slow.as_secs_f64()),
        format!("{} s", SLOW_HELD_MAX.as_secs()),
        slow <= SLOW_HELD_MAX,
    ));
    let stall = lock(&hostile.export).longest(ended);
    bounds.push(Bound::new(
        "how long a stalled export was held",
        format!("{:.1} s at most", stall.as_secs_f64()),
        format!("{} s", EXPORT_STALL_MAX.as_secs()),
        stall <= EXPORT_STALL_MAX,
    ));
    let total = |count: fn(&KindCounts) -> u64| -> u64 {
        KINDS.iter().map(|kind| count(&counts.of(kind))).sum()
    };
    let unexpected = total(|kind| kind.unexpected);
    bounds.push(Bound::new(
        "unexpected answers",
        unexpected.to_string(),
        "0".to_owned(),
        unexpected == 0,
    ));
    let transport = total(|kind| kind.transport);
    bounds.push(Bound::new(
        "transport errors",
        transport.to_string(),
        "0".to_owned(),
        transport == 0,
    ));
    bounds
}

/// "RSS flat": the last sample between bursts against the first one between bursts after
/// the run settled.
fn rss_flat(samples: &[Sample], duration: Duration) -> Bound {
    let name = "RSS flat: the server's RSS at the end against once settled";
    let settled_after = RSS_SETTLED_AFTER.min(duration / 5);
    let limit = format!(
        "{RSS_GROWTH_MAX}× (settled: after {})",
        humantime::format_duration(settled_after)
    );
    let between_bursts = || samples.iter().filter(|sample| !sample.in_burst);
    let settled = between_bursts().find(|sample| sample.at >= settled_after);
    let at_end = between_bursts().next_back();
    match (settled, at_end) {
        _ if duration < RSS_FLAT_FROM_RUNS_OF => Bound {
            name,
            measured: "—".to_owned(),
            limit,
            verdict: Verdict::Skipped("the run is shorter than a minute"),
        },
        (Some(settled), Some(at_end)) => {
            let growth = at_end.rss_kib as f64 / settled.rss_kib.max(1) as f64;
            Bound::new(
                name,
                format!(
                    "{growth:.2}× ({:.1} MiB at {:.0} s, {:.1} MiB at {:.0} s)",
                    settled.rss_kib as f64 / KIB_PER_MIB,
                    settled.at.as_secs_f64(),
                    at_end.rss_kib as f64 / KIB_PER_MIB,
                    at_end.at.as_secs_f64(),
                ),
                limit,
                growth <= RSS_GROWTH_MAX,
            )
        }
        _ => Bound {
            name,
            measured: "—".to_owned(),
            limit,
            verdict: Verdict::Skipped("no sample between login bursts"),
        },
    }
}

fn print_bounds(bounds: &[Bound]) {
    println!();
    println!("| bound | measured | limit | held |");
    println!("|---|---|---|---|");
    for bound in bounds {
        let held = match bound.verdict {
            Verdict::Held => "yes".to_owned(),
            Verdict::Exceeded => "**no**".to_owned(),
            Verdict::Skipped(why) => format!("not checked: {why}"),
        };
        println!(
            "| {} | {} | {} | {held} |",
            bound.name, bound.measured, bound.limit
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(at: u64, rss_mib: u64, in_burst: bool) -> Sample {
        Sample {
            at: Duration::from_secs(at),
            wal_bytes: Some(0),
            database_bytes: 0,
            rss_kib: rss_mib * 1024,
            fds: 10,
            in_burst,
        }
    }

    #[test]
    fn rss_flat_compares_samples_between_bursts_only() {
        let minute = Duration::from_secs(60);
        // Settled after 12 s: 40 MiB at 13 s (12 s is in a burst), 200 MiB in the last
        // burst, 50 MiB after it.
        let samples = [
            sample(11, 30, false),
            sample(12, 300, true),
            sample(13, 40, false),
            sample(58, 200, true),
            sample(59, 50, false),
            sample(60, 200, true),
        ];
        let bound = rss_flat(&samples, minute);
        assert!(matches!(bound.verdict, Verdict::Held), "{bound:?}");
        assert!(bound.measured.starts_with("1.25×"), "{bound:?}");
        let grown = [sample(13, 40, false), sample(60, 61, false)];
        assert!(matches!(
            rss_flat(&grown, minute).verdict,
            Verdict::Exceeded
        ));
        let short = rss_flat(&grown, Duration::from_secs(10));
        assert!(matches!(short.verdict, Verdict::Skipped(_)));
    }

    #[test]
    fn the_tally_counts_failures_by_kind_and_label() {
        let tally = Tally::default();
        tally.record(LOGIN, Ok(()));
        tally.record(LOGIN, Err(Failure::Unexpected("HTTP 500".to_owned())));
        tally.record(EXPORT, Err(Failure::Transport("timeout".to_owned())));
        let counts = tally.snapshot();
        assert_eq!(counts.of(LOGIN).expected, 1);
        assert_eq!(counts.of(LOGIN).unexpected, 1);
        assert_eq!(counts.of(EXPORT).transport, 1);
        assert_eq!(
            counts.failures.get(&(LOGIN, "HTTP 500".to_owned())),
            Some(&1)
        );
        let none = Counts::default();
        assert_eq!(
            counts.failures_since(&none, |kind| kind.unexpected),
            "login 1"
        );
        assert_eq!(counts.failures_since(&counts, |kind| kind.transport), "0");
    }

    #[test]
    fn the_machine_has_memory() {
        assert!(machine_memory_kib().expect("MemTotal") > 0);
    }

    #[test]
    fn every_kind_of_api_connection_gets_one() {
        for concurrency in [1, 4, 32] {
            let connections: usize = split(concurrency).iter().map(|(_, n)| n).sum();
            assert!(
                connections >= concurrency.max(3),
                "{concurrency}: {connections}"
            );
            assert!(split(concurrency).iter().all(|(_, n)| *n >= 1));
        }
        assert_eq!(split(32).map(|(_, n)| n), [4, 8, 20]);
        assert_eq!(connections_at_once(32), 137);
    }
}
