//! Typed access to the sqlx connection behind a [`Conn`].

use migrate_core::conn::Conn;
use migrate_core::dialect::Dialect;
use migrate_core::error::{Error, Result};

/// Typed access to the sqlx connection of a migration's [`Conn`], for what the portable
/// `execute`/`query` cannot express (binds, typed rows, sqlx's query builders).
///
/// ```no_run
/// # #[cfg(feature = "sqlite")]
/// # async fn demo(db: &mut migrate_core::conn::Conn<'_>) -> migrate_core::error::Result<()> {
/// use migrate_backends::ConnExt;
/// sqlx::query("UPDATE session SET state = ?1 WHERE state IS NULL")
///     .bind("{}")
///     .execute(db.sqlite()?)
///     .await?;
/// # Ok(()) }
/// ```
pub trait ConnExt {
    /// The SQLite connection; [`Error::WrongDialect`] on another database.
    #[cfg(feature = "sqlite")]
    fn sqlite(&mut self) -> Result<&mut sqlx::SqliteConnection>;
    /// The PostgreSQL connection; [`Error::WrongDialect`] on another database.
    #[cfg(feature = "postgres")]
    fn postgres(&mut self) -> Result<&mut sqlx::PgConnection>;
    /// The MySQL/MariaDB connection; [`Error::WrongDialect`] on another database.
    #[cfg(feature = "mysql")]
    fn mysql(&mut self) -> Result<&mut sqlx::MySqlConnection>;
}

fn downcast<'a, T: 'static>(conn: &'a mut Conn<'_>, wanted: Dialect) -> Result<&'a mut T> {
    let actual = conn.dialect();
    conn.driver()
        .downcast_mut::<T>()
        .ok_or(Error::WrongDialect { wanted, actual })
}

impl ConnExt for Conn<'_> {
    #[cfg(feature = "sqlite")]
    fn sqlite(&mut self) -> Result<&mut sqlx::SqliteConnection> {
        downcast(self, Dialect::Sqlite)
    }
    #[cfg(feature = "postgres")]
    fn postgres(&mut self) -> Result<&mut sqlx::PgConnection> {
        downcast(self, Dialect::Postgres)
    }
    #[cfg(feature = "mysql")]
    fn mysql(&mut self) -> Result<&mut sqlx::MySqlConnection> {
        downcast(self, Dialect::MySql)
    }
}
