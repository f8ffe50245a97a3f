//! The contact writes, written once for both backends: read the contact to change, plan the
//! write (`contact_plan.rs`), run the plan, name what refused it, read the contact back.

use uuid::Uuid;

use super::StoreError;
use super::connection::{Connection, Statement, fetch_optional};
use super::contact_plan::{UpdatePlan, plan_insert, plan_update};
use super::error::DatabaseFailure;
use super::events::record_contact_change;
use super::model::{
    Actor, Contact, ContactUpsert, Precondition, StoredEmail, UniqueMember, UpsertOutcome, Upserted,
};
use super::rows::{self, ContactRows, now_ms};
use super::sql;
use crate::domain::contact::{ContactMembers, ContactPatch, NewContact};
use crate::domain::{ContactIdentifier, Email};

/// Reads one contact by any identifier form.
pub async fn fetch_contact(
    conn: &mut dyn Connection,
    company_id: Uuid,
    id: &ContactIdentifier,
) -> Result<Option<Contact>, StoreError> {
    let mut contacts = ContactRows::default();
    conn.query(&sql::contact_by_identifier(company_id, id), &mut |row| {
        contacts.add(row)
    })
    .await?;
    Ok(contacts.take().pop())
}

/// Reads the contacts a statement of contact columns returns.
pub async fn fetch_contacts(
    conn: &mut dyn Connection,
    statement: &Statement,
) -> Result<Vec<Contact>, StoreError> {
    let mut contacts = ContactRows::default();
    conn.query(statement, &mut |row| contacts.add(row)).await?;
    Ok(contacts.take())
}

/// Creates a contact and records its event, returning it as stored.
pub async fn create_contact(
    conn: &mut dyn Connection,
    company_id: Uuid,
    actor: &Actor,
    contact: &NewContact,
) -> Result<Contact, StoreError> {
    let id = Uuid::now_v7();
    let plan = plan_insert(id, company_id, contact, now_ms());
    run_plan(conn, company_id, &contact.members, &plan).await?;
    let created = written_contact(conn, company_id, id).await?;
    record_contact_change(conn, company_id, actor, None, Some(&created)).await?;
    Ok(created)
}

/// Applies an update to the contact an identifier names, if it meets `precondition`; an
/// update that changes nothing writes nothing.
pub async fn update_contact(
    conn: &mut dyn Connection,
    company_id: Uuid,
    actor: &Actor,
    id: &ContactIdentifier,
    patch: &ContactPatch,
    precondition: &Precondition,
) -> Result<Contact, StoreError> {
    let current = contact_to_write(conn, company_id, id)
        .await?
        .ok_or(StoreError::NotFound)?;
    precondition.check(&current)?;
    Ok(apply_patch(conn, company_id, actor, current, patch)
        .await?
        .contact)
}

/// Deletes the contact an identifier names, if it meets `precondition`, and records its
/// event, returning its id.
pub async fn delete_contact(
    conn: &mut dyn Connection,
    company_id: Uuid,
    actor: &Actor,
    id: &ContactIdentifier,
    precondition: &Precondition,
) -> Result<Uuid, StoreError> {
    let current = contact_to_write(conn, company_id, id)
        .await?
        .ok_or(StoreError::NotFound)?;
    precondition.check(&current)?;
    record_contact_change(conn, company_id, actor, Some(&current), None).await?;
    let by_id = ContactIdentifier::Id(current.id);
    fetch_optional(conn, &sql::delete_contact(company_id, &by_id), rows::id).await?;
    Ok(current.id)
}

/// The actor of the contact updates the start-up check makes (`store/checks.rs`).
pub const EMAIL_NORMALISATION: &str = "email normalisation";

/// Brings a contact's email, stored in an older normal form, to `email`
/// (docs/robustness.md#email-normalisation): an update of the contact like any other, so
/// that its event tells the feed. False when the contact no longer holds the stored
/// spelling (another instance changed it meanwhile).
pub async fn normalise_email(
    conn: &mut dyn Connection,
    stored: &StoredEmail,
    email: &Email,
) -> Result<bool, StoreError> {
    let id = ContactIdentifier::Id(stored.id);
    let Some(current) = contact_to_write(conn, stored.company_id, &id).await? else {
        return Ok(false);
    };
    if current.members.email.as_deref() != Some(stored.email.as_str()) {
        return Ok(false);
    }
    let patch = ContactPatch {
        email: Some(Some(email.clone())),
        ..ContactPatch::default()
    };
    let actor = Actor::Cli(EMAIL_NORMALISATION.to_owned());
    apply_patch(conn, stored.company_id, &actor, current, &patch).await?;
    Ok(true)
}

/// Updates the contact an upsert's key names, or creates it.
///
/// With concurrent writers (PostgreSQL), another transaction may create the key between
/// the read (which found nothing) and the insert: the insert then waits for it, fails on
/// the unique index, and the item updates that contact instead. SQLite's one writer never
/// gets there.
pub async fn upsert_contact(
    conn: &mut dyn Connection,
    company_id: Uuid,
    actor: &Actor,
    item: &ContactUpsert,
) -> Result<Upserted, StoreError> {
    if let Some(current) = contact_to_write(conn, company_id, &item.key).await? {
        return apply_patch(conn, company_id, actor, current, &item.patch).await;
    }
    match create_contact(conn, company_id, actor, &item.patch.to_new_contact()?).await {
        Ok(contact) => Ok(Upserted {
            contact,
            outcome: UpsertOutcome::Created,
        }),
        Err(StoreError::DuplicateContact { member, .. })
            if Some(member) == UniqueMember::named_by(&item.key) =>
        {
            let current = contact_to_write(conn, company_id, &item.key)
                .await?
                .ok_or(StoreError::NotFound)?;
            apply_patch(conn, company_id, actor, current, &item.patch).await
        }
        Err(error) => Err(error),
    }
}

/// Reads the contact a write is about to change. Where rows can be locked, its row is
/// locked first, until the transaction ends: a concurrent write of the same contact waits,
/// then reads what this one wrote, so that no update is lost.
async fn contact_to_write(
    conn: &mut dyn Connection,
    company_id: Uuid,
    id: &ContactIdentifier,
) -> Result<Option<Contact>, StoreError> {
    if !conn.locks_rows() {
        return fetch_contact(conn, company_id, id).await;
    }
    match fetch_optional(conn, &sql::lock_contact(company_id, id), rows::id).await? {
        Some(locked) => fetch_contact(conn, company_id, &ContactIdentifier::Id(locked)).await,
        None => Ok(None),
    }
}

/// Applies an update to a contact as read by [`contact_to_write`]: the contact after it,
/// and whether it changed anything. A change is recorded as an event; no change, none.
async fn apply_patch(
    conn: &mut dyn Connection,
    company_id: Uuid,
    actor: &Actor,
    current: Contact,
    patch: &ContactPatch,
) -> Result<Upserted, StoreError> {
    match plan_update(&current, patch, now_ms())? {
        UpdatePlan::Unchanged => Ok(Upserted {
            contact: current,
            outcome: UpsertOutcome::Unchanged,
        }),
        UpdatePlan::Write {
            members,
            statements,
        } => {
            run_plan(conn, company_id, &members, &statements).await?;
            let updated = written_contact(conn, company_id, current.id).await?;
            record_contact_change(conn, company_id, actor, Some(&current), Some(&updated)).await?;
            Ok(Upserted {
                contact: updated,
                outcome: UpsertOutcome::Updated,
            })
        }
    }
}

/// Reads a contact just written, by its id.
async fn written_contact(
    conn: &mut dyn Connection,
    company_id: Uuid,
    id: Uuid,
) -> Result<Contact, StoreError> {
    fetch_contact(conn, company_id, &ContactIdentifier::Id(id))
        .await?
        .ok_or(StoreError::NotFound)
}

/// Runs the statements of a plan that gives a contact `members`, in order.
async fn run_plan(
    conn: &mut dyn Connection,
    company_id: Uuid,
    members: &ContactMembers,
    plan: &[Statement],
) -> Result<(), StoreError> {
    for statement in plan {
        if let Err(error) = conn.execute(statement).await {
            return Err(refusal(conn, company_id, members, error).await);
        }
    }
    Ok(())
}

/// What refused a contact write: a deleted custom field (a foreign key), or another contact
/// holding one of `members`' identifiers (a unique index), which is named. PostgreSQL
/// refuses every statement after an error until the write's savepoint is rolled back, so
/// it is rolled back here before the holder is read (the read then sees the transaction's
/// earlier items too).
pub async fn refusal(
    conn: &mut dyn Connection,
    company_id: Uuid,
    members: &ContactMembers,
    error: StoreError,
) -> StoreError {
    let member = match error.database_failure() {
        Some(DatabaseFailure::ForeignKeyViolation) => return StoreError::FieldDeleted,
        Some(DatabaseFailure::UniqueViolation { index }) => UniqueMember::of_index(index),
        _ => None,
    };
    let Some(member) = member else {
        return error;
    };
    if let Err(error) = conn.execute(&sql::roll_back_write()).await {
        return error;
    }
    let conflicting_contact_id = match member.value_in(members) {
        Some(value) => fetch_optional(
            conn,
            &sql::contact_holding(company_id, member, value),
            rows::id,
        )
        .await
        .ok()
        .flatten(),
        None => None,
    };
    StoreError::DuplicateContact {
        member,
        conflicting_contact_id,
    }
}
