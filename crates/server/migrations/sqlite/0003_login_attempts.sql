-- Login throttling moves off the users table (docs/robustness.md#dashboard-logins).
-- login_attempts counts the password checks of each email, as typed and normalised
-- (Email::parse), whether or not a user has it: a throttle kept per user would answer an
-- unknown email differently from a known one, telling which emails have accounts. A window
-- opens with an email's first check and lasts 15 minutes; it admits 5 checks. A successful
-- login or a new password deletes the row, and logins delete ended windows on the way, so
-- the table holds only the emails tried in the last 15 minutes.
CREATE TABLE login_attempts (
    email             TEXT    PRIMARY KEY NOT NULL,
    attempts          INTEGER NOT NULL,
    window_started_at INTEGER NOT NULL
) STRICT;

CREATE INDEX login_attempts_window ON login_attempts (window_started_at);

-- The old per-user count, which login_attempts replaces. A count in progress at the
-- upgrade is forgotten: at worst a guesser gets one more window.
ALTER TABLE users DROP COLUMN failed_logins;
ALTER TABLE users DROP COLUMN last_failed_login_at;
