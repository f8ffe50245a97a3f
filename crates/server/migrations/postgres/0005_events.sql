-- The same tables as migrations/sqlite/0005_events.sql, in PostgreSQL's types, and the one
-- place the two differ: several transactions write events at once, and a position taken by
-- one that is still open may end up below one already committed. So each event is tagged
-- with its transaction's id (tx), the feed is ordered by (tx, position), and
-- `listable_events` holds only the events of transactions older than every transaction
-- still running (pg_snapshot_xmin of the statement's own snapshot): a set that nothing can
-- join any more, so a reader following the feed's order never skips an event
-- (docs/reference.md#13-change-events-history-and-webhooks).
CREATE TABLE events (
    position    BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tx          BIGINT NOT NULL DEFAULT pg_current_xact_id()::text::bigint,
    id          UUID   NOT NULL UNIQUE,
    company_id  UUID   NOT NULL REFERENCES companies (id) ON DELETE CASCADE,
    type        TEXT   NOT NULL,
    contact_id  UUID,
    occurred_at BIGINT NOT NULL,
    actor_type  TEXT   NOT NULL CHECK (actor_type IN ('api_key', 'user', 'cli')),
    actor_id    TEXT   NOT NULL,
    data        TEXT   NOT NULL
);

CREATE INDEX events_feed ON events (company_id, tx, position);
CREATE INDEX events_contact ON events (company_id, contact_id, position) WHERE contact_id IS NOT NULL;

CREATE VIEW listable_events AS
    SELECT * FROM events
    WHERE tx < pg_snapshot_xmin(pg_current_snapshot())::text::bigint;

CREATE TABLE event_horizons (
    company_id UUID   PRIMARY KEY REFERENCES companies (id) ON DELETE CASCADE,
    tx         BIGINT NOT NULL,
    position   BIGINT NOT NULL
);
