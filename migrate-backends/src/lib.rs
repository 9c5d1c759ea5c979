//! The executors of `migrate`: SQLite, PostgreSQL and MySQL/MariaDB on sqlx.
//!
//! Every backend is a [`SqlxDb`] over a sqlx pool, implementing [`MigrationBackend`]: the
//! tracking tables, the runner lock, transactions, and the journal of steps that run outside
//! one. What differs between databases sits behind [`Driver`].

#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub, missing_debug_implementations)]

mod conn_ext;
mod driver;
mod held;
mod portable;
mod raw;
mod rows;
mod sqlx_db;
mod statements;
mod url;

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
pub use sqlx_db::{SqlxDb, DEFAULT_CONNECT_TIMEOUT, DEFAULT_LOCK_TIMEOUT};
pub use statements::{Statements, TrackingNames, DEFAULT_TRACKING_TABLE};

use migrate_core::backend::MigrationBackend;
use migrate_core::error::{Error, Result};

/// Connects to the database a URL names, choosing the backend by its scheme: `sqlite:`,
/// `postgres:`/`postgresql:`, `mysql:`/`mariadb:`. The backend's feature must be enabled.
///
/// No error it returns shows the URL's password, in its message or its `Debug` output.
///
/// ```
/// # async fn demo() -> migrate_core::error::Result<()> {
/// let db = migrate_backends::connect("sqlite::memory:").await?;
/// # Ok(()) }
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(demo()).unwrap();
/// ```
pub async fn connect(url: &str) -> Result<Box<dyn MigrationBackend>> {
    connect_scheme(url)
        .await
        .map_err(|e| url::redact_password(e, url))
}

async fn connect_scheme(url: &str) -> Result<Box<dyn MigrationBackend>> {
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
            "no enabled backend for URL scheme `{}:` (features: sqlite, postgres, mysql)",
            scheme.escape_debug()
        ))),
    }
}
