//! Checks of the stored data that run at start-up, after the migrations: written once over
//! the [`Store`] interface, so both backends check alike.
//!
//! A migration changes the schema; these handle what a new version of the code reads
//! differently in data already stored (docs/robustness.md#email-normalisation,
//! docs/robustness.md#reserved-custom-field-keys). They never merge or delete anything:
//! what they cannot settle alone they name in a warning, for a person to decide.

use uuid::Uuid;

use super::{EmailTable, Store, StoreError, StoredEmail};
use crate::domain::Email;
use crate::domain::email::NORMALISATION_VERSION;

/// The name under which the email check records the normal form it last brought every
/// stored email to.
const EMAIL_CHECK: &str = "email_normal_form";

/// Stored emails read at a time: a page is a few hundred kilobytes at most.
const EMAIL_PAGE: u32 = 1_000;

/// Runs every start-up check: after the migrations, before anything else uses the store.
pub async fn check_stored_data(store: &dyn Store) -> Result<(), StoreError> {
    warn_of_reserved_field_keys(store).await?;
    renormalise_emails(store).await
}

/// Warns, at every start, of each custom field stored under a key that new fields may no
/// longer take. Such a field keeps working through the API and NDJSON; only a CSV cannot
/// tell its column from the member's, and an import of one refuses it by name.
async fn warn_of_reserved_field_keys(store: &dyn Store) -> Result<(), StoreError> {
    for field in store.fields_with_reserved_keys().await? {
        tracing::warn!(
            company = %field.company_name,
            company_id = %field.company_id,
            key = %field.key,
            "a custom field has a reserved key: its CSV export column repeats a contact \
             member's, so a CSV export will not import again; move its values to a field \
             with another key (NDJSON exports and the API are not affected)"
        );
    }
    Ok(())
}

/// Brings every stored email (of contacts and of dashboard users) to the current normal
/// form, once per [`NORMALISATION_VERSION`]: later starts read one row and stop.
///
/// An email whose normal form changed is rewritten in place when no other row holds the
/// new form (the unique index decides, so a concurrent write cannot slip between a check
/// and the rewrite). One whose new form another contact of the company (or another user)
/// already holds is left as it is and named in a warning, as is one the current rules
/// refuse: merging two contacts, or dropping an address, is a person's decision. The
/// version is recorded either way, so the warnings come once, at the start that upgraded.
async fn renormalise_emails(store: &dyn Store) -> Result<(), StoreError> {
    if store.data_check_version(EMAIL_CHECK).await? == Some(NORMALISATION_VERSION) {
        return Ok(());
    }
    let mut tally = EmailTally::default();
    for table in [EmailTable::Contacts, EmailTable::Users] {
        let mut after = Uuid::nil();
        loop {
            let page = store.stored_emails(table, after, EMAIL_PAGE).await?;
            for stored in &page {
                renormalise(store, table, stored, &mut tally).await?;
            }
            match page.last() {
                Some(last) if page.len() == EMAIL_PAGE as usize => after = last.id,
                _ => break,
            }
        }
    }
    store
        .record_data_check(EMAIL_CHECK, NORMALISATION_VERSION)
        .await?;
    if tally != EmailTally::default() {
        tracing::info!(
            version = NORMALISATION_VERSION,
            rewritten = tally.rewritten,
            left_as_stored = tally.left,
            "stored emails brought to the current normal form"
        );
    }
    Ok(())
}

/// What the email check did.
#[derive(Debug, Default, PartialEq, Eq)]
struct EmailTally {
    rewritten: u64,
    /// Left as stored: their normal form is taken, or they are no longer valid.
    left: u64,
}

/// Brings one stored email to its normal form, or warns why it cannot. The warnings name
/// rows and companies by id, never the address: logs must not hold personal data.
async fn renormalise(
    store: &dyn Store,
    table: EmailTable,
    stored: &StoredEmail,
    tally: &mut EmailTally,
) -> Result<(), StoreError> {
    let what = match table {
        EmailTable::Contacts => "contact",
        EmailTable::Users => "dashboard user",
    };
    let email = match Email::parse(&stored.email) {
        Ok(email) if email.as_str() == stored.email => return Ok(()),
        Ok(email) => email,
        Err(_) => {
            tally.left += 1;
            tracing::warn!(
                id = %stored.id,
                company_id = %stored.company_id,
                "a stored {what} email is no longer a valid address (it holds an invisible \
                 character, or its domain has no IDNA form): it is kept as it is, but no \
                 lookup by email finds it; correct it or clear it"
            );
            return Ok(());
        }
    };
    match store.rewrite_email(table, stored, &email).await {
        Ok(rewritten) => {
            tally.rewritten += u64::from(rewritten);
            Ok(())
        }
        Err(StoreError::DuplicateContact {
            conflicting_contact_id,
            ..
        }) => {
            tally.left += 1;
            tracing::warn!(
                id = %stored.id,
                holder_id = %conflicting_contact_id.map_or_else(String::new, |id| id.to_string()),
                company_id = %stored.company_id,
                "two contacts of a company hold spellings of one email: the normal form of \
                 this contact's email is the email of the holder; it is kept as it is, \
                 and nothing is merged; merge or correct them"
            );
            Ok(())
        }
        Err(StoreError::DuplicateUserEmail) => {
            tally.left += 1;
            tracing::warn!(
                id = %stored.id,
                company_id = %stored.company_id,
                "two dashboard users hold spellings of one email: this user's is kept as it \
                 is, and cannot log in with it; delete one of them or give it another email"
            );
            Ok(())
        }
        Err(error) => Err(error),
    }
}

#[cfg(test)]
mod tests {
    use super::super::sql;
    use crate::domain::custom_field::RESERVED_KEYS;

    #[test]
    fn the_reserved_key_query_binds_every_reserved_key() {
        let statement = sql::fields_with_reserved_keys();
        assert_eq!(statement.sql.matches('$').count(), RESERVED_KEYS.len());
        assert_eq!(statement.args.len(), RESERVED_KEYS.len());
    }
}
