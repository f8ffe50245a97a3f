-- The same schema as migrations/sqlite/0010_idempotency.sql, in PostgreSQL's types: the
-- requests sent with an Idempotency-Key (docs/reference.md#idempotency). The claim is one
-- INSERT … ON CONFLICT on the primary key, so two instances given the same key at once
-- queue on that row and exactly one runs the request.
CREATE TABLE idempotency_keys (
    company_id   UUID    NOT NULL REFERENCES companies (id) ON DELETE CASCADE,
    key          TEXT    NOT NULL,
    fingerprint  BYTEA   NOT NULL,
    claim        UUID    NOT NULL,
    created_at   BIGINT  NOT NULL,
    locked_until BIGINT,
    status       BIGINT,
    headers      TEXT,
    body         BYTEA   NOT NULL,
    PRIMARY KEY (company_id, key)
);

CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
