//! The SQL both backends run, written once, each statement with the function that builds
//! it from domain values: its text and the order of its arguments are written together,
//! here and nowhere else.
//!
//! Placeholders are `$N`, which PostgreSQL and SQLite both read as "the N-th argument";
//! the schema is the same in both migration trees (ids are UUIDs, times are integer
//! milliseconds, field keys sort bytewise), so one statement means the same on both. Every
//! statement is a `&'static str`, so each is prepared once per connection and cached.
//! Statements that return rows list their columns in the order of their decoder in
//! `rows.rs`. What only one backend runs (SQLite's `BEGIN IMMEDIATE`, PostgreSQL's
//! snapshot of an export) stays in that backend's file.

use contactd_api::Scope;
use uuid::Uuid;

use super::connection::{Statement, Value};
use contactd_api::EventType;

use super::model::{
    Actor, AttemptMade, ContactQuery, DeliveryOutcome, EmailTable, EventPosition, FieldDefinition,
    FieldTest, IdempotentRequest, ListPosition, NewApiKey, NewFieldDefinition, NewSession,
    NewWebhook, StoredEmail, StoredResponse, UniqueMember, Webhook,
};
use super::rows::{duration_ms, options_json};
use crate::domain::contact::{ContactMembers, FieldWrite};
use crate::domain::custom_field::RESERVED_KEYS;
use crate::domain::{ContactIdentifier, Email, FieldKey};

macro_rules! contact_columns {
    () => {
        "c.id, c.email, c.phone_number, c.ext_id, c.first_name, c.last_name, c.created_at, \
         c.updated_at, f.id AS field_id, f.key AS field_key, f.display_name AS field_display_name, \
         f.field_type, v.value AS field_value"
    };
}

macro_rules! contact_values_join {
    () => {
        " LEFT JOIN contact_field_values v ON v.contact_id = c.id \
          LEFT JOIN custom_fields f ON f.id = v.field_id "
    };
}

macro_rules! key_columns {
    () => {
        "id, company_id, name, prefix, created_at, last_used_at, revoked_at, scopes, \
         rate_per_second, rate_burst"
    };
}

macro_rules! event_columns {
    () => {
        "position, tx, id, type, occurred_at, actor_type, actor_id, data"
    };
}

macro_rules! webhook_columns {
    () => {
        "id, company_id, url, event_types, description, secret, previous_secret, \
         previous_secret_until, created_at, updated_at, disabled_at, disabled_reason, \
         failing_since, feed_tx, feed_position"
    };
}

macro_rules! attempt_columns {
    () => {
        "position, event_id, event_type, attempt, outcome, next_attempt_at, status, error, \
         duration_ms, attempted_at"
    };
}

macro_rules! field_columns {
    () => {
        "id, key, display_name, field_type, options, created_at"
    };
}

/// Undoes the statements of the write running now, which each backend runs in a savepoint
/// of this name, so that the transaction can go on after one of them failed.
pub fn roll_back_write() -> Statement {
    Statement::new("ROLLBACK TO write")
}

pub fn ping() -> Statement {
    Statement::new("SELECT 1")
}

/// A statement of `texts` (one per column, in the order id, email, phone_number, ext_id)
/// matching a company's (`$1`) contact by an identifier (`$2`).
fn by_identifier(company_id: Uuid, id: &ContactIdentifier, texts: [&'static str; 4]) -> Statement {
    let statement = |sql| Statement::new(sql).arg(company_id);
    match id {
        ContactIdentifier::Id(uuid) => statement(texts[0]).arg(*uuid),
        ContactIdentifier::Email(email) => statement(texts[1]).arg(email.as_str()),
        ContactIdentifier::PhoneNumber(phone) => statement(texts[2]).arg(phone.as_str()),
        ContactIdentifier::ExtId(ext_id) => statement(texts[3]).arg(ext_id.as_str()),
    }
}

/// Reads one contact by any identifier form, one row per custom field value.
pub fn contact_by_identifier(company_id: Uuid, id: &ContactIdentifier) -> Statement {
    macro_rules! select {
        ($column:literal) => {
            concat!(
                "SELECT ",
                contact_columns!(),
                " FROM contacts c",
                contact_values_join!(),
                "WHERE c.company_id = $1 AND c.",
                $column,
                " = $2 ORDER BY f.key"
            )
        };
    }
    by_identifier(
        company_id,
        id,
        [
            select!("id"),
            select!("email"),
            select!("phone_number"),
            select!("ext_id"),
        ],
    )
}

/// Locks the row of the contact an identifier names until the transaction ends, returning
/// its id. A concurrent update of the same contact waits here; one that changed the
/// identifier meanwhile makes it match nothing (404), as it should. PostgreSQL only (see
/// `Connection::locks_rows`).
pub fn lock_contact(company_id: Uuid, id: &ContactIdentifier) -> Statement {
    macro_rules! lock {
        ($column:literal) => {
            concat!(
                "SELECT id FROM contacts WHERE company_id = $1 AND ",
                $column,
                " = $2 FOR UPDATE"
            )
        };
    }
    by_identifier(
        company_id,
        id,
        [
            lock!("id"),
            lock!("email"),
            lock!("phone_number"),
            lock!("ext_id"),
        ],
    )
}

/// Deletes a contact by any identifier form, returning its id.
pub fn delete_contact(company_id: Uuid, id: &ContactIdentifier) -> Statement {
    macro_rules! delete {
        ($column:literal) => {
            concat!(
                "DELETE FROM contacts WHERE company_id = $1 AND ",
                $column,
                " = $2 RETURNING id"
            )
        };
    }
    by_identifier(
        company_id,
        id,
        [
            delete!("id"),
            delete!("email"),
            delete!("phone_number"),
            delete!("ext_id"),
        ],
    )
}

/// The contact of a company holding a unique member's value.
pub fn contact_holding(company_id: Uuid, member: UniqueMember, value: &str) -> Statement {
    let sql = match member {
        UniqueMember::Email => "SELECT id FROM contacts WHERE company_id = $1 AND email = $2",
        UniqueMember::PhoneNumber => {
            "SELECT id FROM contacts WHERE company_id = $1 AND phone_number = $2"
        }
        UniqueMember::ExtId => "SELECT id FROM contacts WHERE company_id = $1 AND ext_id = $2",
    };
    Statement::new(sql).arg(company_id).arg(value)
}

/// The index that serves a contact list's `q` on a backend, and so the condition that asks
/// it (docs/reference.md#finding-contacts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextIndex {
    /// SQLite's FTS5 table `contacts_search`, trigram-tokenized
    /// (`migrations/sqlite/0011_search.sql`): the text as a phrase of its trigrams.
    Fts5Trigram,
    /// PostgreSQL's `pg_trgm` GIN index `contacts_search`
    /// (`migrations/postgres/0011_search.sql`): `ILIKE` on the expressions it indexes.
    PgTrgm,
}

/// A contact's full name as the text index holds it: "first last", or the one that is set.
macro_rules! full_name {
    () => {
        "coalesce(c.first_name || ' ' || c.last_name, c.first_name, c.last_name)"
    };
}

/// The conditions of a query on `contacts c`, written in order with their arguments
/// numbered after those already bound.
struct Conditions {
    sql: String,
    args: Vec<Value>,
}

impl Conditions {
    fn new(args: Vec<Value>) -> Self {
        Self {
            sql: String::new(),
            args,
        }
    }

    /// Binds the next argument; its placeholder.
    fn bind(&mut self, value: impl Into<Value>) -> String {
        self.args.push(value.into());
        format!("${}", self.args.len())
    }

    fn and(&mut self, condition: &str) {
        self.sql.push_str(" AND ");
        self.sql.push_str(condition);
    }

    /// Every filter of `query`, each a condition its own index serves.
    fn filters(mut self, query: &ContactQuery, text_index: TextIndex) -> Self {
        if let Some(text) = &query.text {
            let condition = match text_index {
                TextIndex::Fts5Trigram => {
                    let phrase = self.bind(format!("\"{}\"", text.replace('"', "\"\"")));
                    format!(
                        "c.search_key IN \
                         (SELECT rowid FROM contacts_search WHERE contacts_search MATCH {phrase})"
                    )
                }
                TextIndex::PgTrgm => {
                    let pattern = self.bind(contains_pattern(text));
                    format!(
                        concat!(
                            "(",
                            full_name!(),
                            " ILIKE {0} OR c.email ILIKE {0} OR c.ext_id ILIKE {0})"
                        ),
                        pattern
                    )
                }
            };
            self.and(&condition);
        }
        for (member, value) in &query.identifier {
            let value = self.bind(value.as_str());
            self.and(&format!("c.{} = {value}", member.as_str()));
        }
        for (column, range) in [("created_at", query.created), ("updated_at", query.updated)] {
            if let Some(after) = range.after {
                let after = self.bind(after);
                self.and(&format!("c.{column} > {after}"));
            }
            if let Some(before) = range.before {
                let before = self.bind(before);
                self.and(&format!("c.{column} < {before}"));
            }
        }
        for filter in &query.fields {
            let field = self.bind(filter.field_id);
            let values = "SELECT v.contact_id FROM contact_field_values v WHERE v.field_id =";
            let condition = match &filter.test {
                FieldTest::AnyOf(accepted) => {
                    let placeholders: Vec<String> = accepted
                        .iter()
                        .map(|value| self.bind(value.as_str()))
                        .collect();
                    let prefixes: Vec<String> = placeholders
                        .iter()
                        .map(|value| format!("substr({value}, 1, 200)"))
                        .collect();
                    format!(
                        "c.id IN ({values} {field} AND substr(v.value, 1, 200) IN ({}) \
                         AND v.value IN ({}))",
                        prefixes.join(", "),
                        placeholders.join(", ")
                    )
                }
                FieldTest::Compare(comparison, ordinal) => {
                    let ordinal = self.bind(*ordinal);
                    format!(
                        "c.id IN ({values} {field} AND v.ordinal {} {ordinal})",
                        comparison.operator()
                    )
                }
                FieldTest::Exists(true) => format!("c.id IN ({values} {field})"),
                FieldTest::Exists(false) => format!(
                    "NOT EXISTS (SELECT 1 FROM contact_field_values v \
                     WHERE v.contact_id = c.id AND v.field_id = {field})"
                ),
            };
            self.and(&condition);
        }
        self
    }
}

/// A page of the contacts `query` finds, in its order, after the position, at most `limit`
/// contacts, one row per custom field value. The page is read by the index of its order
/// (`contacts_newest`, `contacts_updated`), each filter a condition its own index serves;
/// the statement's text follows the filters given, and each text is prepared once per
/// connection like any other statement.
pub fn find_contacts(
    company_id: Uuid,
    query: &ContactQuery,
    after: ListPosition,
    limit: u32,
    text_index: TextIndex,
) -> Statement {
    let column = if query.sort.by_update() {
        "updated_at"
    } else {
        "created_at"
    };
    let (direction, beyond) = if query.sort.descending() {
        ("DESC", "<")
    } else {
        ("ASC", ">")
    };
    let args = vec![
        company_id.into(),
        after.at_ms.into(),
        after.id.into(),
        limit.into(),
    ];
    let conditions = Conditions::new(args).filters(query, text_index);
    let sql = format!(
        concat!(
            "SELECT ",
            contact_columns!(),
            " FROM (SELECT * FROM contacts c \
               WHERE c.company_id = $1 AND (c.{column}, c.id) {beyond} ($2, $3){conditions} \
               ORDER BY c.{column} {direction}, c.id {direction} LIMIT $4) c",
            contact_values_join!(),
            "ORDER BY c.{column} {direction}, c.id {direction}, f.key"
        ),
        column = column,
        beyond = beyond,
        conditions = conditions.sql,
        direction = direction,
    );
    Statement {
        sql: sql.into(),
        args: conditions.args,
    }
}

/// How many contacts `query` finds (its order aside).
pub fn count_found_contacts(
    company_id: Uuid,
    query: &ContactQuery,
    text_index: TextIndex,
) -> Statement {
    let conditions = Conditions::new(vec![company_id.into()]).filters(query, text_index);
    Statement {
        sql: format!(
            "SELECT count(*) FROM contacts c WHERE c.company_id = $1{}",
            conditions.sql
        )
        .into(),
        args: conditions.args,
    }
}

/// The `ILIKE` pattern of a contains-search: `text` anywhere, its wildcards taken literally.
fn contains_pattern(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// Every contact of a company, newest first, one row per custom field value: read row by
/// row, in one snapshot, by an export.
pub fn export_contacts(company_id: Uuid) -> Statement {
    const SQL: &str = concat!(
        "SELECT ",
        contact_columns!(),
        " FROM contacts c",
        contact_values_join!(),
        "WHERE c.company_id = $1 ORDER BY c.created_at DESC, c.id DESC, f.key"
    );
    Statement::new(SQL).arg(company_id)
}

pub fn count_contacts(company_id: Uuid) -> Statement {
    Statement::new("SELECT count(*) FROM contacts WHERE company_id = $1").arg(company_id)
}

pub fn insert_contact(id: Uuid, company_id: Uuid, members: &ContactMembers, now: i64) -> Statement {
    Statement::new(
        "INSERT INTO contacts (id, company_id, email, phone_number, ext_id, first_name, \
         last_name, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)",
    )
    .arg(id)
    .arg(company_id)
    .arg(&members.email)
    .arg(&members.phone_number)
    .arg(&members.ext_id)
    .arg(&members.first_name)
    .arg(&members.last_name)
    .arg(now)
}

/// Sets a contact's identifiers. Run only when one of them changes: SQLite rewrites the
/// entry of every index whose column a statement assigns, even to the same value, and with
/// three unique indexes that nearly quadrupled the pages each seed PATCH wrote.
pub fn update_contact_identifiers(id: Uuid, members: &ContactMembers) -> Statement {
    Statement::new("UPDATE contacts SET email = $2, phone_number = $3, ext_id = $4 WHERE id = $1")
        .arg(id)
        .arg(&members.email)
        .arg(&members.phone_number)
        .arg(&members.ext_id)
}

/// Sets a contact's names and `updated_at`: run by every update that changes anything.
pub fn update_contact(id: Uuid, members: &ContactMembers, updated_at: i64) -> Statement {
    Statement::new(
        "UPDATE contacts SET first_name = $2, last_name = $3, updated_at = $4 WHERE id = $1",
    )
    .arg(id)
    .arg(&members.first_name)
    .arg(&members.last_name)
    .arg(updated_at)
}

pub fn upsert_value(contact_id: Uuid, write: &FieldWrite) -> Statement {
    Statement::new(
        "INSERT INTO contact_field_values (contact_id, field_id, value, ordinal) \
         VALUES ($1, $2, $3, $4) \
         ON CONFLICT (contact_id, field_id) \
         DO UPDATE SET value = excluded.value, ordinal = excluded.ordinal",
    )
    .arg(contact_id)
    .arg(write.field_id)
    .arg(write.value.to_storage())
    .arg(write.value.ordinal())
}

pub fn delete_value(contact_id: Uuid, field_id: Uuid) -> Statement {
    Statement::new("DELETE FROM contact_field_values WHERE contact_id = $1 AND field_id = $2")
        .arg(contact_id)
        .arg(field_id)
}

pub fn insert_company(id: Uuid, name: &str, cursor_secret: &[u8], now: i64) -> Statement {
    Statement::new(
        "INSERT INTO companies (id, name, cursor_secret, created_at) VALUES ($1, $2, $3, $4) \
         RETURNING id, name, created_at",
    )
    .arg(id)
    .arg(name)
    .arg(cursor_secret)
    .arg(now)
}

pub fn list_companies() -> Statement {
    Statement::new("SELECT id, name, created_at FROM companies ORDER BY created_at, id")
}

/// A company by its id or, failing that, by its name: a match on the id wins.
pub fn find_company(id_or_name: &str) -> Statement {
    Statement::new(
        "SELECT id, name, created_at FROM companies \
         WHERE id = $1 OR name = $2 ORDER BY (id = $1) DESC LIMIT 1",
    )
    .arg(Uuid::try_parse(id_or_name).ok())
    .arg(id_or_name)
}

pub fn insert_key(id: Uuid, company_id: Uuid, key: &NewApiKey, now: i64) -> Statement {
    Statement::new(concat!(
        "INSERT INTO api_keys (id, company_id, name, prefix, key_hash, created_at, scopes, \
         rate_per_second, rate_burst) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING ",
        key_columns!()
    ))
    .arg(id)
    .arg(company_id)
    .arg(&key.name)
    .arg(key.prefix.as_str())
    .arg(&key.key_hash[..])
    .arg(now)
    .arg(scope_names(&key.scopes))
    .arg(key.rate_limit.map(|limit| i64::from(limit.per_second)))
    .arg(key.rate_limit.map(|limit| i64::from(limit.burst)))
}

/// A key's scopes as its `scopes` column holds them: names separated by spaces
/// (`migrations/sqlite/0008_key_scopes.sql`), read back by `rows::scopes`.
fn scope_names(scopes: &[Scope]) -> String {
    let names: Vec<&str> = scopes.iter().map(|scope| scope.as_str()).collect();
    names.join(" ")
}

pub fn list_keys(company_id: Uuid) -> Statement {
    Statement::new(concat!(
        "SELECT ",
        key_columns!(),
        " FROM api_keys WHERE company_id = $1 ORDER BY created_at, id"
    ))
    .arg(company_id)
}

pub fn revoke_key(key_id: Uuid, now: i64) -> Statement {
    Statement::new(concat!(
        "UPDATE api_keys SET revoked_at = coalesce(revoked_at, $2) WHERE id = $1 RETURNING ",
        key_columns!()
    ))
    .arg(key_id)
    .arg(now)
}

pub fn authenticate(key_hash: &[u8; 32]) -> Statement {
    Statement::new(
        "SELECT k.id, k.company_id, c.cursor_secret, k.last_used_at, k.scopes, \
         k.rate_per_second, k.rate_burst \
         FROM api_keys k JOIN companies c ON c.id = k.company_id \
         WHERE k.key_hash = $1 AND k.revoked_at IS NULL",
    )
    .arg(&key_hash[..])
}

pub fn touch_key(key_id: Uuid, at: i64) -> Statement {
    Statement::new("UPDATE api_keys SET last_used_at = $2 WHERE id = $1")
        .arg(key_id)
        .arg(at)
}

pub fn insert_field(id: Uuid, company_id: Uuid, field: &NewFieldDefinition, now: i64) -> Statement {
    Statement::new(concat!(
        "INSERT INTO custom_fields (id, company_id, key, display_name, field_type, options, \
         created_at) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING ",
        field_columns!()
    ))
    .arg(id)
    .arg(company_id)
    .arg(field.key.as_str())
    .arg(field.display_name.as_str())
    .arg(field.field_type.as_str())
    .arg(
        field
            .options
            .as_ref()
            .map(|options| options_json(options.as_slice())),
    )
    .arg(now)
}

pub fn list_fields(company_id: Uuid) -> Statement {
    Statement::new(concat!(
        "SELECT ",
        field_columns!(),
        " FROM custom_fields WHERE company_id = $1 ORDER BY key"
    ))
    .arg(company_id)
}

pub fn get_field(company_id: Uuid, key: &FieldKey) -> Statement {
    Statement::new(concat!(
        "SELECT ",
        field_columns!(),
        " FROM custom_fields WHERE company_id = $1 AND key = $2"
    ))
    .arg(company_id)
    .arg(key.as_str())
}

/// Reads a definition and locks its row until the transaction ends, so a change is judged
/// against what it overwrites. PostgreSQL only (see `Connection::locks_rows`).
pub fn lock_field(company_id: Uuid, key: &FieldKey) -> Statement {
    Statement::new(concat!(
        "SELECT ",
        field_columns!(),
        " FROM custom_fields WHERE company_id = $1 AND key = $2 FOR UPDATE"
    ))
    .arg(company_id)
    .arg(key.as_str())
}

/// Writes a definition's name and options, as `FieldDefinitionChange` made them from the
/// row read in the same transaction. Options are `NULL` for every type but select.
pub fn update_field(field: &FieldDefinition) -> Statement {
    let options =
        (field.field_type == contactd_api::FieldType::Select).then(|| options_json(&field.options));
    Statement::new("UPDATE custom_fields SET display_name = $2, options = $3 WHERE id = $1")
        .arg(field.id)
        .arg(field.display_name.as_str())
        .arg(options)
}

/// Deletes a definition (and by cascade every value of it), returning it as it was.
pub fn delete_field(company_id: Uuid, key: &FieldKey) -> Statement {
    Statement::new(concat!(
        "DELETE FROM custom_fields WHERE company_id = $1 AND key = $2 RETURNING ",
        field_columns!()
    ))
    .arg(company_id)
    .arg(key.as_str())
}

pub fn count_field_values(company_id: Uuid, key: &FieldKey) -> Statement {
    Statement::new(
        "SELECT count(*) FROM contact_field_values v \
         JOIN custom_fields f ON f.id = v.field_id WHERE f.company_id = $1 AND f.key = $2",
    )
    .arg(company_id)
    .arg(key.as_str())
}

pub fn insert_user(
    id: Uuid,
    company_id: Uuid,
    email: &Email,
    password_hash: &str,
    now: i64,
) -> Statement {
    Statement::new(
        "INSERT INTO users (id, company_id, email, password_hash, created_at) \
         VALUES ($1, $2, $3, $4, $5) RETURNING id, company_id, email, created_at",
    )
    .arg(id)
    .arg(company_id)
    .arg(email.as_str())
    .arg(password_hash)
    .arg(now)
}

pub fn list_users(company_id: Uuid) -> Statement {
    Statement::new(
        "SELECT id, company_id, email, created_at FROM users \
         WHERE company_id = $1 ORDER BY created_at, id",
    )
    .arg(company_id)
}

/// Sets a user's password hash, returning the user's id.
pub fn set_password(email: &Email, password_hash: &str) -> Statement {
    Statement::new("UPDATE users SET password_hash = $2 WHERE email = $1 RETURNING id")
        .arg(email.as_str())
        .arg(password_hash)
}

pub fn delete_user_sessions(user_id: Uuid) -> Statement {
    Statement::new("DELETE FROM sessions WHERE user_id = $1").arg(user_id)
}

pub fn delete_user(email: &Email) -> Statement {
    Statement::new("DELETE FROM users WHERE email = $1").arg(email.as_str())
}

pub fn user_credentials(email: &Email) -> Statement {
    Statement::new("SELECT id, password_hash FROM users WHERE email = $1").arg(email.as_str())
}

/// Deletes the login windows that opened at or before `ended`: ended ones, kept for nothing.
pub fn purge_login_attempts(ended: i64) -> Statement {
    Statement::new("DELETE FROM login_attempts WHERE window_started_at <= $1").arg(ended)
}

/// Counts a password check of an email at `now` and returns a row, unless the email's
/// window (one that opened after `ended`) already has `limit` checks: then it changes
/// nothing and returns no row. One statement, so parallel logins cannot all pass the check
/// before any is counted. A window that opened at or before `ended` has ended: the check
/// opens a new one.
pub fn reserve_login_attempt(email: &Email, now: i64, ended: i64, limit: u32) -> Statement {
    Statement::new(
        "INSERT INTO login_attempts (email, attempts, window_started_at) VALUES ($1, 1, $2) \
         ON CONFLICT (email) DO UPDATE SET \
         attempts = CASE WHEN login_attempts.window_started_at > $3 \
             THEN login_attempts.attempts + 1 ELSE 1 END, \
         window_started_at = CASE WHEN login_attempts.window_started_at > $3 \
             THEN login_attempts.window_started_at ELSE $2 END \
         WHERE login_attempts.window_started_at <= $3 OR login_attempts.attempts < $4 \
         RETURNING attempts",
    )
    .arg(email.as_str())
    .arg(now)
    .arg(ended)
    .arg(limit)
}

pub fn login_window_start(email: &Email) -> Statement {
    Statement::new("SELECT window_started_at FROM login_attempts WHERE email = $1")
        .arg(email.as_str())
}

pub fn clear_login_attempts(email: &Email) -> Statement {
    Statement::new("DELETE FROM login_attempts WHERE email = $1").arg(email.as_str())
}

/// Clears the login attempts of a user's email.
pub fn clear_user_login_attempts(user_id: Uuid) -> Statement {
    Statement::new(
        "DELETE FROM login_attempts WHERE email = (SELECT email FROM users WHERE id = $1)",
    )
    .arg(user_id)
}

pub fn delete_expired_sessions(now: i64) -> Statement {
    Statement::new("DELETE FROM sessions WHERE expires_at <= $1").arg(now)
}

pub fn insert_session(session: &NewSession, now: i64) -> Statement {
    Statement::new(
        "INSERT INTO sessions (token_hash, user_id, csrf_token, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .arg(&session.token_hash[..])
    .arg(session.user_id)
    .arg(session.csrf_token.as_str())
    .arg(now)
    .arg(session.expires_at.timestamp_millis())
}

/// The user, company and CSRF token of a session unexpired at `now`.
pub fn find_session(token_hash: &[u8; 32], now: i64) -> Statement {
    Statement::new(
        "SELECT u.id AS user_id, u.email, c.id AS company_id, c.name AS company_name, \
         c.cursor_secret, s.csrf_token \
         FROM sessions s JOIN users u ON u.id = s.user_id JOIN companies c ON c.id = u.company_id \
         WHERE s.token_hash = $1 AND s.expires_at > $2",
    )
    .arg(&token_hash[..])
    .arg(now)
}

pub fn delete_session(token_hash: &[u8; 32]) -> Statement {
    Statement::new("DELETE FROM sessions WHERE token_hash = $1").arg(&token_hash[..])
}

/// The custom fields of every company whose key is reserved
/// (`domain::custom_field::RESERVED_KEYS`), with the company's name.
pub fn fields_with_reserved_keys() -> Statement {
    const SQL: &str = "SELECT f.company_id, c.name AS company_name, f.key \
         FROM custom_fields f JOIN companies c ON c.id = f.company_id \
         WHERE f.key IN ($1, $2, $3, $4, $5, $6, $7, $8, $9) ORDER BY c.name, f.key";
    RESERVED_KEYS
        .into_iter()
        .fold(Statement::new(SQL), Statement::arg)
}

/// The version a data check last completed for.
pub fn data_check_version(check: &str) -> Statement {
    Statement::new("SELECT version FROM data_checks WHERE name = $1").arg(check)
}

/// Records that a data check completed for a version at `now`.
pub fn record_data_check(check: &str, version: i64, now: i64) -> Statement {
    Statement::new(
        "INSERT INTO data_checks (name, version, completed_at) VALUES ($1, $2, $3) \
         ON CONFLICT (name) DO UPDATE \
         SET version = excluded.version, completed_at = excluded.completed_at",
    )
    .arg(check)
    .arg(version)
    .arg(now)
}

/// Up to `limit` stored emails of a table, after the row `after`, in id order, every
/// company's.
pub fn stored_emails(table: EmailTable, after: Uuid, limit: u32) -> Statement {
    let sql = match table {
        EmailTable::Contacts => {
            "SELECT id, company_id, email FROM contacts \
             WHERE email IS NOT NULL AND id > $1 ORDER BY id LIMIT $2"
        }
        EmailTable::Users => {
            "SELECT id, company_id, email FROM users WHERE id > $1 ORDER BY id LIMIT $2"
        }
    };
    Statement::new(sql).arg(after).arg(limit)
}

/// Gives a dashboard user a new email if they still hold the stored one. (A contact's is
/// an update of the contact, with its event: `contact_writes::normalise_email`.)
pub fn rewrite_user_email(stored: &StoredEmail, email: &Email) -> Statement {
    Statement::new("UPDATE users SET email = $3 WHERE id = $1 AND email = $2")
        .arg(stored.id)
        .arg(stored.email.as_str())
        .arg(email.as_str())
}

/// Records an event in the transaction of its change; `tx` is the table's default, a
/// transaction bound on PostgreSQL (`migrations/postgres/0005_events.sql`). A contact's
/// event links to the contact's latest one before it (`previous`, the chain of its history:
/// `migrations/sqlite/0007_history_chain.sql`), so it is recorded while the contact still
/// names that one: before [`link_latest_event`], and before the row of a deletion goes.
pub fn insert_event(
    id: Uuid,
    company_id: Uuid,
    event_type: EventType,
    contact_id: Option<Uuid>,
    occurred_at: i64,
    actor: &Actor,
    data: String,
) -> Statement {
    Statement::new(
        "INSERT INTO events \
         (id, company_id, type, contact_id, occurred_at, actor_type, actor_id, data, previous) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, \
         (SELECT last_event FROM contacts WHERE company_id = $2 AND id = $4))",
    )
    .arg(id)
    .arg(company_id)
    .arg(event_type.as_str())
    .arg(contact_id)
    .arg(occurred_at)
    .arg(actor.kind())
    .arg(actor.id())
    .arg(data)
}

/// Makes the event `event_id` its contact's latest: the start of the contact's history.
pub fn link_latest_event(company_id: Uuid, contact_id: Uuid, event_id: Uuid) -> Statement {
    Statement::new(
        "UPDATE contacts SET last_event = (SELECT position FROM events WHERE id = $3) \
         WHERE company_id = $1 AND id = $2",
    )
    .arg(company_id)
    .arg(contact_id)
    .arg(event_id)
}

/// A page of a company's feed after `after`, in feed order: only listable events, which no
/// open transaction can precede any more.
pub fn list_events(company_id: Uuid, after: EventPosition, limit: u32) -> Statement {
    Statement::new(concat!(
        "SELECT ",
        event_columns!(),
        " FROM listable_events WHERE company_id = $1 AND (tx, position) > ($2, $3) \
         ORDER BY tx, position LIMIT $4"
    ))
    .arg(company_id)
    .arg(after.tx)
    .arg(after.position)
    .arg(limit)
}

/// A page of one contact's events, newest first, up to `limit` of them: its history's chain
/// (`migrations/sqlite/0007_history_chain.sql`) walked from its latest event (the one the
/// contact names or, once it is deleted, its deletion, which the partial index
/// `events_deleted` finds by this very `type` literal), or from the one before the event at
/// `before`.
pub fn contact_history(
    company_id: Uuid,
    contact_id: Uuid,
    before: Option<i64>,
    limit: u32,
) -> Statement {
    macro_rules! history_from {
        ($start:expr) => {
            concat!(
                "WITH RECURSIVE chain (at, depth) AS (SELECT ",
                $start,
                ", CAST(1 AS BIGINT) UNION ALL SELECT events.previous, chain.depth + 1 \
                 FROM chain JOIN events ON events.position = chain.at \
                 WHERE chain.depth < $3) SELECT ",
                event_columns!(),
                " FROM chain JOIN events ON events.position = chain.at \
                 WHERE events.company_id = $1 AND events.contact_id = $2 \
                 ORDER BY events.position DESC"
            )
        };
    }
    let sql = match before {
        None => history_from!(
            "COALESCE((SELECT last_event FROM contacts WHERE company_id = $1 AND id = $2), \
             (SELECT max(position) FROM events WHERE company_id = $1 AND contact_id = $2 \
             AND type = 'contact.deleted'))"
        ),
        Some(_) => history_from!(
            "(SELECT previous FROM events \
             WHERE company_id = $1 AND contact_id = $2 AND position = $4)"
        ),
    };
    let statement = Statement::new(sql)
        .arg(company_id)
        .arg(contact_id)
        .arg(limit);
    match before {
        Some(before) => statement.arg(before),
        None => statement,
    }
}

/// How far retention has deleted a company's feed: `tx`, `position`.
pub fn event_horizon(company_id: Uuid) -> Statement {
    Statement::new("SELECT tx, position FROM event_horizons WHERE company_id = $1").arg(company_id)
}

/// The oldest listable events of a company, in feed order, with their times, for
/// retention to pick what it deletes.
pub fn oldest_events(company_id: Uuid, limit: u32) -> Statement {
    Statement::new(
        "SELECT tx, position, occurred_at FROM listable_events WHERE company_id = $1 \
         ORDER BY tx, position LIMIT $2",
    )
    .arg(company_id)
    .arg(limit)
}

/// Deletes a company's feed up to and including `through`.
pub fn delete_events_through(company_id: Uuid, through: EventPosition) -> Statement {
    Statement::new("DELETE FROM events WHERE company_id = $1 AND (tx, position) <= ($2, $3)")
        .arg(company_id)
        .arg(through.tx)
        .arg(through.position)
}

/// Records that a company's feed is deleted up to and including `through`.
pub fn set_event_horizon(company_id: Uuid, through: EventPosition) -> Statement {
    Statement::new(
        "INSERT INTO event_horizons (company_id, tx, position) VALUES ($1, $2, $3) \
         ON CONFLICT (company_id) DO UPDATE SET tx = excluded.tx, position = excluded.position",
    )
    .arg(company_id)
    .arg(through.tx)
    .arg(through.position)
}

/// The last listable event of a company's feed: where a new webhook endpoint starts.
/// The newest event a company has, listable or not: on PostgreSQL the feed's horizon can
/// trail behind committed events while any transaction of the cluster is open, and a new
/// webhook endpoint must not start behind what was committed before it was created.
pub fn last_event(company_id: Uuid) -> Statement {
    Statement::new(
        "SELECT tx, position FROM events WHERE company_id = $1 \
         ORDER BY tx DESC, position DESC LIMIT 1",
    )
    .arg(company_id)
}

/// The webhook gauges (docs/reference.md#metrics), across every company. The oldest event
/// an endpoint has still to deliver is looked for in `events`, listable or not, so that a
/// transaction held open on PostgreSQL, which holds the feed back, shows as a rising age.
pub fn delivery_gauges() -> Statement {
    Statement::new(
        "SELECT (SELECT count(*) FROM webhook_retries) AS retries_pending, \
         (SELECT count(*) FROM webhooks WHERE disabled_at IS NULL) AS endpoints_enabled, \
         (SELECT count(*) FROM webhooks WHERE disabled_at IS NOT NULL) AS endpoints_disabled, \
         (SELECT min((SELECT e.occurred_at FROM events e WHERE e.company_id = w.company_id \
         AND (e.tx, e.position) > (w.feed_tx, w.feed_position) \
         ORDER BY e.tx, e.position LIMIT 1)) \
         FROM webhooks w WHERE w.disabled_at IS NULL) AS oldest_undelivered_at",
    )
}

/// Locks a company's row until the transaction ends, so that concurrent creations of its
/// webhook endpoints count them one after the other. PostgreSQL only (see
/// `Connection::locks_rows`).
pub fn lock_company(company_id: Uuid) -> Statement {
    Statement::new("SELECT id FROM companies WHERE id = $1 FOR UPDATE").arg(company_id)
}

pub fn count_webhooks(company_id: Uuid) -> Statement {
    Statement::new("SELECT count(*) FROM webhooks WHERE company_id = $1").arg(company_id)
}

/// The stored form of an endpoint's event types: their names, comma-separated; empty for
/// every type.
pub fn event_types_text(types: &[EventType]) -> String {
    let names: Vec<&str> = types.iter().map(|kind| kind.as_str()).collect();
    names.join(",")
}

pub fn insert_webhook(
    id: Uuid,
    company_id: Uuid,
    webhook: &NewWebhook,
    feed: EventPosition,
    now: i64,
) -> Statement {
    Statement::new(concat!(
        "INSERT INTO webhooks (id, company_id, url, event_types, description, secret, \
         created_at, updated_at, feed_tx, feed_position) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8, $9) RETURNING ",
        webhook_columns!()
    ))
    .arg(id)
    .arg(company_id)
    .arg(webhook.url.as_str())
    .arg(event_types_text(&webhook.event_types))
    .arg(webhook.description.clone())
    .arg(webhook.secret.as_str())
    .arg(now)
    .arg(feed.tx)
    .arg(feed.position)
}

pub fn list_webhooks(company_id: Uuid) -> Statement {
    Statement::new(concat!(
        "SELECT ",
        webhook_columns!(),
        " FROM webhooks WHERE company_id = $1 ORDER BY created_at, id"
    ))
    .arg(company_id)
}

/// One endpoint of a company; `lock` also locks its row until the transaction ends
/// (PostgreSQL only, see `Connection::locks_rows`).
pub fn webhook(company_id: Uuid, id: Uuid, lock: bool) -> Statement {
    let sql = if lock {
        concat!(
            "SELECT ",
            webhook_columns!(),
            " FROM webhooks WHERE company_id = $1 AND id = $2 FOR UPDATE"
        )
    } else {
        concat!(
            "SELECT ",
            webhook_columns!(),
            " FROM webhooks WHERE company_id = $1 AND id = $2"
        )
    };
    Statement::new(sql).arg(company_id).arg(id)
}

/// Writes what an endpoint's settings are now (after a change of them).
pub fn update_webhook(webhook: &Webhook, now: i64) -> Statement {
    let (disabled_at, disabled_reason) = match &webhook.disabled {
        Some((at, reason)) => (Some(at.timestamp_millis()), reason.clone()),
        None => (None, None),
    };
    Statement::new(concat!(
        "UPDATE webhooks SET url = $3, event_types = $4, description = $5, disabled_at = $6, \
         disabled_reason = $7, failing_since = $8, updated_at = $9 \
         WHERE company_id = $1 AND id = $2 RETURNING ",
        webhook_columns!()
    ))
    .arg(webhook.company_id)
    .arg(webhook.id)
    .arg(webhook.url.as_str())
    .arg(event_types_text(&webhook.event_types))
    .arg(webhook.description.clone())
    .arg(disabled_at)
    .arg(disabled_reason)
    .arg(webhook.failing_since)
    .arg(now)
}

/// Gives an endpoint a new secret; the one it had signs too until `previous_until`.
pub fn rotate_webhook_secret(
    company_id: Uuid,
    id: Uuid,
    secret: &str,
    previous_until: i64,
    now: i64,
) -> Statement {
    Statement::new(concat!(
        "UPDATE webhooks SET previous_secret = secret, previous_secret_until = $4, \
         secret = $3, updated_at = $5 WHERE company_id = $1 AND id = $2 RETURNING ",
        webhook_columns!()
    ))
    .arg(company_id)
    .arg(id)
    .arg(secret)
    .arg(previous_until)
    .arg(now)
}

pub fn delete_webhook(company_id: Uuid, id: Uuid) -> Statement {
    Statement::new("DELETE FROM webhooks WHERE company_id = $1 AND id = $2 RETURNING id")
        .arg(company_id)
        .arg(id)
}

/// A page of an endpoint's attempts, newest first, before the attempt at `before`.
pub fn list_attempts(webhook_id: Uuid, before: i64, limit: u32) -> Statement {
    Statement::new(concat!(
        "SELECT ",
        attempt_columns!(),
        " FROM webhook_attempts WHERE webhook_id = $1 AND position < $2 \
         ORDER BY position DESC LIMIT $3"
    ))
    .arg(webhook_id)
    .arg(before)
    .arg(limit)
}

/// Where a company's event stands in the feed, by its id.
pub fn event_position(company_id: Uuid, event_id: Uuid) -> Statement {
    Statement::new("SELECT position FROM events WHERE company_id = $1 AND id = $2")
        .arg(company_id)
        .arg(event_id)
}

/// The number the next attempt to deliver an event to an endpoint has.
pub fn next_attempt(webhook_id: Uuid, event_id: Uuid) -> Statement {
    Statement::new(
        "SELECT coalesce(max(attempt), 0) + 1 FROM webhook_attempts \
         WHERE webhook_id = $1 AND event_id = $2",
    )
    .arg(webhook_id)
    .arg(event_id)
}

/// Schedules the attempt numbered `attempt` of an event's delivery at `due_at`, replacing
/// the one scheduled before, if any.
pub fn schedule_retry(
    webhook_id: Uuid,
    event_position: i64,
    attempt: u32,
    due_at: i64,
) -> Statement {
    Statement::new(
        "INSERT INTO webhook_retries (webhook_id, event_position, attempt, due_at) \
         VALUES ($1, $2, $3, $4) ON CONFLICT (webhook_id, event_position) \
         DO UPDATE SET attempt = excluded.attempt, due_at = excluded.due_at",
    )
    .arg(webhook_id)
    .arg(event_position)
    .arg(attempt)
    .arg(due_at)
}

pub fn delete_retry(webhook_id: Uuid, event_position: i64) -> Statement {
    Statement::new("DELETE FROM webhook_retries WHERE webhook_id = $1 AND event_position = $2")
        .arg(webhook_id)
        .arg(event_position)
}

/// Takes the leases of up to `limit` enabled endpoints that have deliveries to make now
/// (events after their position, or attempts due) and whose lease is free, for `owner`
/// until `until`. On PostgreSQL (`locks_rows`) endpoints another instance is taking at
/// this moment are skipped, not waited for.
pub fn claim_webhooks(
    owner: Uuid,
    now: i64,
    until: i64,
    limit: u32,
    locks_rows: bool,
) -> Statement {
    macro_rules! claim {
        ($lock:literal) => {
            concat!(
                "UPDATE webhooks SET lease_owner = $1, lease_until = $3 WHERE id IN (\
                 SELECT w.id FROM webhooks w WHERE w.disabled_at IS NULL AND w.lease_until < $2 \
                 AND (EXISTS (SELECT 1 FROM listable_events e WHERE e.company_id = w.company_id \
                 AND (e.tx, e.position) > (w.feed_tx, w.feed_position)) \
                 OR EXISTS (SELECT 1 FROM webhook_retries r WHERE r.webhook_id = w.id \
                 AND r.due_at <= $2)) \
                 ORDER BY w.lease_until LIMIT $4",
                $lock,
                ") RETURNING ",
                webhook_columns!()
            )
        };
    }
    let sql = if locks_rows {
        claim!(" FOR UPDATE OF w SKIP LOCKED")
    } else {
        claim!("")
    };
    Statement::new(sql)
        .arg(owner)
        .arg(now)
        .arg(until)
        .arg(limit)
}

/// Extends the leases `owner` holds to `until`, returning the endpoints they are of.
pub fn renew_webhook_leases(owner: Uuid, now: i64, until: i64) -> Statement {
    Statement::new(
        "UPDATE webhooks SET lease_until = $3 WHERE lease_owner = $1 AND lease_until >= $2 \
         RETURNING id",
    )
    .arg(owner)
    .arg(now)
    .arg(until)
}

pub fn release_webhook(webhook_id: Uuid, owner: Uuid) -> Statement {
    Statement::new(
        "UPDATE webhooks SET lease_owner = NULL, lease_until = 0 \
         WHERE id = $1 AND lease_owner = $2",
    )
    .arg(webhook_id)
    .arg(owner)
}

/// An endpoint's attempts due by `now`, soonest first, with their events and the number
/// each attempt will have.
pub fn due_retries(webhook_id: Uuid, now: i64, limit: u32) -> Statement {
    Statement::new(
        "SELECT e.position, e.tx, e.id, e.type, e.occurred_at, e.actor_type, e.actor_id, \
         e.data, r.attempt FROM webhook_retries r JOIN events e ON e.position = r.event_position \
         WHERE r.webhook_id = $1 AND r.due_at <= $2 ORDER BY r.due_at LIMIT $3",
    )
    .arg(webhook_id)
    .arg(now)
    .arg(limit)
}

/// Records a batch's position in the feed and the endpoint's failures, if `owner` still
/// holds its lease (no row returned otherwise); `disable_at` disables it for failing.
/// Returns the endpoint as it is now: an admin may have changed it during the batch.
pub fn record_delivery_batch(
    webhook_id: Uuid,
    owner: Uuid,
    feed: EventPosition,
    failing_since: Option<i64>,
    disable_at: Option<i64>,
) -> Statement {
    Statement::new(concat!(
        "UPDATE webhooks SET feed_tx = $3, feed_position = $4, failing_since = $5, \
         disabled_at = coalesce(disabled_at, $6), \
         disabled_reason = CASE WHEN disabled_at IS NULL AND $6 IS NOT NULL THEN 'failing' \
         ELSE disabled_reason END \
         WHERE id = $1 AND lease_owner = $2 RETURNING ",
        webhook_columns!()
    ))
    .arg(webhook_id)
    .arg(owner)
    .arg(feed.tx)
    .arg(feed.position)
    .arg(failing_since)
    .arg(disable_at)
}

pub fn insert_attempt(webhook_id: Uuid, made: &AttemptMade) -> Statement {
    let attempt = &made.attempt;
    let next_attempt_at = match attempt.outcome {
        DeliveryOutcome::Retrying(at) => Some(at),
        DeliveryOutcome::Delivered | DeliveryOutcome::Failed => None,
    };
    Statement::new(
        "INSERT INTO webhook_attempts (webhook_id, event_id, event_type, attempt, outcome, \
         next_attempt_at, status, error, duration_ms, attempted_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .arg(webhook_id)
    .arg(attempt.event_id)
    .arg(attempt.event_type.as_str())
    .arg(attempt.attempt)
    .arg(attempt.outcome.as_str())
    .arg(next_attempt_at)
    .arg(attempt.status.map(i64::from))
    .arg(attempt.error.clone())
    .arg(i64::try_from(attempt.duration_ms).unwrap_or(i64::MAX))
    .arg(attempt.attempted_at.timestamp_millis())
}

/// Deletes up to `limit` of a company's oldest delivery attempts made before `cutoff`.
pub fn delete_expired_attempts(company_id: Uuid, cutoff: i64, limit: u32) -> Statement {
    Statement::new(
        "DELETE FROM webhook_attempts WHERE position IN (SELECT a.position \
         FROM webhook_attempts a JOIN webhooks w ON w.id = a.webhook_id \
         WHERE w.company_id = $1 AND a.attempted_at < $2 ORDER BY a.position LIMIT $3)",
    )
    .arg(company_id)
    .arg(cutoff)
    .arg(limit)
}

/// Claims an idempotency key for a request (docs/reference.md#idempotency): inserts its
/// row, or takes over one that is past its retention, or one the same request claimed
/// whose lease has passed (its process died before answering), and returns the claim; a
/// row that is someone else's is left alone and no row returned. One statement, so of
/// requests claiming a key at once exactly one is returned a row, also across instances
/// (PostgreSQL queues them on the primary key).
pub fn claim_idempotency_key(request: &IdempotentRequest, now: i64) -> Statement {
    Statement::new(
        "INSERT INTO idempotency_keys \
         (company_id, key, fingerprint, claim, created_at, locked_until, status, headers, body) \
         VALUES ($1, $2, $3, $4, $5, $6, NULL, NULL, $7) \
         ON CONFLICT (company_id, key) DO UPDATE SET \
         fingerprint = excluded.fingerprint, claim = excluded.claim, \
         created_at = excluded.created_at, locked_until = excluded.locked_until, \
         status = NULL, headers = NULL, body = excluded.body \
         WHERE idempotency_keys.created_at <= $8 \
         OR (idempotency_keys.status IS NULL AND idempotency_keys.locked_until <= $5 \
             AND idempotency_keys.fingerprint = excluded.fingerprint) \
         RETURNING claim",
    )
    .arg(request.company_id)
    .arg(request.key.as_str())
    .arg(&request.fingerprint[..])
    .arg(request.claim)
    .arg(now)
    .arg(now + duration_ms(request.lease))
    .arg(&[][..])
    .arg(now - duration_ms(request.retention))
}

/// The request a key was claimed for, and its answer once recorded.
pub fn idempotency_key(company_id: Uuid, key: &str) -> Statement {
    Statement::new(
        "SELECT fingerprint, status, headers, body FROM idempotency_keys \
         WHERE company_id = $1 AND key = $2",
    )
    .arg(company_id)
    .arg(key)
}

/// Records the answer of the request holding `claim`; nothing if another took the key over.
pub fn answer_idempotency_key(
    company_id: Uuid,
    key: &str,
    claim: Uuid,
    response: &StoredResponse,
) -> Statement {
    let headers = serde_json::to_string(&response.headers).expect("strings serialize");
    Statement::new(
        "UPDATE idempotency_keys SET status = $4, headers = $5, body = $6, locked_until = NULL \
         WHERE company_id = $1 AND key = $2 AND claim = $3",
    )
    .arg(company_id)
    .arg(key)
    .arg(claim)
    .arg(i64::from(response.status))
    .arg(headers)
    .arg(&response.body[..])
}

/// Frees the key of the unanswered request holding `claim`.
pub fn release_idempotency_key(company_id: Uuid, key: &str, claim: Uuid) -> Statement {
    Statement::new(
        "DELETE FROM idempotency_keys \
         WHERE company_id = $1 AND key = $2 AND claim = $3 AND status IS NULL",
    )
    .arg(company_id)
    .arg(key)
    .arg(claim)
}

/// Deletes up to `limit` of the oldest keys claimed at or before `cutoff`.
pub fn delete_expired_idempotency_keys(cutoff: i64, limit: u32) -> Statement {
    Statement::new(
        "DELETE FROM idempotency_keys WHERE (company_id, key) IN \
         (SELECT company_id, key FROM idempotency_keys WHERE created_at <= $1 \
          ORDER BY created_at LIMIT $2)",
    )
    .arg(cutoff)
    .arg(limit)
}
