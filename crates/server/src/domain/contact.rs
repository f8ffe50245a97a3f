//! A contact's own members, and how a create or an update turns into the members to store.

use contactd_api::ErrorCode;
use uuid::Uuid;

use super::{Email, ExtId, FieldValue, Invalid, PersonName, PhoneNumber};

/// A contact's members as stored: normalised text, each `None` when unset.
///
/// Only [`NewContact`] and [`ContactPatch::apply`] build these for writing, from parsed
/// domain values; the store builds them when reading rows it wrote itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContactMembers {
    pub email: Option<String>,
    pub phone_number: Option<String>,
    pub ext_id: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
}

impl ContactMembers {
    /// Refuses members that leave the contact with no email, phone number or ext_id (docs/reference.md#at-least-one-identifier).
    fn require_identifier(self) -> Result<Self, Invalid> {
        if self.email.is_none() && self.phone_number.is_none() && self.ext_id.is_none() {
            return Err(Invalid::new(
                ErrorCode::IdentifierRequired,
                "a contact needs at least one of email, phone_number and ext_id",
            ));
        }
        Ok(self)
    }
}

/// One custom field value to write, already checked against its field's definition.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldWrite {
    /// The definition the value was checked against; if it is deleted before the write
    /// commits, the write fails rather than storing a value of a field that is gone.
    pub field_id: Uuid,
    pub value: FieldValue,
}

/// A contact to create: members with at least one identifier, and its custom field values.
#[derive(Debug, Clone, PartialEq)]
pub struct NewContact {
    pub members: ContactMembers,
    pub field_values: Vec<FieldWrite>,
}

impl NewContact {
    /// Builds a contact to create, refusing one without any identifier.
    pub fn new(
        email: Option<Email>,
        phone_number: Option<PhoneNumber>,
        ext_id: Option<ExtId>,
        first_name: Option<PersonName>,
        last_name: Option<PersonName>,
        field_values: Vec<FieldWrite>,
    ) -> Result<Self, Invalid> {
        let members = ContactMembers {
            email: email.map(Email::into_string),
            phone_number: phone_number.map(PhoneNumber::into_string),
            ext_id: ext_id.map(ExtId::into_string),
            first_name: first_name.map(PersonName::into_string),
            last_name: last_name.map(PersonName::into_string),
        }
        .require_identifier()?;
        Ok(Self {
            members,
            field_values,
        })
    }
}

/// An update: for each member `None` keeps it, `Some(None)` clears it, `Some(Some(v))`
/// sets it; then custom field values to write and fields whose value to remove.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContactPatch {
    pub email: Option<Option<Email>>,
    pub phone_number: Option<Option<PhoneNumber>>,
    pub ext_id: Option<Option<ExtId>>,
    pub first_name: Option<Option<PersonName>>,
    pub last_name: Option<Option<PersonName>>,
    pub set_values: Vec<FieldWrite>,
    pub remove_fields: Vec<Uuid>,
}

impl ContactPatch {
    /// The members after this update, refused if no identifier would be left.
    pub fn apply(&self, current: &ContactMembers) -> Result<ContactMembers, Invalid> {
        fn merge<T: Clone>(
            change: &Option<Option<T>>,
            current: &Option<String>,
            text: fn(T) -> String,
        ) -> Option<String> {
            match change {
                None => current.clone(),
                Some(value) => value.clone().map(text),
            }
        }
        ContactMembers {
            email: merge(&self.email, &current.email, Email::into_string),
            phone_number: merge(
                &self.phone_number,
                &current.phone_number,
                PhoneNumber::into_string,
            ),
            ext_id: merge(&self.ext_id, &current.ext_id, ExtId::into_string),
            first_name: merge(
                &self.first_name,
                &current.first_name,
                PersonName::into_string,
            ),
            last_name: merge(&self.last_name, &current.last_name, PersonName::into_string),
        }
        .require_identifier()
    }

    /// The contact this update creates when it names no existing contact (a batch upsert):
    /// its members applied to an empty contact, its values set.
    pub fn to_new_contact(&self) -> Result<NewContact, Invalid> {
        Ok(NewContact {
            members: self.apply(&ContactMembers::default())?,
            field_values: self.set_values.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(email: Option<&str>, ext_id: Option<&str>) -> ContactMembers {
        ContactMembers {
            email: email.map(str::to_owned),
            ext_id: ext_id.map(str::to_owned),
            first_name: Some("Jane".to_owned()),
            ..ContactMembers::default()
        }
    }

    #[test]
    fn omitted_members_are_kept_and_null_members_cleared() {
        let patch = ContactPatch {
            first_name: Some(None),
            ext_id: Some(Some(ExtId::parse("crm-1").expect("valid ext_id"))),
            ..ContactPatch::default()
        };
        let after = patch
            .apply(&stored(Some("a@example.com"), None))
            .expect("an identifier remains");
        assert_eq!(after.email.as_deref(), Some("a@example.com"));
        assert_eq!(after.ext_id.as_deref(), Some("crm-1"));
        assert_eq!(after.first_name, None);
    }

    #[test]
    fn clearing_the_last_identifier_is_refused() {
        let patch = ContactPatch {
            email: Some(None),
            ..ContactPatch::default()
        };
        let refused = patch
            .apply(&stored(Some("a@example.com"), None))
            .expect_err("no identifier left");
        assert_eq!(refused.code, "identifier_required");
        assert!(
            patch
                .apply(&stored(Some("a@example.com"), Some("x")))
                .is_ok()
        );
    }

    #[test]
    fn a_new_contact_needs_an_identifier() {
        let refused =
            NewContact::new(None, None, None, None, None, Vec::new()).expect_err("no identifier");
        assert_eq!(refused.code, "identifier_required");
    }
}
