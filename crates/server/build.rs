//! Two things the build learns from its surroundings:
//!
//! - The git commit being built, for `contactd --version` and `/healthz`
//!   (docs/reference.md#version), when the source is a git checkout with git installed;
//!   otherwise (a source tarball, a crate download) the version names none.
//! - Which outside programs the test suite was given: a PostgreSQL server for the contract
//!   tests' PostgreSQL half, and chromedriver for the dashboard's browser tests. Without
//!   them those tests are reported as ignored (with the reason), never silently passed; CI
//!   provides both.

use std::process::Command;

fn main() {
    git_commit();
    test_services();
}

/// Sets `CONTACTD_GIT_COMMIT` to the commit checked out, and asks to be run again when
/// another one is: when `HEAD` moves, or the branch it names does. A crate could do this
/// (vergen), but it is three calls to git, and its fallbacks when git is missing would need
/// as much code to turn off.
fn git_commit() {
    let git = |args: &[&str]| {
        let output = Command::new("git").args(args).output().ok()?;
        let text = String::from_utf8(output.stdout).ok()?;
        output.status.success().then(|| text.trim().to_owned())
    };
    // Only a checkout of this source counts, not some other repository around a copy of it.
    if git(&["ls-files", "--error-unmatch", "build.rs"]).is_none() {
        return;
    }
    let Some(commit) = git(&["rev-parse", "--short=12", "HEAD"]) else {
        return;
    };
    println!("cargo::rustc-env=CONTACTD_GIT_COMMIT={commit}");
    let mut watched = vec!["HEAD".to_owned()];
    watched.extend(git(&["symbolic-ref", "--quiet", "HEAD"]));
    watched.push("packed-refs".to_owned());
    for name in watched {
        // A path that does not exist would make cargo run this script on every build.
        let path = git(&["rev-parse", "--path-format=absolute", "--git-path", &name]);
        if let Some(path) = path.filter(|path| std::path::Path::new(path).exists()) {
            println!("cargo::rerun-if-changed={path}");
        }
    }
}

fn test_services() {
    println!("cargo::rerun-if-env-changed=CONTACTD_TEST_POSTGRES_URL");
    println!("cargo::rerun-if-env-changed=CONTACTD_TEST_CHROMEDRIVER");
    println!("cargo::rustc-check-cfg=cfg(postgres_tests)");
    println!("cargo::rustc-check-cfg=cfg(browser_tests)");
    let given = |name: &str| std::env::var_os(name).is_some_and(|value| !value.is_empty());
    if given("CONTACTD_TEST_POSTGRES_URL") {
        println!("cargo::rustc-cfg=postgres_tests");
    }
    if given("CONTACTD_TEST_CHROMEDRIVER") {
        println!("cargo::rustc-cfg=browser_tests");
    }
}
