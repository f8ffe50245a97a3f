//! Reading contacts: one by an identifier, a page of a list with its filters, how many it
//! holds, the contact a search text names, and the export's snapshot.

use std::time::Duration;

use uuid::Uuid;

use super::query::contact_query;
use crate::cursor;
use crate::directory::Directory;
use crate::domain::{ContactIdentifier, Email, ExtId, PhoneNumber};
use crate::failure::Failure;
use crate::store::{Contact, ContactQuery, Export, ListPosition};

/// The contact `identifier` names, if the company has it.
pub async fn find(
    directory: &Directory,
    company_id: Uuid,
    identifier: &ContactIdentifier,
) -> Result<Option<Contact>, Failure> {
    Ok(directory.store.get_contact(company_id, identifier).await?)
}

/// A page of a contact list.
#[derive(Debug)]
pub struct ContactPage {
    pub contacts: Vec<Contact>,
    /// Where the next page starts, when there is one.
    pub next: Option<ListPosition>,
}

/// The query a contact list's `filters` ask for (docs/reference.md#finding-contacts),
/// resolved against the company's definitions when they name custom fields; `also` are the
/// other names the front door takes, for the refusal of an unknown one.
pub async fn query(
    directory: &Directory,
    company_id: Uuid,
    filters: &[(String, String)],
    also: &[&str],
) -> Result<ContactQuery, Failure> {
    let names_fields = filters.iter().any(|(name, _)| name.starts_with("cf."));
    let definitions = if names_fields {
        directory.field_definitions(company_id).await?
    } else {
        Default::default()
    };
    contact_query(filters, also, &definitions, directory.default_region)
}

/// The first `limit` contacts `query` finds after `after` (from the start when `None`).
pub async fn list(
    directory: &Directory,
    company_id: Uuid,
    query: &ContactQuery,
    after: Option<ListPosition>,
    limit: u32,
) -> Result<ContactPage, Failure> {
    let mut contacts = directory
        .store
        .find_contacts(company_id, query, after, cursor::rows_for_page(limit))
        .await?;
    let next = cursor::next_page(&mut contacts, limit, |contact| {
        ListPosition::of(contact, query.sort)
    });
    Ok(ContactPage { contacts, next })
}

/// How many contacts `query` finds.
pub async fn count(
    directory: &Directory,
    company_id: Uuid,
    query: &ContactQuery,
) -> Result<u64, Failure> {
    Ok(directory.store.count_contacts(company_id, query).await?)
}

/// The contact a search text names as an identifier, if the company has it: a UUID or an
/// `alt:` form, an email, a phone number in any format the API reads, an ext_id, tried in
/// that order.
pub async fn named_by(
    directory: &Directory,
    company_id: Uuid,
    text: &str,
) -> Result<Option<Contact>, Failure> {
    let region = directory.default_region;
    let identifiers = [
        ContactIdentifier::parse(text, region).ok(),
        Email::parse(text).ok().map(ContactIdentifier::Email),
        PhoneNumber::parse(text, region)
            .ok()
            .map(ContactIdentifier::PhoneNumber),
        ExtId::parse(text).ok().map(ContactIdentifier::ExtId),
    ];
    for identifier in identifiers.iter().flatten() {
        if let Some(contact) = directory.store.get_contact(company_id, identifier).await? {
            return Ok(Some(contact));
        }
    }
    Ok(None)
}

/// Every contact of the company from one snapshot, handed over a page at a time; the
/// snapshot is released when a page waits longer than `stall_timeout` to be taken.
pub async fn export(
    directory: &Directory,
    company_id: Uuid,
    stall_timeout: Duration,
) -> Result<Export, Failure> {
    Ok(directory
        .store
        .export_contacts(company_id, stall_timeout)
        .await?)
}
