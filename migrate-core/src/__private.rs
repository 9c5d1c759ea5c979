//! Support for the code that `#[migration]` and `migrations!{}` expand to. Not a public API.
//!
//! The compile-time graph checks are built from items rustc compares itself, because proc macros
//! share no state. Each rule is a marker trait whose name states the rule, so that the
//! compiler's "conflicting implementations of trait `...`" reads as the mistake:
//! - every migration implements [`EachTableVersionIsDeclaredOnce`] for its (table, version): a
//!   duplicate is a conflict;
//! - every child implements [`TwoMigrationsShareThisParent`] for its parent: a fork is a
//!   conflict, and the trait's supertrait makes the parent a declared version;
//! - every first migration implements [`TwoFirstMigrationsForThisTable`], whose supertrait makes
//!   the table one that `heads` lists;
//! - every `heads` entry implements [`HeadsEntryIsNotTheLatestVersion`] for every type, and every
//!   child for a type of its own, named after its table and versions (the message shows it), so
//!   a child of the head (the head was not moved) conflicts;
//! - `after` and `heads` must satisfy the bound of [`require_declared`].
//!
//! A missing version or an unlisted table is reported through the `on_unimplemented` message of
//! [`EachTableVersionIsDeclaredOnce`] or [`TableListedInHeads`].
//!
//! The traits are implemented for types the anchor declares: the checks about a step for one of
//! 64 `__MigrateShard` types chosen by the step's key (every check about one key meets on the
//! same type), the checks about a table for `__MigrateAnchor`. rustc compares a trait's impls for
//! one self type with each other, so spreading them keeps that work from growing with the square
//! of the crate's migrations.
//!
//! Keys are `u64` hashes because `&str` const generics are not stable: a table is the hash of its
//! name, a step the hash of its table and version. One const argument per key, and supertraits
//! instead of `const` items, keep the checks cheap: rustc type-checks every argument and every
//! item per migration (measured in BENCHMARKS.md, "Compile time").

pub use crate::conn::Conn;
pub use crate::migration::{
    Migration, MigrationFn, MigrationFuture, MigrationGroup, MigrationSet, Reversal,
};
pub use inventory;

pub use crate::error::Result;
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

/// What a migration returns: `#[migration]` checks the return type the user wrote with
/// [`returns`], so that a wrong one is an error at that type.
#[diagnostic::on_unimplemented(
    message = "a migration returns `migrate::Result<()>`, not `{Self}`",
    label = "not `migrate::Result<()>`",
    note = "a migration is `async fn name(db: &mut migrate::Conn<'_>) -> migrate::Result<()>`"
)]
pub trait MigrationOutput {}

impl MigrationOutput for Result<()> {}

/// Compiles only if `T` is what a migration returns.
pub const fn returns<T: MigrationOutput>() {}

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
pub trait EachTableVersionIsDeclaredOnce<Declarer, const STEP: u64> {}

/// Runs the statements of a SQL file in order: the whole file as one, or its statements one by
/// one for a `-- migrate: no-transaction` file (split by `sql_dir!` at compile time).
pub fn run_sql<'a>(
    db: &'a mut Conn<'_>,
    statements: &'static [&'static str],
) -> MigrationFuture<'a> {
    Box::pin(async move {
        let n = statements.len();
        for (k, statement) in statements.iter().enumerate() {
            db.execute(statement).await.map_err(|err| match err {
                // Which statement of a split file: the ones before it ran, outside a
                // transaction, and an operator settling the mark needs to know which.
                // (Its text is left out: it may hold what a log should not.)
                crate::error::Error::Database(driver) if n > 1 => crate::error::Error::Database(
                    driver.context(format!("statement {} of {n} of the file", k + 1)),
                ),
                other => other,
            })?;
        }
        Ok(())
    })
}

/// What a `#[migration]` function whose body is only `db.execute("...").await?;` lines and
/// `Ok(())` becomes: the attribute rewrites its body into one call of this, with the body's
/// string literals in order (BENCHMARKS.md, "Compile time": an `async` body costs rustc a future
/// to type-check and borrow-check per function; this is one plain call). Each statement runs
/// through [`Conn::execute`], stopping at the first error, as the body would.
pub fn execute_statements<'a>(
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
/// fork) conflicts. Its supertrait requires the parent to be declared, so a `parent` that no
/// step of the crate declares fails at the implementation.
pub trait TwoMigrationsShareThisParent<const STEP: u64>:
    EachTableVersionIsDeclaredOnce<AnyDeclarer, STEP>
{
}

/// Implemented by each `heads` entry for every `Child`, and by each migration for its parent
/// and a `Child` type of its own: a migration upgrading from the version listed in `heads`
/// conflicts, because the head was not moved to it.
pub trait HeadsEntryIsNotTheLatestVersion<Child, const STEP: u64> {}

/// Implemented once per table by its first migration (the one without `parent`). Its
/// supertrait requires the table to be listed in `heads` (when the anchor lists heads).
pub trait TwoFirstMigrationsForThisTable<const TABLE: u64>: TableListedInHeads<TABLE> {}

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

/// Compiles only if a step of the crate declares the given step (the hash of a table and a
/// version): `Shard` is the type its checks are implemented for.
pub const fn require_declared<
    Shard: EachTableVersionIsDeclaredOnce<AnyDeclarer, STEP>,
    const STEP: u64,
>() {
}

/// The anchor's generated test: validates its set, panicking with the graph error.
pub fn assert_valid(set: &'static MigrationSet) {
    if let Err(err) = set.validate() {
        panic!(
            "the migration graph of crate `{}` is broken: {err}",
            set.crate_name()
        );
    }
}
