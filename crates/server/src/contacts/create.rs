//! Creating contacts: one, or many at once, each on its own.

use uuid::Uuid;

use super::input::{ContactInput, definitions_if, parse_new_contact};
use crate::directory::Directory;
use crate::failure::Failure;
use crate::store::{Actor, Contact};

/// Creates one contact: the API's create and the dashboard's.
pub async fn create(
    directory: &Directory,
    company_id: Uuid,
    actor: &Actor,
    input: ContactInput,
) -> Result<Contact, Failure> {
    let definitions =
        definitions_if(directory, company_id, !input.custom_fields.is_empty()).await?;
    let contact = parse_new_contact(directory.default_region, &definitions, input)?;
    Ok(directory
        .store
        .create_contact(company_id, actor, &contact)
        .await?)
}

/// Creates each contact on its own, in one write, giving each new contact's id: a contact
/// that fails never fails or changes another. Each comes with its index in the request, and
/// its outcome goes back with it; only a failure of the whole write (the database down)
/// fails them all.
pub async fn create_many(
    directory: &Directory,
    company_id: Uuid,
    actor: &Actor,
    items: Vec<(usize, ContactInput)>,
) -> Result<Vec<(usize, Result<Uuid, Failure>)>, Failure> {
    let uses_fields = items
        .iter()
        .any(|(_, input)| !input.custom_fields.is_empty());
    let definitions = definitions_if(directory, company_id, uses_fields).await?;
    let mut outcomes = Vec::with_capacity(items.len());
    let mut valid = Vec::with_capacity(items.len());
    for (index, input) in items {
        match parse_new_contact(directory.default_region, &definitions, input) {
            Ok(contact) => valid.push((index, contact)),
            Err(failure) => outcomes.push((index, Err(failure))),
        }
    }
    let (indexes, contacts): (Vec<_>, Vec<_>) = valid.into_iter().unzip();
    let stored = directory
        .store
        .create_contacts(company_id, actor, contacts)
        .await?;
    outcomes.extend(
        indexes
            .into_iter()
            .zip(stored)
            .map(|(index, outcome)| (index, outcome.map_err(Failure::from))),
    );
    Ok(outcomes)
}
