-- Finding contacts by what they hold (docs/reference.md#finding-contacts): every filter of
-- GET /api/v1/contacts is served by one of these indexes, updated in the transaction of the
-- write, so a contact is found by its new values as soon as the write is acknowledged.
-- pg_trgm and btree_gin ship with PostgreSQL and are trusted extensions: a role that may
-- create in the database may create them (docs/deployment.md).
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE EXTENSION IF NOT EXISTS btree_gin;

-- `q`: trigram indexes of each contact's full name, email and ext_id, with the company in
-- the same GIN index so that a search reads only its own company's matches. ILIKE on these
-- expressions is served by it.
CREATE INDEX contacts_search ON contacts USING gin (
    company_id,
    (coalesce(first_name || ' ' || last_name, first_name, last_name)) gin_trgm_ops,
    email gin_trgm_ops,
    ext_id gin_trgm_ops
);

-- sort=updated_at and the updated_after/updated_before ranges.
CREATE INDEX contacts_updated ON contacts (company_id, updated_at DESC, id DESC);

-- Custom field filters. ordinal is a number field's value, or a date field's as days since
-- 1970-01-01, so that ranges compare numbers and dates as such, not as text; NULL for the
-- other types. Equality of text, select and boolean values goes through the first 200
-- characters of the value (a text value may hold 10,000, more than a B-tree entry may).
ALTER TABLE contact_field_values ADD COLUMN ordinal DOUBLE PRECISION;
UPDATE contact_field_values SET ordinal = value::double precision
WHERE field_id IN (SELECT id FROM custom_fields WHERE field_type = 'number');
UPDATE contact_field_values SET ordinal = value::date - DATE '1970-01-01'
WHERE field_id IN (SELECT id FROM custom_fields WHERE field_type = 'date');

DROP INDEX contact_field_values_field;
CREATE INDEX contact_field_values_value ON contact_field_values (field_id, substr(value, 1, 200));
CREATE INDEX contact_field_values_ordinal ON contact_field_values (field_id, ordinal)
WHERE ordinal IS NOT NULL;
