//! The SQL both backends run, written once.
//!
//! Placeholders are `$N`, which PostgreSQL and SQLite both read as "the N-th argument";
//! the schema is the same in both migration trees (ids are UUIDs, times are integer
//! milliseconds, field keys sort bytewise), so one statement means the same on both. Every
//! statement is a `&'static str`, so each is prepared once per connection and cached.
//! What only one backend needs (SQLite's `BEGIN IMMEDIATE`, PostgreSQL's row lock) stays in
//! that backend's file.

use super::{EmailTable, IdentifierMatch, UniqueMember};

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
        "id, company_id, name, prefix, created_at, last_used_at, revoked_at"
    };
}

macro_rules! field_columns {
    () => {
        "id, key, display_name, field_type, options, created_at"
    };
}

/// Reads one contact, one row per custom field value: `$1` the company, `$2` the value of
/// the identifier's column.
pub fn contact_by_identifier(id: &IdentifierMatch<'_>) -> &'static str {
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
    match id.column() {
        None => select!("id"),
        Some(UniqueMember::Email) => select!("email"),
        Some(UniqueMember::PhoneNumber) => select!("phone_number"),
        Some(UniqueMember::ExtId) => select!("ext_id"),
    }
}

/// Deletes a contact by any identifier form (`$1` company, `$2` value), returning its id.
pub fn delete_contact(id: &IdentifierMatch<'_>) -> &'static str {
    macro_rules! delete {
        ($column:literal) => {
            concat!(
                "DELETE FROM contacts WHERE company_id = $1 AND ",
                $column,
                " = $2 RETURNING id"
            )
        };
    }
    match id.column() {
        None => delete!("id"),
        Some(UniqueMember::Email) => delete!("email"),
        Some(UniqueMember::PhoneNumber) => delete!("phone_number"),
        Some(UniqueMember::ExtId) => delete!("ext_id"),
    }
}

/// The contact of a company (`$1`) holding a unique member's value (`$2`).
pub fn contact_holding(member: UniqueMember) -> &'static str {
    match member {
        UniqueMember::Email => "SELECT id FROM contacts WHERE company_id = $1 AND email = $2",
        UniqueMember::PhoneNumber => {
            "SELECT id FROM contacts WHERE company_id = $1 AND phone_number = $2"
        }
        UniqueMember::ExtId => "SELECT id FROM contacts WHERE company_id = $1 AND ext_id = $2",
    }
}

/// A page of contacts, newest first, after the position (`$2` created_at, `$3` id), at
/// most `$4` contacts, one row per custom field value.
pub const LIST_CONTACTS: &str = concat!(
    "SELECT ",
    contact_columns!(),
    " FROM (SELECT * FROM contacts \
       WHERE company_id = $1 AND (created_at, id) < ($2, $3) \
       ORDER BY created_at DESC, id DESC LIMIT $4) c",
    contact_values_join!(),
    "ORDER BY c.created_at DESC, c.id DESC, f.key"
);

/// Up to `$3` contacts of a company (`$1`), newest first, whose "first last" name matches
/// the `LIKE` pattern `$2`, one row per custom field value. Both sides go through the
/// database's `lower()`, so the match is as case-insensitive as that is. No index serves
/// a match anywhere in a name: this reads every contact of the company, which is fine for
/// a person searching in the dashboard.
pub const SEARCH_CONTACTS_BY_NAME: &str = concat!(
    "SELECT ",
    contact_columns!(),
    " FROM (SELECT * FROM contacts \
       WHERE company_id = $1 \
       AND lower(coalesce(first_name, '') || ' ' || coalesce(last_name, '')) \
           LIKE lower($2) ESCAPE '\\' \
       ORDER BY created_at DESC, id DESC LIMIT $3) c",
    contact_values_join!(),
    "ORDER BY c.created_at DESC, c.id DESC, f.key"
);

/// Every contact of a company (`$1`), newest first, one row per custom field value: read
/// row by row, in one snapshot, by an export.
pub const EXPORT_CONTACTS: &str = concat!(
    "SELECT ",
    contact_columns!(),
    " FROM contacts c",
    contact_values_join!(),
    "WHERE c.company_id = $1 ORDER BY c.created_at DESC, c.id DESC, f.key"
);

pub const COUNT_CONTACTS: &str = "SELECT count(*) FROM contacts WHERE company_id = $1";

pub const INSERT_CONTACT: &str = "INSERT INTO contacts (id, company_id, email, phone_number, \
     ext_id, first_name, last_name, created_at, updated_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)";

/// Sets a contact's identifiers (`$1` the contact). Run only when one of them changes:
/// SQLite rewrites the entry of every index whose column a statement assigns, even to the
/// same value, and with three unique indexes that nearly quadrupled the pages each seed
/// PATCH wrote.
pub const UPDATE_CONTACT_IDENTIFIERS: &str = "UPDATE contacts SET email = $2, \
     phone_number = $3, ext_id = $4 WHERE id = $1";

/// Sets a contact's names and `updated_at` (`$1` the contact): run by every update that
/// changes anything.
pub const UPDATE_CONTACT: &str = "UPDATE contacts SET first_name = $2, last_name = $3, \
     updated_at = $4 WHERE id = $1";

pub const UPSERT_VALUE: &str = "INSERT INTO contact_field_values (contact_id, field_id, value) \
     VALUES ($1, $2, $3) \
     ON CONFLICT (contact_id, field_id) DO UPDATE SET value = excluded.value";

pub const DELETE_VALUE: &str =
    "DELETE FROM contact_field_values WHERE contact_id = $1 AND field_id = $2";

pub const INSERT_COMPANY: &str = "INSERT INTO companies (id, name, cursor_secret, created_at) \
     VALUES ($1, $2, $3, $4) RETURNING id, name, created_at";

pub const LIST_COMPANIES: &str =
    "SELECT id, name, created_at FROM companies ORDER BY created_at, id";

/// `$1` an id (or NULL), `$2` a name; a match on the id wins over one on the name.
pub const FIND_COMPANY: &str = "SELECT id, name, created_at FROM companies \
     WHERE id = $1 OR name = $2 ORDER BY (id = $1) DESC LIMIT 1";

pub const INSERT_KEY: &str = concat!(
    "INSERT INTO api_keys (id, company_id, name, prefix, key_hash, created_at) \
     VALUES ($1, $2, $3, $4, $5, $6) RETURNING ",
    key_columns!()
);

pub const LIST_KEYS: &str = concat!(
    "SELECT ",
    key_columns!(),
    " FROM api_keys WHERE company_id = $1 ORDER BY created_at, id"
);

pub const REVOKE_KEY: &str = concat!(
    "UPDATE api_keys SET revoked_at = coalesce(revoked_at, $2) WHERE id = $1 RETURNING ",
    key_columns!()
);

pub const AUTHENTICATE: &str = "SELECT k.id, k.company_id, c.cursor_secret, k.last_used_at \
     FROM api_keys k JOIN companies c ON c.id = k.company_id \
     WHERE k.key_hash = $1 AND k.revoked_at IS NULL";

pub const TOUCH_KEY: &str = "UPDATE api_keys SET last_used_at = $2 WHERE id = $1";

pub const INSERT_FIELD: &str = concat!(
    "INSERT INTO custom_fields (id, company_id, key, display_name, field_type, options, \
     created_at) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING ",
    field_columns!()
);

pub const LIST_FIELDS: &str = concat!(
    "SELECT ",
    field_columns!(),
    " FROM custom_fields WHERE company_id = $1 ORDER BY key"
);

pub const GET_FIELD: &str = concat!(
    "SELECT ",
    field_columns!(),
    " FROM custom_fields WHERE company_id = $1 AND key = $2"
);

/// Writes a definition's name and options (`$1` its id), as `FieldDefinitionChange` made
/// them from the row read in the same transaction.
pub const UPDATE_FIELD: &str =
    "UPDATE custom_fields SET display_name = $2, options = $3 WHERE id = $1";

pub const DELETE_FIELD: &str = "DELETE FROM custom_fields WHERE company_id = $1 AND key = $2";

pub const COUNT_FIELD_VALUES: &str = "SELECT count(*) FROM contact_field_values v \
     JOIN custom_fields f ON f.id = v.field_id WHERE f.company_id = $1 AND f.key = $2";

pub const INSERT_USER: &str = "INSERT INTO users (id, company_id, email, password_hash, \
     created_at) VALUES ($1, $2, $3, $4, $5) RETURNING id, company_id, email, created_at";

pub const LIST_USERS: &str = "SELECT id, company_id, email, created_at FROM users \
     WHERE company_id = $1 ORDER BY created_at, id";

/// Sets a user's password hash (`$1` email, `$2` hash).
pub const SET_PASSWORD: &str = "UPDATE users SET password_hash = $2 WHERE email = $1 RETURNING id";

pub const DELETE_USER_SESSIONS: &str = "DELETE FROM sessions WHERE user_id = $1";

pub const DELETE_USER: &str = "DELETE FROM users WHERE email = $1";

pub const USER_CREDENTIALS: &str = "SELECT id, password_hash FROM users WHERE email = $1";

/// Deletes the login windows that opened at or before `$1`: ended ones, kept for nothing.
pub const PURGE_LOGIN_ATTEMPTS: &str = "DELETE FROM login_attempts WHERE window_started_at <= $1";

/// Counts a password check of the email `$1` at `$2` and returns the count, unless the
/// email's window (one that opened after `$3`) already has `$4` checks: then it changes
/// nothing and returns no row. One statement, so parallel logins cannot all pass the
/// check before any is counted. A window that opened at or before `$3` has ended: the
/// check opens a new one.
pub const RESERVE_LOGIN_ATTEMPT: &str = "INSERT INTO login_attempts \
     (email, attempts, window_started_at) VALUES ($1, 1, $2) \
     ON CONFLICT (email) DO UPDATE SET \
     attempts = CASE WHEN login_attempts.window_started_at > $3 \
         THEN login_attempts.attempts + 1 ELSE 1 END, \
     window_started_at = CASE WHEN login_attempts.window_started_at > $3 \
         THEN login_attempts.window_started_at ELSE $2 END \
     WHERE login_attempts.window_started_at <= $3 OR login_attempts.attempts < $4 \
     RETURNING attempts";

pub const LOGIN_WINDOW_START: &str =
    "SELECT window_started_at FROM login_attempts WHERE email = $1";

pub const CLEAR_LOGIN_ATTEMPTS: &str = "DELETE FROM login_attempts WHERE email = $1";

/// Clears the login attempts of the user `$1`'s email.
pub const CLEAR_USER_LOGIN_ATTEMPTS: &str =
    "DELETE FROM login_attempts WHERE email = (SELECT email FROM users WHERE id = $1)";

pub const DELETE_EXPIRED_SESSIONS: &str = "DELETE FROM sessions WHERE expires_at <= $1";

pub const INSERT_SESSION: &str = "INSERT INTO sessions (token_hash, user_id, csrf_token, \
     created_at, expires_at) VALUES ($1, $2, $3, $4, $5)";

/// The user, company and CSRF token of an unexpired (`$2` now) session (`$1` token hash).
pub const FIND_SESSION: &str = "SELECT u.id AS user_id, u.email, c.id AS company_id, \
     c.name AS company_name, c.cursor_secret, s.csrf_token \
     FROM sessions s JOIN users u ON u.id = s.user_id JOIN companies c ON c.id = u.company_id \
     WHERE s.token_hash = $1 AND s.expires_at > $2";

pub const DELETE_SESSION: &str = "DELETE FROM sessions WHERE token_hash = $1";

/// The custom fields of every company whose key is reserved (`$1` … `$9`, the nine of
/// `domain::custom_field::RESERVED_KEYS`), with the company's name.
pub const FIELDS_WITH_RESERVED_KEYS: &str = "SELECT f.company_id, c.name AS company_name, \
     f.key FROM custom_fields f JOIN companies c ON c.id = f.company_id \
     WHERE f.key IN ($1, $2, $3, $4, $5, $6, $7, $8, $9) ORDER BY c.name, f.key";

/// The version a data check (`$1`) last completed for.
pub const DATA_CHECK_VERSION: &str = "SELECT version FROM data_checks WHERE name = $1";

/// Records that a data check (`$1`) completed for a version (`$2`) at `$3`.
pub const RECORD_DATA_CHECK: &str = "INSERT INTO data_checks (name, version, completed_at) \
     VALUES ($1, $2, $3) ON CONFLICT (name) DO UPDATE \
     SET version = excluded.version, completed_at = excluded.completed_at";

/// Up to `$2` stored emails of a table, after the row `$1`, in id order, every company's.
pub fn stored_emails(table: EmailTable) -> &'static str {
    match table {
        EmailTable::Contacts => {
            "SELECT id, company_id, email FROM contacts \
             WHERE email IS NOT NULL AND id > $1 ORDER BY id LIMIT $2"
        }
        EmailTable::Users => {
            "SELECT id, company_id, email FROM users WHERE id > $1 ORDER BY id LIMIT $2"
        }
    }
}

/// Gives the row `$1` the email `$3` if it still holds `$2` (a contact's `updated_at`
/// becomes `$4`, since what it returns changes).
pub fn rewrite_email(table: EmailTable) -> &'static str {
    match table {
        EmailTable::Contacts => {
            "UPDATE contacts SET email = $3, updated_at = $4 WHERE id = $1 AND email = $2"
        }
        EmailTable::Users => "UPDATE users SET email = $3 WHERE id = $1 AND email = $2",
    }
}
