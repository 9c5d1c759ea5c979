//! The executors of `migrate`: SQLite, PostgreSQL and MySQL/MariaDB on sqlx.
//!
//! Each backend implements [`migrate_core::Executor`]: the tracking tables, the runner lock,
//! transactions and the journal of steps that run outside one.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod conn_ext;
mod rows;
mod tracking;

#[cfg(feature = "sqlite")]
pub mod sqlite;

pub use conn_ext::ConnExt;
pub use tracking::DEFAULT_TRACKING_TABLE;
