//! What the store reads and writes: companies, keys, users, sessions, custom field
//! definitions and contacts, as the rest of contactd sees them.

use contactd_api::ErrorCode;
use std::time::Duration;

use chrono::{DateTime, Utc};
use contactd_api::{ContactSort, EventType, FieldType, Scope};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::StoreError;
use super::rows::timestamp;
use crate::domain::contact::{ContactMembers, ContactPatch};
use crate::domain::{ContactIdentifier, DisplayName, FieldKey, FieldValue, Invalid, SelectOptions};

/// A tenant (docs/reference.md#1-tenancy-and-resources).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Company {
    pub id: Uuid,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

/// The company an API key acts for, as the bearer middleware learns it.
#[derive(Debug, Clone)]
pub struct Caller {
    pub company_id: Uuid,
    /// Who the caller's changes are recorded as: the key, or the dashboard user.
    pub actor: Actor,
    /// Signs this company's list cursors, so that no other company's cursor is accepted.
    pub cursor_secret: Vec<u8>,
    /// What the caller may do: an API key's scopes; a dashboard user has every one.
    pub scopes: Vec<Scope>,
    /// The key's own rate limit; `None` for the server's (docs/reference.md#rate-limits).
    pub rate_limit: Option<RateLimit>,
}

/// A token bucket: `per_second` requests a second on average, up to `burst` at once
/// (docs/reference.md#rate-limits). Both are at least 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub per_second: u32,
    pub burst: u32,
}

/// An unrevoked key found by its hash: the company it acts for, and when it was last used.
#[derive(Debug, Clone)]
pub struct KeyUse {
    pub key_id: Uuid,
    pub caller: Caller,
    /// Milliseconds since the epoch; `None` for a key never used.
    pub last_used_at: Option<i64>,
}

/// An API key as listed: never the secret, which only its creator ever sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub id: Uuid,
    pub company_id: Uuid,
    pub name: Option<String>,
    /// The non-secret start of the key, to tell keys apart.
    pub prefix: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// What the key may do, in the order of [`Scope::ALL`].
    pub scopes: Vec<Scope>,
    /// Its own rate limit; `None` for the server's.
    pub rate_limit: Option<RateLimit>,
}

/// What the store keeps of a new API key: its hash and display prefix, never the key.
#[derive(Debug, Clone)]
pub struct NewApiKey {
    pub name: Option<String>,
    pub prefix: String,
    pub key_hash: [u8; 32],
    pub scopes: Vec<Scope>,
    pub rate_limit: Option<RateLimit>,
}

/// A dashboard user: a person who logs in to act for one company.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: Uuid,
    pub company_id: Uuid,
    pub email: String,
    pub created_at: DateTime<Utc>,
}

/// What a login checks of a user: the password hash.
#[derive(Debug, Clone)]
pub struct UserCredentials {
    pub id: Uuid,
    /// An argon2id PHC string.
    pub password_hash: String,
}

/// Whether a login may check its password, as [`Store::reserve_login_attempt`](super::Store::reserve_login_attempt) decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginAttempt {
    /// The check is counted: go ahead.
    Granted,
    /// The email had its checks for this window, which ends at `until`.
    Refused { until: DateTime<Utc> },
}

impl LoginAttempt {
    /// A refusal for a window that opened at `started_ms` (none: it ended just now).
    pub(super) fn refused(started_ms: Option<i64>, window: Duration) -> Self {
        let until = started_ms.map_or_else(Utc::now, |started| {
            timestamp(started) + chrono::TimeDelta::from_std(window).unwrap_or_default()
        });
        Self::Refused { until }
    }
}

/// A dashboard session to store: only the hash of the cookie's token is kept.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub token_hash: [u8; 32],
    pub user_id: Uuid,
    /// What every form of the session must send back.
    pub csrf_token: String,
    pub expires_at: DateTime<Utc>,
}

/// The user a live session belongs to, with what the dashboard needs to act for them.
#[derive(Debug, Clone)]
pub struct SessionUser {
    pub user_id: Uuid,
    pub email: String,
    pub company_name: String,
    pub csrf_token: String,
    /// The company the user acts for, as an API key would.
    pub caller: Caller,
}

/// Who made a change, as its event records it
/// (docs/reference.md#13-change-events-history-and-webhooks).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Actor {
    ApiKey(Uuid),
    User(Uuid),
    /// An admin command, by its name (`field create`).
    Cli(String),
}

impl Actor {
    /// The actor's type as stored and on the wire.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::ApiKey(_) => "api_key",
            Self::User(_) => "user",
            Self::Cli(_) => "cli",
        }
    }

    /// The key's or user's id, or the command.
    pub fn id(&self) -> String {
        match self {
            Self::ApiKey(id) | Self::User(id) => id.to_string(),
            Self::Cli(command) => command.clone(),
        }
    }

    /// Reads an actor as stored.
    pub(super) fn from_stored(kind: &str, id: String) -> Result<Self, StoreError> {
        let uuid = || Uuid::parse_str(&id).map_err(StoreError::unreadable);
        match kind {
            "api_key" => Ok(Self::ApiKey(uuid()?)),
            "user" => Ok(Self::User(uuid()?)),
            "cli" => Ok(Self::Cli(id)),
            other => Err(StoreError::unreadable(format!(
                "unknown actor type {other:?}"
            ))),
        }
    }
}

/// Where an event stands in its company's feed, which is ordered by `tx` (a transaction
/// bound on PostgreSQL, 0 on SQLite) then `position`; `migrations/postgres/0005_events.sql`
/// says why both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct EventPosition {
    pub tx: i64,
    pub position: i64,
}

/// A change as recorded (docs/reference.md#13-change-events-history-and-webhooks).
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub id: Uuid,
    pub at: EventPosition,
    pub event_type: EventType,
    pub occurred_at: DateTime<Utc>,
    pub actor: Actor,
    pub data: EventData,
}

/// What an event is about.
#[derive(Debug, Clone, PartialEq)]
pub enum EventData {
    /// A contact before and after the change: no `before` for a creation, no `after` for a
    /// deletion.
    Contact {
        before: Option<Box<Contact>>,
        after: Option<Box<Contact>>,
    },
    /// The definition after the change, or as it was for a deletion.
    Field(FieldDefinition),
}

/// The most events one page of a filtered feed reads.
pub const FEED_SCAN: u32 = 1000;

/// A page of the feed: its events, and where the next page starts.
#[derive(Debug, Clone, PartialEq)]
pub struct EventPage {
    pub events: Vec<Event>,
    pub next: EventPosition,
}

/// A webhook endpoint as stored (docs/reference.md#webhooks).
#[derive(Debug, Clone, PartialEq)]
pub struct Webhook {
    pub id: Uuid,
    pub company_id: Uuid,
    pub url: String,
    /// Every type when empty.
    pub event_types: Vec<EventType>,
    pub description: Option<String>,
    /// The secret deliveries are signed with, `whsec_…`.
    pub secret: String,
    /// The secret before the last rotation, which also signs until the moment given.
    pub previous_secret: Option<(String, i64)>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// When it was disabled and, if the server did it, why (`failing`).
    pub disabled: Option<(DateTime<Utc>, Option<String>)>,
    /// When the failures that go on now began (milliseconds since the epoch).
    pub failing_since: Option<i64>,
    /// The last event of the feed it made a first attempt for.
    pub feed: EventPosition,
}

impl Webhook {
    /// Whether events of this type are delivered to it.
    pub fn wants(&self, event_type: EventType) -> bool {
        self.event_types.is_empty() || self.event_types.contains(&event_type)
    }
}

/// The most webhook endpoints a company may have.
pub const MAX_WEBHOOKS: i64 = 50;

/// A webhook endpoint to create.
#[derive(Debug, Clone)]
pub struct NewWebhook {
    pub url: String,
    pub event_types: Vec<EventType>,
    pub description: Option<String>,
    pub secret: String,
}

/// What a webhook endpoint becomes: `None` keeps a member as it is.
#[derive(Debug, Clone, Default)]
pub struct WebhookChange {
    pub url: Option<String>,
    pub event_types: Option<Vec<EventType>>,
    pub enabled: Option<bool>,
    /// `Some(None)` removes the description.
    pub description: Option<Option<String>>,
}

/// What became of one delivery attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryOutcome {
    Delivered,
    /// Another attempt is due at the time given (milliseconds since the epoch).
    Retrying(i64),
    Failed,
}

impl DeliveryOutcome {
    /// The outcome's name as stored and on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Retrying(_) => "retrying",
            Self::Failed => "failed",
        }
    }
}

/// One attempt to deliver an event to an endpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryAttempt {
    /// Its place in the list of attempts, for paging.
    pub position: i64,
    pub event_id: Uuid,
    pub event_type: EventType,
    /// 1 for the first attempt.
    pub attempt: u32,
    pub outcome: DeliveryOutcome,
    pub status: Option<u16>,
    pub error: Option<String>,
    pub duration_ms: u64,
    pub attempted_at: DateTime<Utc>,
}

/// An attempt made, to record: `event_position` is where its event stands in the feed.
#[derive(Debug, Clone)]
pub struct AttemptMade {
    pub event_position: i64,
    pub attempt: DeliveryAttempt,
}

/// What an instance delivering for an endpoint records after a batch of attempts, in one
/// write, if it still holds the endpoint's lease.
#[derive(Debug, Clone)]
pub struct DeliveryBatch {
    pub webhook_id: Uuid,
    pub owner: Uuid,
    pub attempts: Vec<AttemptMade>,
    /// The last event of the feed the batch made a first attempt for.
    pub feed: EventPosition,
    pub failing_since: Option<i64>,
    /// Set when the failures went on for too long: the endpoint is disabled then.
    pub disable_at: Option<i64>,
}

/// The deliveries an endpoint has to make now: attempts due again, each with the number
/// it will have, and the events of the feed after its position.
#[derive(Debug, Clone, Default)]
pub struct DeliveryWork {
    pub retries: Vec<(Event, u32)>,
    pub first_attempts: Vec<Event>,
}

/// The state of every company's webhook deliveries, for the gauges of a scrape
/// (docs/reference.md#metrics).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeliveryGauges {
    pub retries_pending: i64,
    pub endpoints_enabled: i64,
    pub endpoints_disabled: i64,
    /// When the oldest committed event that an enabled endpoint has not yet had a first
    /// attempt of occurred (milliseconds since the epoch); `None` when every one is caught up.
    pub oldest_undelivered_at: Option<i64>,
}

/// A delivery scheduled by hand: the number its attempt will have, and when it is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScheduledRetry {
    pub attempt: u32,
    pub due_at: i64,
}

/// A custom field definition (docs/reference.md#7-custom-field-definitions).
#[derive(Debug, Clone, PartialEq)]
pub struct FieldDefinition {
    pub id: Uuid,
    pub key: FieldKey,
    pub display_name: String,
    pub field_type: FieldType,
    /// The options of a select field; empty for every other type.
    pub options: Vec<String>,
    pub created_at: DateTime<Utc>,
}

/// A custom field definition to create; `options` is `Some` exactly for select fields.
#[derive(Debug, Clone)]
pub struct NewFieldDefinition {
    pub key: FieldKey,
    pub display_name: DisplayName,
    pub field_type: FieldType,
    pub options: Option<SelectOptions>,
}

/// A change to a definition: a new display name and/or more options.
#[derive(Debug, Clone, Default)]
pub struct FieldDefinitionChange {
    pub display_name: Option<DisplayName>,
    pub options: Option<OptionsChange>,
}

/// How a change grows a select field's options. Either is judged against the options
/// stored when the change is written, inside the write's transaction, so that no change
/// can drop an option another one added meanwhile (`docs/robustness.md#concurrent-admins-no-lost-updates`).
#[derive(Debug, Clone)]
pub enum OptionsChange {
    /// The full new list, as the API's PATCH sends it: refused
    /// ([`StoreError::OptionsLeftOut`]) unless it holds every stored option.
    Replace(SelectOptions),
    /// Options to add after the stored ones, as the dashboard's form sends them.
    Add(SelectOptions),
}

impl FieldDefinitionChange {
    /// The definition `stored` becomes with this change. Called by each store with the
    /// definition as it reads it inside the write's transaction (the row locked), so the
    /// check and the write are one step.
    pub(super) fn apply_to(
        &self,
        mut stored: FieldDefinition,
    ) -> Result<FieldDefinition, StoreError> {
        if let Some(name) = &self.display_name {
            stored.display_name = name.as_str().to_owned();
        }
        let Some(change) = &self.options else {
            return Ok(stored);
        };
        if stored.field_type != FieldType::Select {
            return Err(StoreError::Invalid(Invalid::new(
                ErrorCode::InvalidOptions,
                "options are only allowed on select fields",
            )));
        }
        stored.options = match change {
            OptionsChange::Replace(list) => {
                let missing: Vec<String> = stored
                    .options
                    .iter()
                    .filter(|option| !list.contains(option))
                    .cloned()
                    .collect();
                if !missing.is_empty() {
                    return Err(StoreError::OptionsLeftOut {
                        key: stored.key,
                        missing,
                    });
                }
                list.as_slice().to_vec()
            }
            // Parsed again as a whole: the sum must still be at most 500 distinct options.
            OptionsChange::Add(added) => SelectOptions::parse(
                stored
                    .options
                    .iter()
                    .chain(added.as_slice())
                    .cloned()
                    .collect(),
            )?
            .into_vec(),
        };
        Ok(stored)
    }
}

/// A contact as read back (docs/reference.md#3-the-contact-object).
#[derive(Debug, Clone, PartialEq)]
pub struct Contact {
    pub id: Uuid,
    pub members: ContactMembers,
    /// Only the fields holding a value, ordered by key.
    pub custom_fields: Vec<ContactFieldValue>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Contact {
    /// A digest of everything the contact's object shows (docs/reference.md#etags): it
    /// changes whenever the contact changes, and also when a field it holds is renamed or
    /// deleted, which change the object without writing the contact.
    pub fn version(&self) -> ContactVersion {
        let mut digest = Sha256::new();
        // Each part is length-prefixed, so that no two contacts give one byte sequence.
        let mut add = |part: &[u8]| {
            digest.update((part.len() as u64).to_le_bytes());
            digest.update(part);
        };
        add(self.id.as_bytes());
        let members = &self.members;
        for member in [
            &members.email,
            &members.phone_number,
            &members.ext_id,
            &members.first_name,
            &members.last_name,
        ] {
            match member {
                Some(value) => add(format!("={value}").as_bytes()),
                None => add(b""),
            }
        }
        add(&self.created_at.timestamp_millis().to_le_bytes());
        add(&self.updated_at.timestamp_millis().to_le_bytes());
        for value in &self.custom_fields {
            add(value.key.as_bytes());
            add(value.display_name.as_bytes());
            add(value.field_type.as_str().as_bytes());
            add(value.value.to_storage().as_bytes());
        }
        ContactVersion(hex::encode(&digest.finalize()[..16]))
    }
}

/// The version of a contact: 32 hex digits, the opaque part of its `ETag`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactVersion(String);

impl ContactVersion {
    /// A version as a client quoted it back: it matches only the version it was given as.
    pub fn quoted(text: &str) -> Self {
        Self(text.to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What a contact write requires of the contact before it changes it
/// (docs/reference.md#etags).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Precondition {
    /// Nothing: the contact is written as it is.
    #[default]
    None,
    /// The contact is at one of these versions (`If-Match`), checked in the write's own
    /// transaction, after its row is locked.
    VersionIn(Vec<ContactVersion>),
}

impl Precondition {
    /// Fails with the contact's current version when it is not at an accepted one.
    pub fn check(&self, contact: &Contact) -> Result<(), StoreError> {
        match self {
            Self::None => Ok(()),
            Self::VersionIn(versions) => {
                let current = contact.version();
                if versions.contains(&current) {
                    Ok(())
                } else {
                    Err(StoreError::VersionChanged { current })
                }
            }
        }
    }
}

/// One custom field value of a contact, with what its definition says about it.
#[derive(Debug, Clone, PartialEq)]
pub struct ContactFieldValue {
    /// The definition the value belongs to.
    pub field_id: Uuid,
    pub key: String,
    pub display_name: String,
    pub field_type: FieldType,
    pub value: FieldValue,
}

/// Where a page of a contact list starts: after the contact at this time (its `created_at`
/// or `updated_at`, as the list's [`ContactSort`] orders by) with this id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListPosition {
    pub at_ms: i64,
    pub id: Uuid,
}

impl ListPosition {
    /// Where the first page of a list in `sort` order starts: before every contact, so one
    /// statement serves every page.
    pub fn start(sort: ContactSort) -> Self {
        if sort.descending() {
            Self {
                at_ms: i64::MAX,
                id: Uuid::max(),
            }
        } else {
            Self {
                at_ms: i64::MIN,
                id: Uuid::nil(),
            }
        }
    }

    /// The position of a contact in a list in `sort` order: the next page starts after it.
    pub fn of(contact: &Contact, sort: ContactSort) -> Self {
        let at = if sort.by_update() {
            contact.updated_at
        } else {
            contact.created_at
        };
        Self {
            at_ms: at.timestamp_millis(),
            id: contact.id,
        }
    }
}

/// What a contact list holds and in which order: the filters of
/// docs/reference.md#finding-contacts, checked and resolved against the company's
/// definitions, all of which a contact must pass.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ContactQuery {
    /// Text the full name, email or ext_id contains, case-insensitively; at least
    /// [`SEARCH_TEXT_MIN_CHARS`] characters.
    pub text: Option<String>,
    /// Exactly this member, in its stored form.
    pub identifier: Vec<(UniqueMember, String)>,
    pub created: TimeRange,
    pub updated: TimeRange,
    pub fields: Vec<FieldFilter>,
    pub sort: ContactSort,
}

/// The shortest `q` a trigram index can serve: one trigram.
pub const SEARCH_TEXT_MIN_CHARS: usize = 3;

impl ContactQuery {
    /// Whether the query asks for every contact, newest first: the plain list.
    pub fn is_everything(&self) -> bool {
        *self == Self::default()
    }

    /// A digest of the query, which a page cursor is signed with, so that a cursor is only
    /// taken back with the filters and order it was made for. Empty for the plain list, so
    /// that its cursors stay what they were before filters existed.
    pub fn fingerprint(&self) -> Vec<u8> {
        if self.is_everything() {
            return Vec::new();
        }
        let mut hash = Sha256::new();
        let mut part = |bytes: &[u8]| {
            hash.update((bytes.len() as u64).to_be_bytes());
            hash.update(bytes);
        };
        part(self.sort.as_str().as_bytes());
        part(self.text.as_deref().unwrap_or_default().as_bytes());
        for (member, value) in &self.identifier {
            part(member.as_str().as_bytes());
            part(value.as_bytes());
        }
        for range in [self.created, self.updated] {
            part(&range.after.unwrap_or(i64::MIN).to_be_bytes());
            part(&range.before.unwrap_or(i64::MAX).to_be_bytes());
        }
        for filter in &self.fields {
            part(filter.field_id.as_bytes());
            match &filter.test {
                FieldTest::AnyOf(values) => {
                    part(b"any of");
                    values.iter().for_each(|value| part(value.as_bytes()));
                }
                FieldTest::Compare(comparison, ordinal) => {
                    part(comparison.operator().as_bytes());
                    part(&ordinal.to_be_bytes());
                }
                FieldTest::Exists(exists) => part(if *exists { b"exists" } else { b"absent" }),
            }
        }
        hash.finalize()[..8].to_vec()
    }
}

/// Times in milliseconds a contact's time must lie strictly between; `None` leaves that
/// side open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TimeRange {
    pub after: Option<i64>,
    pub before: Option<i64>,
}

/// A test of one custom field's value.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldFilter {
    pub field_id: Uuid,
    pub test: FieldTest,
}

#[derive(Debug, Clone, PartialEq)]
pub enum FieldTest {
    /// The value is one of these, in their stored form (a text, select or boolean field).
    AnyOf(Vec<String>),
    /// The value's ordinal ([`FieldValue::ordinal`]) compares so with this one (a number
    /// or date field).
    Compare(Comparison, f64),
    /// The contact holds a value of the field, or holds none.
    Exists(bool),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    Equal,
    Greater,
    GreaterOrEqual,
    Less,
    LessOrEqual,
}

impl Comparison {
    /// The SQL operator.
    pub fn operator(self) -> &'static str {
        match self {
            Self::Equal => "=",
            Self::Greater => ">",
            Self::GreaterOrEqual => ">=",
            Self::Less => "<",
            Self::LessOrEqual => "<=",
        }
    }
}

/// One item of a batch upsert: the contact its match member names, and the changes.
#[derive(Debug, Clone, PartialEq)]
pub struct ContactUpsert {
    /// The match member's value, as the item gives it: an existing contact holding it is
    /// updated, else a contact is created.
    pub key: ContactIdentifier,
    /// Applied to the existing contact, or to an empty one to create it.
    pub patch: ContactPatch,
}

/// A contact a batch upsert wrote (or found as the item wanted it), and what it did.
#[derive(Debug, Clone, PartialEq)]
pub struct Upserted {
    pub contact: Contact,
    pub outcome: UpsertOutcome,
}

/// What a batch upsert did with one item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpsertOutcome {
    /// No contact held the key: one was created.
    Created,
    /// The contact holding the key was changed.
    Updated,
    /// The contact holding the key already had every value the item carried: nothing was
    /// written, and its `updated_at` did not move.
    Unchanged,
}

/// The outcome of each item of a bulk write, in item order.
pub type ItemResults<T> = Vec<Result<T, StoreError>>;

/// A company's contacts as of one moment: its definitions, then its contacts a page at a
/// time, newest first. A reader holds the snapshot open, reading one ordered query row by
/// row, until the last page is taken or `pages` is dropped; at most two pages wait in
/// memory, however many contacts there are.
#[derive(Debug)]
pub struct Export {
    /// The definitions as of the snapshot, ordered by key.
    pub fields: Vec<FieldDefinition>,
    /// How many contacts the snapshot holds.
    pub total: u64,
    /// Pages of contacts; it ends after the last page, or after an error.
    pub pages: tokio::sync::mpsc::Receiver<ExportPage>,
}

/// A page of an export, or why it could not be read.
pub type ExportPage = Result<Vec<Contact>, StoreError>;

/// The contact members that must be unique within a company.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UniqueMember {
    Email,
    PhoneNumber,
    ExtId,
}

/// Each unique member with both names the databases give its unique index when a write
/// breaks it: PostgreSQL names the index (`migrations/postgres/0001_initial.sql`), SQLite
/// lists its columns.
const UNIQUE_INDEXES: [(UniqueMember, &str, &str); 3] = [
    (
        UniqueMember::Email,
        "contacts_email",
        "contacts.company_id, contacts.email",
    ),
    (
        UniqueMember::PhoneNumber,
        "contacts_phone_number",
        "contacts.company_id, contacts.phone_number",
    ),
    (
        UniqueMember::ExtId,
        "contacts_ext_id",
        "contacts.company_id, contacts.ext_id",
    ),
];

impl UniqueMember {
    /// The member's name in requests, responses and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::PhoneNumber => "phone_number",
            Self::ExtId => "ext_id",
        }
    }

    /// The member whose unique index a database named in a violation, by either name.
    pub(super) fn of_index(index: &str) -> Option<Self> {
        UNIQUE_INDEXES
            .into_iter()
            .find(|(_, name, columns)| index == *name || index == *columns)
            .map(|(member, _, _)| member)
    }

    /// The member an identifier names its contact by; `None` for an id.
    pub(super) fn named_by(id: &ContactIdentifier) -> Option<Self> {
        match id {
            ContactIdentifier::Id(_) => None,
            ContactIdentifier::Email(_) => Some(Self::Email),
            ContactIdentifier::PhoneNumber(_) => Some(Self::PhoneNumber),
            ContactIdentifier::ExtId(_) => Some(Self::ExtId),
        }
    }

    /// The value `members` give this member.
    pub(super) fn value_in(self, members: &ContactMembers) -> Option<&str> {
        match self {
            Self::Email => members.email.as_deref(),
            Self::PhoneNumber => members.phone_number.as_deref(),
            Self::ExtId => members.ext_id.as_deref(),
        }
    }
}

/// A table that stores email addresses in their normal form (`Email::parse`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmailTable {
    /// Contacts: an email is unique within a company.
    Contacts,
    /// Dashboard users: an email is unique across the server.
    Users,
}

impl EmailTable {
    /// The error of a write that would give the table's email to a second row; a
    /// contact's holder is looked up after the failed write.
    pub(super) fn duplicate(self) -> StoreError {
        match self {
            Self::Contacts => StoreError::DuplicateContact {
                member: UniqueMember::Email,
                conflicting_contact_id: None,
            },
            Self::Users => StoreError::DuplicateUserEmail,
        }
    }
}

/// A stored email, as the start-up data check reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEmail {
    /// The contact or user holding it.
    pub id: Uuid,
    pub company_id: Uuid,
    /// As stored, which may be the normal form of an older version.
    pub email: String,
}

/// A custom field whose key is reserved, stored before keys were.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReservedKeyField {
    pub company_id: Uuid,
    pub company_name: String,
    pub key: String,
}

/// A request sent with an `Idempotency-Key`, claiming its key (docs/reference.md#idempotency).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotentRequest {
    pub company_id: Uuid,
    pub key: String,
    /// The SHA-256 of what makes two requests the same one: method, path, `If-Match`, body.
    pub fingerprint: [u8; 32],
    /// Names this claim, so that only its own request records or releases it.
    pub claim: Uuid,
    /// How long the claim holds before a repeat may take it over, for a request whose
    /// process died before it was answered.
    pub lease: std::time::Duration,
    /// How long a key is kept: past it, the key is free for a new request.
    pub retention: std::time::Duration,
}

/// What a claim of an idempotency key found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdempotencyClaim {
    /// The key is this request's: run it, then record its answer or release the key.
    Claimed,
    /// The same request was answered before: this is that answer.
    Answered(StoredResponse),
    /// The same request is running now, under a claim whose lease has not passed.
    InProgress,
    /// The key was used for a different request.
    Reused,
}

/// A response kept for the repeats of an idempotent request: its status, the headers that
/// describe its body, and the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}
