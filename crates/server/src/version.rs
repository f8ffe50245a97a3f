//! What this binary is: its release, the commit it was built from, and the schema version
//! its migrations reach (docs/reference.md#version).

use crate::store;

/// The release, from the workspace's `Cargo.toml`.
pub const RELEASE: &str = env!("CARGO_PKG_VERSION");

/// The git commit the binary was built from, when it was built from a git checkout
/// (`build.rs`).
pub const COMMIT: Option<&str> = option_env!("CONTACTD_GIT_COMMIT");

/// The line `contactd --version` prints after the program's name, such as
/// `0.1.0 (commit 1a2b3c4d5e6f, schema 4)`.
pub fn describe() -> String {
    let schema = store::schema_version();
    match COMMIT {
        Some(commit) => format!("{RELEASE} (commit {commit}, schema {schema})"),
        None => format!("{RELEASE} (schema {schema})"),
    }
}
