//! The README's walkthrough, run as written against a real server, so it cannot rot.

use std::process::Command;

use serde_json::Value;

use crate::helpers::ServerProcess;

/// The address the README's commands use; replaced by the test server's.
const README_ADDRESS: &str = "http://127.0.0.1:8080";

/// The `PATH` the README has the reader set up, the binary under test's directory first:
/// "Bring your contacts" runs `contactd` itself, as a reader outside the repository must.
fn path_with_contactd() -> std::ffi::OsString {
    let binary = std::path::Path::new(env!("CARGO_BIN_EXE_contactd"));
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs = std::iter::once(binary.parent().expect("a directory").to_owned())
        .chain(std::env::split_paths(&path));
    std::env::join_paths(dirs).expect("a PATH")
}

/// The `sh` blocks of a section of the README, in order.
fn section_blocks(title: &str) -> Vec<String> {
    let readme = include_str!("../../../../README.md");
    let section = readme
        .split(&format!("\n## {title}\n"))
        .nth(1)
        .unwrap_or_else(|| panic!("a {title} section"))
        .split("\n## ")
        .next()
        .unwrap_or_default();
    section
        .split("```sh\n")
        .skip(1)
        .map(|block| block.split("```").next().unwrap_or_default().to_owned())
        .collect()
}

#[test]
fn the_readme_walkthrough_and_bring_your_contacts_work_as_written() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("readme.db").display());
    let server = ServerProcess::start(&url, &[]);
    let key = server.first_run_key();
    let blocks = section_blocks("Walkthrough");
    assert!(blocks.len() >= 5, "the walkthrough lost its commands");
    let mut outputs = Vec::new();
    for block in &blocks {
        let script = block.replace(README_ADDRESS, &server.base_url);
        let output = Command::new("bash")
            .args(["-euo", "pipefail", "-c", &script])
            .env("API_KEY", &key)
            .output()
            .expect("run bash");
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "README block failed:\n{block}\nstdout: {stdout}\nstderr: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        // The shell prompt after a pasted command starts on a line of its own.
        assert!(
            stdout.ends_with("}\n"),
            "README block's answer does not end its line:\n{block}\n{stdout:?}"
        );
        let answer: Value = serde_json::from_str(&stdout)
            .unwrap_or_else(|_| panic!("README block did not answer JSON:\n{block}\n{stdout}"));
        // A block may show its expected answer in a trailing `# {…}` comment.
        if let Some(expected) = block.lines().find_map(|line| line.strip_prefix("# {")) {
            let expected: Value =
                serde_json::from_str(&format!("{{{expected}")).expect("the comment is JSON");
            for member in ["error", "code", "field"] {
                assert_eq!(answer[member], expected[member], "{member} in\n{block}");
            }
        }
        outputs.push(answer);
    }
    // The walkthrough's story: the contact ends up updated and fetched by phone number.
    let fetched = &outputs[3];
    assert_eq!(fetched["email"], "jane@example.com");
    assert_eq!(fetched["first_name"], "Janet");
    assert_eq!(fetched["ext_id"], "crm-42");
    assert_eq!(fetched["phone_number"], "+14155552671");
    assert_eq!(fetched["custom_fields"][0]["value"], "pro");
    assert_eq!(outputs[4]["data"]["contacts"][0]["id"], fetched["id"]);
    // Found by part of the name and the plan, and counted.
    assert_eq!(outputs[5]["data"]["contacts"][0]["id"], fetched["id"]);
    assert_eq!(outputs[6], serde_json::json!({"count": 1}));

    // "Bring your contacts" goes on from there (the `plan` field, Jane), in a directory of
    // its own; each block shows what its output contains in trailing `# …` lines.
    let blocks = section_blocks("Bring your contacts");
    assert!(blocks.len() >= 3, "the section lost its commands");
    let work = tempfile::tempdir().expect("temp dir");
    for block in &blocks {
        assert!(
            !block.contains("cargo "),
            "a block to paste outside the repository runs cargo:\n{block}"
        );
        let output = Command::new("bash")
            .args(["-euo", "pipefail", "-c", block])
            .current_dir(work.path())
            .env("PATH", path_with_contactd())
            .env("CONTACTD_KEY", &key)
            .env("CONTACTD_URL", &server.base_url)
            .output()
            .expect("run bash");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "README block failed:\n{block}\nstdout: {stdout}\nstderr: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        for expected in block.lines().filter_map(|line| line.strip_prefix("# ")) {
            assert!(
                stdout.contains(expected),
                "README block's output lacks {expected:?}:\n{block}\nstdout: {stdout}"
            );
        }
    }
}

/// A version such as `1.89` or `1.89.0`, comparable.
fn rust_version(text: &str) -> Vec<u32> {
    let mut parts: Vec<u32> = text
        .split('.')
        .map(|part| part.parse().expect("a version number"))
        .collect();
    parts.resize(3, 0);
    parts
}

#[test]
fn the_minimum_rust_version_the_readme_states_builds_every_dependency() {
    let manifest = include_str!("../../../../Cargo.toml");
    let declared = manifest
        .lines()
        .find_map(|line| line.strip_prefix("rust-version = "))
        .expect("the workspace declares a rust-version")
        .trim_matches('"');
    let readme = include_str!("../../../../README.md");
    assert!(
        readme.contains(&format!("Rust {declared} or later")),
        "the README does not state the declared minimum, Rust {declared}"
    );
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let output = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--locked", "--offline"])
        .args(["--filter-platform", "x86_64-unknown-linux-gnu"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run cargo metadata");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: Value = serde_json::from_slice(&output.stdout).expect("cargo metadata's JSON");
    let needs_more: Vec<String> = metadata["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .filter_map(|package| {
            let wanted = package["rust_version"].as_str()?;
            (rust_version(wanted) > rust_version(declared))
                .then(|| format!("{} needs Rust {wanted}", package["name"]))
        })
        .collect();
    assert!(
        needs_more.is_empty(),
        "rust-version {declared} is too low: {needs_more:?}"
    );
}
