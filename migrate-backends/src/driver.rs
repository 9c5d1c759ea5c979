//! What differs between the databases, behind one trait, so that the step flows in
//! [`crate::SqlxDb`] are written once. Adding a database means one file that implements
//! [`Driver`]: its statements, its placeholders, how it reads its errors, and its run lock.

use crate::statements::{Statements, TrackingNames};
use crate::SqlxDb;
use migrate_core::backend::RunLock;
use migrate_core::conn::Value;
use migrate_core::dialect::Dialect;
use migrate_core::error::{Error, Result};
use migrate_core::future::BoxFuture;
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

    /// The placeholder of the `index`-th bound value (1-based): `?1`, `$1` or `?`.
    #[doc(hidden)]
    fn placeholder(index: usize) -> String;

    /// Every statement this database runs for one tracking-table configuration.
    #[doc(hidden)]
    fn statements(names: &TrackingNames) -> Statements;

    /// Rows affected by one statement.
    #[doc(hidden)]
    fn rows_affected(result: &Self::QueryResult) -> u64;

    /// Decodes column `index` of a row into a portable value.
    #[doc(hidden)]
    fn decode_value(row: &Self::Row, index: usize) -> Result<Value>;

    /// Whether the error says that the tracking table (or its schema) does not exist.
    #[doc(hidden)]
    fn is_missing_table(err: &sqlx::Error) -> bool;

    /// Whether a read failed because the table lacks a column it names (a table made by an
    /// earlier version).
    #[doc(hidden)]
    fn is_missing_column(_err: &sqlx::Error) -> bool {
        false
    }

    /// Whether an upgrade statement failed because its change is already in place (a column
    /// that exists).
    #[doc(hidden)]
    fn is_already_done(err: &sqlx::Error) -> bool;

    /// Whether a tracking transaction failed because another transaction got in its way and
    /// nothing of it was kept: its compare-and-set found the table moved, or the database
    /// rolled it back to break a deadlock. After `Statements::record_and_commit` or a
    /// journalled step's start, the step did not run, and the runner reads the state again and
    /// re-plans; a journalled step's pending finish (`journal_finish`) is sent again.
    #[doc(hidden)]
    fn is_lost_race(_err: &sqlx::Error) -> bool {
        false
    }

    /// Whether a statement failed because its session is gone: the server ended it (a restart,
    /// an idle timeout, an administrator) or the socket closed. A state read that met it on the
    /// kept connection, which skips the pool's test before acquire, is sent once more on a
    /// connection from the pool (see `state_read`).
    #[doc(hidden)]
    fn is_lost_session(_err: &sqlx::Error) -> bool {
        false
    }

    /// Maps an error raised while waiting for the write lock (SQLite's busy timeout).
    #[doc(hidden)]
    fn lock_error(err: sqlx::Error, _waited: Duration) -> Error {
        err.into()
    }

    /// Takes the runner lock for a whole run, waiting at most `timeout`.
    #[doc(hidden)]
    fn lock(db: &SqlxDb<Self>, timeout: Duration) -> BoxFuture<'_, Result<Box<dyn RunLock>>>;
}

/// The SQLSTATE of `err`, when it is a database error (how the drivers read their errors).
fn sqlstate(err: &sqlx::Error) -> Option<std::borrow::Cow<'_, str>> {
    err.as_database_error().and_then(|d| d.code())
}

/// Whether `err` is a database error with SQLSTATE `code`.
pub(crate) fn has_sqlstate(err: &sqlx::Error, code: &str) -> bool {
    sqlstate(err).is_some_and(|c| c == code)
}

/// Whether `err` is a driver error that `DB` reads as a session gone
/// ([`Driver::is_lost_session`]).
pub(crate) fn lost_session<DB: Driver>(err: &Error) -> bool {
    match err {
        Error::Database(db) => db
            .driver_error()
            .and_then(|driver| driver.downcast_ref::<sqlx::Error>())
            .is_some_and(DB::is_lost_session),
        _ => false,
    }
}

/// Whether `err` says the connection is gone, in the words both servers share: the socket
/// closed or reset under the driver, or SQLSTATE class 08 (connection exception).
#[cfg(any(feature = "postgres", feature = "mysql"))]
pub(crate) fn is_lost_connection(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Io(_)) || sqlstate(err).is_some_and(|c| c.starts_with("08"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn socket_closed() -> Error {
        Error::from(sqlx::Error::Io(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "expected to read 4 bytes, got 0 bytes at EOF",
        )))
    }

    /// A closed socket is a lost session on `DB`; a row not found is not, nor the same words
    /// when they do not come from the driver.
    #[cfg(any(feature = "postgres", feature = "mysql"))]
    fn reads_a_closed_socket_as_a_lost_session_and_nothing_else<DB: Driver>() {
        assert!(lost_session::<DB>(&socket_closed()));
        assert!(!lost_session::<DB>(&Error::from(sqlx::Error::RowNotFound)));
        assert!(!lost_session::<DB>(&Error::msg(
            "expected to read 4 bytes, got 0 bytes at EOF"
        )));
    }

    #[cfg(feature = "postgres")]
    #[test]
    fn postgres_reads_a_closed_socket_as_a_lost_session_and_nothing_else() {
        reads_a_closed_socket_as_a_lost_session_and_nothing_else::<sqlx::Postgres>();
    }

    #[cfg(feature = "mysql")]
    #[test]
    fn mysql_reads_a_closed_socket_as_a_lost_session_and_nothing_else() {
        reads_a_closed_socket_as_a_lost_session_and_nothing_else::<sqlx::MySql>();
    }

    #[cfg(feature = "sqlite")]
    #[test]
    fn sqlite_has_no_session_to_lose() {
        assert!(!lost_session::<sqlx::Sqlite>(&socket_closed()));
    }
}
