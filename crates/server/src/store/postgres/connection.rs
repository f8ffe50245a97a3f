//! An sqlx PostgreSQL connection as the store's operations use it, and sqlx's errors in the
//! store's terms.

use futures_util::TryStreamExt;
use sqlx::postgres::{PgArguments, PgRow};
use sqlx::query::Query;
use sqlx::{PgConnection, Postgres};
use uuid::Uuid;

use crate::store::StoreError;
use crate::store::connection::{BoxFuture, Connection, EachRow, Row, Statement, Value};
use crate::store::error::{DatabaseError, DatabaseFailure};

/// A connection of the PostgreSQL store, borrowed for one operation.
#[derive(Debug)]
pub struct PgSession<'c> {
    pub conn: &'c mut PgConnection,
    /// Whether statements are prepared once per connection and kept (named), or sent
    /// unnamed each time, as PgBouncer's transaction mode requires.
    pub persistent: bool,
}

impl Connection for PgSession<'_> {
    fn locks_rows(&self) -> bool {
        true
    }

    fn execute<'a>(
        &'a mut self,
        statement: &'a Statement,
    ) -> BoxFuture<'a, Result<u64, StoreError>> {
        Box::pin(async move {
            let done = bind(statement, self.persistent)
                .execute(&mut *self.conn)
                .await?;
            Ok(done.rows_affected())
        })
    }

    fn query<'a>(
        &'a mut self,
        statement: &'a Statement,
        each_row: &'a mut EachRow<'a>,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let mut rows = bind(statement, self.persistent).fetch(&mut *self.conn);
            while let Some(row) = rows.try_next().await? {
                each_row(&PgRowReader(&row))?;
            }
            Ok(())
        })
    }
}

/// A statement ready to run, its arguments bound in order.
pub fn bind(statement: &Statement, persistent: bool) -> Query<'_, Postgres, PgArguments> {
    let query = sqlx::query(&statement.sql).persistent(persistent);
    statement.args.iter().fold(query, |query, arg| match arg {
        Value::Uuid(id) => query.bind(*id),
        Value::Text(text) => query.bind(text.as_deref()),
        Value::Integer(number) => query.bind(*number),
        Value::Real(number) => query.bind(*number),
        Value::Bytes(bytes) => query.bind(bytes.as_slice()),
    })
}

/// A row of an sqlx query.
pub struct PgRowReader<'r>(pub &'r PgRow);

impl PgRowReader<'_> {
    fn get<'r, T>(&'r self, column: usize) -> Result<T, StoreError>
    where
        T: sqlx::Decode<'r, Postgres> + sqlx::Type<Postgres>,
    {
        Ok(sqlx::Row::try_get(self.0, column)?)
    }
}

impl Row for PgRowReader<'_> {
    fn uuid(&self, column: usize) -> Result<Uuid, StoreError> {
        self.get(column)
    }

    fn optional_uuid(&self, column: usize) -> Result<Option<Uuid>, StoreError> {
        self.get(column)
    }

    fn text(&self, column: usize) -> Result<String, StoreError> {
        self.get(column)
    }

    fn optional_text(&self, column: usize) -> Result<Option<String>, StoreError> {
        self.get(column)
    }

    fn integer(&self, column: usize) -> Result<i64, StoreError> {
        self.get(column)
    }

    fn optional_integer(&self, column: usize) -> Result<Option<i64>, StoreError> {
        self.get(column)
    }

    fn bytes(&self, column: usize) -> Result<Vec<u8>, StoreError> {
        self.get(column)
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        let failure = match &error {
            sqlx::Error::Database(db) => match db.code().as_deref() {
                Some("23505") => DatabaseFailure::UniqueViolation {
                    index: db.constraint().unwrap_or_default().to_owned(),
                },
                Some("23503") => DatabaseFailure::ForeignKeyViolation,
                Some("22021" | "22P05") => DatabaseFailure::UnstorableText,
                Some("40001" | "40P01") => DatabaseFailure::Contention,
                _ => DatabaseFailure::Other,
            },
            sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => {
                DatabaseFailure::Unavailable
            }
            _ => DatabaseFailure::Other,
        };
        StoreError::Database(DatabaseError::new(failure, error))
    }
}
