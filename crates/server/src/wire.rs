//! The wire's shapes (`contactd_api`, JSON) on either side of the use cases: requests
//! brought down to the use cases' inputs, and contacts and definitions written back in the
//! wire's forms (docs/reference.md#3-the-contact-object). The API's routes and the admin CLI's output share them.

use std::collections::{BTreeMap, BTreeSet};

use contactd_api as api;
use serde_json::Value;

use crate::contacts::{
    ContactChanges, ContactInput, CustomFieldInput, MemberChanges, PhoneNumberInput, UpsertInput,
};
use crate::custom_fields::NewFieldInput;
use crate::domain::custom_field::exact_integer;
use crate::domain::{FieldInput, FieldValue};
use crate::store::{
    Contact, DeliveryAttempt, DeliveryOutcome, Event, EventData, FieldDefinition, UniqueMember,
    Webhook,
};

impl From<api::CreateContact> for ContactInput {
    fn from(body: api::CreateContact) -> Self {
        Self {
            email: body.email,
            phone_number: body.phone_number.map(PhoneNumberInput::from),
            ext_id: body.ext_id,
            first_name: body.first_name,
            last_name: body.last_name,
            custom_fields: custom_field_inputs(body.custom_fields),
        }
    }
}

/// The changes of an update body; its `id`, which names the contact, is read apart.
impl From<api::UpdateContact> for ContactChanges {
    fn from(body: api::UpdateContact) -> Self {
        let custom_fields = body.custom_fields.unwrap_or_default();
        Self {
            members: MemberChanges {
                email: body.email,
                phone_number: phone_number_change(body.phone_number),
                ext_id: body.ext_id,
                first_name: body.first_name,
                last_name: body.last_name,
            },
            set: custom_field_inputs(custom_fields.set),
            remove: custom_fields.remove,
        }
    }
}

impl From<api::UpsertContact> for UpsertInput {
    fn from(item: api::UpsertContact) -> Self {
        Self {
            members: MemberChanges {
                email: item.email,
                phone_number: phone_number_change(item.phone_number),
                ext_id: item.ext_id,
                first_name: item.first_name,
                last_name: item.last_name,
            },
            custom_fields: custom_field_inputs(item.custom_fields),
        }
    }
}

impl From<api::CreateCustomField> for NewFieldInput {
    fn from(body: api::CreateCustomField) -> Self {
        Self {
            key: body.key,
            display_name: body.display_name,
            field_type: body.field_type,
            options: body.options,
        }
    }
}

impl From<api::MatchOn> for UniqueMember {
    fn from(match_on: api::MatchOn) -> Self {
        match match_on {
            api::MatchOn::ExtId => Self::ExtId,
            api::MatchOn::Email => Self::Email,
            api::MatchOn::PhoneNumber => Self::PhoneNumber,
        }
    }
}

/// A phone number as a string or a JSON number: a number's digits when it is whole and
/// non-negative. A zero fraction is still whole (`4155552671.0`, what a client holding the
/// number as a float sends; docs/reference.md#phone-numbers), up to 2^53, past which a
/// float no longer names one whole number.
impl From<api::PhoneNumberInput> for PhoneNumberInput {
    fn from(input: api::PhoneNumberInput) -> Self {
        match input {
            api::PhoneNumberInput::Text(text) => Self::Text(text),
            api::PhoneNumberInput::Number(number) => Self::Number(whole_digits(&number)),
        }
    }
}

/// The whole, non-negative number a JSON number holds exactly, if it holds one.
fn whole_digits(number: &serde_json::Number) -> Option<u64> {
    const EXACT_FLOATS: f64 = 9_007_199_254_740_992.0; // 2^53
    number.as_u64().or_else(|| {
        let float = number.as_f64()?;
        // The cast is exact: the float is whole and within 0..2^53.
        (float.fract() == 0.0 && (0.0..EXACT_FLOATS).contains(&float)).then_some(float as u64)
    })
}

/// A custom field value as JSON sent it.
impl From<Value> for FieldInput {
    fn from(value: Value) -> Self {
        match value {
            Value::Null => Self::Null,
            Value::String(text) => Self::Text(text),
            // Only a number beyond the range of an `f64` has no `f64`, and no field takes a
            // number that is not finite.
            Value::Number(number) => Self::Number(number.as_f64().unwrap_or(f64::INFINITY)),
            Value::Bool(boolean) => Self::Boolean(boolean),
            Value::Array(_) | Value::Object(_) => Self::Compound,
        }
    }
}

fn phone_number_change(
    change: Option<Option<api::PhoneNumberInput>>,
) -> Option<Option<PhoneNumberInput>> {
    change.map(|phone| phone.map(PhoneNumberInput::from))
}

fn custom_field_inputs(inputs: Vec<api::CustomFieldInput>) -> Vec<CustomFieldInput> {
    inputs
        .into_iter()
        .map(|input| CustomFieldInput {
            key: input.key,
            value: input.value.into(),
        })
        .collect()
}

/// The wire form of a contact (docs/reference.md#3-the-contact-object).
impl From<Contact> for api::Contact {
    fn from(contact: Contact) -> Self {
        Self {
            id: contact.id,
            email: contact.members.email,
            phone_number: contact.members.phone_number,
            ext_id: contact.members.ext_id,
            first_name: contact.members.first_name,
            last_name: contact.members.last_name,
            custom_fields: contact
                .custom_fields
                .into_iter()
                .map(|field| api::ContactCustomField {
                    key: field.key,
                    value: field_value_json(&field.value),
                    field_type: field.field_type,
                    display_name: field.display_name,
                })
                .collect(),
            created_at: contact.created_at,
            updated_at: contact.updated_at,
        }
    }
}

/// The wire form of a definition.
impl From<FieldDefinition> for api::CustomField {
    fn from(field: FieldDefinition) -> Self {
        Self {
            options: (field.field_type == api::FieldType::Select).then_some(field.options),
            key: field.key.into_string(),
            display_name: field.display_name,
            field_type: field.field_type,
            created_at: field.created_at,
        }
    }
}

/// The wire form of an event (docs/reference.md#13-change-events-history-and-webhooks): the
/// contact after the change (as it was, for a deletion) with what changed, or the
/// definition.
impl From<Event> for api::Event {
    fn from(event: Event) -> Self {
        let data = match event.data {
            EventData::Contact { before, after } => api::EventData {
                changes: before
                    .as_ref()
                    .zip(after.as_ref())
                    .map(|(before, after)| contact_changes(before, after)),
                contact: after.or(before).map(|contact| api::Contact::from(*contact)),
                custom_field: None,
            },
            EventData::Field(field) => api::EventData {
                contact: None,
                changes: None,
                custom_field: Some(field.into()),
            },
        };
        Self {
            id: format!("evt_{}", event.id.simple()),
            event_type: event.event_type,
            occurred_at: event.occurred_at,
            actor: api::EventActor {
                actor_type: event.actor.kind().to_owned(),
                id: event.actor.id(),
            },
            data,
        }
    }
}

/// What an update changed: each member, and each custom field as `custom_fields.KEY`, whose
/// value differs, `null` standing for "no value".
fn contact_changes(before: &Contact, after: &Contact) -> BTreeMap<String, api::Change> {
    let members = |contact: &Contact| {
        let members = &contact.members;
        [
            ("email", members.email.clone()),
            ("phone_number", members.phone_number.clone()),
            ("ext_id", members.ext_id.clone()),
            ("first_name", members.first_name.clone()),
            ("last_name", members.last_name.clone()),
        ]
        .map(|(name, value)| (name.to_owned(), value.map_or(Value::Null, Value::String)))
    };
    let values = |contact: &Contact| {
        contact
            .custom_fields
            .iter()
            .map(|field| {
                (
                    format!("custom_fields.{}", field.key),
                    field_value_json(&field.value),
                )
            })
            .collect::<BTreeMap<_, _>>()
    };
    let mut before_values: BTreeMap<String, Value> = members(before).into_iter().collect();
    before_values.extend(values(before));
    let mut after_values: BTreeMap<String, Value> = members(after).into_iter().collect();
    after_values.extend(values(after));
    let names: BTreeSet<&String> = before_values.keys().chain(after_values.keys()).collect();
    names
        .into_iter()
        .filter_map(|name| {
            let before = before_values.get(name).cloned().unwrap_or(Value::Null);
            let after = after_values.get(name).cloned().unwrap_or(Value::Null);
            (before != after).then(|| (name.clone(), api::Change { before, after }))
        })
        .collect()
}

/// The value as returned on the wire (docs/reference.md#3-the-contact-object): a JSON number, a JSON boolean, or a string.
///
/// A number with no fraction is written as an integer (`12`, not `12.0`) as long as
/// every integer of its size is exact in an `f64`; beyond that, and for fractions, the
/// shortest form that reads back as the same `f64`. A non-finite number, which no parse
/// function produces, becomes `null`.
fn field_value_json(value: &FieldValue) -> Value {
    match value {
        FieldValue::Text(text) | FieldValue::Select(text) => Value::String(text.clone()),
        FieldValue::Number(number) => exact_integer(*number).map_or_else(
            || serde_json::Number::from_f64(*number).map_or(Value::Null, Value::Number),
            Value::from,
        ),
        FieldValue::Boolean(boolean) => Value::Bool(*boolean),
        FieldValue::Date(_) => Value::String(value.to_storage()),
    }
}

impl From<Webhook> for api::Webhook {
    /// An endpoint as every answer but create and rotate-secret shows it: without its secret.
    fn from(webhook: Webhook) -> Self {
        let (enabled, disabled_reason) = match webhook.disabled {
            Some((_, reason)) => (false, reason),
            None => (true, None),
        };
        Self {
            id: webhook.id,
            url: webhook.url,
            event_types: webhook.event_types,
            enabled,
            disabled_reason,
            description: webhook.description,
            created_at: webhook.created_at,
            updated_at: webhook.updated_at,
            secret: None,
        }
    }
}

/// An endpoint with its secret: the answers to create and rotate-secret only.
pub fn webhook_with_secret(webhook: Webhook) -> api::Webhook {
    let secret = webhook.secret.clone();
    api::Webhook {
        secret: Some(secret),
        ..webhook.into()
    }
}

impl From<DeliveryAttempt> for api::DeliveryAttempt {
    fn from(attempt: DeliveryAttempt) -> Self {
        let (outcome, next_attempt_at) = match attempt.outcome {
            DeliveryOutcome::Delivered => (api::DeliveryOutcome::Delivered, None),
            DeliveryOutcome::Retrying(at) => (
                api::DeliveryOutcome::Retrying,
                chrono::DateTime::from_timestamp_millis(at),
            ),
            DeliveryOutcome::Failed => (api::DeliveryOutcome::Failed, None),
        };
        Self {
            event_id: format!("evt_{}", attempt.event_id.simple()),
            event_type: attempt.event_type,
            attempt: attempt.attempt,
            outcome,
            status: attempt.status,
            error: attempt.error,
            duration_ms: attempt.duration_ms,
            attempted_at: attempt.attempted_at,
            next_attempt_at,
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;
    use contactd_api::FieldType;
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    #[test]
    fn json_values_come_down_to_field_inputs() {
        assert_eq!(FieldInput::from(json!(null)), FieldInput::Null);
        assert_eq!(
            FieldInput::from(json!("4.50")),
            FieldInput::Text("4.50".to_owned())
        );
        assert_eq!(FieldInput::from(json!(12)), FieldInput::Number(12.0));
        assert_eq!(FieldInput::from(json!(-3)), FieldInput::Number(-3.0));
        assert_eq!(FieldInput::from(json!(4.5)), FieldInput::Number(4.5));
        assert_eq!(FieldInput::from(json!(true)), FieldInput::Boolean(true));
        assert_eq!(FieldInput::from(json!(["pro"])), FieldInput::Compound);
        assert_eq!(
            FieldInput::from(json!({"value": "pro"})),
            FieldInput::Compound
        );
    }

    #[test]
    fn json_numbers_that_are_not_whole_and_non_negative_have_no_digits() {
        let fractional = serde_json::Number::from_f64(4_155_552_671.5).expect("finite");
        let negative_float = serde_json::Number::from_f64(-4_155_552_671.0).expect("finite");
        let past_exact: serde_json::Number =
            serde_json::from_str("9007199254740992.0").expect("a JSON number");
        let huge: serde_json::Number =
            serde_json::from_str("184467440737095516160").expect("a JSON number");
        for number in [
            (-4_155_552_671_i64).into(),
            fractional,
            negative_float,
            past_exact,
            huge,
        ] {
            assert_eq!(
                PhoneNumberInput::from(api::PhoneNumberInput::Number(number.clone())),
                PhoneNumberInput::Number(None),
                "{number}"
            );
        }
        assert_eq!(
            PhoneNumberInput::from(api::PhoneNumberInput::from(4_155_552_671)),
            PhoneNumberInput::Number(Some(4_155_552_671))
        );
    }

    #[test]
    fn json_numbers_with_a_zero_fraction_are_their_whole_number() {
        let float: serde_json::Number =
            serde_json::from_str("14155552671.0").expect("a JSON number");
        assert_eq!(
            PhoneNumberInput::from(api::PhoneNumberInput::Number(float)),
            PhoneNumberInput::Number(Some(14_155_552_671))
        );
    }

    #[test]
    fn numbers_are_returned_as_integers_when_whole() {
        for (value, json) in [
            (12.0, json!(12)),
            (4.5, json!(4.5)),
            (-3.0, json!(-3)),
            (0.1, json!(0.1)),
            (-0.0, json!(0)),
            (9_007_199_254_740_991.0, json!(9_007_199_254_740_991_i64)),
        ] {
            let number = FieldValue::Number(value);
            assert_eq!(field_value_json(&number), json, "{value}");
            assert_eq!(number.to_storage(), json.to_string(), "{value}");
        }
    }

    #[test]
    fn numbers_beyond_exact_integers_keep_their_float_form() {
        let big = field_value_json(&FieldValue::Number(1e20));
        assert_eq!(big, json!(1e20));
        assert!(big.is_f64());
    }

    #[test]
    fn other_values_are_strings_and_booleans() {
        let date = NaiveDate::from_ymd_opt(2024, 2, 29).expect("a real date");
        assert_eq!(
            field_value_json(&FieldValue::Date(date)),
            json!("2024-02-29")
        );
        assert_eq!(
            field_value_json(&FieldValue::Text("hi".to_owned())),
            json!("hi")
        );
        assert_eq!(
            field_value_json(&FieldValue::Select("pro".to_owned())),
            json!("pro")
        );
        assert_eq!(field_value_json(&FieldValue::Boolean(false)), json!(false));
    }

    proptest! {
        #[test]
        fn numbers_read_back_exactly_as_json_and_as_text(number in any::<f64>()) {
            // Not through serde_json's text parser: without its `float_roundtrip` feature it
            // may land one ULP away, which is the JSON reader's doing, not this module's.
            if number.is_finite() {
                let json = field_value_json(&FieldValue::Number(number));
                let expected = Ok(FieldValue::Number(number + 0.0));
                let read = |json: Value| FieldValue::parse(FieldType::Number, &[], json.into());
                prop_assert_eq!(read(json.clone()), expected.clone());
                prop_assert_eq!(read(json!(json.to_string())), expected);
                prop_assert_eq!(json.to_string(), FieldValue::Number(number).to_storage());
            }
        }
    }
}
