//! A rusqlite connection as the store's operations use it, and rusqlite's errors in the
//! store's terms.
//!
//! SQLite runs in this process: a statement is done when the call returns, so the futures
//! handed back here are ready at once, and an operation runs to its end in one poll
//! ([`run_to_end`](crate::store::connection::run_to_end)).

use rusqlite::types::{Null, ToSql, ToSqlOutput};
use uuid::Uuid;

use crate::store::StoreError;
use crate::store::connection::{BoxFuture, Connection, EachRow, Row, Statement, Value};
use crate::store::error::{DatabaseError, DatabaseFailure};

/// A connection of the SQLite store, borrowed for one operation.
#[derive(Debug)]
pub struct SqliteConnection<'c>(pub &'c mut rusqlite::Connection);

impl Connection for SqliteConnection<'_> {
    fn locks_rows(&self) -> bool {
        false
    }

    fn execute<'a>(
        &'a mut self,
        statement: &'a Statement,
    ) -> BoxFuture<'a, Result<u64, StoreError>> {
        let outcome = execute(self.0, statement);
        Box::pin(std::future::ready(outcome))
    }

    fn query<'a>(
        &'a mut self,
        statement: &'a Statement,
        each_row: &'a mut EachRow<'a>,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        let outcome = query(self.0, statement, each_row);
        Box::pin(std::future::ready(outcome))
    }
}

/// Runs a statement that returns no rows; the number of rows it changed.
fn execute(conn: &rusqlite::Connection, statement: &Statement) -> Result<u64, StoreError> {
    let mut prepared = prepare(conn, statement)?;
    let changed = prepared.raw_execute()?;
    Ok(u64::try_from(changed).unwrap_or(u64::MAX))
}

/// Runs a statement, handing each row to `each_row`.
pub fn query(
    conn: &rusqlite::Connection,
    statement: &Statement,
    each_row: &mut EachRow<'_>,
) -> Result<(), StoreError> {
    let mut prepared = prepare(conn, statement)?;
    let mut rows = prepared.raw_query();
    while let Some(row) = rows.next()? {
        each_row(&SqliteRow(row))?;
    }
    Ok(())
}

/// Prepares a statement (from the connection's cache) and binds its arguments to `$1`,
/// `$2`, …. SQLite numbers `$N` parameters in the order they first appear, not by N, so
/// each is looked up by its name.
pub fn prepare<'c>(
    conn: &'c rusqlite::Connection,
    statement: &Statement,
) -> Result<rusqlite::CachedStatement<'c>, StoreError> {
    let mut prepared = conn.prepare_cached(&statement.sql)?;
    for index in 1..=prepared.parameter_count() {
        let arg = prepared
            .parameter_name(index)
            .and_then(|name| name.strip_prefix('$')?.parse::<usize>().ok())
            .and_then(|number| statement.args.get(number.checked_sub(1)?))
            .ok_or(rusqlite::Error::InvalidParameterCount(
                statement.args.len(),
                prepared.parameter_count(),
            ))?;
        prepared.raw_bind_parameter(index, arg)?;
    }
    Ok(prepared)
}

impl ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        match self {
            Self::Uuid(Some(id)) => id.to_sql(),
            Self::Text(Some(text)) => text.to_sql(),
            Self::Uuid(None) | Self::Text(None) => Null.to_sql(),
            Self::Integer(number) => number.to_sql(),
            Self::Real(number) => number.to_sql(),
            Self::Bytes(bytes) => bytes.to_sql(),
        }
    }
}

/// A row of a rusqlite query.
pub struct SqliteRow<'r, 's>(pub &'r rusqlite::Row<'s>);

impl Row for SqliteRow<'_, '_> {
    fn uuid(&self, column: usize) -> Result<Uuid, StoreError> {
        Ok(self.0.get(column)?)
    }

    fn optional_uuid(&self, column: usize) -> Result<Option<Uuid>, StoreError> {
        Ok(self.0.get(column)?)
    }

    fn text(&self, column: usize) -> Result<String, StoreError> {
        Ok(self.0.get(column)?)
    }

    fn optional_text(&self, column: usize) -> Result<Option<String>, StoreError> {
        Ok(self.0.get(column)?)
    }

    fn integer(&self, column: usize) -> Result<i64, StoreError> {
        Ok(self.0.get(column)?)
    }

    fn optional_integer(&self, column: usize) -> Result<Option<i64>, StoreError> {
        Ok(self.0.get(column)?)
    }

    fn bytes(&self, column: usize) -> Result<Vec<u8>, StoreError> {
        Ok(self.0.get(column)?)
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(error: rusqlite::Error) -> Self {
        use rusqlite::ffi::{
            SQLITE_CONSTRAINT_FOREIGNKEY, SQLITE_CONSTRAINT_PRIMARYKEY, SQLITE_CONSTRAINT_UNIQUE,
        };
        let failure = match &error {
            rusqlite::Error::SqliteFailure(failure, message) => match failure.extended_code {
                SQLITE_CONSTRAINT_UNIQUE | SQLITE_CONSTRAINT_PRIMARYKEY => {
                    // "UNIQUE constraint failed: contacts.company_id, contacts.email"
                    let columns = message
                        .as_deref()
                        .and_then(|message| message.split_once(": "))
                        .map_or("", |(_, columns)| columns);
                    DatabaseFailure::UniqueViolation {
                        index: columns.to_owned(),
                    }
                }
                SQLITE_CONSTRAINT_FOREIGNKEY => DatabaseFailure::ForeignKeyViolation,
                _ if matches!(
                    failure.code,
                    rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
                ) =>
                {
                    DatabaseFailure::Unavailable
                }
                _ => DatabaseFailure::Other,
            },
            _ => DatabaseFailure::Other,
        };
        StoreError::Database(DatabaseError::new(failure, error))
    }
}
