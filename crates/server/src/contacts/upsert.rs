//! The batch upsert (docs/reference.md#11-bulk-batch-writes-import-and-export): each item matched on one unique member, updating the contact
//! that has it or creating one.

use contactd_api::ErrorCode;
use std::collections::HashMap;
use std::collections::hash_map::Entry;

use uuid::Uuid;

use super::input::{
    CustomFieldInput, MemberChanges, definitions_if, field_writes, parse_member_changes,
};
use crate::directory::Directory;
use crate::domain::{ContactIdentifier, DefaultRegion};
use crate::failure::{Failure, Field, Refusals};
use crate::store::{Actor, ContactUpsert, FieldDefinition, UniqueMember, Upserted};

/// A batch item, as received: member changes, which must set the member the batch matches
/// on, and custom field values to set.
#[derive(Debug, Clone, Default)]
pub struct UpsertInput {
    pub members: MemberChanges,
    pub custom_fields: Vec<CustomFieldInput>,
}

/// Upserts each item on its own, matched on its `match_on` member; an item whose member
/// repeats an earlier item's fails. Each comes with its index in the request, which a
/// repeat's failure names, and its outcome goes back with it; only a failure of the whole
/// write (the database down) fails them all.
pub async fn upsert_many(
    directory: &Directory,
    company_id: Uuid,
    actor: &Actor,
    match_on: UniqueMember,
    items: Vec<(usize, UpsertInput)>,
) -> Result<Vec<(usize, Result<Upserted, Failure>)>, Failure> {
    let uses_fields = items.iter().any(|(_, item)| !item.custom_fields.is_empty());
    let definitions = definitions_if(directory, company_id, uses_fields).await?;
    let mut outcomes = Vec::with_capacity(items.len());
    let mut first_with_key = HashMap::with_capacity(items.len());
    let mut valid = Vec::with_capacity(items.len());
    for (index, item) in items {
        let upsert = parse_upsert(directory.default_region, &definitions, match_on, item).and_then(
            |upsert| match first_with_key.entry(upsert.key.to_string()) {
                Entry::Occupied(first) => Err(duplicate_in_batch(match_on, *first.get())),
                Entry::Vacant(slot) => {
                    slot.insert(index);
                    Ok(upsert)
                }
            },
        );
        match upsert {
            Ok(upsert) => valid.push((index, upsert)),
            Err(failure) => outcomes.push((index, Err(failure))),
        }
    }
    // Applied in key order, so that batches racing over the same keys take their row
    // locks in one order and never deadlock one another.
    valid.sort_by_cached_key(|(_, upsert)| upsert.key.to_string());
    let (indexes, upserts): (Vec<_>, Vec<_>) = valid.into_iter().unzip();
    let stored = directory
        .store
        .upsert_contacts(company_id, actor, upserts)
        .await?;
    outcomes.extend(
        indexes
            .into_iter()
            .zip(stored)
            .map(|(index, outcome)| (index, outcome.map_err(Failure::from))),
    );
    Ok(outcomes)
}

/// Checks a batch item and names the contact it matches by its `match_on` member.
fn parse_upsert(
    region: DefaultRegion,
    definitions: &[FieldDefinition],
    match_on: UniqueMember,
    item: UpsertInput,
) -> Result<ContactUpsert, Failure> {
    let mut refusals = Refusals::default();
    let mut patch = parse_member_changes(region, item.members, &mut refusals);
    let set_values = refusals.check(field_writes(
        definitions,
        item.custom_fields,
        Field::CustomField,
    ));
    refusals.finish()?;
    patch.set_values = set_values.unwrap_or_default();
    let key = match match_on {
        UniqueMember::ExtId => patch.ext_id.clone().flatten().map(ContactIdentifier::ExtId),
        UniqueMember::Email => patch.email.clone().flatten().map(ContactIdentifier::Email),
        UniqueMember::PhoneNumber => patch
            .phone_number
            .clone()
            .flatten()
            .map(ContactIdentifier::PhoneNumber),
    };
    let key = key.ok_or_else(|| Failure::Invalid {
        code: ErrorCode::MatchOnRequired,
        message: format!(
            "each contact must carry a {}, the batch's match_on member",
            match_on.as_str()
        ),
        field: Some(Field::of_member(match_on)),
    })?;
    Ok(ContactUpsert { key, patch })
}

fn duplicate_in_batch(match_on: UniqueMember, first: usize) -> Failure {
    Failure::Conflict {
        code: ErrorCode::DuplicateInBatch,
        message: format!(
            "item {first} of this batch has the same {}",
            match_on.as_str()
        ),
        field: Some(Field::of_member(match_on)),
        conflicting_contact_id: None,
    }
}
