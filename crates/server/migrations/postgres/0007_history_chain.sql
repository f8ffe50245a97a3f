-- The same change as migrations/sqlite/0007_history_chain.sql, in PostgreSQL's types. Writers
-- of one contact queue on its row lock, so its events' positions follow the order of its
-- changes, and linking by position links them in that order.
ALTER TABLE contacts ADD COLUMN last_event BIGINT;
ALTER TABLE events ADD COLUMN previous BIGINT;

-- The events already recorded, linked in the order they were written.
UPDATE events SET previous = linked.previous
FROM (
    SELECT position,
           lag(position) OVER (PARTITION BY company_id, contact_id ORDER BY position) AS previous
    FROM events
    WHERE contact_id IS NOT NULL
) AS linked
WHERE events.position = linked.position AND linked.previous IS NOT NULL;

UPDATE contacts SET last_event = latest.position
FROM (
    SELECT company_id, contact_id, max(position) AS position
    FROM events
    WHERE contact_id IS NOT NULL
    GROUP BY company_id, contact_id
) AS latest
WHERE contacts.company_id = latest.company_id AND contacts.id = latest.contact_id;

CREATE INDEX events_deleted ON events (company_id, contact_id) WHERE type = 'contact.deleted';
DROP INDEX events_contact;
