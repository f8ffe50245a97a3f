//! The harnesses of the contract tests, one file each: the router in process (`TestApp`),
//! the real binary (`ServerProcess`) and its admin commands, a fresh database per test
//! and its dump, and the dashboard as a browser sees it.

#![allow(
    dead_code,
    reason = "each test file uses its own subset of the helpers"
)]

mod backend;
mod cli;
mod dashboard;
mod database;
mod dump;
mod receiver;
mod server_process;
mod test_app;

pub use backend::Backend;
pub(crate) use backend::contract_test;
pub use cli::{admin, admin_refused, admin_with_input, contactd};
pub use dashboard::{
    DashboardUser, csrf_token_in, input_error, login_client, set_cookie, unescape_html,
};
pub use database::{TestDatabase, postgres_admin_url, test_postgres_settings};
pub use receiver::{Answer, Delivery, Receiver};
pub use server_process::{ServerProcess, assert_spec_refusal, runtime, send_raw};
pub use test_app::{
    TEST_BODY_LIMIT, TestApp, TestResponse, contact_path, encode_segment, race_for_one_winner,
};
