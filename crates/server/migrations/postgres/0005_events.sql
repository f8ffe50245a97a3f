-- The same tables as migrations/sqlite/0005_events.sql, in PostgreSQL's types, and the one
-- place the two differ: several transactions write events at once, and a position taken by
-- one that is still open may end up below one already committed, so position alone cannot
-- be the feed's order (docs/reference.md#the-feed-on-postgresql).
--
-- Each event gets tx: the larger of its transaction's id + 1 and the xmax of the inserting
-- statement's snapshot (one past the highest transaction id completed by then). Two facts
-- follow, for any transaction T still open, with id x:
--   * every event T wrote or will write has tx > x >= xmin (the oldest id still open);
--   * an event written after another transaction committed has a tx no lower than that
--     transaction's events: the xmax of a later snapshot is past its id and past every xmax
--     before it. Writers of one contact queue on its row lock, so its events' (tx, position)
--     follow the order their changes committed.
-- The feed is ordered by (tx, position) and lists only events with tx <= xmin of the
-- reading statement's own snapshot (`listable_events`): no open or future transaction can
-- add an event there any more, so a reader following the feed never skips one.
CREATE TABLE events (
    position    BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tx          BIGINT NOT NULL DEFAULT greatest(
                    pg_current_xact_id()::text::bigint + 1,
                    pg_snapshot_xmax(pg_current_snapshot())::text::bigint),
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
    WHERE tx <= pg_snapshot_xmin(pg_current_snapshot())::text::bigint;

CREATE TABLE event_horizons (
    company_id UUID   PRIMARY KEY REFERENCES companies (id) ON DELETE CASCADE,
    tx         BIGINT NOT NULL,
    position   BIGINT NOT NULL
);
