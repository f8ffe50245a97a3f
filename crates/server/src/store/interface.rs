//! The storage interface: every read and write contactd makes, as the use cases, the
//! HTTP layer and the CLI call them.

use std::time::Duration;

use async_trait::async_trait;
use uuid::Uuid;

use super::StoreError;
use contactd_api::EventType;

use super::model::{
    Actor, ApiKey, Company, Contact, ContactQuery, ContactUpsert, DeliveryAttempt, DeliveryBatch,
    DeliveryGauges, DeliveryWork, EmailTable, Event, EventPage, EventPosition, Export,
    FieldDefinition, FieldDefinitionChange, IdempotencyClaim, IdempotentRequest, ItemResults,
    KeyUse, ListPosition, LoginAttempt, NewApiKey, NewFieldDefinition, NewSession, NewWebhook,
    Precondition, ReservedKeyField, ScheduledRetry, SessionUser, StoredEmail, StoredResponse,
    Upserted, User, UserCredentials, Webhook, WebhookChange,
};
use crate::domain::contact::{ContactPatch, NewContact};
use crate::domain::{ContactIdentifier, Email, FieldKey};

/// Every read and write contactd makes. Each company-scoped method takes the company id
/// first, and nothing of another company is ever visible through it.
#[async_trait]
pub trait Store: Send + Sync + std::fmt::Debug + 'static {
    /// Checks that the database answers.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Sets the gauges of the database's state now (the SQLite WAL's size, the PostgreSQL
    /// pool's connections; docs/reference.md#metrics), for a scrape to read.
    fn record_gauges(&self);

    /// Creates a company.
    async fn create_company(&self, name: &str) -> Result<Company, StoreError>;
    /// Lists every company, oldest first.
    async fn list_companies(&self) -> Result<Vec<Company>, StoreError>;
    /// Finds a company by its id or, failing that, by its name.
    async fn find_company(&self, id_or_name: &str) -> Result<Option<Company>, StoreError>;

    /// Stores a new API key of a company.
    async fn create_api_key(&self, company_id: Uuid, key: &NewApiKey)
    -> Result<ApiKey, StoreError>;
    /// Lists a company's keys, revoked ones included, oldest first.
    async fn list_api_keys(&self, company_id: Uuid) -> Result<Vec<ApiKey>, StoreError>;
    /// Revokes a key; revoking a revoked key changes nothing.
    async fn revoke_api_key(&self, key_id: Uuid) -> Result<ApiKey, StoreError>;
    /// Finds an unrevoked key by its hash, with the company it acts for. A read only: the
    /// key's use is recorded apart, with [`Store::touch_api_key`], so that no request waits
    /// for a write to be let in.
    async fn authenticate(&self, key_hash: &[u8; 32]) -> Result<Option<KeyUse>, StoreError>;
    /// Records that a key was used at `at` (milliseconds since the epoch).
    async fn touch_api_key(&self, key_id: Uuid, at: i64) -> Result<(), StoreError>;

    /// Creates a dashboard user of a company; the email is unique across companies.
    async fn create_user(
        &self,
        company_id: Uuid,
        email: &Email,
        password_hash: &str,
    ) -> Result<User, StoreError>;
    /// Lists a company's dashboard users, oldest first.
    async fn list_users(&self, company_id: Uuid) -> Result<Vec<User>, StoreError>;
    /// Gives a user a new password: clears their email's login attempts and ends every
    /// session.
    async fn set_password(&self, email: &Email, password_hash: &str) -> Result<(), StoreError>;
    /// Deletes a user and their sessions.
    async fn delete_user(&self, email: &Email) -> Result<(), StoreError>;
    /// Finds what a login checks of the user with this email.
    async fn user_credentials(&self, email: &Email) -> Result<Option<UserCredentials>, StoreError>;
    /// Counts a password check of a login with this email, whether or not a user has it,
    /// unless the email already had `limit` checks in its current window (opened by the
    /// first check, `window` long): then nothing is counted and the login is refused.
    /// Atomic however many logins arrive at once. Ended windows are deleted on the way,
    /// so the table holds only the emails tried in the last `window`.
    async fn reserve_login_attempt(
        &self,
        email: &Email,
        limit: u32,
        window: Duration,
    ) -> Result<LoginAttempt, StoreError>;
    /// Stores a session after a successful login, which also clears the login attempts
    /// of the user's email; sessions past their expiry are deleted on the way.
    async fn create_session(&self, session: &NewSession) -> Result<(), StoreError>;
    /// Finds the user of an unexpired session by the hash of its token.
    async fn find_session(&self, token_hash: &[u8; 32]) -> Result<Option<SessionUser>, StoreError>;
    /// Ends a session; ending an unknown one changes nothing.
    async fn delete_session(&self, token_hash: &[u8; 32]) -> Result<(), StoreError>;

    /// Creates a custom field definition. Every write of definitions and contacts records
    /// its event in its own transaction, as done by `actor`
    /// (docs/reference.md#13-change-events-history-and-webhooks).
    async fn create_field(
        &self,
        company_id: Uuid,
        actor: &Actor,
        field: &NewFieldDefinition,
    ) -> Result<FieldDefinition, StoreError>;
    /// Lists a company's definitions, ordered by key.
    async fn list_fields(&self, company_id: Uuid) -> Result<Vec<FieldDefinition>, StoreError>;
    /// Finds one definition by key.
    async fn get_field(
        &self,
        company_id: Uuid,
        key: &FieldKey,
    ) -> Result<Option<FieldDefinition>, StoreError>;
    /// Renames a definition or grows its options, judged against the definition as it is
    /// stored when the change is written ([`OptionsChange`](super::OptionsChange)).
    async fn update_field(
        &self,
        company_id: Uuid,
        actor: &Actor,
        key: &FieldKey,
        change: &FieldDefinitionChange,
    ) -> Result<FieldDefinition, StoreError>;
    /// Deletes a definition and every value of it.
    async fn delete_field(
        &self,
        company_id: Uuid,
        actor: &Actor,
        key: &FieldKey,
    ) -> Result<(), StoreError>;
    /// Counts the contacts holding a value of a field.
    async fn count_field_values(&self, company_id: Uuid, key: &FieldKey)
    -> Result<u64, StoreError>;

    /// Creates a contact.
    async fn create_contact(
        &self,
        company_id: Uuid,
        actor: &Actor,
        contact: &NewContact,
    ) -> Result<Contact, StoreError>;
    /// Finds a contact by any identifier form.
    async fn get_contact(
        &self,
        company_id: Uuid,
        id: &ContactIdentifier,
    ) -> Result<Option<Contact>, StoreError>;
    /// Lists up to `limit` of the contacts `query` finds, in its order, after `after` when
    /// given (docs/reference.md#finding-contacts).
    async fn find_contacts(
        &self,
        company_id: Uuid,
        query: &ContactQuery,
        after: Option<ListPosition>,
        limit: u32,
    ) -> Result<Vec<Contact>, StoreError>;
    /// How many contacts `query` finds.
    async fn count_contacts(
        &self,
        company_id: Uuid,
        query: &ContactQuery,
    ) -> Result<u64, StoreError>;
    /// Applies an update atomically, when the contact meets `precondition`
    /// ([`StoreError::VersionChanged`] otherwise); an update that changes nothing writes
    /// nothing.
    async fn update_contact(
        &self,
        company_id: Uuid,
        actor: &Actor,
        id: &ContactIdentifier,
        patch: &ContactPatch,
        precondition: &Precondition,
    ) -> Result<Contact, StoreError>;
    /// Deletes a contact when it meets `precondition`, returning its id.
    async fn delete_contact(
        &self,
        company_id: Uuid,
        actor: &Actor,
        id: &ContactIdentifier,
        precondition: &Precondition,
    ) -> Result<Uuid, StoreError>;

    /// Creates each contact on its own, returning the new ids: an item that fails (a
    /// duplicate, also of an earlier item) leaves nothing and never fails another. The outer
    /// error means nothing at all was stored.
    async fn create_contacts(
        &self,
        company_id: Uuid,
        actor: &Actor,
        contacts: Vec<NewContact>,
    ) -> Result<ItemResults<Uuid>, StoreError>;
    /// Updates the contact each item's key names, or creates it; each item on its own, as
    /// [`Store::create_contacts`]. Racing upserts of one key end as one contact.
    async fn upsert_contacts(
        &self,
        company_id: Uuid,
        actor: &Actor,
        items: Vec<ContactUpsert>,
    ) -> Result<ItemResults<Upserted>, StoreError>;
    /// Starts reading every contact of a company from one snapshot, which is released when
    /// the last page is taken, when `pages` is dropped, or when a page waits `stall` to be
    /// taken.
    async fn export_contacts(
        &self,
        company_id: Uuid,
        stall: Duration,
    ) -> Result<Export, StoreError>;

    /// Reads the feed after `after` (from the oldest event kept without it), in feed order:
    /// up to `limit` events of the `types` given (every type when empty), from at most
    /// [`FEED_SCAN`](super::FEED_SCAN) events read, and where the next page starts.
    /// [`StoreError::CursorExpired`] when retention deleted events after `after`.
    async fn list_events(
        &self,
        company_id: Uuid,
        after: Option<EventPosition>,
        limit: u32,
        types: &[EventType],
    ) -> Result<EventPage, StoreError>;
    /// Reads up to `limit` events of one contact, also a deleted one, newest first, before
    /// the event at `before` when given.
    async fn contact_history(
        &self,
        company_id: Uuid,
        contact_id: Uuid,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<Event>, StoreError>;
    /// Deletes up to `limit` of a company's oldest events that occurred before `cutoff`
    /// (milliseconds since the epoch), with the retries waiting for them, and up to `limit`
    /// of its webhook delivery attempts made before it, in one write, returning how many
    /// events and attempts it deleted.
    async fn delete_expired_events(
        &self,
        company_id: Uuid,
        cutoff: i64,
        limit: u32,
    ) -> Result<u64, StoreError>;

    /// Creates a webhook endpoint, which delivers the events listed after this moment;
    /// [`StoreError::TooManyWebhooks`] when the company has [`MAX_WEBHOOKS`](super::MAX_WEBHOOKS).
    async fn create_webhook(
        &self,
        company_id: Uuid,
        webhook: &NewWebhook,
    ) -> Result<Webhook, StoreError>;
    /// Lists a company's webhook endpoints, oldest first.
    async fn list_webhooks(&self, company_id: Uuid) -> Result<Vec<Webhook>, StoreError>;
    /// Finds one webhook endpoint of a company.
    async fn get_webhook(&self, company_id: Uuid, id: Uuid) -> Result<Option<Webhook>, StoreError>;
    /// Changes a webhook endpoint's settings; enabling it also forgets its failures.
    async fn update_webhook(
        &self,
        company_id: Uuid,
        id: Uuid,
        change: &WebhookChange,
    ) -> Result<Webhook, StoreError>;
    /// Gives an endpoint a new secret; the one it had also signs until `previous_until`.
    async fn rotate_webhook_secret(
        &self,
        company_id: Uuid,
        id: Uuid,
        secret: &str,
        previous_until: i64,
    ) -> Result<Webhook, StoreError>;
    /// Deletes a webhook endpoint with its deliveries.
    async fn delete_webhook(&self, company_id: Uuid, id: Uuid) -> Result<(), StoreError>;
    /// Reads up to `limit` of an endpoint's delivery attempts, newest first, before the
    /// attempt at `before` when given.
    async fn list_delivery_attempts(
        &self,
        webhook_id: Uuid,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<DeliveryAttempt>, StoreError>;
    /// Schedules another attempt to deliver a company's event to an endpoint at `due_at`;
    /// [`StoreError::NotFound`] when the company has no such event (any more).
    async fn schedule_delivery(
        &self,
        company_id: Uuid,
        webhook_id: Uuid,
        event_id: Uuid,
        due_at: i64,
    ) -> Result<ScheduledRetry, StoreError>;
    /// Takes, for `owner` until `until`, the leases of up to `limit` enabled endpoints with
    /// deliveries to make at `now` whose lease is free, returning them; on PostgreSQL
    /// several instances take different ones (docs/reference.md#deliveries-on-several-instances).
    async fn claim_webhooks(
        &self,
        owner: Uuid,
        now: i64,
        until: i64,
        limit: u32,
    ) -> Result<Vec<Webhook>, StoreError>;
    /// Extends every lease `owner` still holds to `until`, returning their endpoints.
    async fn renew_webhook_leases(
        &self,
        owner: Uuid,
        now: i64,
        until: i64,
    ) -> Result<Vec<Uuid>, StoreError>;
    /// Reads the state of every company's deliveries, for the webhook gauges.
    async fn delivery_gauges(&self) -> Result<DeliveryGauges, StoreError>;
    /// Gives up `owner`'s lease of an endpoint.
    async fn release_webhook(&self, webhook_id: Uuid, owner: Uuid) -> Result<(), StoreError>;
    /// Reads what an endpoint has to deliver at `now`: up to `limit` attempts due again and
    /// up to `limit` events of the feed after `webhook.feed`.
    async fn delivery_work(
        &self,
        webhook: &Webhook,
        now: i64,
        limit: u32,
    ) -> Result<DeliveryWork, StoreError>;
    /// Records a batch of attempts, where it leaves the endpoint in the feed and its
    /// failures, in one write, returning the endpoint as it is now; `None`, with nothing
    /// written, when `batch.owner` no longer holds the endpoint's lease.
    async fn record_deliveries(&self, batch: &DeliveryBatch)
    -> Result<Option<Webhook>, StoreError>;

    /// Lists the custom fields, of every company, whose key is reserved.
    /// Claims an idempotency key for a request (docs/reference.md#idempotency), or says
    /// what holds it: the answer of the same request, the same request still running, or
    /// a different request. Of requests claiming one key at once, exactly one is
    /// [`IdempotencyClaim::Claimed`], on every instance of a shared database.
    async fn claim_idempotency_key(
        &self,
        request: &IdempotentRequest,
    ) -> Result<IdempotencyClaim, StoreError>;
    /// Records the answer of the request holding `claim`, for its repeats; nothing if the
    /// key was taken over meanwhile.
    async fn answer_idempotency_key(
        &self,
        company_id: Uuid,
        key: &str,
        claim: Uuid,
        response: &StoredResponse,
    ) -> Result<(), StoreError>;
    /// Frees the key of a request holding `claim` that has no answer worth keeping (it
    /// failed before changing anything), so that a repeat runs it again.
    async fn release_idempotency_key(
        &self,
        company_id: Uuid,
        key: &str,
        claim: Uuid,
    ) -> Result<(), StoreError>;
    /// Deletes up to `limit` of the oldest idempotency keys claimed at or before `cutoff`
    /// (milliseconds), returning how many.
    async fn delete_expired_idempotency_keys(
        &self,
        cutoff: i64,
        limit: u32,
    ) -> Result<u64, StoreError>;

    async fn fields_with_reserved_keys(&self) -> Result<Vec<ReservedKeyField>, StoreError>;
    /// The version a start-up data check last completed for, if it ever did.
    async fn data_check_version(&self, check: &str) -> Result<Option<i64>, StoreError>;
    /// Records that a start-up data check completed for a version.
    async fn record_data_check(&self, check: &str, version: i64) -> Result<(), StoreError>;
    /// Reads up to `limit` stored emails of a table, every company's, after the row
    /// `after` in id order (from the first with [`Uuid::nil`]).
    async fn stored_emails(
        &self,
        table: EmailTable,
        after: Uuid,
        limit: u32,
    ) -> Result<Vec<StoredEmail>, StoreError>;
    /// Gives a row a new email if it still holds `stored`: `false` when it no longer
    /// does; [`StoreError::DuplicateContact`] or [`StoreError::DuplicateUserEmail`] when
    /// another row (of the company, for a contact) already holds the new one.
    async fn rewrite_email(
        &self,
        table: EmailTable,
        stored: &StoredEmail,
        email: &Email,
    ) -> Result<bool, StoreError>;
}
