-- Each contact's history as a chain (docs/reference.md#contact-history): the contact names
-- its latest event (last_event) and each contact event the one before it (previous), so
-- that recording an event changes only the contact row its write already changes. The
-- index by contact of 0005 put one more page at a random place into every write, a quarter
-- of a seed PATCH's throughput (BENCHMARKS.md, "The cost of change events").
-- A deleted contact's chain starts at its deletion event, which events_deleted finds.
ALTER TABLE contacts ADD COLUMN last_event INTEGER;
ALTER TABLE events ADD COLUMN previous INTEGER;

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
