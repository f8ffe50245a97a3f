//! Deleting a contact.

use uuid::Uuid;

use super::failure_naming;
use crate::directory::Directory;
use crate::domain::ContactIdentifier;
use crate::failure::Failure;
use crate::store::{Actor, Precondition};

/// Deletes one contact, if it meets `precondition`, returning its id: the API's delete and
/// the dashboard's.
pub async fn delete(
    directory: &Directory,
    company_id: Uuid,
    actor: &Actor,
    identifier: &ContactIdentifier,
    precondition: &Precondition,
) -> Result<Uuid, Failure> {
    directory
        .store
        .delete_contact(company_id, actor, identifier, precondition)
        .await
        .map_err(failure_naming(identifier))
}
