//! What a contact write stores, decided once for both backends and without a database: the
//! statements of a create, and those of an update given the contact as it is stored.
//!
//! A plan is a list of statements that depend on nothing read in between, so a backend may
//! run it in one round trip.

use uuid::Uuid;

use super::connection::Statement;
use super::model::{Contact, ContactFieldValue};
use super::sql;
use crate::domain::Invalid;
use crate::domain::contact::{ContactMembers, ContactPatch, NewContact};

/// What an update of a stored contact writes.
#[derive(Debug, Clone, PartialEq)]
pub enum UpdatePlan {
    /// The update changes nothing, so nothing is written (and `updated_at` stays).
    Unchanged,
    /// The statements to run, in order, and the members they give the contact.
    Write {
        members: ContactMembers,
        statements: Vec<Statement>,
    },
}

/// The statements that create a contact under a new id.
pub fn plan_insert(id: Uuid, company_id: Uuid, contact: &NewContact, now: i64) -> Vec<Statement> {
    std::iter::once(sql::insert_contact(id, company_id, &contact.members, now))
        .chain(
            contact
                .field_values
                .iter()
                .map(|write| sql::upsert_value(id, write)),
        )
        .collect()
}

/// What `patch` writes to `current` at `now`: refused if it leaves no identifier. The
/// identifiers are written only when one of them changes (see
/// [`sql::update_contact_identifiers`]), and `updated_at` never goes back, whatever the
/// clock does.
pub fn plan_update(
    current: &Contact,
    patch: &ContactPatch,
    now: i64,
) -> Result<UpdatePlan, Invalid> {
    let members = patch.apply(&current.members)?;
    if members == current.members && !values_change(patch, &current.custom_fields) {
        return Ok(UpdatePlan::Unchanged);
    }
    let mut statements = Vec::with_capacity(2 + patch.set_values.len() + patch.remove_fields.len());
    if identifiers_change(&current.members, &members) {
        statements.push(sql::update_contact_identifiers(current.id, &members));
    }
    let updated_at = now.max(current.updated_at.timestamp_millis());
    statements.push(sql::update_contact(current.id, &members, updated_at));
    statements.extend(
        patch
            .set_values
            .iter()
            .map(|write| sql::upsert_value(current.id, write)),
    );
    statements.extend(
        patch
            .remove_fields
            .iter()
            .map(|field_id| sql::delete_value(current.id, *field_id)),
    );
    Ok(UpdatePlan::Write {
        members,
        statements,
    })
}

/// Whether an update changes any of a contact's identifiers.
fn identifiers_change(before: &ContactMembers, after: &ContactMembers) -> bool {
    (&before.email, &before.phone_number, &before.ext_id)
        != (&after.email, &after.phone_number, &after.ext_id)
}

/// Whether an update writes any custom field value of a contact holding `stored`: one set
/// to something new, or one removed that is there.
fn values_change(patch: &ContactPatch, stored: &[ContactFieldValue]) -> bool {
    let stored_value = |field_id: &Uuid| {
        stored
            .iter()
            .find(|field| field.field_id == *field_id)
            .map(|field| &field.value)
    };
    patch
        .set_values
        .iter()
        .any(|write| stored_value(&write.field_id) != Some(&write.value))
        || patch
            .remove_fields
            .iter()
            .any(|field_id| stored_value(field_id).is_some())
}

#[cfg(test)]
mod tests {
    use contactd_api::FieldType;

    use super::*;
    use crate::domain::contact::FieldWrite;
    use crate::domain::{ExtId, FieldValue, PersonName};
    use crate::store::rows::timestamp;

    const NOW: i64 = 1_700_000_000_000;

    fn seats(field_id: Uuid, seats: f64) -> FieldWrite {
        FieldWrite {
            field_id,
            value: FieldValue::Number(seats),
        }
    }

    /// A stored contact with ext_id `crm-1`, first name Jane, and 3 seats.
    fn stored(seats_field: Uuid) -> Contact {
        Contact {
            id: Uuid::now_v7(),
            members: ContactMembers {
                ext_id: Some("crm-1".to_owned()),
                first_name: Some("Jane".to_owned()),
                ..ContactMembers::default()
            },
            custom_fields: vec![ContactFieldValue {
                field_id: seats_field,
                key: "seats".to_owned(),
                display_name: "Seats".to_owned(),
                field_type: FieldType::Number,
                value: FieldValue::Number(3.0),
            }],
            created_at: timestamp(NOW - 10),
            updated_at: timestamp(NOW - 5),
        }
    }

    fn name(text: &str) -> Option<Option<PersonName>> {
        Some(PersonName::parse(text).expect("a valid name"))
    }

    #[test]
    fn an_update_to_what_is_stored_writes_nothing() {
        let field = Uuid::now_v7();
        let current = stored(field);
        let patch = ContactPatch {
            first_name: name("Jane"),
            ext_id: Some(Some(ExtId::parse("crm-1").expect("valid"))),
            set_values: vec![seats(field, 3.0)],
            remove_fields: vec![Uuid::now_v7()],
            ..ContactPatch::default()
        };
        assert_eq!(
            plan_update(&current, &patch, NOW),
            Ok(UpdatePlan::Unchanged)
        );
    }

    #[test]
    fn a_name_change_leaves_the_identifiers_unwritten() {
        let field = Uuid::now_v7();
        let current = stored(field);
        let patch = ContactPatch {
            first_name: name("Janet"),
            ..ContactPatch::default()
        };
        let UpdatePlan::Write {
            members,
            statements,
        } = plan_update(&current, &patch, NOW).expect("valid")
        else {
            panic!("the update should write");
        };
        assert_eq!(members.first_name.as_deref(), Some("Janet"));
        assert_eq!(statements, [sql::update_contact(current.id, &members, NOW)]);
    }

    #[test]
    fn an_identifier_change_and_values_write_in_order() {
        let field = Uuid::now_v7();
        let removed = Uuid::now_v7();
        let current = stored(field);
        let patch = ContactPatch {
            ext_id: Some(Some(ExtId::parse("crm-2").expect("valid"))),
            set_values: vec![seats(field, 4.0)],
            remove_fields: vec![removed],
            ..ContactPatch::default()
        };
        let UpdatePlan::Write {
            members,
            statements,
        } = plan_update(&current, &patch, NOW).expect("valid")
        else {
            panic!("the update should write");
        };
        assert_eq!(
            statements,
            [
                sql::update_contact_identifiers(current.id, &members),
                sql::update_contact(current.id, &members, NOW),
                sql::upsert_value(current.id, &seats(field, 4.0)),
                sql::delete_value(current.id, removed),
            ]
        );
    }

    #[test]
    fn updated_at_never_goes_back() {
        let current = stored(Uuid::now_v7());
        let patch = ContactPatch {
            first_name: name("Janet"),
            ..ContactPatch::default()
        };
        let earlier = current.updated_at.timestamp_millis() - 1_000;
        let UpdatePlan::Write {
            members,
            statements,
        } = plan_update(&current, &patch, earlier).expect("valid")
        else {
            panic!("the update should write");
        };
        assert_eq!(
            statements,
            [sql::update_contact(
                current.id,
                &members,
                current.updated_at.timestamp_millis()
            )]
        );
    }

    #[test]
    fn an_update_that_leaves_no_identifier_is_refused() {
        let current = stored(Uuid::now_v7());
        let patch = ContactPatch {
            ext_id: Some(None),
            ..ContactPatch::default()
        };
        let refused = plan_update(&current, &patch, NOW).expect_err("no identifier left");
        assert_eq!(refused.code, "identifier_required");
    }

    #[test]
    fn a_create_inserts_the_contact_then_its_values() {
        let (id, company, field) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let contact = NewContact {
            members: stored(field).members,
            field_values: vec![seats(field, 2.0)],
        };
        assert_eq!(
            plan_insert(id, company, &contact, NOW),
            [
                sql::insert_contact(id, company, &contact.members, NOW),
                sql::upsert_value(id, &seats(field, 2.0)),
            ]
        );
    }
}
