-- The same tables as migrations/sqlite/0006_webhooks.sql, in PostgreSQL's types.
CREATE TABLE webhooks (
    id                    UUID   PRIMARY KEY,
    company_id            UUID   NOT NULL REFERENCES companies (id) ON DELETE CASCADE,
    url                   TEXT   NOT NULL,
    event_types           TEXT   NOT NULL,
    description           TEXT,
    secret                TEXT   NOT NULL,
    previous_secret       TEXT,
    previous_secret_until BIGINT,
    created_at            BIGINT NOT NULL,
    updated_at            BIGINT NOT NULL,
    disabled_at           BIGINT,
    disabled_reason       TEXT,
    failing_since         BIGINT,
    feed_tx               BIGINT NOT NULL,
    feed_position         BIGINT NOT NULL,
    lease_owner           UUID,
    lease_until           BIGINT NOT NULL DEFAULT 0
);

CREATE INDEX webhooks_company ON webhooks (company_id, created_at);

CREATE TABLE webhook_retries (
    webhook_id     UUID   NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event_position BIGINT NOT NULL REFERENCES events (position) ON DELETE CASCADE,
    attempt        BIGINT  NOT NULL,
    due_at         BIGINT NOT NULL,
    PRIMARY KEY (webhook_id, event_position)
);

CREATE INDEX webhook_retries_due ON webhook_retries (webhook_id, due_at);
CREATE INDEX webhook_retries_event ON webhook_retries (event_position);

CREATE TABLE webhook_attempts (
    position        BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    webhook_id      UUID    NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event_id        UUID    NOT NULL,
    event_type      TEXT    NOT NULL,
    attempt         BIGINT  NOT NULL,
    outcome         TEXT    NOT NULL CHECK (outcome IN ('delivered', 'retrying', 'failed')),
    status          BIGINT,
    error           TEXT,
    duration_ms     BIGINT  NOT NULL,
    attempted_at    BIGINT  NOT NULL,
    next_attempt_at BIGINT
);

CREATE INDEX webhook_attempts_list ON webhook_attempts (webhook_id, position);
CREATE INDEX webhook_attempts_event ON webhook_attempts (webhook_id, event_id);
