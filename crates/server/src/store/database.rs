//! The [`Store`] interface, implemented once for every backend: each method builds its
//! statements (`sql.rs`), picks how it runs (a read, a scan, a write of one statement or a
//! transaction; see [`Backend`]) and decodes what it reads (`rows.rs`).

use std::time::Duration;

use async_trait::async_trait;
use contactd_api::EventType;
use rand::RngCore;
use uuid::Uuid;

use super::backend::{Backend, Operation};
use super::connection::{Row, Statement, fetch_all, fetch_one, fetch_optional};
use super::contact_writes::{self, fetch_contact, fetch_contacts};
use super::error::unique_or;
use super::events::{self, record_field_change};
use super::interface::Store;
use super::model::{
    Actor, ApiKey, Company, Contact, ContactQuery, ContactUpsert, DeliveryAttempt, DeliveryBatch,
    DeliveryGauges, DeliveryOutcome, DeliveryWork, EmailTable, Event, EventPage, EventPosition,
    Export, FEED_SCAN, FieldDefinition, FieldDefinitionChange, IdempotencyClaim, IdempotentRequest,
    ItemResults, KeyUse, ListPosition, LoginAttempt, MAX_WEBHOOKS, NewApiKey, NewFieldDefinition,
    NewSession, NewWebhook, Precondition, ReservedKeyField, ScheduledRetry, SessionUser,
    StoredEmail, StoredResponse, Upserted, User, UserCredentials, Webhook, WebhookChange,
};
use super::rows::{self, now_ms};
use super::{StoreError, sql};
use crate::domain::contact::{ContactPatch, NewContact};
use crate::domain::{ContactIdentifier, Email, FieldKey};

/// A store on a database backend.
#[derive(Debug)]
pub struct Database<B> {
    backend: B,
}

impl<B: Backend> Database<B> {
    pub fn new(backend: B) -> Self {
        Self { backend }
    }

    /// Reads every row a statement returns.
    async fn read_all<T: Send + 'static>(
        &self,
        statement: Statement,
        decode: Decode<T>,
    ) -> Result<Vec<T>, StoreError> {
        self.backend
            .read((statement, decode), |conn, (statement, decode)| {
                Box::pin(fetch_all(conn, statement, *decode))
            })
            .await
    }

    /// Reads the first row a statement returns, if any.
    async fn read_optional<T: Send + 'static>(
        &self,
        statement: Statement,
        decode: Decode<T>,
    ) -> Result<Option<T>, StoreError> {
        self.backend
            .read((statement, decode), |conn, (statement, decode)| {
                Box::pin(fetch_optional(conn, statement, *decode))
            })
            .await
    }

    /// Runs a write of one statement and reads the first row it returns, if any.
    async fn write_returning<T: Send + 'static>(
        &self,
        statement: Statement,
        decode: Decode<T>,
    ) -> Result<Option<T>, StoreError> {
        self.backend
            .write_statement((statement, decode), |conn, (statement, decode)| {
                Box::pin(fetch_optional(conn, statement, *decode))
            })
            .await
    }

    /// Runs a write of one statement, returning how many rows it changed.
    async fn write_counting(&self, statement: Statement) -> Result<u64, StoreError> {
        self.backend
            .write_statement(statement, |conn, statement| {
                Box::pin(conn.execute(statement))
            })
            .await
    }
}

/// A row decoder of `rows.rs`.
type Decode<T> = fn(&dyn Row) -> Result<T, StoreError>;

/// Applies a change of settings to an endpoint as stored, at `now`.
fn apply_webhook_change(webhook: &mut Webhook, change: &WebhookChange, now: i64) {
    if let Some(url) = &change.url {
        webhook.url.clone_from(url);
    }
    if let Some(types) = &change.event_types {
        webhook.event_types.clone_from(types);
    }
    if let Some(description) = &change.description {
        webhook.description.clone_from(description);
    }
    match change.enabled {
        Some(true) => {
            webhook.disabled = None;
            webhook.failing_since = None;
        }
        Some(false) if webhook.disabled.is_none() => {
            webhook.disabled = Some((rows::timestamp(now), None));
        }
        Some(false) | None => {}
    }
}

#[async_trait]
impl<B: Backend> Store for Database<B> {
    async fn ping(&self) -> Result<(), StoreError> {
        self.backend
            .read(sql::ping(), |conn, ping| {
                Box::pin(async move { fetch_optional(conn, ping, |_| Ok(())).await.map(drop) })
            })
            .await
    }

    fn record_gauges(&self) {
        self.backend.record_gauges();
    }

    async fn create_company(&self, name: &str) -> Result<Company, StoreError> {
        let mut cursor_secret = [0u8; 32];
        rand::rng().fill_bytes(&mut cursor_secret);
        let insert = sql::insert_company(Uuid::now_v7(), name, &cursor_secret, now_ms());
        self.write_returning(insert, rows::company)
            .await
            .map_err(unique_or(StoreError::DuplicateCompanyName))?
            .ok_or(StoreError::NotFound)
    }

    async fn list_companies(&self) -> Result<Vec<Company>, StoreError> {
        self.read_all(sql::list_companies(), rows::company).await
    }

    async fn find_company(&self, id_or_name: &str) -> Result<Option<Company>, StoreError> {
        self.read_optional(sql::find_company(id_or_name), rows::company)
            .await
    }

    async fn create_api_key(
        &self,
        company_id: Uuid,
        key: &NewApiKey,
    ) -> Result<ApiKey, StoreError> {
        let insert = sql::insert_key(Uuid::now_v7(), company_id, key, now_ms());
        self.write_returning(insert, rows::api_key)
            .await?
            .ok_or(StoreError::NotFound)
    }

    async fn list_api_keys(&self, company_id: Uuid) -> Result<Vec<ApiKey>, StoreError> {
        self.read_all(sql::list_keys(company_id), rows::api_key)
            .await
    }

    async fn revoke_api_key(&self, key_id: Uuid) -> Result<ApiKey, StoreError> {
        self.write_returning(sql::revoke_key(key_id, now_ms()), rows::api_key)
            .await?
            .ok_or(StoreError::NotFound)
    }

    async fn authenticate(&self, key_hash: &[u8; 32]) -> Result<Option<KeyUse>, StoreError> {
        self.read_optional(sql::authenticate(key_hash), rows::key_use)
            .await
    }

    async fn touch_api_key(&self, key_id: Uuid, at: i64) -> Result<(), StoreError> {
        self.write_counting(sql::touch_key(key_id, at)).await?;
        Ok(())
    }

    async fn create_user(
        &self,
        company_id: Uuid,
        email: &Email,
        password_hash: &str,
    ) -> Result<User, StoreError> {
        let insert = sql::insert_user(Uuid::now_v7(), company_id, email, password_hash, now_ms());
        self.write_returning(insert, rows::user)
            .await
            .map_err(unique_or(StoreError::DuplicateUserEmail))?
            .ok_or(StoreError::NotFound)
    }

    async fn list_users(&self, company_id: Uuid) -> Result<Vec<User>, StoreError> {
        self.read_all(sql::list_users(company_id), rows::user).await
    }

    async fn set_password(&self, email: &Email, password_hash: &str) -> Result<(), StoreError> {
        let args = (email.clone(), password_hash.to_owned());
        self.backend
            .write(args, |conn, (email, password_hash)| {
                Box::pin(async move {
                    let set = sql::set_password(email, password_hash);
                    let user_id = fetch_optional(conn, &set, rows::id)
                        .await?
                        .ok_or(StoreError::NotFound)?;
                    conn.execute(&sql::delete_user_sessions(user_id)).await?;
                    conn.execute(&sql::clear_login_attempts(email)).await?;
                    Ok(())
                })
            })
            .await
    }

    async fn delete_user(&self, email: &Email) -> Result<(), StoreError> {
        match self.write_counting(sql::delete_user(email)).await? {
            0 => Err(StoreError::NotFound),
            _ => Ok(()),
        }
    }

    async fn user_credentials(&self, email: &Email) -> Result<Option<UserCredentials>, StoreError> {
        self.read_optional(sql::user_credentials(email), rows::credentials)
            .await
    }

    async fn reserve_login_attempt(
        &self,
        email: &Email,
        limit: u32,
        window: Duration,
    ) -> Result<LoginAttempt, StoreError> {
        let args = (email.clone(), limit, window);
        self.backend
            .write(args, |conn, (email, limit, window)| {
                Box::pin(async move {
                    let now = now_ms();
                    let ended = now - rows::duration_ms(*window);
                    conn.execute(&sql::purge_login_attempts(ended)).await?;
                    let reserve = sql::reserve_login_attempt(email, now, ended, *limit);
                    if fetch_optional(conn, &reserve, |_| Ok(())).await?.is_some() {
                        return Ok(LoginAttempt::Granted);
                    }
                    let start = sql::login_window_start(email);
                    let started = fetch_optional(conn, &start, rows::integer).await?;
                    Ok(LoginAttempt::refused(started, *window))
                })
            })
            .await
    }

    async fn create_session(&self, session: &NewSession) -> Result<(), StoreError> {
        self.backend
            .write(session.clone(), |conn, session| {
                Box::pin(async move {
                    let now = now_ms();
                    conn.execute(&sql::delete_expired_sessions(now)).await?;
                    conn.execute(&sql::clear_user_login_attempts(session.user_id))
                        .await?;
                    conn.execute(&sql::insert_session(session, now)).await?;
                    Ok(())
                })
            })
            .await
    }

    async fn find_session(&self, token_hash: &[u8; 32]) -> Result<Option<SessionUser>, StoreError> {
        self.read_optional(sql::find_session(token_hash, now_ms()), rows::session_user)
            .await
    }

    async fn delete_session(&self, token_hash: &[u8; 32]) -> Result<(), StoreError> {
        self.write_counting(sql::delete_session(token_hash)).await?;
        Ok(())
    }

    async fn create_field(
        &self,
        company_id: Uuid,
        actor: &Actor,
        field: &NewFieldDefinition,
    ) -> Result<FieldDefinition, StoreError> {
        let insert = sql::insert_field(Uuid::now_v7(), company_id, field, now_ms());
        self.backend
            .write(
                (company_id, actor.clone(), insert),
                |conn, (company_id, actor, insert)| {
                    Box::pin(async move {
                        let created = fetch_one(conn, insert, rows::field_definition).await?;
                        let kind = EventType::CustomFieldCreated;
                        record_field_change(conn, *company_id, actor, kind, &created).await?;
                        Ok(created)
                    })
                },
            )
            .await
            .map_err(unique_or(StoreError::DuplicateFieldKey))
    }

    async fn list_fields(&self, company_id: Uuid) -> Result<Vec<FieldDefinition>, StoreError> {
        self.read_all(sql::list_fields(company_id), rows::field_definition)
            .await
    }

    async fn get_field(
        &self,
        company_id: Uuid,
        key: &FieldKey,
    ) -> Result<Option<FieldDefinition>, StoreError> {
        self.read_optional(sql::get_field(company_id, key), rows::field_definition)
            .await
    }

    async fn update_field(
        &self,
        company_id: Uuid,
        actor: &Actor,
        key: &FieldKey,
        change: &FieldDefinitionChange,
    ) -> Result<FieldDefinition, StoreError> {
        let args = (company_id, actor.clone(), key.clone(), change.clone());
        self.backend
            .write(args, |conn, (company_id, actor, key, change)| {
                Box::pin(async move {
                    // The definition is read where it is written: with its row locked where
                    // rows are locked, and on SQLite's one writer, where nothing else runs
                    // meanwhile. A concurrent change of the same field, from any process,
                    // waits, then reads what this one wrote.
                    let read = if conn.locks_rows() {
                        sql::lock_field(*company_id, key)
                    } else {
                        sql::get_field(*company_id, key)
                    };
                    let stored = fetch_optional(conn, &read, rows::field_definition)
                        .await?
                        .ok_or(StoreError::NotFound)?;
                    let updated = change.apply_to(stored.clone())?;
                    if updated != stored {
                        conn.execute(&sql::update_field(&updated)).await?;
                        let kind = EventType::CustomFieldUpdated;
                        record_field_change(conn, *company_id, actor, kind, &updated).await?;
                    }
                    Ok(updated)
                })
            })
            .await
    }

    async fn delete_field(
        &self,
        company_id: Uuid,
        actor: &Actor,
        key: &FieldKey,
    ) -> Result<(), StoreError> {
        let delete = sql::delete_field(company_id, key);
        self.backend
            .write(
                (company_id, actor.clone(), delete),
                |conn, (company_id, actor, delete)| {
                    Box::pin(async move {
                        let deleted = fetch_optional(conn, delete, rows::field_definition)
                            .await?
                            .ok_or(StoreError::NotFound)?;
                        let kind = EventType::CustomFieldDeleted;
                        record_field_change(conn, *company_id, actor, kind, &deleted).await
                    })
                },
            )
            .await
    }

    async fn count_field_values(
        &self,
        company_id: Uuid,
        key: &FieldKey,
    ) -> Result<u64, StoreError> {
        let count = self
            .backend
            .scan(sql::count_field_values(company_id, key), |conn, count| {
                Box::pin(fetch_one(conn, count, rows::integer))
            })
            .await?;
        Ok(count.unsigned_abs())
    }

    async fn create_contact(
        &self,
        company_id: Uuid,
        actor: &Actor,
        contact: &NewContact,
    ) -> Result<Contact, StoreError> {
        self.backend
            .write(
                (company_id, actor.clone(), contact.clone()),
                |conn, (company_id, actor, contact)| {
                    Box::pin(contact_writes::create_contact(
                        conn,
                        *company_id,
                        actor,
                        contact,
                    ))
                },
            )
            .await
    }

    async fn get_contact(
        &self,
        company_id: Uuid,
        id: &ContactIdentifier,
    ) -> Result<Option<Contact>, StoreError> {
        self.backend
            .read((company_id, id.clone()), |conn, (company_id, id)| {
                Box::pin(fetch_contact(conn, *company_id, id))
            })
            .await
    }

    async fn find_contacts(
        &self,
        company_id: Uuid,
        query: &ContactQuery,
        after: Option<ListPosition>,
        limit: u32,
    ) -> Result<Vec<Contact>, StoreError> {
        let after = after.unwrap_or(ListPosition::start(query.sort));
        let find = sql::find_contacts(company_id, query, after, limit, B::TEXT_INDEX);
        let operation: Operation<Statement, Vec<Contact>> =
            |conn, find| Box::pin(fetch_contacts(conn, find));
        // A filter may read many contacts to find a page's few; the plain list reads a
        // page's worth.
        if query.is_everything() {
            self.backend.read(find, operation).await
        } else {
            self.backend.scan(find, operation).await
        }
    }

    async fn count_contacts(
        &self,
        company_id: Uuid,
        query: &ContactQuery,
    ) -> Result<u64, StoreError> {
        let count = sql::count_found_contacts(company_id, query, B::TEXT_INDEX);
        self.backend
            .scan(count, |conn, count| {
                Box::pin(async move {
                    let counted = fetch_one(conn, count, rows::integer).await?;
                    Ok(u64::try_from(counted).unwrap_or_default())
                })
            })
            .await
    }

    async fn update_contact(
        &self,
        company_id: Uuid,
        actor: &Actor,
        id: &ContactIdentifier,
        patch: &ContactPatch,
        precondition: &Precondition,
    ) -> Result<Contact, StoreError> {
        let args = (
            company_id,
            actor.clone(),
            id.clone(),
            patch.clone(),
            precondition.clone(),
        );
        self.backend
            .write(
                args,
                |conn, (company_id, actor, id, patch, precondition)| {
                    Box::pin(contact_writes::update_contact(
                        conn,
                        *company_id,
                        actor,
                        id,
                        patch,
                        precondition,
                    ))
                },
            )
            .await
    }

    async fn delete_contact(
        &self,
        company_id: Uuid,
        actor: &Actor,
        id: &ContactIdentifier,
        precondition: &Precondition,
    ) -> Result<Uuid, StoreError> {
        let args = (company_id, actor.clone(), id.clone(), precondition.clone());
        self.backend
            .write(args, |conn, (company_id, actor, id, precondition)| {
                Box::pin(contact_writes::delete_contact(
                    conn,
                    *company_id,
                    actor,
                    id,
                    precondition,
                ))
            })
            .await
    }

    async fn create_contacts(
        &self,
        company_id: Uuid,
        actor: &Actor,
        contacts: Vec<NewContact>,
    ) -> Result<ItemResults<Uuid>, StoreError> {
        self.backend
            .write_each(
                (company_id, actor.clone()),
                contacts,
                |conn, (company_id, actor), contact| {
                    Box::pin(async move {
                        let created =
                            contact_writes::create_contact(conn, *company_id, actor, contact)
                                .await?;
                        Ok(created.id)
                    })
                },
            )
            .await
    }

    async fn upsert_contacts(
        &self,
        company_id: Uuid,
        actor: &Actor,
        items: Vec<ContactUpsert>,
    ) -> Result<ItemResults<Upserted>, StoreError> {
        self.backend
            .write_each(
                (company_id, actor.clone()),
                items,
                |conn, (company_id, actor), item| {
                    Box::pin(contact_writes::upsert_contact(
                        conn,
                        *company_id,
                        actor,
                        item,
                    ))
                },
            )
            .await
    }

    async fn export_contacts(
        &self,
        company_id: Uuid,
        stall: Duration,
    ) -> Result<Export, StoreError> {
        self.backend.export(company_id, stall).await
    }

    async fn list_events(
        &self,
        company_id: Uuid,
        after: Option<EventPosition>,
        limit: u32,
        types: &[EventType],
    ) -> Result<EventPage, StoreError> {
        let start = after.unwrap_or_default();
        // A filtered page reads a bounded stretch of the feed and moves its cursor past
        // what it skipped, so a rare type never makes one request read the whole feed.
        let scan = if types.is_empty() {
            limit
        } else {
            FEED_SCAN.max(limit)
        };
        let (scanned, horizon) = self
            .backend
            .read(
                (company_id, start, scan),
                |conn, (company_id, start, scan)| {
                    Box::pin(async move {
                        let list = sql::list_events(*company_id, *start, *scan);
                        let scanned = fetch_all(conn, &list, events::event).await?;
                        // Read after the page: retention only moves the horizon forward, so a
                        // horizon not past the cursor now was not past it for the page either.
                        let horizon = sql::event_horizon(*company_id);
                        let horizon = fetch_optional(conn, &horizon, events::position).await?;
                        Ok((scanned, horizon))
                    })
                },
            )
            .await?;
        if after.is_some() && horizon.is_some_and(|horizon| horizon > start) {
            return Err(StoreError::CursorExpired);
        }
        let mut page = EventPage {
            events: Vec::new(),
            next: start.max(horizon.unwrap_or_default()),
        };
        for event in scanned {
            if page.events.len() == usize::try_from(limit).unwrap_or(usize::MAX) {
                break;
            }
            page.next = event.at;
            if types.is_empty() || types.contains(&event.event_type) {
                page.events.push(event);
            }
        }
        Ok(page)
    }

    async fn contact_history(
        &self,
        company_id: Uuid,
        contact_id: Uuid,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<Event>, StoreError> {
        let history = sql::contact_history(company_id, contact_id, before, limit);
        self.read_all(history, events::event).await
    }

    async fn delete_expired_events(
        &self,
        company_id: Uuid,
        cutoff: i64,
        limit: u32,
    ) -> Result<u64, StoreError> {
        self.backend
            .write(
                (company_id, cutoff, limit),
                |conn, (company_id, cutoff, limit)| {
                    Box::pin(async move {
                        // Only the oldest stretch of the feed is deleted, so that the horizon
                        // marks everything before it as gone.
                        let oldest = sql::oldest_events(*company_id, *limit);
                        let oldest = fetch_all(conn, &oldest, events::dated_position).await?;
                        let attempts = sql::delete_expired_attempts(*company_id, *cutoff, *limit);
                        let mut deleted = conn.execute(&attempts).await?;
                        let Some(through) = oldest
                            .iter()
                            .take_while(|(_, occurred_at)| occurred_at < cutoff)
                            .map(|(position, _)| *position)
                            .last()
                        else {
                            return Ok(deleted);
                        };
                        // Retries waiting for these events go with them (ON DELETE CASCADE).
                        deleted += conn
                            .execute(&sql::delete_events_through(*company_id, through))
                            .await?;
                        conn.execute(&sql::set_event_horizon(*company_id, through))
                            .await?;
                        Ok(deleted)
                    })
                },
            )
            .await
    }

    async fn create_webhook(
        &self,
        company_id: Uuid,
        webhook: &NewWebhook,
    ) -> Result<Webhook, StoreError> {
        self.backend
            .write(
                (company_id, webhook.clone()),
                |conn, (company_id, webhook)| {
                    Box::pin(async move {
                        if conn.locks_rows() {
                            conn.execute(&sql::lock_company(*company_id)).await?;
                        }
                        let count = sql::count_webhooks(*company_id);
                        if fetch_one(conn, &count, rows::integer).await? >= MAX_WEBHOOKS {
                            return Err(StoreError::TooManyWebhooks);
                        }
                        // A new endpoint delivers what is written after this moment.
                        let last = sql::last_event(*company_id);
                        let feed = fetch_optional(conn, &last, events::position).await?;
                        let insert = sql::insert_webhook(
                            Uuid::now_v7(),
                            *company_id,
                            webhook,
                            feed.unwrap_or_default(),
                            now_ms(),
                        );
                        fetch_one(conn, &insert, rows::webhook).await
                    })
                },
            )
            .await
    }

    async fn list_webhooks(&self, company_id: Uuid) -> Result<Vec<Webhook>, StoreError> {
        self.read_all(sql::list_webhooks(company_id), rows::webhook)
            .await
    }

    async fn get_webhook(&self, company_id: Uuid, id: Uuid) -> Result<Option<Webhook>, StoreError> {
        self.read_optional(sql::webhook(company_id, id, false), rows::webhook)
            .await
    }

    async fn update_webhook(
        &self,
        company_id: Uuid,
        id: Uuid,
        change: &WebhookChange,
    ) -> Result<Webhook, StoreError> {
        self.backend
            .write(
                (company_id, id, change.clone()),
                |conn, (company_id, id, change)| {
                    Box::pin(async move {
                        let read = sql::webhook(*company_id, *id, conn.locks_rows());
                        let mut webhook = fetch_optional(conn, &read, rows::webhook)
                            .await?
                            .ok_or(StoreError::NotFound)?;
                        let now = now_ms();
                        apply_webhook_change(&mut webhook, change, now);
                        let update = sql::update_webhook(&webhook, now);
                        fetch_one(conn, &update, rows::webhook).await
                    })
                },
            )
            .await
    }

    async fn rotate_webhook_secret(
        &self,
        company_id: Uuid,
        id: Uuid,
        secret: &str,
        previous_until: i64,
    ) -> Result<Webhook, StoreError> {
        let rotate = sql::rotate_webhook_secret(company_id, id, secret, previous_until, now_ms());
        self.write_returning(rotate, rows::webhook)
            .await?
            .ok_or(StoreError::NotFound)
    }

    async fn delete_webhook(&self, company_id: Uuid, id: Uuid) -> Result<(), StoreError> {
        self.write_returning(sql::delete_webhook(company_id, id), rows::id)
            .await?
            .map(drop)
            .ok_or(StoreError::NotFound)
    }

    async fn list_delivery_attempts(
        &self,
        webhook_id: Uuid,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<DeliveryAttempt>, StoreError> {
        let list = sql::list_attempts(webhook_id, before.unwrap_or(i64::MAX), limit);
        self.read_all(list, rows::delivery_attempt).await
    }

    async fn schedule_delivery(
        &self,
        company_id: Uuid,
        webhook_id: Uuid,
        event_id: Uuid,
        due_at: i64,
    ) -> Result<ScheduledRetry, StoreError> {
        self.backend
            .write(
                (company_id, webhook_id, event_id, due_at),
                |conn, (company_id, webhook_id, event_id, due_at)| {
                    Box::pin(async move {
                        let find = sql::event_position(*company_id, *event_id);
                        let position = fetch_optional(conn, &find, rows::integer)
                            .await?
                            .ok_or(StoreError::NotFound)?;
                        let next = sql::next_attempt(*webhook_id, *event_id);
                        let attempt = fetch_one(conn, &next, rows::integer).await?;
                        let attempt = u32::try_from(attempt).map_err(StoreError::unreadable)?;
                        let schedule = sql::schedule_retry(*webhook_id, position, attempt, *due_at);
                        conn.execute(&schedule).await?;
                        Ok(ScheduledRetry {
                            attempt,
                            due_at: *due_at,
                        })
                    })
                },
            )
            .await
    }

    async fn claim_webhooks(
        &self,
        owner: Uuid,
        now: i64,
        until: i64,
        limit: u32,
    ) -> Result<Vec<Webhook>, StoreError> {
        self.backend
            .write_statement(
                (owner, now, until, limit),
                |conn, (owner, now, until, limit)| {
                    let claim =
                        sql::claim_webhooks(*owner, *now, *until, *limit, conn.locks_rows());
                    Box::pin(async move { fetch_all(conn, &claim, rows::webhook).await })
                },
            )
            .await
    }

    async fn delivery_gauges(&self) -> Result<DeliveryGauges, StoreError> {
        let gauges = self
            .read_optional(sql::delivery_gauges(), rows::delivery_gauges)
            .await?;
        Ok(gauges.unwrap_or_default())
    }

    async fn renew_webhook_leases(
        &self,
        owner: Uuid,
        now: i64,
        until: i64,
    ) -> Result<Vec<Uuid>, StoreError> {
        self.backend
            .write_statement(
                sql::renew_webhook_leases(owner, now, until),
                |conn, renew| Box::pin(fetch_all(conn, renew, rows::id)),
            )
            .await
    }

    async fn release_webhook(&self, webhook_id: Uuid, owner: Uuid) -> Result<(), StoreError> {
        self.write_counting(sql::release_webhook(webhook_id, owner))
            .await
            .map(drop)
    }

    async fn delivery_work(
        &self,
        webhook: &Webhook,
        now: i64,
        limit: u32,
    ) -> Result<DeliveryWork, StoreError> {
        let retries = sql::due_retries(webhook.id, now, limit);
        let feed = sql::list_events(webhook.company_id, webhook.feed, limit);
        self.backend
            .read((retries, feed), |conn, (retries, feed)| {
                Box::pin(async move {
                    Ok(DeliveryWork {
                        retries: fetch_all(conn, retries, events::due_retry).await?,
                        first_attempts: fetch_all(conn, feed, events::event).await?,
                    })
                })
            })
            .await
    }

    async fn record_deliveries(
        &self,
        batch: &DeliveryBatch,
    ) -> Result<Option<Webhook>, StoreError> {
        self.backend
            .write(batch.clone(), |conn, batch| {
                Box::pin(async move {
                    let record = sql::record_delivery_batch(
                        batch.webhook_id,
                        batch.owner,
                        batch.feed,
                        batch.failing_since,
                        batch.disable_at,
                    );
                    let Some(webhook) = fetch_optional(conn, &record, rows::webhook).await? else {
                        return Ok(None);
                    };
                    for made in &batch.attempts {
                        conn.execute(&sql::insert_attempt(batch.webhook_id, made))
                            .await?;
                        let position = made.event_position;
                        let next = match made.attempt.outcome {
                            DeliveryOutcome::Retrying(due_at) => sql::schedule_retry(
                                batch.webhook_id,
                                position,
                                made.attempt.attempt + 1,
                                due_at,
                            ),
                            DeliveryOutcome::Delivered | DeliveryOutcome::Failed => {
                                sql::delete_retry(batch.webhook_id, position)
                            }
                        };
                        conn.execute(&next).await?;
                    }
                    Ok(Some(webhook))
                })
            })
            .await
    }

    async fn claim_idempotency_key(
        &self,
        request: &IdempotentRequest,
    ) -> Result<IdempotencyClaim, StoreError> {
        self.backend
            .write(request.clone(), |conn, request| {
                Box::pin(async move {
                    let claim = sql::claim_idempotency_key(request, now_ms());
                    if fetch_optional(conn, &claim, rows::id).await?.is_some() {
                        return Ok(IdempotencyClaim::Claimed);
                    }
                    let held = sql::idempotency_key(request.company_id, &request.key);
                    let (fingerprint, answer) =
                        fetch_one(conn, &held, rows::idempotency_key).await?;
                    Ok(if fingerprint != request.fingerprint {
                        IdempotencyClaim::Reused
                    } else if let Some(answer) = answer {
                        IdempotencyClaim::Answered(answer)
                    } else {
                        IdempotencyClaim::InProgress
                    })
                })
            })
            .await
    }

    async fn answer_idempotency_key(
        &self,
        company_id: Uuid,
        key: &str,
        claim: Uuid,
        response: &StoredResponse,
    ) -> Result<(), StoreError> {
        let statement = sql::answer_idempotency_key(company_id, key, claim, response);
        self.write_counting(statement).await?;
        Ok(())
    }

    async fn release_idempotency_key(
        &self,
        company_id: Uuid,
        key: &str,
        claim: Uuid,
    ) -> Result<(), StoreError> {
        let statement = sql::release_idempotency_key(company_id, key, claim);
        self.write_counting(statement).await?;
        Ok(())
    }

    async fn delete_expired_idempotency_keys(
        &self,
        cutoff: i64,
        limit: u32,
    ) -> Result<u64, StoreError> {
        self.write_counting(sql::delete_expired_idempotency_keys(cutoff, limit))
            .await
    }

    async fn fields_with_reserved_keys(&self) -> Result<Vec<ReservedKeyField>, StoreError> {
        self.read_all(sql::fields_with_reserved_keys(), rows::reserved_key_field)
            .await
    }

    async fn data_check_version(&self, check: &str) -> Result<Option<i64>, StoreError> {
        self.read_optional(sql::data_check_version(check), rows::integer)
            .await
    }

    async fn record_data_check(&self, check: &str, version: i64) -> Result<(), StoreError> {
        self.write_counting(sql::record_data_check(check, version, now_ms()))
            .await?;
        Ok(())
    }

    async fn stored_emails(
        &self,
        table: EmailTable,
        after: Uuid,
        limit: u32,
    ) -> Result<Vec<StoredEmail>, StoreError> {
        self.read_all(sql::stored_emails(table, after, limit), rows::stored_email)
            .await
    }

    async fn rewrite_email(
        &self,
        table: EmailTable,
        stored: &StoredEmail,
        email: &Email,
    ) -> Result<bool, StoreError> {
        let args = (table, stored.clone(), email.clone());
        self.backend
            .write(args, |conn, (table, stored, email)| {
                Box::pin(async move {
                    match table {
                        EmailTable::Contacts => {
                            contact_writes::normalise_email(conn, stored, email).await
                        }
                        EmailTable::Users => {
                            let rewrite = sql::rewrite_user_email(stored, email);
                            let rewritten = conn.execute(&rewrite).await;
                            Ok(rewritten.map_err(unique_or(table.duplicate()))? > 0)
                        }
                    }
                })
            })
            .await
    }
}
