-- The same schema as migrations/sqlite/0002_dashboard.sql, in PostgreSQL's types.

-- Dashboard users: people who log in with an email and a password, each of one company.
-- Emails are stored normalised (Email::parse) and are unique across the server, so a login
-- needs no company name. password_hash is an argon2id PHC string.
-- failed_logins counts consecutive failed logins; with last_failed_login_at it throttles
-- password guessing (reset by a successful login). It lives here, not in one process's
-- memory, so every process sharing the database throttles alike.
CREATE TABLE users (
    id                   UUID    PRIMARY KEY,
    company_id           UUID    NOT NULL REFERENCES companies (id) ON DELETE CASCADE,
    email                TEXT    NOT NULL UNIQUE,
    password_hash        TEXT    NOT NULL,
    failed_logins        INTEGER NOT NULL DEFAULT 0,
    last_failed_login_at BIGINT,
    created_at           BIGINT  NOT NULL
);

CREATE INDEX users_company ON users (company_id);

-- Dashboard sessions, stored server-side: the cookie holds a random token, and only its
-- SHA-256 is kept here. csrf_token is what every form of the session must send back.
CREATE TABLE sessions (
    token_hash BYTEA  PRIMARY KEY,
    user_id    UUID   NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    csrf_token TEXT   NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);

CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX sessions_expiry ON sessions (expires_at);
