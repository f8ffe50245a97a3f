//! Tells the test suite which outside programs it was given: a PostgreSQL server for the
//! contract tests' PostgreSQL half, and chromedriver for the dashboard's browser tests.
//! Without them those tests are reported as ignored (with the reason), never silently
//! passed; CI provides both.

fn main() {
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
