//! The contract tests: every rule of the SPEC, through the real router on a fresh SQLite
//! file per test, plus end-to-end tests of the real binary.

#![allow(
    clippy::unwrap_used,
    reason = "in a test, a failed unwrap is a failed assertion"
)]

mod helpers;

mod auth;
mod backup;
mod browser;
mod bulk;
mod cli;
mod concurrent_admins;
mod contacts_create;
mod contacts_list;
mod contacts_read_delete;
mod contacts_update;
mod crash_safety;
mod custom_fields;
mod dashboard;
mod doc_links;
mod emails;
mod end_to_end;
mod errors;
mod etags;
mod events;
mod hostile;
mod idempotency;
mod import_export;
mod logins;
mod metrics;
mod migrations;
mod odd_input;
mod openapi;
mod operations;
mod postgres_backend;
mod postgres_outage;
mod rate_limits;
mod readme;
mod robustness;
mod scale_out;
mod scopes;
mod search;
mod upgrades;
mod webhooks;
