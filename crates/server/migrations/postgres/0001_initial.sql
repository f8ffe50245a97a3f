-- The same schema as migrations/sqlite/0001_initial.sql, in PostgreSQL's types.
-- Keys sort bytewise (COLLATE "C") as in SQLite, so both backends order fields alike.

-- Companies are tenants; every other table hangs off one.
-- cursor_secret signs list cursors, so that a cursor of one company is refused by another.
CREATE TABLE companies (
    id            UUID   PRIMARY KEY,
    name          TEXT   NOT NULL UNIQUE,
    cursor_secret BYTEA  NOT NULL,
    created_at    BIGINT NOT NULL
);

-- Only the SHA-256 of a key is stored; prefix is the non-secret start shown in listings.
CREATE TABLE api_keys (
    id           UUID   PRIMARY KEY,
    company_id   UUID   NOT NULL REFERENCES companies (id) ON DELETE CASCADE,
    name         TEXT,
    prefix       TEXT   NOT NULL,
    key_hash     BYTEA  NOT NULL UNIQUE,
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT,
    revoked_at   BIGINT
);

CREATE INDEX api_keys_company ON api_keys (company_id, created_at);

-- options holds the JSON array of a select field's options, NULL for other types.
CREATE TABLE custom_fields (
    id           UUID   PRIMARY KEY,
    company_id   UUID   NOT NULL REFERENCES companies (id) ON DELETE CASCADE,
    key          TEXT   COLLATE "C" NOT NULL,
    display_name TEXT   NOT NULL,
    field_type   TEXT   NOT NULL CHECK (field_type IN ('text', 'number', 'boolean', 'date', 'select')),
    options      TEXT,
    created_at   BIGINT NOT NULL,
    UNIQUE (company_id, key)
);

-- Identifiers are stored normalised (lower-cased email, E.164 phone), so the unique
-- indexes below enforce uniqueness exactly as the API compares values.
CREATE TABLE contacts (
    id           UUID   PRIMARY KEY,
    company_id   UUID   NOT NULL REFERENCES companies (id) ON DELETE CASCADE,
    email        TEXT,
    phone_number TEXT,
    ext_id       TEXT,
    first_name   TEXT,
    last_name    TEXT,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    CHECK (email IS NOT NULL OR phone_number IS NOT NULL OR ext_id IS NOT NULL)
);

CREATE UNIQUE INDEX contacts_email ON contacts (company_id, email);
CREATE UNIQUE INDEX contacts_phone_number ON contacts (company_id, phone_number);
CREATE UNIQUE INDEX contacts_ext_id ON contacts (company_id, ext_id);
-- Serves the newest-first keyset pagination of GET /contacts.
CREATE INDEX contacts_newest ON contacts (company_id, created_at DESC, id DESC);

-- Values are stored in their canonical text form; the field's type says how to read them.
CREATE TABLE contact_field_values (
    contact_id UUID NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    field_id   UUID NOT NULL REFERENCES custom_fields (id) ON DELETE CASCADE,
    value      TEXT NOT NULL,
    PRIMARY KEY (contact_id, field_id)
);

CREATE INDEX contact_field_values_field ON contact_field_values (field_id);
