//! The contact use cases (docs/reference.md#5-normalisation-and-validation, docs/reference.md#6-contact-endpoints, docs/reference.md#11-bulk-batch-writes-import-and-export): what the API and the dashboard do to contacts (the
//! CLI's import goes through the API), and the rules they share. Each takes its input as the
//! front door received it (text, and the plain values of [`crate::domain`]), checks it into
//! domain values, resolves custom field keys against the company's definitions, and writes
//! through the store; a refusal names the [`crate::failure::Field`] at fault, for each front
//! door to show its own way.

mod create;
mod delete;
mod input;
mod query;
mod read;
mod update;
mod upsert;

pub use create::{create, create_many};
pub use delete::delete;
pub use input::{ContactInput, CustomFieldInput, MemberChanges, PhoneNumberInput};
pub use query::SEARCH_TEXT_MAX_CHARS;
pub use read::{ContactPage, count, export, find, list, named_by, query};
pub use update::{ContactChanges, update};
pub use upsert::{UpsertInput, upsert_many};

use crate::domain::ContactIdentifier;
use crate::failure::Failure;
use crate::store::StoreError;
use contactd_api::ErrorCode;

/// No contact of the company matches `identifier`.
pub fn contact_not_found(identifier: &ContactIdentifier) -> Failure {
    Failure::NotFound {
        code: ErrorCode::ContactNotFound,
        message: format!("no contact matches {identifier}"),
    }
}

/// Maps a store error as `From` does, but a missing contact to [`contact_not_found`],
/// naming the identifier that was asked for.
fn failure_naming(identifier: &ContactIdentifier) -> impl FnOnce(StoreError) -> Failure + '_ {
    move |error| match error {
        StoreError::NotFound => contact_not_found(identifier),
        other => other.into(),
    }
}
