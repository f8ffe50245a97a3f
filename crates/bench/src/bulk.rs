//! The bulk benchmark (`--bulk ROWS`): `contactd import` of a generated CSV of ROWS contacts
//! with three custom values each, then `contactd export` of them all, against a server on a
//! fresh database, timed end to end with the server's peak memory.

use std::io::{BufWriter, Write};
use std::path::Path;
use std::process::Stdio;

use anyhow::{Context, bail, ensure};
use tokio::process::Command;
use tokio::time::Instant;

use crate::contactd::{Contactd, RunningServer, clock_ticks, process_usage};
use crate::database::PLAN_OPTIONS;

/// Writes a CSV of `rows` contacts: every identifier, both names, and a value of each of
/// the three fields; every tenth last name needs quoting.
fn write_csv(path: &Path, rows: u64) -> anyhow::Result<()> {
    let file = std::fs::File::create(path)
        .with_context(|| format!("could not create {}", path.display()))?;
    let mut out = BufWriter::new(file);
    writeln!(
        out,
        "ext_id,email,phone_number,first_name,last_name,plan,seats,note"
    )?;
    for i in 0..rows {
        let last_name = if i % 10 == 0 {
            format!("\"Doe, {i}\"")
        } else {
            format!("Doe{i}")
        };
        // 415-2xx-xxxx onwards: valid San Francisco numbers for the first 8 million rows.
        let phone = format!("+1 415 {} {:04}", 200 + i / 10_000, i % 10_000);
        writeln!(
            out,
            "crm-{i},person{i}@example.com,{phone},Person{i},{last_name},{},{},note {i}",
            PLAN_OPTIONS[(i % 3) as usize],
            i % 500
        )?;
    }
    out.flush()?;
    Ok(())
}

/// One timed command of the bulk benchmark.
struct Timed {
    seconds: f64,
    server_cpu_seconds: f64,
    stdout: String,
    stderr: String,
}

/// Runs `contactd ARGS` against the server and times it, with the server's CPU time.
async fn timed(
    contactd: &Contactd,
    server: &RunningServer,
    key: &str,
    args: &[&str],
) -> anyhow::Result<Timed> {
    let ticks = clock_ticks();
    let pid = server.pid.to_string();
    let cpu_before = process_usage(&pid, ticks)?.cpu_seconds;
    let started = Instant::now();
    let output = Command::new(&contactd.binary)
        .args(args)
        .env("CONTACTD_URL", format!("http://{}", server.addr))
        .env("CONTACTD_KEY", key)
        .stdin(Stdio::null())
        .output()
        .await
        .with_context(|| format!("could not run contactd {}", args.join(" ")))?;
    let seconds = started.elapsed().as_secs_f64();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    if !output.status.success() {
        bail!(
            "contactd {} failed ({}): {stdout}{stderr}",
            args.join(" "),
            output.status
        );
    }
    Ok(Timed {
        seconds,
        server_cpu_seconds: process_usage(&pid, ticks)?.cpu_seconds - cpu_before,
        stdout,
        stderr,
    })
}

/// Imports `rows` generated contacts with `contactd import`, exports them with `contactd
/// export`, checks both moved every row, and prints the figures.
pub async fn run(
    contactd: &Contactd,
    server: &RunningServer,
    key: &str,
    dir: &Path,
    rows: u64,
) -> anyhow::Result<()> {
    let input = dir.join("contactd-bench-import.csv");
    let output = dir.join("contactd-bench-export.csv");
    let generating = Instant::now();
    write_csv(&input, rows)?;
    println!(
        "Generated {rows} rows ({:.0} MiB of CSV) in {:.1} s.\n",
        std::fs::metadata(&input)?.len() as f64 / 1_048_576.0,
        generating.elapsed().as_secs_f64()
    );
    let input_arg = input.display().to_string();
    let output_arg = output.display().to_string();
    let import = timed(contactd, server, key, &["import", &input_arg]).await?;
    let expected = format!("{rows} created, 0 updated, 0 unchanged, 0 failed");
    ensure!(
        import.stdout.contains(&expected),
        "the import did not create every row: {}",
        import.stdout
    );
    let export = timed(contactd, server, key, &["export", "-o", &output_arg]).await?;
    let exported = format!("exported {rows} contacts");
    ensure!(
        export.stderr.contains(&exported),
        "the export did not hold every row: {}",
        export.stderr
    );
    let peak_mib =
        process_usage(&server.pid.to_string(), clock_ticks())?.peak_rss_kib as f64 / 1024.0;
    println!("| command | rows | seconds | rows/s | server CPU s |");
    println!("|---|---:|---:|---:|---:|");
    for (name, timed) in [("contactd import", &import), ("contactd export", &export)] {
        println!(
            "| `{name}` | {rows} | {:.2} | {:.0} | {:.1} |",
            timed.seconds,
            rows as f64 / timed.seconds,
            timed.server_cpu_seconds
        );
    }
    println!("\nServer peak RSS (VmHWM) over both: {peak_mib:.1} MiB.");
    std::fs::remove_file(&input)?;
    std::fs::remove_file(&output)?;
    Ok(())
}
