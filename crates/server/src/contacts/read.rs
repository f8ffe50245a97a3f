//! Reading contacts: one by an identifier, a page of the newest-first list, what a search
//! text finds, and the export's snapshot.

use std::time::Duration;

use uuid::Uuid;

use crate::cursor;
use crate::directory::Directory;
use crate::domain::{ContactIdentifier, Email, ExtId, PhoneNumber};
use crate::failure::Failure;
use crate::store::{Contact, Export, ListPosition};

/// The contact `identifier` names, if the company has it.
pub async fn find(
    directory: &Directory,
    company_id: Uuid,
    identifier: &ContactIdentifier,
) -> Result<Option<Contact>, Failure> {
    Ok(directory.store.get_contact(company_id, identifier).await?)
}

/// A page of contacts, newest first.
#[derive(Debug)]
pub struct ContactPage {
    pub contacts: Vec<Contact>,
    /// Where the next page starts, when there is one.
    pub next: Option<ListPosition>,
}

/// The `limit` newest contacts after `after` (from the newest when `None`).
pub async fn list(
    directory: &Directory,
    company_id: Uuid,
    after: Option<ListPosition>,
    limit: u32,
) -> Result<ContactPage, Failure> {
    let mut contacts = directory
        .store
        .list_contacts(company_id, after, cursor::rows_for_page(limit))
        .await?;
    let next = cursor::next_page(&mut contacts, limit, ListPosition::of);
    Ok(ContactPage { contacts, next })
}

/// The contacts a search text finds: the one it names as an identifier (a UUID or `alt:`
/// form, an email, a phone number in any format the API reads, an ext_id), then those
/// whose name contains it, newest first.
///
/// At most `limit` are found by name.
pub async fn search(
    directory: &Directory,
    company_id: Uuid,
    text: &str,
    limit: u32,
) -> Result<Vec<Contact>, Failure> {
    let region = directory.default_region;
    let identifiers = [
        ContactIdentifier::parse(text, region).ok(),
        Email::parse(text).ok().map(ContactIdentifier::Email),
        PhoneNumber::parse(text, region)
            .ok()
            .map(ContactIdentifier::PhoneNumber),
        ExtId::parse(text).ok().map(ContactIdentifier::ExtId),
    ];
    let store = &directory.store;
    let mut found: Vec<Contact> = Vec::new();
    for identifier in identifiers.iter().flatten() {
        if let Some(contact) = store.get_contact(company_id, identifier).await?
            && !found.iter().any(|seen| seen.id == contact.id)
        {
            found.push(contact);
        }
    }
    for contact in store
        .search_contacts_by_name(company_id, text, limit)
        .await?
    {
        if !found.iter().any(|seen| seen.id == contact.id) {
            found.push(contact);
        }
    }
    Ok(found)
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
