//! The executors of `migrate`: SQLite, PostgreSQL and MySQL/MariaDB on sqlx.
//!
//! Every backend is a [`SqlxDb`] over a sqlx pool, implementing [`MigrationBackend`](migrate_core::backend::MigrationBackend): the
//! tracking tables, the runner lock, transactions, and the journal of steps that run outside
//! one. What differs between databases sits behind [`Driver`].

#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub, missing_debug_implementations)]

#[cfg(any(feature = "testing", feature = "snapshot"))]
mod admin;
mod adopted;
mod conn_ext;
mod connect;
pub mod data;
mod decode;
mod driver;
mod fingerprint;
mod held;
mod home_runtime;
mod lock_wait;
mod packed_state;
mod portable;
mod raw;
mod rows;
mod sqlx_db;
mod state_read;
mod statements;
mod url;
mod wal_index;

#[cfg(feature = "snapshot")]
pub mod drift;
#[cfg(feature = "mysql")]
pub mod mysql;
#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "snapshot")]
pub mod snapshot;
#[cfg(feature = "sqlite")]
pub mod sqlite;
#[cfg(feature = "sqlite")]
mod sqlite_opened;
#[cfg(feature = "testing")]
pub mod testing;

pub use conn_ext::ConnExt;
pub use connect::{checked_dialect, connect, connect_with, ConnectOptions};
pub use driver::Driver;
pub use lock_wait::LOCK_WAIT_REPORT_EVERY;
pub use sqlx_db::{SqlxDb, DEFAULT_CONNECT_TIMEOUT, DEFAULT_LOCK_TIMEOUT};
pub use statements::{Statements, TrackingNames, DEFAULT_TRACKING_TABLE};
pub use url::redact_url_password;
