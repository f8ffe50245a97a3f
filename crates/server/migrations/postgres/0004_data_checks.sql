-- The same schema as migrations/sqlite/0004_data_checks.sql, in PostgreSQL's types.

-- Checks of the stored data that start-up runs after the migrations (store/checks.rs), each
-- once per version of what it checks: the email check runs again only when the email
-- normal form changes (domain::email::NORMALISATION_VERSION). version is the one the check
-- last completed for; deleting the row makes the next start run it again.
CREATE TABLE data_checks (
    name         TEXT   PRIMARY KEY,
    version      BIGINT NOT NULL,
    completed_at BIGINT NOT NULL
);
