-- Webhook endpoints and their deliveries (docs/reference.md#webhooks).
--
-- An endpoint reads the company's feed like any client: feed_tx and feed_position are the
-- last event whose first attempt it made, so first attempts go out in feed order and
-- nothing is written per event when the change commits. disabled_at is NULL while the
-- endpoint is enabled; disabled_reason is 'failing' when the server disabled it.
-- lease_owner and lease_until name the server instance delivering for the endpoint now
-- (docs/reference.md#deliveries-on-several-instances); a lease whose time has passed is
-- free, so a dead instance's endpoints are taken over.
CREATE TABLE webhooks (
    id                    BLOB    PRIMARY KEY NOT NULL,
    company_id            BLOB    NOT NULL REFERENCES companies (id) ON DELETE CASCADE,
    url                   TEXT    NOT NULL,
    event_types           TEXT    NOT NULL,
    description           TEXT,
    secret                TEXT    NOT NULL,
    previous_secret       TEXT,
    previous_secret_until INTEGER,
    created_at            INTEGER NOT NULL,
    updated_at            INTEGER NOT NULL,
    disabled_at           INTEGER,
    disabled_reason       TEXT,
    failing_since         INTEGER,
    feed_tx               INTEGER NOT NULL,
    feed_position         INTEGER NOT NULL,
    lease_owner           BLOB,
    lease_until           INTEGER NOT NULL DEFAULT 0
) STRICT;

CREATE INDEX webhooks_company ON webhooks (company_id, created_at);

-- Deliveries waiting for another attempt: one row per endpoint and event, removed when it
-- is delivered or has failed for good, and with its event when retention deletes it.
CREATE TABLE webhook_retries (
    webhook_id     BLOB    NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event_position INTEGER NOT NULL REFERENCES events (position) ON DELETE CASCADE,
    attempt        INTEGER NOT NULL,
    due_at         INTEGER NOT NULL,
    PRIMARY KEY (webhook_id, event_position)
) STRICT;

CREATE INDEX webhook_retries_due ON webhook_retries (webhook_id, due_at);
CREATE INDEX webhook_retries_event ON webhook_retries (event_position);

-- Every attempt made, newest last; retention deletes them with their events. outcome is
-- 'delivered', 'retrying' or 'failed'.
CREATE TABLE webhook_attempts (
    position        INTEGER PRIMARY KEY AUTOINCREMENT,
    webhook_id      BLOB    NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event_id        BLOB    NOT NULL,
    event_type      TEXT    NOT NULL,
    attempt         INTEGER NOT NULL,
    outcome         TEXT    NOT NULL CHECK (outcome IN ('delivered', 'retrying', 'failed')),
    status          INTEGER,
    error           TEXT,
    duration_ms     INTEGER NOT NULL,
    attempted_at    INTEGER NOT NULL,
    next_attempt_at INTEGER
) STRICT;

CREATE INDEX webhook_attempts_list ON webhook_attempts (webhook_id, position);
CREATE INDEX webhook_attempts_event ON webhook_attempts (webhook_id, event_id);
