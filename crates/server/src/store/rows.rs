//! Rows decoded into the model, once for both backends: each decoder reads its columns by
//! position, in the order the statements of `sql.rs` list them (the test below checks every
//! statement against its decoder's columns).

use chrono::{DateTime, Utc};
use contactd_api::{EventType, FieldType, Scope};
use uuid::Uuid;

use super::StoreError;
use super::connection::Row;
use super::model::{
    Actor, ApiKey, Caller, Company, Contact, ContactFieldValue, DeliveryAttempt, DeliveryGauges,
    DeliveryOutcome, EventPosition, FieldDefinition, KeyUse, RateLimit, ReservedKeyField,
    SessionUser, StoredEmail, StoredResponse, User, UserCredentials, Webhook,
};
use crate::domain::contact::ContactMembers;
use crate::domain::{FieldKey, FieldValue};

/// A time as stored (milliseconds since the Unix epoch) as a moment.
pub fn timestamp(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// The current time as stored: milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

/// A duration as stored times add it: milliseconds, at most `i64::MAX`.
pub fn duration_ms(duration: std::time::Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// The first column, a UUID (an id a statement returns).
pub fn id(row: &dyn Row) -> Result<Uuid, StoreError> {
    row.uuid(0)
}

/// The first column, an integer (a count, a version, a time).
pub fn integer(row: &dyn Row) -> Result<i64, StoreError> {
    row.integer(0)
}

pub fn delivery_gauges(row: &dyn Row) -> Result<DeliveryGauges, StoreError> {
    Ok(DeliveryGauges {
        retries_pending: row.integer(0)?,
        endpoints_enabled: row.integer(1)?,
        endpoints_disabled: row.integer(2)?,
        oldest_undelivered_at: row.optional_integer(3)?,
    })
}

/// A claimed idempotency key: the fingerprint of its request, and its answer once recorded.
pub fn idempotency_key(row: &dyn Row) -> Result<(Vec<u8>, Option<StoredResponse>), StoreError> {
    let fingerprint = row.bytes(0)?;
    let Some(status) = row.optional_integer(1)? else {
        return Ok((fingerprint, None));
    };
    let headers = row.optional_text(2)?.unwrap_or_default();
    let response = StoredResponse {
        status: u16::try_from(status)
            .map_err(|_| StoreError::Internal(format!("a stored status of {status}")))?,
        headers: serde_json::from_str(&headers)
            .map_err(|error| StoreError::Internal(format!("stored response headers: {error}")))?,
        body: row.bytes(3)?,
    };
    Ok((fingerprint, Some(response)))
}

pub fn company(row: &dyn Row) -> Result<Company, StoreError> {
    Ok(Company {
        id: row.uuid(0)?,
        name: row.text(1)?,
        created_at: timestamp(row.integer(2)?),
    })
}

pub fn api_key(row: &dyn Row) -> Result<ApiKey, StoreError> {
    Ok(ApiKey {
        id: row.uuid(0)?,
        company_id: row.uuid(1)?,
        name: row.optional_text(2)?,
        prefix: row.text(3)?,
        created_at: timestamp(row.integer(4)?),
        last_used_at: row.optional_integer(5)?.map(timestamp),
        revoked_at: row.optional_integer(6)?.map(timestamp),
        scopes: scopes(&row.text(7)?)?,
        rate_limit: rate_limit(row, 8)?,
    })
}

/// A key's own rate limit, from its two columns at `first` and after.
fn rate_limit(row: &dyn Row, first: usize) -> Result<Option<RateLimit>, StoreError> {
    let positive = |column: usize| -> Result<Option<u32>, StoreError> {
        row.optional_integer(column)?
            .map(|value| {
                u32::try_from(value)
                    .ok()
                    .filter(|value| *value > 0)
                    .ok_or_else(|| StoreError::unreadable(format!("a rate of {value}")))
            })
            .transpose()
    };
    Ok(match (positive(first)?, positive(first + 1)?) {
        (Some(per_second), Some(burst)) => Some(RateLimit { per_second, burst }),
        _ => None,
    })
}

/// A key's `scopes` column: scope names separated by spaces, in the order of
/// [`Scope::ALL`] whatever order they were stored in.
fn scopes(names: &str) -> Result<Vec<Scope>, StoreError> {
    let mut scopes = names
        .split_whitespace()
        .map(|name| Scope::from_name(name).ok_or_else(|| StoreError::unreadable(name)))
        .collect::<Result<Vec<_>, _>>()?;
    scopes.sort_unstable();
    scopes.dedup();
    Ok(scopes)
}

pub fn key_use(row: &dyn Row) -> Result<KeyUse, StoreError> {
    Ok(KeyUse {
        key_id: row.uuid(0)?,
        caller: Caller {
            company_id: row.uuid(1)?,
            actor: Actor::ApiKey(row.uuid(0)?),
            cursor_secret: row.bytes(2)?,
            scopes: scopes(&row.text(4)?)?,
            rate_limit: rate_limit(row, 5)?,
        },
        last_used_at: row.optional_integer(3)?,
    })
}

pub fn user(row: &dyn Row) -> Result<User, StoreError> {
    Ok(User {
        id: row.uuid(0)?,
        company_id: row.uuid(1)?,
        email: row.text(2)?,
        created_at: timestamp(row.integer(3)?),
    })
}

pub fn credentials(row: &dyn Row) -> Result<UserCredentials, StoreError> {
    Ok(UserCredentials {
        id: row.uuid(0)?,
        password_hash: row.text(1)?,
    })
}

pub fn session_user(row: &dyn Row) -> Result<SessionUser, StoreError> {
    Ok(SessionUser {
        user_id: row.uuid(0)?,
        email: row.text(1)?,
        caller: Caller {
            company_id: row.uuid(2)?,
            actor: Actor::User(row.uuid(0)?),
            cursor_secret: row.bytes(4)?,
            scopes: Scope::ALL.to_vec(),
            rate_limit: None,
        },
        company_name: row.text(3)?,
        csrf_token: row.text(5)?,
    })
}

pub fn field_definition(row: &dyn Row) -> Result<FieldDefinition, StoreError> {
    let options = match row.optional_text(4)? {
        Some(json) => serde_json::from_str(&json).map_err(StoreError::unreadable)?,
        None => Vec::new(),
    };
    Ok(FieldDefinition {
        id: row.uuid(0)?,
        key: FieldKey::parse(&row.text(1)?)?,
        display_name: row.text(2)?,
        field_type: field_type(&row.text(3)?)?,
        options,
        created_at: timestamp(row.integer(5)?),
    })
}

/// The JSON array stored for a select field's options.
pub fn options_json(options: &[String]) -> String {
    serde_json::Value::from(options).to_string()
}

fn field_type(name: &str) -> Result<FieldType, StoreError> {
    FieldType::from_name(name)
        .ok_or_else(|| StoreError::unreadable(format!("unknown custom field type {name:?}")))
}

pub fn webhook(row: &dyn Row) -> Result<Webhook, StoreError> {
    let event_types = row
        .text(3)?
        .split(',')
        .filter(|name| !name.is_empty())
        .map(event_type)
        .collect::<Result<_, _>>()?;
    let previous_secret = match (row.optional_text(6)?, row.optional_integer(7)?) {
        (Some(secret), Some(until)) => Some((secret, until)),
        _ => None,
    };
    Ok(Webhook {
        id: row.uuid(0)?,
        company_id: row.uuid(1)?,
        url: row.text(2)?,
        event_types,
        description: row.optional_text(4)?,
        secret: row.text(5)?,
        previous_secret,
        created_at: timestamp(row.integer(8)?),
        updated_at: timestamp(row.integer(9)?),
        disabled: row
            .optional_integer(10)?
            .map(|at| Ok::<_, StoreError>((timestamp(at), row.optional_text(11)?)))
            .transpose()?,
        failing_since: row.optional_integer(12)?,
        feed: EventPosition {
            tx: row.integer(13)?,
            position: row.integer(14)?,
        },
    })
}

pub fn delivery_attempt(row: &dyn Row) -> Result<DeliveryAttempt, StoreError> {
    let outcome = match (row.text(4)?.as_str(), row.optional_integer(5)?) {
        ("delivered", _) => DeliveryOutcome::Delivered,
        ("retrying", Some(at)) => DeliveryOutcome::Retrying(at),
        ("failed", _) => DeliveryOutcome::Failed,
        (other, _) => {
            return Err(StoreError::unreadable(format!(
                "unknown delivery outcome {other:?}"
            )));
        }
    };
    Ok(DeliveryAttempt {
        position: row.integer(0)?,
        event_id: row.uuid(1)?,
        event_type: event_type(&row.text(2)?)?,
        attempt: u32::try_from(row.integer(3)?).map_err(StoreError::unreadable)?,
        outcome,
        status: row
            .optional_integer(6)?
            .map(u16::try_from)
            .transpose()
            .map_err(StoreError::unreadable)?,
        error: row.optional_text(7)?,
        duration_ms: u64::try_from(row.integer(8)?).map_err(StoreError::unreadable)?,
        attempted_at: timestamp(row.integer(9)?),
    })
}

/// An event type by its stored name.
pub fn event_type(name: &str) -> Result<EventType, StoreError> {
    EventType::from_name(name)
        .ok_or_else(|| StoreError::unreadable(format!("unknown event type {name:?}")))
}

pub fn reserved_key_field(row: &dyn Row) -> Result<ReservedKeyField, StoreError> {
    Ok(ReservedKeyField {
        company_id: row.uuid(0)?,
        company_name: row.text(1)?,
        key: row.text(2)?,
    })
}

pub fn stored_email(row: &dyn Row) -> Result<StoredEmail, StoreError> {
    Ok(StoredEmail {
        id: row.uuid(0)?,
        company_id: row.uuid(1)?,
        email: row.text(2)?,
    })
}

/// Contacts folded from the rows of a contact read, which returns a row per custom field
/// value, the rows of one contact together and ordered by key.
///
/// A contact's own columns repeat on each of its rows; they are read from its first row
/// only, which saved an export most of its allocations.
#[derive(Debug, Default)]
pub struct ContactRows {
    contacts: Vec<Contact>,
}

impl ContactRows {
    /// Adds a row: a value of the last contact, or a new contact.
    pub fn add(&mut self, row: &dyn Row) -> Result<(), StoreError> {
        if !self.continues(row)? {
            self.contacts.push(Contact {
                id: row.uuid(0)?,
                members: ContactMembers {
                    email: row.optional_text(1)?,
                    phone_number: row.optional_text(2)?,
                    ext_id: row.optional_text(3)?,
                    first_name: row.optional_text(4)?,
                    last_name: row.optional_text(5)?,
                },
                custom_fields: Vec::new(),
                created_at: timestamp(row.integer(6)?),
                updated_at: timestamp(row.integer(7)?),
            });
        }
        if let Some(value) = field_value(row)?
            && let Some(contact) = self.contacts.last_mut()
        {
            contact.custom_fields.push(value);
        }
        Ok(())
    }

    /// Whether the row is one of the last contact's.
    pub fn continues(&self, row: &dyn Row) -> Result<bool, StoreError> {
        let id = row.uuid(0)?;
        Ok(self.contacts.last().is_some_and(|last| last.id == id))
    }

    /// How many contacts the rows so far hold.
    pub fn len(&self) -> usize {
        self.contacts.len()
    }

    /// The contacts so far, leaving none.
    pub fn take(&mut self) -> Vec<Contact> {
        std::mem::take(&mut self.contacts)
    }
}

/// The custom field value a contact row carries, if any.
fn field_value(row: &dyn Row) -> Result<Option<ContactFieldValue>, StoreError> {
    let Some(field_id) = row.optional_uuid(8)? else {
        return Ok(None);
    };
    let field_type = field_type(&row.text(11)?)?;
    Ok(Some(ContactFieldValue {
        field_id,
        key: row.text(9)?,
        display_name: row.text(10)?,
        field_type,
        value: FieldValue::from_storage(field_type, &row.text(12)?)?,
    }))
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use crate::domain::phone::DefaultRegion;
    use crate::domain::{ContactIdentifier, Email, ExtId, FieldKey};
    use crate::store::connection::Statement;
    use crate::store::model::{ContactQuery, EmailTable, EventPosition, ListPosition, NewWebhook};
    use crate::store::plans::every_filter;
    use crate::store::sql;
    use crate::store::sql::TextIndex;
    use contactd_api::ContactSort;

    const COMPANY_COLUMNS: &[&str] = &["id", "name", "created_at"];
    const API_KEY_COLUMNS: &[&str] = &[
        "id",
        "company_id",
        "name",
        "prefix",
        "created_at",
        "last_used_at",
        "revoked_at",
        "scopes",
        "rate_per_second",
        "rate_burst",
    ];
    const KEY_USE_COLUMNS: &[&str] = &[
        "id",
        "company_id",
        "cursor_secret",
        "last_used_at",
        "scopes",
        "rate_per_second",
        "rate_burst",
    ];
    const USER_COLUMNS: &[&str] = &["id", "company_id", "email", "created_at"];
    const CREDENTIALS_COLUMNS: &[&str] = &["id", "password_hash"];
    const SESSION_USER_COLUMNS: &[&str] = &[
        "user_id",
        "email",
        "company_id",
        "company_name",
        "cursor_secret",
        "csrf_token",
    ];
    const FIELD_COLUMNS: &[&str] = &[
        "id",
        "key",
        "display_name",
        "field_type",
        "options",
        "created_at",
    ];
    const RESERVED_KEY_FIELD_COLUMNS: &[&str] = &["company_id", "company_name", "key"];
    const STORED_EMAIL_COLUMNS: &[&str] = &["id", "company_id", "email"];
    const EVENT_COLUMNS: &[&str] = &[
        "position",
        "tx",
        "id",
        "type",
        "occurred_at",
        "actor_type",
        "actor_id",
        "data",
    ];
    const DELIVERY_GAUGES_COLUMNS: &[&str] = &[
        "retries_pending",
        "endpoints_enabled",
        "endpoints_disabled",
        "oldest_undelivered_at",
    ];
    const WEBHOOK_COLUMNS: &[&str] = &[
        "id",
        "company_id",
        "url",
        "event_types",
        "description",
        "secret",
        "previous_secret",
        "previous_secret_until",
        "created_at",
        "updated_at",
        "disabled_at",
        "disabled_reason",
        "failing_since",
        "feed_tx",
        "feed_position",
    ];
    const ATTEMPT_COLUMNS: &[&str] = &[
        "position",
        "event_id",
        "event_type",
        "attempt",
        "outcome",
        "next_attempt_at",
        "status",
        "error",
        "duration_ms",
        "attempted_at",
    ];
    const RETRY_COLUMNS: &[&str] = &[
        "position",
        "tx",
        "id",
        "type",
        "occurred_at",
        "actor_type",
        "actor_id",
        "data",
        "attempt",
    ];
    const EVENT_POSITION_COLUMNS: &[&str] = &["tx", "position"];
    const IDEMPOTENCY_KEY_COLUMNS: &[&str] = &["fingerprint", "status", "headers", "body"];
    const DATED_EVENT_POSITION_COLUMNS: &[&str] = &["tx", "position", "occurred_at"];
    const CONTACT_COLUMNS: &[&str] = &[
        "id",
        "email",
        "phone_number",
        "ext_id",
        "first_name",
        "last_name",
        "created_at",
        "updated_at",
        "field_id",
        "field_key",
        "field_display_name",
        "field_type",
        "field_value",
    ];

    /// Every statement that returns rows, with the columns its decoder reads.
    fn statements_with_columns() -> Vec<(Statement, &'static [&'static str])> {
        let (id, key) = (Uuid::nil(), FieldKey::parse("plan").expect("a valid key"));
        let email = Email::parse("a@example.com").expect("a valid email");
        let identifiers = [
            ContactIdentifier::Id(id),
            ContactIdentifier::Email(email.clone()),
            ContactIdentifier::parse(
                "alt:phone_number:+14155550100",
                DefaultRegion::parse("US").expect("a valid region"),
            )
            .expect("a valid phone number"),
            ContactIdentifier::ExtId(ExtId::parse("x").expect("a valid ext_id")),
        ];
        let new_webhook = NewWebhook {
            url: "https://example.com".to_owned(),
            event_types: Vec::new(),
            description: None,
            secret: "whsec_".to_owned(),
        };
        let mut statements: Vec<(Statement, &'static [&'static str])> = vec![
            (sql::list_companies(), COMPANY_COLUMNS),
            (sql::find_company("x"), COMPANY_COLUMNS),
            (sql::insert_company(id, "x", &[], 0), COMPANY_COLUMNS),
            (sql::list_keys(id), API_KEY_COLUMNS),
            (sql::revoke_key(id, 0), API_KEY_COLUMNS),
            (sql::authenticate(&[0; 32]), KEY_USE_COLUMNS),
            (sql::list_users(id), USER_COLUMNS),
            (sql::user_credentials(&email), CREDENTIALS_COLUMNS),
            (sql::find_session(&[0; 32], 0), SESSION_USER_COLUMNS),
            (sql::list_fields(id), FIELD_COLUMNS),
            (sql::get_field(id, &key), FIELD_COLUMNS),
            (sql::fields_with_reserved_keys(), RESERVED_KEY_FIELD_COLUMNS),
            (
                sql::stored_emails(EmailTable::Contacts, id, 1),
                STORED_EMAIL_COLUMNS,
            ),
            (
                sql::stored_emails(EmailTable::Users, id, 1),
                STORED_EMAIL_COLUMNS,
            ),
            (
                sql::find_contacts(
                    id,
                    &ContactQuery::default(),
                    ListPosition::start(ContactSort::default()),
                    1,
                    TextIndex::Fts5Trigram,
                ),
                CONTACT_COLUMNS,
            ),
            (
                sql::find_contacts(
                    id,
                    &every_filter(id),
                    ListPosition::start(ContactSort::OldestCreated),
                    1,
                    TextIndex::Fts5Trigram,
                ),
                CONTACT_COLUMNS,
            ),
            (sql::export_contacts(id), CONTACT_COLUMNS),
            (sql::delete_field(id, &key), FIELD_COLUMNS),
            (
                sql::list_events(id, EventPosition::default(), 1),
                EVENT_COLUMNS,
            ),
            (sql::contact_history(id, id, None, 1), EVENT_COLUMNS),
            (sql::contact_history(id, id, Some(1), 1), EVENT_COLUMNS),
            (sql::event_horizon(id), EVENT_POSITION_COLUMNS),
            (sql::oldest_events(id, 1), DATED_EVENT_POSITION_COLUMNS),
            (sql::last_event(id), EVENT_POSITION_COLUMNS),
            (sql::list_webhooks(id), WEBHOOK_COLUMNS),
            (sql::webhook(id, id, false), WEBHOOK_COLUMNS),
            (
                sql::rotate_webhook_secret(id, id, "x", 0, 0),
                WEBHOOK_COLUMNS,
            ),
            (sql::claim_webhooks(id, 0, 0, 1, false), WEBHOOK_COLUMNS),
            (sql::delivery_gauges(), DELIVERY_GAUGES_COLUMNS),
            (sql::idempotency_key(id, "k"), IDEMPOTENCY_KEY_COLUMNS),
            (sql::list_attempts(id, 0, 1), ATTEMPT_COLUMNS),
            (sql::due_retries(id, 0, 1), RETRY_COLUMNS),
            (
                sql::record_delivery_batch(id, id, EventPosition::default(), None, None),
                WEBHOOK_COLUMNS,
            ),
            (
                sql::insert_webhook(id, id, &new_webhook, EventPosition::default(), 0),
                WEBHOOK_COLUMNS,
            ),
        ];
        statements.extend(
            identifiers
                .iter()
                .map(|identifier| (sql::contact_by_identifier(id, identifier), CONTACT_COLUMNS)),
        );
        statements
    }

    /// The decoders read by position, so every statement must return its decoder's columns
    /// in that order. The text is the same on both backends, so preparing it on SQLite's
    /// schema checks both.
    #[test]
    fn every_statement_returns_the_columns_its_decoder_reads() {
        let conn = rusqlite::Connection::open_in_memory().expect("open");
        for migration in super::super::schema::SQLITE_MIGRATIONS.iter() {
            conn.execute_batch(&migration.sql).expect("schema");
        }
        for (statement, columns) in statements_with_columns() {
            let prepared = conn.prepare(&statement.sql).expect("prepare");
            assert_eq!(prepared.column_names(), columns, "{}", statement.sql);
        }
    }
}
