//! The `contactd` binary as a command line, and its admin commands run to completion.

use std::process::Command;

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
    let output = contactd()
        .args(args)
        .env("CONTACTD_DATABASE_URL", database_url)
        .output()
        .expect("run contactd");
    assert!(
        output.status.success(),
        "contactd {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8 output")
}
