-- The requests sent with an Idempotency-Key (docs/reference.md#idempotency), one row per
-- company and key. A request claims its key by inserting the row (or by taking over one
-- past its lease or its 24 hours) with `claim` naming it and `locked_until` its lease;
-- its answer then fills `status`, `headers` and `body` (empty until then), and clears `locked_until`. A row
-- with no status is a request still running, or one whose process died: after
-- `locked_until` a repeat may take it over. `fingerprint` is the SHA-256 of the request's
-- method, path, If-Match and body, which a repeat must match.
CREATE TABLE idempotency_keys (
    company_id   BLOB    NOT NULL REFERENCES companies (id) ON DELETE CASCADE,
    key          TEXT    NOT NULL,
    fingerprint  BLOB    NOT NULL,
    claim        BLOB    NOT NULL,
    created_at   INTEGER NOT NULL,
    locked_until INTEGER,
    status       INTEGER,
    headers      TEXT,
    body         BLOB    NOT NULL,
    PRIMARY KEY (company_id, key)
) STRICT;

-- The background expiry deletes the oldest first.
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
