//! # migrate
//!
//! Database migrations as ordinary async Rust functions, with the version graph checked by the
//! compiler.
//!
//! ```no_run
//! migrate::migrations! { heads { session = "2.3.0" } }
//!
//! #[migrate::migration(table = "session", version = "2.0.0", down = drop_session)]
//! async fn create_session(db: &mut migrate::Conn<'_>) -> migrate::Result<()> {
//!     db.execute("CREATE TABLE session (id TEXT PRIMARY KEY, data TEXT)").await?;
//!     Ok(())
//! }
//! async fn drop_session(db: &mut migrate::Conn<'_>) -> migrate::Result<()> {
//!     db.execute("DROP TABLE session").await?;
//!     Ok(())
//! }
//!
//! #[migrate::migration(table = "session", version = "2.3.0", parent = "2.0.0", down = drop_state)]
//! async fn add_state(db: &mut migrate::Conn<'_>) -> migrate::Result<()> {
//!     db.execute("ALTER TABLE session ADD COLUMN state TEXT").await?;
//!     Ok(())
//! }
//! async fn drop_state(db: &mut migrate::Conn<'_>) -> migrate::Result<()> {
//!     db.execute("ALTER TABLE session DROP COLUMN state").await?;
//!     Ok(())
//! }
//!
//! # async fn run() -> migrate::Result<()> {
//! let db = migrate::sqlite::SqliteDb::open("app.db").await?;
//! let manager = migrate::MigrationManager::new(db, [&MIGRATIONS])?;
//! let report = manager.up().await?;
//! assert_eq!(manager.current_version("session").await?, Some("2.3.0".parse().unwrap()));
//! # Ok(()) }
//! # fn main() {}
//! ```
//!
//! Mistakes in the graph fail `cargo build` at the attribute: a duplicate (table, version), a
//! `parent` that no migration declares, a fork or a second first migration, a version not above
//! its parent or not semver, a `down` that does not resolve, a signature that cannot be a
//! migration, an unknown or repeated key, and a `heads` entry that disagrees with the chain.
//! What only the linked binary can see (several crates, `after` cycles, an unlinked crate) is
//! checked by [`MigrationManager::new`] and by the `#[test]` that `migrations!{}` generates.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod round_trip_tests;

pub use migrate_core::{
    AppliedStep, BoxFuture, Conn, Dialect, Direction, DirtyMark, DownRequest, Error, Executor,
    Graph, GraphError, HistoryEntry, Migration, MigrationFn, MigrationFuture, MigrationInfo,
    MigrationManager, MigrationSet, NoLock, Outcome, Plan, PlannedStep, RawConn, Report,
    ReportStatus, Resolution, Result, Reversal, Row, RunLock, Skipped, StateRow, StepKey,
    StepOutcome, StepRecord, StepRun, TableStatus, Timestamp, UpRequest, Value, Version,
};

pub use migrate_backends::{ConnExt, DEFAULT_TRACKING_TABLE};

/// The SQLite backend (feature `sqlite`, on by default; SQLite is bundled).
#[cfg(feature = "sqlite")]
pub use migrate_backends::sqlite;

/// Registers an async function as a migration of one table's version line.
///
/// ```text
/// #[migrate::migration(table = "session", version = "2.3.0", parent = "2.0.0", down = revert)]
/// async fn name(db: &mut migrate::Conn<'_>) -> migrate::Result<()> { ... }
/// ```
///
/// | key | meaning |
/// |---|---|
/// | `table = "..."` | the table whose version line this migration extends (required) |
/// | `version = "X.Y.Z"` | the semver version it brings the table to (required) |
/// | `parent = "X.Y.Z"` | the version it upgrades from; absent only on a table's first migration |
/// | `down = path` | the async function that reverts it (same signature) |
/// | `irreversible` | declares on purpose that it has no down (one of `down`/`irreversible` is required) |
/// | `transaction = false` | run outside a transaction (journalled; see the README) |
/// | `after = "table@X.Y.Z"` | run after another table's migration of the same crate |
/// | `name = "..."` | the name recorded in the history (default: the function name) |
///
/// The crate must declare its anchor with [`migrations!`] at its root.
pub use migrate_macros::migration;

/// Declares the crate's migration anchor, once, at the crate root: `pub static MIGRATIONS`,
/// which the host passes to [`MigrationManager::new`].
///
/// ```text
/// migrate::migrations! {}                                           // module = the crate name
/// migrate::migrations! { module = "auth", heads { session = "2.3.0", memory = "2.3.0" } }
/// ```
///
/// `module` isolates this crate's rows in the shared tracking table (pgdbm's `module_name`).
/// `heads` pins each table's latest version: adding a migration without moving its head, or
/// leaving a table out, is a compile error. The macro also generates a `#[test]` that validates
/// the linked graph, so `cargo test` fails on what the compiler cannot see.
pub use migrate_macros::migrations;

#[doc(hidden)]
pub mod __private {
    pub use migrate_core::__private::*;
}

/// The PostgreSQL backend (feature `postgres`).
#[cfg(feature = "postgres")]
pub use migrate_backends::postgres;

/// The MySQL/MariaDB backend (feature `mysql`).
#[cfg(feature = "mysql")]
pub use migrate_backends::mysql;

/// Round-trip verification for `cargo test` (feature `testing`): throwaway databases on every
/// backend, schema snapshots and their diffs, the stairway, and the harness behind
/// [`round_trip_tests!`].
#[cfg(feature = "testing")]
pub use migrate_backends::testing;

pub use migrate_backends::{connect, LockMode};
