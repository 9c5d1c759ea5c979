//! # migrate
//!
//! Database migrations as ordinary async Rust functions, with the version graph checked by the
//! compiler.
//!
//! ```
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
//! let db = migrate::connect("sqlite::memory:").await?;
//! let manager = migrate::MigrationManager::new(db, [&MIGRATIONS])?;
//! let report = manager.up().await?;
//! assert_eq!(manager.current_version("session").await?, Some("2.3.0".parse().unwrap()));
//! # Ok(()) }
//! # fn main() {
//! #     tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
//! #         .block_on(run()).unwrap();
//! # }
//! ```
//!
//! Mistakes in the graph fail `cargo build` at the attribute: a duplicate (table, version), a
//! `parent` that no migration declares, a fork or a second first migration, a version not above
//! its parent or not semver, a `down` that does not resolve, a signature that cannot be a
//! migration, an unknown or repeated key, and a `heads` entry that disagrees with the chain.
//! What only the linked binary can see (several crates, `after` cycles, an unlinked crate) is
//! checked by [`MigrationManager::new`] and by the `#[test]` that `migrations!{}` generates.

//!
//! The root holds what a migration author and a host application touch. The rest is in
//! modules: [`report`] (what runs and listings return), [`manager`] (the request builders and
//! repairs), [`registry`] (the migration sets the anchors declare), [`query`] (rows read by
//! [`Conn::query`]), [`error`] (the graph and driver errors inside [`Error`]) and [`backend`]
//! (what a database backend implements). Each database has its module: [`sqlite`],
//! `postgres`, `mysql`, and `testing` for round-trip tests. Operators reach the migrations
//! through [`startup`] (migrate before serving), [`blocking`] (without an async runtime), and,
//! behind features, `cli` (the host binary's commands), `http` (an axum router) and `drift`
//! (does a live schema match what the migrations build?).

#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub, missing_debug_implementations)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod blocking;
#[cfg(feature = "cli")]
#[cfg_attr(docsrs, doc(cfg(feature = "cli")))]
pub mod cli;
#[cfg(any(feature = "cli", feature = "http"))]
mod error_json;
pub mod fleet;
#[cfg(any(feature = "cli", feature = "http"))]
mod fleet_json;
#[cfg(feature = "http")]
#[cfg_attr(docsrs, doc(cfg(feature = "http")))]
pub mod http;
mod round_trip_tests;
pub mod scaffold;
pub mod startup;

pub use migrate_backends::data;
pub use migrate_backends::{connect, connect_with, ConnExt, ConnectOptions};
pub use migrate_core::conn::Conn;
pub use migrate_core::dialect::Dialect;
pub use migrate_core::error::{Error, Result};
pub use migrate_core::manager::MigrationManager;
pub use migrate_core::table_names::TableNames;
pub use migrate_core::Version;

/// Registers an async function as a migration of one table's version line.
///
/// ```
/// migrate::migrations! { heads { session = "2.3.0" } }
///
/// #[migrate::migration(table = "session", version = "2.0.0", irreversible)]
/// async fn create_session(db: &mut migrate::Conn<'_>) -> migrate::Result<()> {
///     db.execute("CREATE TABLE {{tables.session}} (id TEXT PRIMARY KEY)").await?;
///     Ok(())
/// }
///
/// #[migrate::migration(table = "session", version = "2.3.0", parent = "2.0.0", down = drop_state)]
/// async fn add_state(db: &mut migrate::Conn<'_>) -> migrate::Result<()> {
///     db.execute("ALTER TABLE {{tables.session}} ADD COLUMN state TEXT").await?;
///     Ok(())
/// }
/// async fn drop_state(db: &mut migrate::Conn<'_>) -> migrate::Result<()> {
///     db.execute("ALTER TABLE {{tables.session}} DROP COLUMN state").await?;
///     Ok(())
/// }
/// # fn main() {}
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
/// | `resumable` | with `transaction = false`: a run cut off in this step runs it again from its own checkpoint (`migrate::data::Batches`) |
/// | `fresh = path` | the async function that creates the table directly at this version, for `install_fresh` |
/// | `after = "table@X.Y.Z"` | run after another table's migration of the same crate |
/// | `name = "..."` | the name recorded in the history (default: the function name) |
/// | `crate = "path"` | where the `migrate` crate is, when the host renames or re-exports it |
///
/// The crate must declare its anchor with [`migrations!`] at its root.
///
/// The attribute turns the `async fn` into a plain `fn` with the same name, attributes and body
/// that returns the body's future boxed (a [`backend::MigrationFuture`]): the function is then
/// itself what is registered, and rustc compiles one function per migration instead of an
/// `async fn` and a shim that boxes its future. Calling it is unchanged
/// (`add_state(&mut conn).await`). A function with another attribute than documentation, lint
/// levels and `cfg` (such as `#[tracing::instrument]`, which needs the `async fn` and its
/// parameter as written), or with an `impl Trait` argument, is kept as written and registered
/// through a shim, as before.
///
/// A body that is only `db.execute("...").await?;` lines and `Ok(())`, in a function that is
/// not `pub`, has no attribute but documentation and lint levels and takes `&mut Conn<'_>`, is
/// rewritten into one plain call that runs its string literals through [`Conn::execute`] in
/// order, stopping at the first error, as the body would; the argument's type, its name as the
/// body wrote it, `Ok(())` and the return type are still checked where written. rustc then has
/// no future to check per function: such a crate builds in about two thirds of the time the
/// same functions take without the attribute (BENCHMARKS.md, "Compile time"). The checksum is
/// the body's as written, as for any other function.
pub use migrate_macros::migration;

/// Declares the crate's migration anchor, once, at the crate root: `pub static MIGRATIONS`,
/// which the host passes to [`MigrationManager::new`].
///
/// ```
/// // module = the crate name, every table's head free:
/// migrate::migrations! {}
/// # #[migrate::migration(table = "t", version = "1.0.0", irreversible)]
/// # async fn t(_: &mut migrate::Conn<'_>) -> migrate::Result<()> { Ok(()) }
/// # fn main() { assert_eq!(MIGRATIONS.heads(), &[]); }
/// ```
///
/// ```
/// migrate::migrations! { module = "auth", heads { session = "1.0.0" } }
/// # #[migrate::migration(table = "session", version = "1.0.0", irreversible)]
/// # async fn s(_: &mut migrate::Conn<'_>) -> migrate::Result<()> { Ok(()) }
/// # fn main() { assert_eq!(MIGRATIONS.module(), "auth"); }
/// ```
///
/// `module` isolates this crate's rows in the shared tracking table. `heads` pins each table's
/// latest version: adding a migration without moving its head, or leaving a table out, is a
/// compile error. `crate = "path"` names the `migrate` crate when the host renames or
/// re-exports it (then give the same key to every `#[migration]`). The macro also generates a
/// `#[test]` that validates the linked graph, so `cargo test` fails on what the compiler cannot
/// see.
pub use migrate_macros::migrations;

/// Embeds a directory of SQL files as steps of one table's version line, checked at compile
/// time like `#[migration]` functions. Put it beside [`migrations!`] in the crate that owns the
/// files.
///
/// ```text
/// migrate::sql_dir!(table = "auth", dir = "migrations/auth");
/// migrate::sql_dir!(table = "session", dir = "migrations/session", parent = "2.3.0", down = "required");
/// ```
///
/// | key | meaning |
/// |---|---|
/// | `table = "..."` | the table whose version line the files extend (required) |
/// | `dir = "..."` | the directory, relative to the crate root (or to the invoking file) (required) |
/// | `parent = "X.Y.Z"` | the version the first file upgrades from: a Rust chain it continues |
/// | `down = "required"` | every file needs its `<stem>.down.sql` (default `"optional"`: a file without one is irreversible) |
/// | `crate = "path"` | where the `migrate` crate is, when it is renamed or re-exported |
///
/// File names: `001_name.sql` (1.0.0; a numbered sequence may have no gap), Flyway's
/// `V1__name.sql` and `V1_2__name.sql` (1.0.0, 1.2.0), timestamps `20251025120000_name.sql` or
/// `20251025_120000_name.sql` (major = the timestamp), and `2.3.0_name.sql`. A file whose
/// first line is `-- migrate: no-transaction` runs outside a transaction, journalled, one
/// statement at a time. `{{tables.NAME}}` and `{{schema}}` work as in Rust steps; `\{{`
/// writes a literal `{{`. Every mistake in the directory is a compile error naming the file.
/// Cargo does not watch a directory for new files on its own: add a `build.rs` with
/// `println!("cargo::rerun-if-changed=migrations");` (see the README).
pub use migrate_macros::sql_dir;

/// What `up`, `down` and the listings return.
pub mod report {
    pub use migrate_core::report::{
        BlockedStep, PlannedStep, Progress, Report, ReportStatus, SkipReason, Skipped,
    };
    pub use migrate_core::status::{
        AdoptionConflict, ChecksumDrift, HistoryEntry, MigrationInfo, TableStatus,
    };
    pub use migrate_core::step::{AppliedStep, Direction, DirtyMark, Outcome, StepKey};
    pub use migrate_core::time::Timestamp;
}

/// The request builders that [`MigrationManager::up`] and [`MigrationManager::down`] return,
/// and how an operator settles a dirty mark.
pub mod manager {
    pub use migrate_core::manager::{Configure, DownRequest, Resolution, UpRequest};
}

/// The migration sets that `migrations!{}` declares and the migrations they hold.
pub mod registry {
    pub use migrate_core::migration::{Migration, MigrationSet, Reversal};
}

/// The rows and values that [`Conn::query`](crate::Conn::query) returns.
pub mod query {
    pub use migrate_core::conn::{Row, Value};
}

/// The errors inside [`Error`]: the graph's and the driver's.
pub mod error {
    pub use migrate_core::error::{DatabaseError, Error, ErrorCategory, GraphError, Result};
}

/// What a database backend implements, for backends outside this crate and for the hosts
/// that hold one behind a trait object ([`connect`] returns one).
pub mod backend {
    pub use migrate_backends::{
        redact_url_password, Driver, SqlxDb, DEFAULT_CONNECT_TIMEOUT, DEFAULT_LOCK_TIMEOUT,
        DEFAULT_TRACKING_TABLE, LOCK_WAIT_REPORT_EVERY,
    };
    pub use migrate_core::backend::{
        MigrationBackend, NoLock, RunLock, StateRow, StepAfterPending, StepOutcome, StepRecord,
        StepRun,
    };
    pub use migrate_core::conn::RawConn;
    pub use migrate_core::future::BoxFuture;
    pub use migrate_core::migration::{MigrationFn, MigrationFuture};
}

#[doc(hidden)]
pub mod __private {
    pub use migrate_core::__private::*;
    pub use migrate_core::graph::Graph;
}

/// The SQLite backend (feature `sqlite`, on by default; SQLite is bundled).
#[cfg(feature = "sqlite")]
pub use migrate_backends::sqlite;

/// The PostgreSQL backend (feature `postgres`).
#[cfg(feature = "postgres")]
pub use migrate_backends::postgres;

/// The MySQL/MariaDB backend (feature `mysql`).
#[cfg(feature = "mysql")]
pub use migrate_backends::mysql;

/// The live drift check (feature `drift`, part of `cli`): compares a database's schema, read
/// from its catalog, with a scratch database migrated to the same versions. See
/// [`drift::DriftCheck`]; the CLI's `verify --schema` runs it.
#[cfg(feature = "drift")]
#[cfg_attr(docsrs, doc(cfg(feature = "drift")))]
pub mod drift {
    pub use migrate_backends::drift::{Configure, DriftCheck, DriftReport, TableVersion};
    pub use migrate_backends::snapshot::{snapshot, Column, ColumnMove, Schema, SchemaDiff, Table};
}

/// Round-trip verification for `cargo test` (feature `testing`): throwaway databases on every
/// backend, schema snapshots and their diffs, the stairway, and the harness behind
/// [`round_trip_tests!`].
#[cfg(feature = "testing")]
pub use migrate_backends::testing;
