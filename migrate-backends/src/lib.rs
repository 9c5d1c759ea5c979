//! The executors of `migrate`: SQLite, PostgreSQL and MySQL/MariaDB on sqlx.
//!
//! Every backend is a [`SqlxDb`] over a sqlx pool, implementing [`migrate_core::Executor`]: the
//! tracking tables, the runner lock, transactions, and the journal of steps that run outside
//! one. What differs between databases sits behind [`Driver`].

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod conn_ext;
mod driver;
mod held;
mod raw;
mod rows;
mod sqlx_db;
mod step_sql;
mod tracking;

#[cfg(feature = "mysql")]
pub mod mysql;
#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "sqlite")]
pub mod sqlite;
#[cfg(feature = "testing")]
pub mod testing;

pub use conn_ext::ConnExt;
pub use driver::Driver;
pub use sqlx_db::{LockMode, SqlxDb, DEFAULT_LOCK_TIMEOUT};
pub use tracking::DEFAULT_TRACKING_TABLE;

use migrate_core::{Error, Executor, Result};

/// Connects to the database a URL names, choosing the backend by its scheme: `sqlite:`,
/// `postgres:`/`postgresql:`, `mysql:`/`mariadb:`. The backend's feature must be enabled.
pub async fn connect(url: &str) -> Result<Box<dyn Executor>> {
    let scheme = url.split(':').next().unwrap_or_default();
    match scheme {
        #[cfg(feature = "sqlite")]
        "sqlite" => Ok(Box::new(sqlite::SqliteDb::connect(url).await?)),
        #[cfg(feature = "postgres")]
        "postgres" | "postgresql" => Ok(Box::new(postgres::PgDb::connect(url).await?)),
        #[cfg(feature = "mysql")]
        "mysql" => Ok(Box::new(mysql::MySqlDb::connect(url).await?)),
        #[cfg(feature = "mysql")]
        "mariadb" => {
            let url = format!("mysql{}", &url["mariadb".len()..]);
            Ok(Box::new(mysql::MySqlDb::connect(&url).await?))
        }
        _ => Err(Error::Config(format!(
            "no enabled backend for URL scheme `{scheme}:` (features: sqlite, postgres, mysql)"
        ))),
    }
}
