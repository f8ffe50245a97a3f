//! Change events (docs/reference.md#13-change-events-history-and-webhooks): what a write
//! records of its change, in its own transaction, and how a recorded event is read back.
//!
//! An event keeps the contact after the change and what it held before of what changed
//! (or the definition) in the store's own JSON, with values in their stored text form: the
//! wire's shapes, and the `changes` between before and after, are made when an event is
//! shown (`wire.rs`), so that an event written today reads as the API shows contacts
//! tomorrow.

use std::collections::{BTreeMap, BTreeSet};

use contactd_api::{EventType, FieldType};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::StoreError;
use super::connection::{Connection, Row};
use super::model::{
    Actor, Contact, ContactFieldValue, Event, EventData, EventPosition, FieldDefinition,
};
use super::rows::{duration_ms, now_ms, timestamp};
use super::sql;
use crate::domain::contact::ContactMembers;
use crate::domain::{FieldKey, FieldValue};

/// Records a contact's change: `before` is `None` for a creation, `after` for a deletion,
/// which is recorded before the contact's row goes (see [`sql::insert_event`]).
pub async fn record_contact_change(
    conn: &mut dyn Connection,
    company_id: Uuid,
    actor: &Actor,
    before: Option<&Contact>,
    after: Option<&Contact>,
) -> Result<(), StoreError> {
    let (event_type, contact) = match (before, after) {
        (None, Some(after)) => (EventType::ContactCreated, after),
        (Some(before), None) => (EventType::ContactDeleted, before),
        (Some(_), Some(after)) => (EventType::ContactUpdated, after),
        (None, None) => return Err(StoreError::Internal("an event of no contact".to_owned())),
    };
    let data = StoredContactChange {
        contact: ContactSnapshot::of(contact),
        before: before.zip(after).map(|(before, after)| {
            ChangedValues::between(&ContactSnapshot::of(before), &ContactSnapshot::of(after))
        }),
    };
    let event_id = record(conn, company_id, actor, event_type, Some(contact.id), &data).await?;
    if after.is_some() {
        let link = sql::link_latest_event(company_id, contact.id, event_id);
        conn.execute(&link).await?;
    }
    Ok(())
}

/// Records a change of a definition: the definition after it, or as it was when deleted.
pub async fn record_field_change(
    conn: &mut dyn Connection,
    company_id: Uuid,
    actor: &Actor,
    event_type: EventType,
    field: &FieldDefinition,
) -> Result<(), StoreError> {
    let data = StoredFieldChange {
        field: FieldSnapshot::of(field),
    };
    record(conn, company_id, actor, event_type, None, &data).await?;
    Ok(())
}

async fn record(
    conn: &mut dyn Connection,
    company_id: Uuid,
    actor: &Actor,
    event_type: EventType,
    contact_id: Option<Uuid>,
    data: &impl Serialize,
) -> Result<Uuid, StoreError> {
    let data =
        serde_json::to_string(data).map_err(|error| StoreError::Internal(error.to_string()))?;
    let id = Uuid::now_v7();
    let insert = sql::insert_event(
        id,
        company_id,
        event_type,
        contact_id,
        now_ms(),
        actor,
        data,
    );
    conn.execute(&insert).await?;
    Ok(id)
}

/// Decodes an event of `sql::event_columns`.
pub fn event(row: &dyn Row) -> Result<Event, StoreError> {
    let event_type = super::rows::event_type(&row.text(3)?)?;
    let data = row.text(7)?;
    let data = match event_type {
        EventType::ContactCreated | EventType::ContactUpdated | EventType::ContactDeleted => {
            let change: StoredContactChange =
                serde_json::from_str(&data).map_err(StoreError::unreadable)?;
            let (before, after) = match (event_type, change.before) {
                (EventType::ContactCreated, _) => (None, Some(change.contact)),
                (EventType::ContactDeleted, _) => (Some(change.contact), None),
                (_, changed) => {
                    let before = changed.unwrap_or_default().applied_to(&change.contact)?;
                    (Some(before), Some(change.contact))
                }
            };
            let decode = |snapshot: Option<ContactSnapshot>| {
                snapshot
                    .map(|snapshot| snapshot.into_contact().map(Box::new))
                    .transpose()
            };
            EventData::Contact {
                before: decode(before)?,
                after: decode(after)?,
            }
        }
        EventType::CustomFieldCreated
        | EventType::CustomFieldUpdated
        | EventType::CustomFieldDeleted => {
            let change: StoredFieldChange =
                serde_json::from_str(&data).map_err(StoreError::unreadable)?;
            EventData::Field(change.field.into_definition()?)
        }
    };
    Ok(Event {
        at: EventPosition {
            position: row.integer(0)?,
            tx: row.integer(1)?,
        },
        id: row.uuid(2)?,
        event_type,
        occurred_at: timestamp(row.integer(4)?),
        actor: Actor::from_stored(&row.text(5)?, row.text(6)?)?,
        data,
    })
}

/// Decodes an attempt due again: its event's columns, then the number it will have.
pub fn due_retry(row: &dyn Row) -> Result<(Event, u32), StoreError> {
    let attempt = u32::try_from(row.integer(8)?).map_err(StoreError::unreadable)?;
    Ok((event(row)?, attempt))
}

/// Decodes a feed position: `tx`, `position`.
pub fn position(row: &dyn Row) -> Result<EventPosition, StoreError> {
    Ok(EventPosition {
        tx: row.integer(0)?,
        position: row.integer(1)?,
    })
}

/// Decodes a feed position and the time of its event: `tx`, `position`, `occurred_at`.
pub fn dated_position(row: &dyn Row) -> Result<(EventPosition, i64), StoreError> {
    Ok((position(row)?, row.integer(2)?))
}

/// A contact event as stored: the contact after the change (as it was, for a deletion)
/// and, for an update, only what it held before of what changed, which about halves an
/// update's bytes against keeping the contact twice.
#[derive(Serialize, Deserialize)]
struct StoredContactChange {
    contact: ContactSnapshot,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    before: Option<ChangedValues>,
}

/// What an update changed, as it was before: members by name and custom field values by
/// key, `None` for "had no value".
#[derive(Serialize, Deserialize, Default)]
struct ChangedValues {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    members: BTreeMap<String, Option<String>>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    custom_fields: BTreeMap<String, Option<ValueSnapshot>>,
    updated_at: i64,
}

impl ChangedValues {
    fn between(before: &ContactSnapshot, after: &ContactSnapshot) -> Self {
        let members = before
            .members()
            .into_iter()
            .zip(after.members())
            .filter(|((_, before), (_, after))| before != after)
            .map(|((name, before), _)| (name.to_owned(), before.clone()))
            .collect();
        let by_key = |contact: &ContactSnapshot| -> BTreeMap<String, ValueSnapshot> {
            let values = contact.custom_fields.iter();
            values
                .map(|value| (value.key.clone(), value.clone()))
                .collect()
        };
        let (before_values, after_values) = (by_key(before), by_key(after));
        let keys: BTreeSet<&String> = before_values.keys().chain(after_values.keys()).collect();
        let custom_fields = keys
            .into_iter()
            .filter(|key| before_values.get(*key) != after_values.get(*key))
            .map(|key| (key.clone(), before_values.get(key).cloned()))
            .collect();
        Self {
            members,
            custom_fields,
            updated_at: before.updated_at,
        }
    }

    /// The contact before the update, from the contact after it.
    fn applied_to(self, after: &ContactSnapshot) -> Result<ContactSnapshot, StoreError> {
        let mut before = after.clone();
        for (name, value) in self.members {
            *before.member_mut(&name).ok_or_else(|| {
                StoreError::unreadable(format!("an event names an unknown member {name:?}"))
            })? = value;
        }
        before
            .custom_fields
            .retain(|value| !self.custom_fields.contains_key(&value.key));
        before
            .custom_fields
            .extend(self.custom_fields.into_values().flatten());
        before.custom_fields.sort_by(|a, b| a.key.cmp(&b.key));
        before.updated_at = self.updated_at;
        Ok(before)
    }
}

#[derive(Serialize, Deserialize)]
struct StoredFieldChange {
    field: FieldSnapshot,
}

/// A contact as an event keeps it; times in stored milliseconds.
#[derive(Clone, Serialize, Deserialize)]
struct ContactSnapshot {
    id: Uuid,
    email: Option<String>,
    phone_number: Option<String>,
    ext_id: Option<String>,
    first_name: Option<String>,
    last_name: Option<String>,
    custom_fields: Vec<ValueSnapshot>,
    created_at: i64,
    updated_at: i64,
}

#[derive(Clone, PartialEq, Serialize, Deserialize)]
struct ValueSnapshot {
    field_id: Uuid,
    key: String,
    display_name: String,
    field_type: FieldType,
    /// The stored text form (`FieldValue::to_storage`).
    value: String,
}

#[derive(Serialize, Deserialize)]
struct FieldSnapshot {
    id: Uuid,
    key: String,
    display_name: String,
    field_type: FieldType,
    options: Vec<String>,
    created_at: i64,
}

impl ContactSnapshot {
    /// The members by name, in the contact object's order.
    fn members(&self) -> [(&'static str, &Option<String>); 5] {
        [
            ("email", &self.email),
            ("phone_number", &self.phone_number),
            ("ext_id", &self.ext_id),
            ("first_name", &self.first_name),
            ("last_name", &self.last_name),
        ]
    }

    fn member_mut(&mut self, name: &str) -> Option<&mut Option<String>> {
        match name {
            "email" => Some(&mut self.email),
            "phone_number" => Some(&mut self.phone_number),
            "ext_id" => Some(&mut self.ext_id),
            "first_name" => Some(&mut self.first_name),
            "last_name" => Some(&mut self.last_name),
            _ => None,
        }
    }

    fn of(contact: &Contact) -> Self {
        let members = contact.members.clone();
        Self {
            id: contact.id,
            email: members.email,
            phone_number: members.phone_number,
            ext_id: members.ext_id,
            first_name: members.first_name,
            last_name: members.last_name,
            custom_fields: contact
                .custom_fields
                .iter()
                .map(|value| ValueSnapshot {
                    field_id: value.field_id,
                    key: value.key.clone(),
                    display_name: value.display_name.clone(),
                    field_type: value.field_type,
                    value: value.value.to_storage(),
                })
                .collect(),
            created_at: contact.created_at.timestamp_millis(),
            updated_at: contact.updated_at.timestamp_millis(),
        }
    }

    fn into_contact(self) -> Result<Contact, StoreError> {
        let custom_fields = self
            .custom_fields
            .into_iter()
            .map(|value| {
                Ok(ContactFieldValue {
                    value: FieldValue::from_storage(value.field_type, &value.value)?,
                    field_id: value.field_id,
                    key: value.key,
                    display_name: value.display_name,
                    field_type: value.field_type,
                })
            })
            .collect::<Result<_, StoreError>>()?;
        Ok(Contact {
            id: self.id,
            members: ContactMembers {
                email: self.email,
                phone_number: self.phone_number,
                ext_id: self.ext_id,
                first_name: self.first_name,
                last_name: self.last_name,
            },
            custom_fields,
            created_at: timestamp(self.created_at),
            updated_at: timestamp(self.updated_at),
        })
    }
}

impl FieldSnapshot {
    fn of(field: &FieldDefinition) -> Self {
        Self {
            id: field.id,
            key: field.key.as_str().to_owned(),
            display_name: field.display_name.clone(),
            field_type: field.field_type,
            options: field.options.clone(),
            created_at: field.created_at.timestamp_millis(),
        }
    }

    fn into_definition(self) -> Result<FieldDefinition, StoreError> {
        Ok(FieldDefinition {
            id: self.id,
            key: FieldKey::parse(&self.key)?,
            display_name: self.display_name,
            field_type: self.field_type,
            options: self.options,
            created_at: timestamp(self.created_at),
        })
    }
}

/// The oldest moment retention keeps, `retention` before now.
pub fn retention_cutoff(retention: std::time::Duration) -> i64 {
    now_ms().saturating_sub(duration_ms(retention))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(key: &str, value: &str) -> ValueSnapshot {
        ValueSnapshot {
            field_id: Uuid::nil(),
            key: key.to_owned(),
            display_name: key.to_owned(),
            field_type: FieldType::Text,
            value: value.to_owned(),
        }
    }

    fn contact(
        first_name: Option<&str>,
        email: Option<&str>,
        values: Vec<ValueSnapshot>,
    ) -> ContactSnapshot {
        ContactSnapshot {
            id: Uuid::nil(),
            email: email.map(str::to_owned),
            phone_number: None,
            ext_id: Some("crm-1".to_owned()),
            first_name: first_name.map(str::to_owned),
            last_name: None,
            custom_fields: values,
            created_at: 1,
            updated_at: 2,
        }
    }

    #[test]
    fn an_update_keeps_only_what_changed_and_gives_the_contact_before_it_back() {
        let before = contact(Some("Ada"), None, vec![value("a", "1"), value("c", "3")]);
        let mut after = contact(
            None,
            Some("ada@example.com"),
            vec![value("b", "2"), value("c", "4")],
        );
        after.updated_at = 3;

        let changed = ChangedValues::between(&before, &after);

        assert_eq!(
            changed.members,
            BTreeMap::from([
                ("email".to_owned(), None),
                ("first_name".to_owned(), Some("Ada".to_owned())),
            ])
        );
        assert_eq!(
            changed.custom_fields.len(),
            3,
            "a removed, b added, c changed"
        );
        let rebuilt = changed.applied_to(&after).expect("rebuilt");
        assert_eq!(
            serde_json::to_value(&rebuilt).expect("json"),
            serde_json::to_value(&before).expect("json")
        );
    }
}
