//! What differs between the databases, behind one trait, so that the step flows in
//! [`crate::SqlxDb`] are written once.

use crate::SqlxDb;
use migrate_core::{BoxFuture, Dialect, Error, Result, RunLock, Value};
use std::time::Duration;

mod sealed {
    pub trait Sealed {}
}
pub(crate) use sealed::Sealed;

/// A sqlx database that `migrate` can run on: SQLite, PostgreSQL or MySQL/MariaDB.
/// Implemented by this crate only.
pub trait Driver: sqlx::Database + Sealed {
    /// The dialect.
    const DIALECT: Dialect;
    /// The statement that opens a step's transaction; `None` means every step is journalled
    /// (MySQL, whose DDL commits implicitly).
    const BEGIN: Option<&'static str>;

    /// Rows affected by one statement.
    #[doc(hidden)]
    fn rows_affected(result: &Self::QueryResult) -> u64;

    /// Decodes column `index` of a row into a portable value.
    #[doc(hidden)]
    fn decode_value(row: &Self::Row, index: usize) -> Result<Value>;

    /// Whether the error says that the tracking table (or its schema) does not exist.
    #[doc(hidden)]
    fn is_missing_table(err: &sqlx::Error) -> bool;

    /// Maps an error raised while waiting for the write lock (SQLite's busy timeout).
    #[doc(hidden)]
    fn lock_error(err: sqlx::Error, _waited: Duration) -> Error {
        err.into()
    }

    /// Takes the runner lock for a whole run.
    #[doc(hidden)]
    fn lock(db: &SqlxDb<Self>) -> BoxFuture<'_, Result<Box<dyn RunLock>>>;
}
