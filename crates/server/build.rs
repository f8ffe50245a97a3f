//! Tells the contract tests whether a PostgreSQL server was given to run against, so that
//! without one their PostgreSQL half is reported as ignored (with the reason), not
//! silently passed.

fn main() {
    println!("cargo::rerun-if-env-changed=CONTACTD_TEST_POSTGRES_URL");
    println!("cargo::rustc-check-cfg=cfg(postgres_tests)");
    if std::env::var_os("CONTACTD_TEST_POSTGRES_URL").is_some_and(|url| !url.is_empty()) {
        println!("cargo::rustc-cfg=postgres_tests");
    }
}
