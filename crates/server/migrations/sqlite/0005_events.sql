-- Change events (docs/reference.md#13-change-events-history-and-webhooks), each written in
-- the transaction of its change. position is the order events were written in; on SQLite's
-- one writer that is also the order they committed in, so tx is always 0 here and the feed
-- reads `listable_events`, every committed event. AUTOINCREMENT: a position is never used
-- twice, even after retention deleted every event.
-- data is the store's own JSON of the contact before and after, or of the definition
-- (store/events.rs); contact_id is set for contact events, for their history.
CREATE TABLE events (
    position    INTEGER PRIMARY KEY AUTOINCREMENT,
    tx          INTEGER NOT NULL DEFAULT 0,
    id          BLOB    NOT NULL UNIQUE,
    company_id  BLOB    NOT NULL REFERENCES companies (id) ON DELETE CASCADE,
    type        TEXT    NOT NULL,
    contact_id  BLOB,
    occurred_at INTEGER NOT NULL,
    actor_type  TEXT    NOT NULL CHECK (actor_type IN ('api_key', 'user', 'cli')),
    actor_id    TEXT    NOT NULL,
    data        TEXT    NOT NULL
) STRICT;

CREATE INDEX events_feed ON events (company_id, tx, position);
CREATE INDEX events_contact ON events (company_id, contact_id, position) WHERE contact_id IS NOT NULL;

CREATE VIEW listable_events AS SELECT * FROM events;

-- How far retention has deleted each company's feed: a cursor at or before this position
-- is older than the retention (410 cursor_expired).
CREATE TABLE event_horizons (
    company_id BLOB    PRIMARY KEY NOT NULL REFERENCES companies (id) ON DELETE CASCADE,
    tx         INTEGER NOT NULL,
    position   INTEGER NOT NULL
) STRICT;
