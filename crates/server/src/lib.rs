//! contactd: a self-hostable server for the Alpharun Contacts API, on SQLite or PostgreSQL.
//!
//! `http` parses requests into `domain` types and calls `store`; nothing flows the other way.

pub mod api_key;
pub mod cli;
pub mod config;
mod connection;
pub mod domain;
pub mod http;
pub mod password;
pub mod secret;
pub mod server;
pub mod store;
pub mod transfer;
