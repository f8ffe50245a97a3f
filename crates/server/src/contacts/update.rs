//! Updating a contact: its members and its custom field values, in one write.

use contactd_api::ErrorCode;
use uuid::Uuid;

use super::failure_naming;
use super::input::{
    CustomFieldInput, MemberChanges, definitions_if, field_writes, find_definition,
    parse_member_changes,
};
use crate::directory::Directory;
use crate::domain::ContactIdentifier;
use crate::domain::contact::ContactPatch;
use crate::failure::{Failure, Field, Refusals};
use crate::store::{Actor, Contact, Precondition};

/// An update, as received: member changes, custom field values to set, and the keys of
/// custom fields whose value to clear.
#[derive(Debug, Clone, Default)]
pub struct ContactChanges {
    pub members: MemberChanges,
    pub set: Vec<CustomFieldInput>,
    pub remove: Vec<String>,
}

/// Applies an update to one contact, if it meets `precondition`: the API's two PATCH forms
/// and the dashboard's edit.
///
/// A key both set and cleared is refused.
pub async fn update(
    directory: &Directory,
    company_id: Uuid,
    actor: &Actor,
    identifier: &ContactIdentifier,
    changes: ContactChanges,
    precondition: &Precondition,
) -> Result<Contact, Failure> {
    let uses_fields = !changes.set.is_empty() || !changes.remove.is_empty();
    let definitions = definitions_if(directory, company_id, uses_fields).await?;
    // Every part is checked, in this order, so that a form shows every problem at once.
    let mut refusals = Refusals::default();
    let set_values = refusals
        .check(field_writes(
            &definitions,
            changes.set,
            Field::SetCustomField,
        ))
        .unwrap_or_default();
    let mut remove_fields = Vec::with_capacity(changes.remove.len());
    for (index, key) in changes.remove.into_iter().enumerate() {
        let at = || Field::RemovedCustomField {
            index,
            key: key.clone(),
        };
        let Some(definition) = refusals.check(find_definition(&definitions, &key, at)) else {
            continue;
        };
        if set_values
            .iter()
            .any(|write| write.field_id == definition.id)
        {
            refusals.refuse(Failure::Invalid {
                code: ErrorCode::DuplicateCustomField,
                message: format!("custom field `{key}` is both set and removed"),
                field: Some(at()),
            });
            continue;
        }
        remove_fields.push(definition.id);
    }
    let members = parse_member_changes(directory.default_region, changes.members, &mut refusals);
    refusals.finish()?;
    let patch = ContactPatch {
        set_values,
        remove_fields,
        ..members
    };
    directory
        .store
        .update_contact(company_id, actor, identifier, &patch, precondition)
        .await
        .map_err(failure_naming(identifier))
}
