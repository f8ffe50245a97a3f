//! A contact's input as a front door received it, and how each part of it is checked into
//! domain values, every refusal naming the [`Field`] at fault.

use contactd_api::ErrorCode;
use std::collections::HashSet;
use std::sync::Arc;

use uuid::Uuid;

use crate::directory::Directory;
use crate::domain::contact::{ContactPatch, FieldWrite, NewContact};
use crate::domain::{
    DefaultRegion, Email, ExtId, FieldInput, FieldValue, Invalid, PersonName, PhoneNumber,
};
use crate::failure::{CustomFieldAt, Failure, Field, Refusals, ValuePart};
use crate::store::FieldDefinition;

/// A contact to create, as received: nothing checked yet.
#[derive(Debug, Clone, Default)]
pub struct ContactInput {
    pub email: Option<String>,
    pub phone_number: Option<PhoneNumberInput>,
    pub ext_id: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub custom_fields: Vec<CustomFieldInput>,
}

/// Changes to a contact's own members, as received: for each, `None` keeps it, `Some(None)`
/// clears it and `Some(Some(_))` sets it.
#[derive(Debug, Clone, Default)]
pub struct MemberChanges {
    pub email: Option<Option<String>>,
    pub phone_number: Option<Option<PhoneNumberInput>>,
    pub ext_id: Option<Option<String>>,
    pub first_name: Option<Option<String>>,
    pub last_name: Option<Option<String>>,
}

/// A phone number as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PhoneNumberInput {
    /// Written as text, such as `(415) 555-2671`.
    Text(String),
    /// Sent as a number rather than as text: its digits when it is whole and non-negative,
    /// `None` for any other number.
    Number(Option<u64>),
}

/// One custom field value, as received: the field's key and the value.
#[derive(Debug, Clone, PartialEq)]
pub struct CustomFieldInput {
    pub key: String,
    pub value: FieldInput,
}

/// The company's field definitions, read only when the request names custom fields.
pub(super) async fn definitions_if(
    directory: &Directory,
    company_id: Uuid,
    needed: bool,
) -> Result<Arc<Vec<FieldDefinition>>, Failure> {
    if !needed {
        return Ok(Arc::default());
    }
    Ok(directory.field_definitions(company_id).await?)
}

/// Checks a create payload and turns it into the contact to store.
pub(super) fn parse_new_contact(
    region: DefaultRegion,
    definitions: &[FieldDefinition],
    input: ContactInput,
) -> Result<NewContact, Failure> {
    let mut refusals = Refusals::default();
    let email = refusals.check(parse_optional(
        input.email.as_deref(),
        Email::parse,
        Field::Email,
    ));
    let phone_number = refusals.check(parse_optional(
        input.phone_number.as_ref(),
        |phone| parse_phone_number(phone, region),
        Field::PhoneNumber,
    ));
    let ext_id = refusals.check(parse_optional(
        input.ext_id.as_deref(),
        ExtId::parse,
        Field::ExtId,
    ));
    let first_name = refusals.check(parse_optional(
        input.first_name.as_deref(),
        PersonName::parse,
        Field::FirstName,
    ));
    let last_name = refusals.check(parse_optional(
        input.last_name.as_deref(),
        PersonName::parse,
        Field::LastName,
    ));
    let values = refusals.check(field_writes(
        definitions,
        input.custom_fields,
        Field::CustomField,
    ));
    refusals.finish()?;
    // Every part passed, so each is `Some`.
    NewContact::new(
        email.flatten(),
        phone_number.flatten(),
        ext_id.flatten(),
        first_name.flatten().flatten(),
        last_name.flatten().flatten(),
        values.unwrap_or_default(),
    )
    .map_err(|invalid| Failure::Invalid {
        field: None,
        code: invalid.code,
        message: invalid.message,
    })
}

/// Checks the members of an update (omitted: `None`, `null`: `Some(None)`) into a patch
/// without custom field changes; `refusals` gathers what is refused.
pub(super) fn parse_member_changes(
    region: DefaultRegion,
    changes: MemberChanges,
    refusals: &mut Refusals,
) -> ContactPatch {
    ContactPatch {
        email: refusals
            .check(parse_change(
                changes.email,
                |email| Email::parse(email),
                Field::Email,
            ))
            .flatten(),
        phone_number: refusals
            .check(parse_change(
                changes.phone_number,
                |phone| parse_phone_number(phone, region),
                Field::PhoneNumber,
            ))
            .flatten(),
        ext_id: refusals
            .check(parse_change(
                changes.ext_id,
                |ext_id| ExtId::parse(ext_id),
                Field::ExtId,
            ))
            .flatten(),
        first_name: refusals
            .check(parse_change(
                changes.first_name,
                |name| PersonName::parse(name),
                Field::FirstName,
            ))
            .flatten()
            .map(Option::flatten),
        last_name: refusals
            .check(parse_change(
                changes.last_name,
                |name| PersonName::parse(name),
                Field::LastName,
            ))
            .flatten()
            .map(Option::flatten),
        set_values: Vec::new(),
        remove_fields: Vec::new(),
    }
}

/// Reads a phone number as text, or the digits of one sent as a number: a number has no
/// `+`, so it is always read in `region`, and a negative, fractional or out-of-range one is
/// refused rather than rounded into somebody else's number.
fn parse_phone_number(
    input: &PhoneNumberInput,
    region: DefaultRegion,
) -> Result<PhoneNumber, Invalid> {
    match input {
        PhoneNumberInput::Text(text) => PhoneNumber::parse(text, region),
        PhoneNumberInput::Number(Some(digits)) => PhoneNumber::parse(&digits.to_string(), region),
        PhoneNumberInput::Number(None) => Err(Invalid::new(
            ErrorCode::InvalidPhoneNumber,
            "phone number given as a JSON number must be a whole, non-negative number",
        )),
    }
}

/// Parses a create member: absent (or `null`) stays `None`.
fn parse_optional<T: ?Sized, U>(
    value: Option<&T>,
    parse: impl FnOnce(&T) -> Result<U, Invalid>,
    field: Field,
) -> Result<Option<U>, Failure> {
    value
        .map(parse)
        .transpose()
        .map_err(|invalid| Failure::invalid(invalid, field))
}

/// Parses an update member: omitted stays `None`, `null` becomes `Some(None)`.
fn parse_change<T, U>(
    value: Option<Option<T>>,
    parse: impl FnOnce(&T) -> Result<U, Invalid>,
    field: Field,
) -> Result<Option<Option<U>>, Failure> {
    value
        .map(|value| parse_optional(value.as_ref(), parse, field))
        .transpose()
}

/// Checks each value against its field's definition; a key twice is refused. `at` names a
/// value's place in the input.
pub(super) fn field_writes(
    definitions: &[FieldDefinition],
    inputs: Vec<CustomFieldInput>,
    at: fn(CustomFieldAt) -> Field,
) -> Result<Vec<FieldWrite>, Failure> {
    let mut seen = HashSet::with_capacity(inputs.len());
    inputs
        .into_iter()
        .enumerate()
        .map(|(index, CustomFieldInput { key, value })| {
            let at_part = |part| {
                at(CustomFieldAt {
                    index,
                    key: key.clone(),
                    part,
                })
            };
            let definition = find_definition(definitions, &key, || at_part(ValuePart::Key))?;
            if !seen.insert(definition.id) {
                return Err(Failure::Invalid {
                    code: ErrorCode::DuplicateCustomField,
                    message: format!("custom field `{key}` is given more than once"),
                    field: Some(at_part(ValuePart::Key)),
                });
            }
            let value = FieldValue::parse(definition.field_type, &definition.options, value)
                .map_err(|invalid| Failure::Invalid {
                    code: invalid.code,
                    message: format!("custom field `{key}`: {}", invalid.message),
                    field: Some(at_part(ValuePart::Value)),
                })?;
            Ok(FieldWrite {
                field_id: definition.id,
                value,
            })
        })
        .collect()
}

/// The definition of `key`, or a refusal at `field`.
pub(super) fn find_definition<'a>(
    definitions: &'a [FieldDefinition],
    key: &str,
    field: impl FnOnce() -> Field,
) -> Result<&'a FieldDefinition, Failure> {
    definitions
        .iter()
        .find(|definition| definition.key.as_str() == key)
        .ok_or_else(|| Failure::Invalid {
            code: ErrorCode::UnknownCustomField,
            message: format!(
                "no custom field `{key:.64}` is defined; create it first with POST /api/v1/custom-fields"
            ),
            field: Some(field()),
        })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn us() -> DefaultRegion {
        DefaultRegion::default()
    }

    #[test]
    fn a_number_is_read_as_its_digits_in_the_default_region() {
        let digits = |digits| {
            parse_phone_number(&PhoneNumberInput::Number(Some(digits)), us())
                .expect("a valid number")
                .into_string()
        };
        assert_eq!(digits(4_155_552_671), "+14155552671");
        assert_eq!(digits(14_155_552_671), "+14155552671");
        let ru = DefaultRegion::parse("RU").expect("RU");
        assert_eq!(
            parse_phone_number(&PhoneNumberInput::Number(Some(88_121_234_567)), ru)
                .expect("a valid number")
                .into_string(),
            "+78121234567"
        );
    }

    #[test]
    fn a_number_that_is_not_whole_and_non_negative_is_refused() {
        let refused = parse_phone_number(&PhoneNumberInput::Number(None), us())
            .expect_err("not a number's digits");
        assert_eq!(refused.code, "invalid_phone_number");
        assert!(refused.message.contains("whole, non-negative"));
    }

    #[test]
    fn a_new_contact_names_the_member_at_fault_and_needs_an_identifier() {
        let input = ContactInput {
            email: Some("not an email".to_owned()),
            ..ContactInput::default()
        };
        match parse_new_contact(us(), &[], input) {
            Err(Failure::Invalid { field, .. }) => assert_eq!(field, Some(Field::Email)),
            other => panic!("expected a refused email, got {other:?}"),
        }
        match parse_new_contact(us(), &[], ContactInput::default()) {
            Err(Failure::Invalid { field, code, .. }) => {
                assert_eq!((field, code.as_str()), (None, "identifier_required"));
            }
            other => panic!("expected a missing identifier, got {other:?}"),
        }
    }

    fn value(key: &str, value: &str) -> CustomFieldInput {
        CustomFieldInput {
            key: key.to_owned(),
            value: FieldInput::Text(value.to_owned()),
        }
    }

    fn refused_at(refused: Result<Vec<FieldWrite>, Failure>) -> (&'static str, Option<Field>) {
        match refused {
            Err(Failure::Invalid { field, code, .. }) => (code.as_str(), field),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn a_value_is_refused_at_its_index_naming_its_key_or_its_value() {
        let plan = FieldDefinition {
            id: Uuid::now_v7(),
            key: crate::domain::FieldKey::parse("plan").expect("a valid key"),
            display_name: "Plan".to_owned(),
            field_type: contactd_api::FieldType::Select,
            options: vec!["pro".to_owned()],
            created_at: chrono::Utc::now(),
        };
        let definitions = [plan];
        let at = |index, key: &str, part| {
            Some(Field::SetCustomField(CustomFieldAt {
                index,
                key: key.to_owned(),
                part,
            }))
        };
        assert_eq!(
            refused_at(field_writes(
                &definitions,
                vec![value("plan", "pro"), value("seats", "3")],
                Field::SetCustomField
            )),
            ("unknown_custom_field", at(1, "seats", ValuePart::Key))
        );
        assert_eq!(
            refused_at(field_writes(
                &definitions,
                vec![value("plan", "pro"), value("plan", "pro")],
                Field::SetCustomField
            )),
            ("duplicate_custom_field", at(1, "plan", ValuePart::Key))
        );
        assert_eq!(
            refused_at(field_writes(
                &definitions,
                vec![value("plan", "free")],
                Field::SetCustomField
            )),
            (
                "invalid_custom_field_value",
                at(0, "plan", ValuePart::Value)
            )
        );
        let written = field_writes(&definitions, vec![value("plan", "pro")], Field::CustomField)
            .expect("a valid value");
        assert_eq!(written[0].value, FieldValue::Select("pro".to_owned()));
    }

    proptest! {
        #[test]
        fn reading_any_number_never_panics(digits in any::<u64>()) {
            let _ = parse_phone_number(&PhoneNumberInput::Number(Some(digits)), us());
        }
    }
}
