//! The `contactd` binary as a command line, and its admin commands run to completion.

use std::io::Write;
use std::process::{Command, Stdio};

/// The `contactd` binary built for these tests.
pub fn contactd() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_contactd"));
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    command
}

/// Runs an admin command on a database, asserting success, and returns its stdout.
pub fn admin(database_url: &str, args: &[&str]) -> String {
    admin_with_input(database_url, args, "")
}

/// Runs an admin command on a database with `input` on its stdin (a password, say),
/// asserting success, and returns its stdout.
pub fn admin_with_input(database_url: &str, args: &[&str], input: &str) -> String {
    let mut child = contactd()
        .args(args)
        .env("CONTACTD_DATABASE_URL", database_url)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run contactd");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write stdin");
    let output = child.wait_with_output().expect("wait for contactd");
    assert!(
        output.status.success(),
        "contactd {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8 output")
}

/// Runs an admin command on a database, asserting it fails, and returns its stderr.
pub fn admin_refused(database_url: &str, args: &[&str]) -> String {
    let output = contactd()
        .args(args)
        .env("CONTACTD_DATABASE_URL", database_url)
        .output()
        .expect("run contactd");
    let stderr = String::from_utf8(output.stderr).expect("UTF-8 output");
    assert!(
        !output.status.success(),
        "contactd {args:?} succeeded: {stderr}"
    );
    stderr
}
