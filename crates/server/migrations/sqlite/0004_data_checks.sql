-- Checks of the stored data that start-up runs after the migrations (store/checks.rs), each
-- once per version of what it checks: the email check runs again only when the email
-- normal form changes (domain::email::NORMALISATION_VERSION). version is the one the check
-- last completed for; deleting the row makes the next start run it again.
CREATE TABLE data_checks (
    name         TEXT    PRIMARY KEY NOT NULL,
    version      INTEGER NOT NULL,
    completed_at INTEGER NOT NULL
) STRICT;
