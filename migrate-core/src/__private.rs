//! Support for the code that `#[migration]` and `migrations!{}` expand to. Not a public API.
//!
//! The compile-time graph checks are built from items rustc compares itself, because proc macros
//! share no state. Each rule is a marker trait whose name states the rule, so that the
//! compiler's "conflicting implementations of trait `...`" reads as the mistake:
//! - every migration implements [`EachTableVersionIsDeclaredOnce`] for its (table, version): a
//!   duplicate is a conflict;
//! - every child implements [`TwoMigrationsShareThisParent`] for its parent: a fork is a
//!   conflict;
//! - every first migration implements [`TwoFirstMigrationsForThisTable`];
//! - every `heads` entry implements [`HeadsEntryIsNotTheLatestVersion`] for every type, and every
//!   child for a type of its own, named after its table and versions (the message shows it), so
//!   a child of the head (the head was not moved) conflicts;
//! - `parent`, `after` and `heads` must satisfy the bound of [`require_declared`], whose
//!   `on_unimplemented` message explains a missing version.
//!
//! Tables are hashed to `u64` because `&str` const generics are not stable; versions are (major,
//! minor, patch, hash of pre-release and build).

pub use crate::conn::Conn;
pub use crate::migration::{Migration, MigrationFn, MigrationFuture, MigrationSet, Reversal};
pub use inventory;

use crate::error::Result;
use std::future::Future;

/// FNV-1a, 64 bits: the stable hash that names the backends' runner locks (never changed, so
/// that runners of two versions take the same lock).
pub fn stable_hash(bytes: &[u8]) -> u64 {
    crate::checksum::stable_hash(bytes)
}

/// Boxes a migration's future; the shims that `#[migration]` generates call this.
pub fn boxed<'a, F>(future: F) -> MigrationFuture<'a>
where
    F: Future<Output = Result<()>> + Send + 'a,
{
    Box::pin(future)
}

/// Implemented once per (table, version) that a step of the crate declares: a second step with
/// the same table and version is a conflicting implementation, and `parent`, `after` and
/// `heads` are checked against it (for [`AnyDeclarer`]).
///
/// A `#[migration]` function implements it for every `Declarer`; a SQL file for a type named
/// after the file, and for [`AnyDeclarer`]. So two functions conflict, and a function and a
/// file conflict with the file's name in the message.
#[diagnostic::on_unimplemented(
    message = "no #[migration] of this crate declares this version of this table",
    label = "not declared by any #[migration] of this crate",
    note = "`parent`, `after` and `heads` must name a table and version that a #[migration] of the same crate declares: declare that migration, or fix the version"
)]
pub trait EachTableVersionIsDeclaredOnce<
    Declarer,
    const TABLE: u64,
    const MAJOR: u64,
    const MINOR: u64,
    const PATCH: u64,
    const PRE: u64,
>
{
}

/// Runs the statements of a SQL file in order: the whole file as one, or its statements one by
/// one for a `-- migrate: no-transaction` file (split by `sql_dir!` at compile time).
pub fn run_sql<'a>(
    db: &'a mut Conn<'_>,
    statements: &'static [&'static str],
) -> MigrationFuture<'a> {
    Box::pin(async move {
        for statement in statements {
            db.execute(statement).await?;
        }
        Ok(())
    })
}

/// Implemented once per parent version: a second migration upgrading from the same version (a
/// fork) conflicts.
pub trait TwoMigrationsShareThisParent<
    const TABLE: u64,
    const MAJOR: u64,
    const MINOR: u64,
    const PATCH: u64,
    const PRE: u64,
>
{
}

/// Implemented by each `heads` entry for every `Child`, and by each migration for its parent
/// and a `Child` type of its own: a migration upgrading from the version listed in `heads`
/// conflicts, because the head was not moved to it.
pub trait HeadsEntryIsNotTheLatestVersion<
    Child,
    const TABLE: u64,
    const MAJOR: u64,
    const MINOR: u64,
    const PATCH: u64,
    const PRE: u64,
>
{
}

/// Implemented once per table by its first migration (the one without `parent`).
pub trait TwoFirstMigrationsForThisTable<const TABLE: u64> {}

/// Implemented for every table listed in `heads { ... }`, or for all tables when the anchor
/// lists no heads.
#[diagnostic::on_unimplemented(
    message = "this table is missing from `heads {{ ... }}` in migrations!{{}}",
    label = "table not listed in heads",
    note = "when migrations!{{}} declares heads, every table with migrations must be listed"
)]
pub trait TableListedInHeads<const TABLE: u64> {}

/// The declarer that `parent`, `after` and `heads` ask about: every step implements
/// [`EachTableVersionIsDeclaredOnce`] for it.
#[derive(Debug)]
pub struct AnyDeclarer;

/// Compiles only if `Anchor` declares the given (table, version).
pub const fn require_declared<
    Anchor: EachTableVersionIsDeclaredOnce<AnyDeclarer, TABLE, MAJOR, MINOR, PATCH, PRE>,
    const TABLE: u64,
    const MAJOR: u64,
    const MINOR: u64,
    const PATCH: u64,
    const PRE: u64,
>() {
}

/// Compiles only if `Anchor` lists the table in its heads (or lists no heads).
pub const fn require_listed_in_heads<Anchor: TableListedInHeads<TABLE>, const TABLE: u64>() {}

/// The anchor's generated test: validates its set, panicking with the graph error.
pub fn assert_valid(set: &'static MigrationSet) {
    if let Err(err) = set.validate() {
        panic!(
            "the migration graph of crate `{}` is broken: {err}",
            set.crate_name()
        );
    }
}
