//! `contactd-bench`: builds the release `contactd`, serves it on a fresh seeded database,
//! drives each scenario over HTTP, then measures the database's own ceiling for the same
//! writes, and prints it all as Markdown tables (see `BENCHMARKS.md`). `--soak` runs
//! everything at once for minutes instead, against the server's robustness bounds.

mod bulk;
mod ceiling;
mod contactd;
mod database;
mod http;
mod load;
mod report;
mod soak;
mod webhooks;

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use anyhow::{Context, anyhow, bail, ensure};
use clap::{Parser, ValueEnum};
use hyper::header::HeaderValue;
use sqlx::{ConnectOptions, Connection, Executor, PgConnection, SqliteConnection};
use tokio::time::{Instant, sleep, sleep_until};
use uuid::Uuid;

use crate::ceiling::{
    DirectWriter, Operation, PostgresWorker, Seeded, SqlxSqliteCommits, Transaction, worker_rng,
};
use crate::contactd::{Contactd, RunningServer, clock_ticks, process_usage};
use crate::database::FreshDatabase;
use crate::http::{HttpWorker, Scenario, Workload};
use crate::load::{Outcome, Pacing, Timing, Worker};
use crate::report::Usage;

/// How often the server's resident set is sampled during a scenario.
const RSS_SAMPLE_EVERY: Duration = Duration::from_millis(100);

/// The SQLite file of the bare-commit ceilings, beside the benchmark's database.
const COMMITS_FILE: &str = "commits.db";

/// Rows in each commit of the batched bare-commit ceiling.
const ROWS_PER_BATCH: usize = 100;

/// Benchmark contactd on a fresh database: HTTP scenarios, then the database's ceiling.
#[derive(Debug, Parser)]
#[command(name = "contactd-bench")]
struct Options {
    /// Benchmark on this PostgreSQL server (`postgres://USER@HOST:PORT/NAME`): a new database
    /// named after NAME is created there and dropped at the end. Without it, a new SQLite
    /// file is used, under the cargo target directory.
    #[arg(long)]
    database_url: Option<String>,

    /// How long each scenario and each ceiling is measured, after its warm-up.
    #[arg(long, default_value = "15s", value_parser = humantime::parse_duration)]
    duration: Duration,

    /// How long each scenario and each ceiling runs before measuring starts.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    warm_up: Duration,

    /// Connections (HTTP workers, and ceiling clients) at once.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,

    /// Send this many requests per second in all (open loop), latency measured from when
    /// each was due, instead of as many as the server answers (closed loop). The ceilings
    /// are skipped: they measure throughput.
    #[arg(long)]
    rate: Option<f64>,

    /// Run only this scenario; repeat for several. All of them by default.
    #[arg(long = "scenario", value_enum)]
    scenarios: Vec<Scenario>,

    /// Contacts seeded before the scenarios run.
    #[arg(long, default_value_t = 100_000)]
    contacts: u64,

    /// Instead of the HTTP scenarios: import this many contacts (three custom values each)
    /// from a generated CSV with `contactd import`, then export them with `contactd
    /// export`, on a fresh database.
    #[arg(long, value_name = "ROWS")]
    bulk: Option<u64>,

    /// Instead of the scenarios: for this long, array creates, seed PATCHes, reads, an
    /// export that stalls, login bursts and slow clients all at once, with the database's
    /// size, the server's memory and file descriptors sampled; fails when a bound of
    /// `docs/robustness.md` is exceeded.
    #[arg(
        long,
        value_name = "DURATION",
        value_parser = humantime::parse_duration,
        conflicts_with_all = ["bulk", "rate", "scenarios", "duration", "warm_up"]
    )]
    soak: Option<Duration>,

    /// The cargo profile contactd is built in. Only `release` measures anything; `dev`
    /// reuses a test build, for a smoke run that checks the benchmark still works.
    #[arg(long, default_value = "release")]
    profile: String,
}

/// One thread drives all the load: the server and the database are measured on the same
/// cores, and a single-threaded load generator never wakes a second thread of its own to
/// hand work over, so it leaves them the most CPU.
#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let options = Options::parse();
    match run(options).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("contactd-bench: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(mut options: Options) -> anyhow::Result<()> {
    if options.concurrency == 0
        || options.contacts == 0
        || options.duration.is_zero()
        || options.soak.is_some_and(|soak| soak.is_zero())
    {
        bail!("--concurrency, --contacts, --duration and --soak must be above zero");
    }
    if options
        .rate
        .is_some_and(|rate| !(rate > 0.0 && rate.is_finite()))
    {
        bail!("--rate must be a positive number of requests per second");
    }
    if options.scenarios.is_empty() {
        options.scenarios = Scenario::value_variants().to_vec();
    }
    let binary = contactd::build(&options.profile).await?;
    // The binary is TARGET/release/contactd.
    let target_dir = binary
        .parent()
        .and_then(Path::parent)
        .ok_or_else(|| anyhow!("unexpected binary path {}", binary.display()))?
        .to_owned();
    let database = match options.database_url.as_deref() {
        None => FreshDatabase::sqlite_in(&target_dir)?,
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            FreshDatabase::postgres_beside(url)?
        }
        Some(_) => bail!(
            "--database-url takes a postgres:// URL; without it the benchmark makes its own \
             SQLite file"
        ),
    };
    let contactd = Contactd {
        binary,
        database_url: database.url().to_owned(),
    };
    let log = target_dir.join("contactd-bench-server.log");
    // On Ctrl-C the benchmark future is dropped, which kills the server; the database is
    // removed either way.
    let outcome = tokio::select! {
        outcome = bench(&options, &contactd, &database, &log) => outcome,
        _ = tokio::signal::ctrl_c() => Err(anyhow!("interrupted")),
    };
    let removed = database.remove().await;
    outcome?;
    removed
}

/// The company the benchmark acts for, as the admin commands set it up.
struct BenchCompany {
    id: Uuid,
    /// The API key, shown once by `key create`.
    key: String,
    fields: database::Fields,
}

/// Migrates the fresh database and creates the company, its key and its three custom
/// fields with contactd's own admin commands.
async fn set_up(contactd: &Contactd) -> anyhow::Result<BenchCompany> {
    contactd.admin(&["migrate"]).await?;
    let id: Uuid = contactd
        .admin(&["company", "create", "bench"])
        .await?
        .parse()
        .context("company create printed no id")?;
    let key = contactd
        .admin(&["key", "create", "--company", "bench"])
        .await?;
    for (key, field_type, display_name) in [
        ("plan", "select", "Plan"),
        ("seats", "number", "Seats"),
        ("note", "text", "Note"),
    ] {
        let mut args = vec!["field", "create", "--company", "bench", "--key", key];
        args.extend(["--type", field_type, "--display-name", display_name]);
        if field_type == "select" {
            for option in database::PLAN_OPTIONS {
                args.extend(["--option", option]);
            }
        }
        contactd.admin(&args).await?;
    }
    let fields = database::read_fields(&contactd.database_url, id).await?;
    Ok(BenchCompany { id, key, fields })
}

/// Sets up and seeds the database, runs the HTTP scenarios, then the ceilings.
async fn bench(
    options: &Options,
    contactd: &Contactd,
    database: &FreshDatabase,
    log: &Path,
) -> anyhow::Result<()> {
    let url = database.url();
    let BenchCompany {
        id: company_id,
        key,
        fields,
    } = set_up(contactd).await?;

    print_setting(options, database);
    if let Some(rows) = options.bulk {
        eprintln!("starting contactd serve (log: {})", log.display());
        let server = contactd.serve(log).await?;
        let dir = log.parent().unwrap_or(Path::new("."));
        let outcome = bulk::run(contactd, &server, &key, dir, rows).await;
        server.stop().await?;
        return outcome;
    }
    let seeding = Instant::now();
    let contact_ids = database::seed(url, company_id, &fields, options.contacts).await?;
    println!(
        "Seeded {} contacts with 3 custom values each in {:.1} s.\n",
        options.contacts,
        seeding.elapsed().as_secs_f64()
    );

    eprintln!("starting contactd serve (log: {})", log.display());
    let server = contactd.serve(log).await?;
    let authorization = HeaderValue::from_str(&format!("Bearer {key}"))?;
    let contact_ids = Arc::new(contact_ids);
    if let Some(duration) = options.soak {
        let outcome = soak::run(soak::Soak {
            server: &server,
            database,
            authorization,
            contact_ids,
            concurrency: options.concurrency,
            duration,
        })
        .await;
        // A server that died during the soak cannot be stopped; say why the soak failed.
        let stopped = server.stop().await;
        outcome?;
        return stopped;
    }
    let timing = Timing {
        warm_up: options.warm_up,
        duration: options.duration,
    };
    let pacing = options
        .rate
        .map_or(Pacing::Closed, |rate| Pacing::Open { rate });
    let run = ScenarioRun {
        server: &server,
        authorization,
        contact_ids,
        concurrency: options.concurrency,
        clock_ticks: clock_ticks(),
        timing,
        pacing,
    };
    let mut measured = Vec::new();
    report::print_scenario_header();
    for &scenario in &options.scenarios {
        let (outcome, usage) = run.drive(scenario).await?;
        report::print_scenario(scenario.name(), &outcome, &usage);
        measured.push((scenario.name().to_owned(), outcome));
    }
    if options.scenarios.contains(&Scenario::Patch) {
        measured.extend(measure_event_cost(&run, database).await?);
    }
    if options.rate.is_none() {
        webhooks::run(&server, &run.authorization).await?;
    }
    for (name, outcome) in &measured {
        report::print_errors(name, outcome);
    }
    server.stop().await?;

    if options.rate.is_some() {
        println!("\nCeilings skipped: they measure throughput, in a closed loop.");
    } else {
        let seeded = Seeded {
            company_id,
            fields,
            count: options.contacts,
            counter: AtomicU64::new(0),
        };
        measure_ceilings(options, database, seeded, timing, &measured).await?;
    }
    let failed: u64 = measured
        .iter()
        .map(|(_, outcome)| outcome.error_count())
        .sum();
    ensure!(failed == 0, "{failed} requests failed (listed above)");
    Ok(())
}

/// What every HTTP scenario of a run is driven with.
struct ScenarioRun<'a> {
    server: &'a RunningServer,
    authorization: HeaderValue,
    contact_ids: Arc<Vec<Uuid>>,
    concurrency: usize,
    clock_ticks: f64,
    timing: Timing,
    pacing: Pacing,
}

impl ScenarioRun<'_> {
    /// Drives one scenario against the server, measuring it and the server's use.
    async fn drive(&self, scenario: Scenario) -> anyhow::Result<(Outcome, Usage)> {
        self.drive_for(scenario, self.timing).await
    }

    /// As [`ScenarioRun::drive`], for `timing` instead of the run's.
    async fn drive_for(
        &self,
        scenario: Scenario,
        timing: Timing,
    ) -> anyhow::Result<(Outcome, Usage)> {
        let workload = Arc::new(Workload {
            addr: self.server.addr,
            authorization: self.authorization.clone(),
            contact_ids: Arc::clone(&self.contact_ids),
            counter: AtomicU64::new(0),
        });
        let workers = (0..self.concurrency)
            .map(|worker| HttpWorker::new(Arc::clone(&workload), scenario.mix(), worker as u64))
            .collect();
        drive_with_usage(self.server, self.clock_ticks, workers, timing, self.pacing).await
    }
}

/// How many times the event cost's two runs alternate.
const EVENT_COST_ROUNDS: u32 = 4;

/// The share of the seed PATCH's throughput that recording its events leaves
/// (docs/reference.md#13-change-events-history-and-webhooks sets at least 85%): the PATCH
/// with the database discarding each event row and keeping them, alternated in
/// [`EVENT_COST_ROUNDS`] rounds (the two orders in turn) that share the run's duration, so
/// that a slow stretch of the machine (an fsync that stalls, a neighbour) weighs on both
/// alike. Returns the two runs, each its rounds together, named.
async fn measure_event_cost(
    run: &ScenarioRun<'_>,
    database: &FreshDatabase,
) -> anyhow::Result<Vec<(String, Outcome)>> {
    let timing = Timing {
        warm_up: run.timing.warm_up,
        duration: run.timing.duration / EVENT_COST_ROUNDS,
    };
    // Per mode (discarded, kept): every round's outcome and usage together.
    let mut totals: [Option<(Outcome, Usage)>; 2] = [None, None];
    let mut shares = Vec::new();
    let mut discarding = false;
    for round in 0..EVENT_COST_ROUNDS {
        let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        let mut per_second = [0.0; 2];
        for mode in order {
            if discarding != (mode == 0) {
                discarding = mode == 0;
                database.discard_events(discarding).await?;
            }
            let (outcome, usage) = run.drive_for(Scenario::Patch, timing).await?;
            per_second[mode] = outcome.per_second();
            totals[mode] = Some(match totals[mode].take() {
                None => (outcome, usage),
                Some((mut total, total_usage)) => {
                    total.add_window(outcome)?;
                    (total, total_usage.followed_by(&usage))
                }
            });
        }
        shares.push(format!("{:.0}%", 100.0 * per_second[1] / per_second[0]));
    }
    if discarding {
        database.discard_events(false).await?;
    }
    let mut runs = Vec::new();
    for (name, total) in ["patch, events discarded", "patch, events kept"]
        .into_iter()
        .zip(totals)
    {
        let (outcome, usage) = total.context("no round ran")?;
        report::print_scenario(name, &outcome, &usage);
        runs.push((name.to_owned(), outcome));
    }
    let without = runs[0].1.per_second();
    let with = runs[1].1.per_second();
    println!(
        "\nThe seed PATCH with its events stored: {with:.0} req/s, {:.0}% of the {without:.0} \
         req/s of the same PATCH with the database discarding them (target: at least 85%); \
         round by round: {}.",
        100.0 * with / without,
        shares.join(", ")
    );
    Ok(runs)
}

/// Runs the ceilings of the write scenarios that were measured, and prints each beside
/// its endpoint.
async fn measure_ceilings(
    options: &Options,
    database: &FreshDatabase,
    seeded: Seeded,
    timing: Timing,
    measured: &[(String, Outcome)],
) -> anyhow::Result<()> {
    let transactions: Vec<Transaction> = [
        (Scenario::Patch, Transaction::Patch),
        (Scenario::Create, Transaction::Create),
    ]
    .into_iter()
    .filter(|(scenario, _)| options.scenarios.contains(scenario))
    .map(|(_, transaction)| transaction)
    .collect();
    if transactions.is_empty() {
        return Ok(());
    }
    let ceilings = Ceilings {
        database,
        concurrency: options.concurrency,
        seeded: Arc::new(seeded),
        timing,
    };
    ceilings.measure(&transactions, measured).await
}

/// What the report states about where and how it was measured.
fn print_setting(options: &Options, database: &FreshDatabase) {
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|line| line.strip_prefix("model name"))
                .map(|model| model.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let backend = match database {
        FreshDatabase::Sqlite { .. } => "SQLite (WAL, synchronous=FULL)".to_owned(),
        FreshDatabase::Postgres { .. } => "PostgreSQL".to_owned(),
    };
    let mode = match (options.soak, options.bulk, options.rate) {
        (Some(duration), _, _) => soak::describe(options.concurrency, duration),
        (None, Some(rows), _) => format!("import and export of {rows} contacts"),
        (None, None, rate) => format!(
            "{} connections, {}, {} warm-up then {} measured per scenario",
            options.concurrency,
            rate.map_or_else(
                || "closed loop".to_owned(),
                |rate| format!("open loop at {rate} requests/s")
            ),
            humantime::format_duration(options.warm_up),
            humantime::format_duration(options.duration),
        ),
    };
    println!("contactd-bench: {backend}; {cores} cores ({cpu}); {mode}.");
    if options.profile != "release" {
        println!(
            "contactd is a {} build: a smoke run, whose figures measure nothing.",
            options.profile
        );
    }
}

/// Runs HTTP workers while sampling the server's memory and the CPU time of both sides
/// over the measured window.
async fn drive_with_usage<W: Worker>(
    server: &RunningServer,
    clock_ticks: f64,
    workers: Vec<W>,
    timing: Timing,
    pacing: Pacing,
) -> anyhow::Result<(Outcome, Usage)> {
    let pid = server.pid.to_string();
    let measure_from = Instant::now() + timing.warm_up;
    let end = measure_from + timing.duration;
    let sampler = tokio::spawn(async move {
        sleep_until(measure_from).await;
        let server_start = process_usage(&pid, clock_ticks)?;
        let load_start = process_usage("self", clock_ticks)?;
        let mut rss_max = server_start.rss_kib;
        while Instant::now() < end {
            sleep(RSS_SAMPLE_EVERY).await;
            rss_max = rss_max.max(process_usage(&pid, clock_ticks)?.rss_kib);
        }
        let server_end = process_usage(&pid, clock_ticks)?;
        let load_end = process_usage("self", clock_ticks)?;
        anyhow::Ok(Usage {
            server_rss_max_kib: rss_max.max(server_end.rss_kib),
            server_end,
            server_cpu_seconds: server_end.cpu_seconds - server_start.cpu_seconds,
            load_cpu_seconds: load_end.cpu_seconds - load_start.cpu_seconds,
        })
    });
    let outcome = load::drive(workers, timing, pacing).await?;
    let usage = sampler.await.context("the usage sampler panicked")??;
    Ok((outcome, usage))
}

/// One ceiling measurement: an operation, and how it reaches the database.
#[derive(Debug, Clone, Copy)]
enum Ceiling {
    /// SQLite on a synchronous connection owned by one writer thread.
    SqliteDirect(Operation),
    /// Bare commits of this many rows on SQLite through a sqlx connection, as the server's
    /// writer runs statements.
    SqliteSqlxCommit { rows: usize },
    /// PostgreSQL, one sqlx connection per client.
    Postgres(Operation),
}

impl Ceiling {
    fn operation(self) -> Operation {
        match self {
            Self::SqliteDirect(operation) | Self::Postgres(operation) => operation,
            Self::SqliteSqlxCommit { rows } => Operation::Commit { rows },
        }
    }
}

/// Runs the ceilings on the benchmark's database, the server stopped.
struct Ceilings<'a> {
    database: &'a FreshDatabase,
    concurrency: usize,
    seeded: Arc<Seeded>,
    timing: Timing,
}

impl Ceilings<'_> {
    /// Measures and prints the ceilings of these endpoint transactions, each beside the
    /// requests/s its endpoint reached in `measured`.
    async fn measure(
        &self,
        transactions: &[Transaction],
        measured: &[(String, Outcome)],
    ) -> anyhow::Result<()> {
        let endpoint_rate = |wanted: Scenario| {
            measured
                .iter()
                .find(|(name, _)| name == wanted.name())
                .map(|(_, outcome)| outcome.per_second())
        };
        println!();
        report::print_ceiling_header();
        let mut failures = Vec::new();
        for (name, ceiling, scenario) in self.plan(transactions) {
            let (connections, outcome) = self.run(ceiling).await?;
            let rows = ceiling.operation().rows();
            let endpoint = scenario.and_then(endpoint_rate);
            report::print_ceiling(&name, &connections, rows, &outcome, endpoint);
            failures.push((name, outcome));
        }
        for (name, outcome) in &failures {
            report::print_errors(name, outcome);
        }
        Ok(())
    }

    /// The ceilings to measure for these endpoint transactions, each with its name and the
    /// scenario it bounds: each endpoint's transaction, then bare commits.
    fn plan(&self, transactions: &[Transaction]) -> Vec<(String, Ceiling, Option<Scenario>)> {
        let sqlite = matches!(self.database, FreshDatabase::Sqlite { .. });
        let on_backend = |operation| {
            if sqlite {
                Ceiling::SqliteDirect(operation)
            } else {
                Ceiling::Postgres(operation)
            }
        };
        let mut plan: Vec<_> = transactions
            .iter()
            .map(|&transaction| {
                let (name, scenario) = match transaction {
                    Transaction::Patch => ("PATCH /contacts", Scenario::Patch),
                    Transaction::Create => ("POST /contacts", Scenario::Create),
                };
                let ceiling = on_backend(Operation::Endpoint(transaction));
                (format!("{name} transaction"), ceiling, Some(scenario))
            })
            .collect();
        let single = on_backend(Operation::Commit { rows: 1 });
        plan.push(("single-row commit".to_owned(), single, None));
        if sqlite {
            let rows = ROWS_PER_BATCH;
            let batch = on_backend(Operation::Commit { rows });
            plan.push((format!("{rows} rows per commit"), batch, None));
            let through_sqlx = Ceiling::SqliteSqlxCommit { rows };
            plan.push((
                format!("{rows} rows per commit, through sqlx"),
                through_sqlx,
                None,
            ));
        }
        plan
    }

    /// Runs one ceiling in a closed loop and says on how many connections it ran.
    ///
    /// On SQLite, endpoint transactions share the database's one writer connection among
    /// `concurrency` clients, and bare commits go to a file of their own beside the
    /// database, from one client, as the issue measured them. On PostgreSQL every client
    /// has its own connection.
    async fn run(&self, ceiling: Ceiling) -> anyhow::Result<(String, Outcome)> {
        let clients = match ceiling.operation() {
            Operation::Commit { .. } if !matches!(ceiling, Ceiling::Postgres(_)) => 1,
            _ => self.concurrency,
        };
        let seeded = || Arc::clone(&self.seeded);
        match (ceiling, self.database) {
            (Ceiling::SqliteDirect(operation), FreshDatabase::Sqlite { dir, .. }) => {
                let file = match operation {
                    Operation::Endpoint(_) => database::SQLITE_FILE,
                    Operation::Commit { .. } => {
                        open_commits_file(dir.path()).await?.close().await?;
                        COMMITS_FILE
                    }
                };
                let writer = DirectWriter::open(&dir.path().join(file), seeded())?;
                let workers = (0..clients)
                    .map(|worker| writer.client(operation, seeded(), worker_rng(worker)))
                    .collect();
                let outcome = load::drive(workers, self.timing, Pacing::Closed).await?;
                writer.close()?;
                let clients = if clients == 1 {
                    "1 client".to_owned()
                } else {
                    format!("{clients} clients")
                };
                Ok((format!("1 writer thread, {clients}"), outcome))
            }
            (Ceiling::SqliteSqlxCommit { rows }, FreshDatabase::Sqlite { dir, .. }) => {
                let conn = open_commits_file(dir.path()).await?;
                let workers = vec![SqlxSqliteCommits { conn, rows }];
                let outcome = load::drive(workers, self.timing, Pacing::Closed).await?;
                Ok(("1 sqlx connection".to_owned(), outcome))
            }
            (Ceiling::Postgres(operation), FreshDatabase::Postgres { url }) => {
                let options: sqlx::postgres::PgConnectOptions = url.parse()?;
                let mut workers = Vec::with_capacity(clients);
                for worker in 0..clients {
                    let mut conn: PgConnection = options.connect().await?;
                    if worker == 0 {
                        conn.execute(ceiling::POSTGRES_COMMITS_TABLE).await?;
                    }
                    workers.push(PostgresWorker {
                        conn,
                        operation,
                        seeded: seeded(),
                        rng: worker_rng(worker),
                    });
                }
                let outcome = load::drive(workers, self.timing, Pacing::Closed).await?;
                Ok((format!("{clients} connections"), outcome))
            }
            (ceiling, _) => bail!("{ceiling:?} does not run on this database"),
        }
    }
}

/// Opens the bare-commit ceilings' scratch SQLite file beside the database, creating it and
/// its table if missing: their commits then touch nothing of contactd's.
async fn open_commits_file(dir: &Path) -> anyhow::Result<SqliteConnection> {
    let url = format!("sqlite://{}", dir.join(COMMITS_FILE).display());
    let options = FreshDatabase::sqlite_options(&url)?.create_if_missing(true);
    let mut conn = SqliteConnection::connect_with(&options).await?;
    conn.execute(ceiling::SQLITE_COMMITS_TABLE).await?;
    Ok(conn)
}
