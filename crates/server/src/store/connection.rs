//! What the store's operations need of a database connection, whichever driver is behind
//! it: statements as data (SQL text and typed arguments), rows read by position, and the
//! two calls that run a statement.
//!
//! Each backend implements [`Connection`] and [`Row`] once for its driver; everything else
//! in the store is written once, over `&mut dyn Connection`.

use std::borrow::Cow;
use std::future::Future;
use std::pin::{Pin, pin};
use std::task::{Context, Poll, Waker};

use uuid::Uuid;

use super::StoreError;

/// A future a connection returns: boxed, so that [`Connection`] can be a trait object.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One argument of a statement, typed as the column it is compared with or stored in.
/// `None` is SQL `NULL` of that type (PostgreSQL needs the type even of a `NULL`).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Uuid(Option<Uuid>),
    Text(Option<String>),
    Integer(Option<i64>),
    Real(Option<f64>),
    Bytes(Vec<u8>),
}

impl From<Uuid> for Value {
    fn from(id: Uuid) -> Self {
        Self::Uuid(Some(id))
    }
}

impl From<Option<Uuid>> for Value {
    fn from(id: Option<Uuid>) -> Self {
        Self::Uuid(id)
    }
}

impl From<&str> for Value {
    fn from(text: &str) -> Self {
        Self::Text(Some(text.to_owned()))
    }
}

impl From<String> for Value {
    fn from(text: String) -> Self {
        Self::Text(Some(text))
    }
}

impl From<Option<String>> for Value {
    fn from(text: Option<String>) -> Self {
        Self::Text(text)
    }
}

impl From<&Option<String>> for Value {
    fn from(text: &Option<String>) -> Self {
        Self::Text(text.clone())
    }
}

impl From<i64> for Value {
    fn from(number: i64) -> Self {
        Self::Integer(Some(number))
    }
}

impl From<Option<i64>> for Value {
    fn from(number: Option<i64>) -> Self {
        Self::Integer(number)
    }
}

impl From<u32> for Value {
    fn from(number: u32) -> Self {
        Self::Integer(Some(number.into()))
    }
}

impl From<f64> for Value {
    fn from(number: f64) -> Self {
        Self::Real(Some(number))
    }
}

impl From<Option<f64>> for Value {
    fn from(number: Option<f64>) -> Self {
        Self::Real(number)
    }
}

impl From<&[u8]> for Value {
    fn from(bytes: &[u8]) -> Self {
        Self::Bytes(bytes.to_vec())
    }
}

/// A statement of `sql.rs` with its arguments: `args[0]` is `$1`, and so on.
///
/// The text is a `&'static str` but for the contact searches, whose text follows the
/// filters asked for (`sql::find_contacts`); either way both drivers keep each distinct
/// text prepared per connection.
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    pub sql: Cow<'static, str>,
    pub args: Vec<Value>,
}

impl Statement {
    /// A statement with no arguments yet.
    pub fn new(sql: impl Into<Cow<'static, str>>) -> Self {
        Self {
            sql: sql.into(),
            args: Vec::new(),
        }
    }

    /// Adds the next argument (`$1` first).
    pub fn arg(mut self, value: impl Into<Value>) -> Self {
        self.args.push(value.into());
        self
    }
}

/// One row of a result, read by column position: every statement of `sql.rs` that
/// returns rows lists its columns in the order its decoder in `rows.rs` reads them (a test
/// there checks each).
pub trait Row {
    fn uuid(&self, column: usize) -> Result<Uuid, StoreError>;
    fn optional_uuid(&self, column: usize) -> Result<Option<Uuid>, StoreError>;
    fn text(&self, column: usize) -> Result<String, StoreError>;
    fn optional_text(&self, column: usize) -> Result<Option<String>, StoreError>;
    fn integer(&self, column: usize) -> Result<i64, StoreError>;
    fn optional_integer(&self, column: usize) -> Result<Option<i64>, StoreError>;
    fn bytes(&self, column: usize) -> Result<Vec<u8>, StoreError>;
}

/// What is done with each row of a query, in order.
pub type EachRow<'a> = dyn FnMut(&dyn Row) -> Result<(), StoreError> + Send + 'a;

/// A database connection as the store's operations use it, inside whatever transaction
/// its backend opened for the operation.
pub trait Connection: Send {
    /// Whether a read that a write decides on must lock the rows it reads. PostgreSQL
    /// serves many writers at once, so it must (`FOR UPDATE`); SQLite has one writer, so
    /// every read of a write is already alone, and it has no row locks to take.
    fn locks_rows(&self) -> bool;

    /// Runs a statement, returning how many rows it changed.
    fn execute<'a>(
        &'a mut self,
        statement: &'a Statement,
    ) -> BoxFuture<'a, Result<u64, StoreError>>;

    /// Runs a statement, handing each row it returns to `each_row` as it arrives; the
    /// first error `each_row` returns ends the query with that error.
    fn query<'a>(
        &'a mut self,
        statement: &'a Statement,
        each_row: &'a mut EachRow<'a>,
    ) -> BoxFuture<'a, Result<(), StoreError>>;
}

/// Runs a statement and decodes every row it returns.
pub async fn fetch_all<T: Send>(
    conn: &mut dyn Connection,
    statement: &Statement,
    decode: fn(&dyn Row) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    let mut decoded = Vec::new();
    conn.query(statement, &mut |row| {
        decoded.push(decode(row)?);
        Ok(())
    })
    .await?;
    Ok(decoded)
}

/// Runs a statement and decodes the first row it returns, if any.
pub async fn fetch_optional<T: Send>(
    conn: &mut dyn Connection,
    statement: &Statement,
    decode: fn(&dyn Row) -> Result<T, StoreError>,
) -> Result<Option<T>, StoreError> {
    let mut decoded = None;
    conn.query(statement, &mut |row| {
        if decoded.is_none() {
            decoded = Some(decode(row)?);
        }
        Ok(())
    })
    .await?;
    Ok(decoded)
}

/// Runs a statement that must return a row (an `INSERT … RETURNING`, a `count(*)`).
pub async fn fetch_one<T: Send>(
    conn: &mut dyn Connection,
    statement: &Statement,
    decode: fn(&dyn Row) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    fetch_optional(conn, statement, decode)
        .await?
        .ok_or_else(|| StoreError::Internal(format!("no row from {:?}", statement.sql)))
}

/// Runs an operation's future to its end on this thread, for a backend whose statements
/// complete before they return (SQLite): such an operation is done after its first poll,
/// since it awaits nothing else. One that is not has awaited something no SQLite
/// operation may, and fails rather than block.
pub fn run_to_end<T>(
    operation: impl Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    match pin!(operation).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(outcome) => outcome,
        Poll::Pending => Err(StoreError::Internal(
            "a SQLite operation waited on something other than its connection".to_owned(),
        )),
    }
}
