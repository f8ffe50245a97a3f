//! contactd: a self-hostable server for the Alpharun Contacts API, on SQLite or PostgreSQL.
//!
//! Three front doors (`http`: the API and the dashboard; `cli`) read their input and call
//! the use cases (`contacts`, `custom_fields`, acting on a `directory`), which check it into
//! `domain` values and write through `store`; a use case fails with a `failure` each front
//! door shows its own way. Nothing flows the other way: the use cases know no front door,
//! and `domain` knows neither the store nor any wire shape (`wire` holds those).

pub mod api_key;
mod cache;
pub mod cli;
pub mod config;
mod connection;
pub mod contacts;
mod cursor;
pub mod custom_fields;
pub mod directory;
pub mod domain;
pub mod events;
pub mod failure;
pub mod http;
pub mod password;
pub mod prometheus;
pub mod secret;
pub mod server;
pub mod store;
pub mod transfer;
pub mod version;
pub mod webhooks;
mod wire;
