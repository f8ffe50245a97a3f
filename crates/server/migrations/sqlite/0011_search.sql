-- Finding contacts by what they hold (docs/reference.md#finding-contacts): every filter of
-- GET /api/v1/contacts is served by one of these indexes, updated in the transaction of the
-- write, so a contact is found by its new values as soon as the write is acknowledged.

-- `q`: an FTS5 trigram index of each contact's full name, email and ext_id. Contentless, so
-- it holds only the index, not a second copy of the text; a phrase of trigrams matches a
-- substring, case-insensitively. Its rows are keyed by search_key, not by the contacts'
-- rowid, which VACUUM may renumber in a table without an INTEGER PRIMARY KEY.
ALTER TABLE contacts ADD COLUMN search_key INTEGER;
UPDATE contacts SET search_key = rowid;
CREATE UNIQUE INDEX contacts_search_key ON contacts (search_key);

CREATE VIRTUAL TABLE contacts_search USING fts5(
    name, email, ext_id, content = '', contentless_delete = 1, tokenize = 'trigram'
);
INSERT INTO contacts_search (rowid, name, email, ext_id)
SELECT search_key, coalesce(first_name || ' ' || last_name, first_name, last_name), email, ext_id
FROM contacts;

-- The key of a new contact is one past the largest (the unique index finds it), so a key is
-- never held by two contacts, whatever VACUUM did to the rowids.
CREATE TRIGGER contacts_search_insert AFTER INSERT ON contacts BEGIN
    UPDATE contacts SET search_key = (SELECT coalesce(max(search_key), 0) + 1 FROM contacts)
    WHERE rowid = new.rowid;
    INSERT INTO contacts_search (rowid, name, email, ext_id)
    SELECT search_key, coalesce(first_name || ' ' || last_name, first_name, last_name), email, ext_id
    FROM contacts WHERE rowid = new.rowid;
END;

-- Only when a searched member changed: an update of custom fields or updated_at alone leaves
-- the index untouched.
CREATE TRIGGER contacts_search_update AFTER UPDATE OF first_name, last_name, email, ext_id ON contacts
WHEN new.first_name IS NOT old.first_name OR new.last_name IS NOT old.last_name
  OR new.email IS NOT old.email OR new.ext_id IS NOT old.ext_id
BEGIN
    UPDATE contacts_search
    SET name = coalesce(new.first_name || ' ' || new.last_name, new.first_name, new.last_name),
        email = new.email, ext_id = new.ext_id
    WHERE rowid = new.search_key;
END;

CREATE TRIGGER contacts_search_delete AFTER DELETE ON contacts BEGIN
    DELETE FROM contacts_search WHERE rowid = old.search_key;
END;

-- sort=updated_at and the updated_after/updated_before ranges.
CREATE INDEX contacts_updated ON contacts (company_id, updated_at DESC, id DESC);

-- Custom field filters. ordinal is a number field's value, or a date field's as days since
-- 1970-01-01, so that ranges compare numbers and dates as such, not as text; NULL for the
-- other types. Equality of text, select and boolean values goes through the first 200
-- characters of the value (a text value may hold 10,000, more than an index entry should).
ALTER TABLE contact_field_values ADD COLUMN ordinal REAL;
UPDATE contact_field_values SET ordinal = CAST(value AS REAL)
WHERE field_id IN (SELECT id FROM custom_fields WHERE field_type = 'number');
UPDATE contact_field_values SET ordinal = julianday(value) - 2440587.5
WHERE field_id IN (SELECT id FROM custom_fields WHERE field_type = 'date');

DROP INDEX contact_field_values_field;
CREATE INDEX contact_field_values_value ON contact_field_values (field_id, substr(value, 1, 200));
CREATE INDEX contact_field_values_ordinal ON contact_field_values (field_id, ordinal)
WHERE ordinal IS NOT NULL;
