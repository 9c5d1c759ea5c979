//! Migration descriptors and the per-crate [`MigrationSet`] that `inventory` attributes them to.

use crate::conn::Conn;
use crate::error::Result;
use crate::future::BoxFuture;

/// The future a registered migration function returns: the body of the user's `async fn`,
/// boxed.
pub type MigrationFuture<'a> = BoxFuture<'a, Result<()>>;

/// A migration function as the registry stores it: the user's `async fn` rewritten by
/// `#[migration]` into a plain `fn` that returns its body's future boxed, or, when the function
/// must stay as written (an attribute such as `#[tracing::instrument]` on it, an `impl Trait`
/// argument), a shim that boxes its future; for a function whose body only executes string
/// literals, the shared function that runs that list (the user's function is then compiled only
/// if something calls it); for a SQL file of `sql_dir!`, an instance of the directory's shim
/// that runs that file's statements.
pub type MigrationFn = for<'a, 'b> fn(&'a mut Conn<'b>) -> MigrationFuture<'a>;

/// How a migration is undone.
#[derive(Clone, Copy)]
pub enum Reversal {
    /// `down = path`: the function that reverts the migration.
    Down(MigrationFn),
    /// `irreversible`: the migration declares on purpose that it has no down.
    Irreversible,
}

impl std::fmt::Debug for Reversal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reversal::Down(_) => f.write_str("Down(fn)"),
            Reversal::Irreversible => f.write_str("Irreversible"),
        }
    }
}

/// One registered migration, as `#[migrate::migration]` or a file of `sql_dir!` declares it.
///
/// Values are built by the macro (or, for migrations made at run time, by the hidden
/// constructor); read them through the accessors.
pub struct Migration {
    set: &'static MigrationSet,
    table: &'static str,
    version: &'static str,
    parent: Option<&'static str>,
    name: &'static str,
    up: MigrationFn,
    reversal: Reversal,
    transaction: bool,
    after: Option<&'static str>,
    checksum: &'static str,
    file: &'static str,
    line: u32,
    sql: Option<&'static str>,
    down_sql: Option<&'static str>,
    fresh: Option<(MigrationFn, &'static str)>,
    resumable: bool,
}

inventory::collect!(Migration);

/// Migrations registered together: the steps of one `sql_dir!`, one `inventory` entry for the
/// whole directory instead of one per file (rustc builds far fewer items: BENCHMARKS.md,
/// "Compile time").
#[doc(hidden)]
#[derive(Debug)]
pub struct MigrationGroup {
    migrations: &'static [Migration],
}

impl MigrationGroup {
    #[doc(hidden)]
    pub const fn __new(migrations: &'static [Migration]) -> Self {
        MigrationGroup { migrations }
    }
}

inventory::collect!(MigrationGroup);

/// What the registry holds now, in two addresses: its newest `#[migration]` entry and its
/// newest group. `inventory` adds an entry in front of the others (when a library loaded at run
/// time registers its migrations), so the mark moves whenever the registry grows.
pub(crate) fn registry_mark() -> (usize, usize) {
    let newest = inventory::iter::<Migration>
        .into_iter()
        .next()
        .map_or(0, |m| std::ptr::from_ref(m) as usize);
    let newest_group = inventory::iter::<MigrationGroup>
        .into_iter()
        .next()
        .map_or(0, |g| std::ptr::from_ref(g) as usize);
    (newest, newest_group)
}

/// Every migration linked into this binary, of every set, in no particular order.
pub fn registered() -> impl Iterator<Item = &'static Migration> {
    let grouped = inventory::iter::<MigrationGroup>
        .into_iter()
        .flat_map(|group| group.migrations.iter());
    inventory::iter::<Migration>.into_iter().chain(grouped)
}

impl Migration {
    #[doc(hidden)]
    #[allow(clippy::too_many_arguments)]
    pub const fn __new(
        set: &'static MigrationSet,
        table: &'static str,
        version: &'static str,
        parent: Option<&'static str>,
        name: &'static str,
        up: MigrationFn,
        reversal: Reversal,
        transaction: bool,
        after: Option<&'static str>,
        checksum: &'static str,
        file: &'static str,
        line: u32,
    ) -> Self {
        Migration {
            set,
            table,
            version,
            parent,
            name,
            up,
            reversal,
            transaction,
            after,
            checksum,
            file,
            line,
            sql: None,
            down_sql: None,
            fresh: None,
            resumable: false,
        }
    }

    /// The same migration, declared `resumable`.
    #[doc(hidden)]
    pub const fn __resumable(mut self) -> Self {
        self.resumable = true;
        self
    }

    /// Whether the step is `resumable`: a journalled step that is safe to run again after it
    /// was cut off (its writes are idempotent, and it resumes from its own checkpoint, as
    /// `migrate::data::Batches` does). Its dirty mark is then cleared by the next
    /// run, under the run lock, and the step runs again, instead of stopping for an operator.
    pub fn resumable(&self) -> bool {
        self.resumable
    }

    /// The same migration, with `fresh = path`: the function that creates its table directly
    /// at its version, and that function's name.
    #[doc(hidden)]
    pub const fn __with_fresh(mut self, fresh: MigrationFn, name: &'static str) -> Self {
        self.fresh = Some((fresh, name));
        self
    }

    /// The function that creates this migration's table directly at its version
    /// (`fresh = path`), used by `MigrationManager::install_fresh`.
    pub fn fresh(&self) -> Option<MigrationFn> {
        self.fresh.map(|(f, _)| f)
    }

    /// The name of the `fresh` function, if there is one.
    pub fn fresh_name(&self) -> Option<&'static str> {
        self.fresh.map(|(_, name)| name)
    }

    /// The same migration, declared by a SQL file: `sql` is what its up runs and `down_sql`
    /// what its down runs (as written, before templates are rendered).
    #[doc(hidden)]
    pub const fn __with_sql(mut self, sql: &'static str, down_sql: Option<&'static str>) -> Self {
        self.sql = Some(sql);
        self.down_sql = down_sql;
        self
    }

    /// For a migration declared by a SQL file, the SQL its up runs, as written.
    pub fn sql(&self) -> Option<&'static str> {
        self.sql
    }

    /// For a migration declared by a SQL file, the SQL its down runs, as written.
    pub fn down_sql(&self) -> Option<&'static str> {
        self.down_sql
    }

    /// The migration set (crate anchor) this migration belongs to.
    pub fn set(&self) -> &'static MigrationSet {
        self.set
    }
    /// The table whose version line this migration extends.
    pub fn table(&self) -> &'static str {
        self.table
    }
    /// The version this migration brings its table to, as written.
    pub fn version_str(&self) -> &'static str {
        self.version
    }
    /// The version it upgrades from; `None` for a table's first migration.
    pub fn parent_str(&self) -> Option<&'static str> {
        self.parent
    }
    /// The migration's name (the function name unless `name = "..."` was given).
    pub fn name(&self) -> &'static str {
        self.name
    }
    /// Whether the step runs inside a transaction together with its tracking rows.
    pub fn transactional(&self) -> bool {
        self.transaction
    }
    /// How the migration is undone.
    pub fn reversal(&self) -> Reversal {
        self.reversal
    }
    /// The function that applies the migration: the `#[migration]` function itself, or, for a
    /// body of `db.execute("...").await?;` lines, a function that runs the same statements.
    pub fn up(&self) -> MigrationFn {
        self.up
    }
    /// The `after = "table@X.Y.Z"` ordering edge, if any.
    pub fn after(&self) -> Option<&'static str> {
        self.after
    }
    /// The step's checksum: SHA-256 over what it runs (see the README).
    pub fn checksum(&self) -> &'static str {
        self.checksum
    }
    /// `file:line` of the `#[migration]` attribute, or the SQL file.
    pub fn location(&self) -> String {
        format!("{}:{}", self.file, self.line)
    }
}

impl std::fmt::Debug for Migration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Migration")
            .field("module", &self.set.module)
            .field("table", &self.table)
            .field("version", &self.version)
            .field("parent", &self.parent)
            .field("name", &self.name)
            .field("reversal", &self.reversal)
            .field("transaction", &self.transaction)
            .field("after", &self.after)
            .field("location", &self.location())
            .finish()
    }
}

/// The migrations of one crate: the `pub static MIGRATIONS` that `migrate::migrations!{}`
/// declares.
///
/// The host passes references to these statics to
/// `MigrationManager::new`. The reference makes the linker keep
/// the crate, and every registered migration points back at its crate's set, so a set whose
/// migrations never arrive is reported instead of silently ignored.
pub struct MigrationSet {
    module: &'static str,
    crate_name: &'static str,
    heads: &'static [(&'static str, &'static str)],
}

impl MigrationSet {
    #[doc(hidden)]
    pub const fn __new(
        module: &'static str,
        crate_name: &'static str,
        heads: &'static [(&'static str, &'static str)],
    ) -> Self {
        MigrationSet {
            module,
            crate_name,
            heads,
        }
    }

    /// The module name that isolates this set in the tracking table (default: the crate name).
    pub fn module(&self) -> &'static str {
        self.module
    }

    /// The name of the crate that declared the set.
    pub fn crate_name(&self) -> &'static str {
        self.crate_name
    }

    /// The `heads { table = "X.Y.Z" }` declared with the anchor.
    pub fn heads(&self) -> &'static [(&'static str, &'static str)] {
        self.heads
    }

    /// Every migration registered for this set, in registration order (which is unspecified).
    pub fn migrations(&'static self) -> impl Iterator<Item = &'static Migration> {
        registered().filter(move |m| std::ptr::eq(m.set, self))
    }
}

impl std::fmt::Debug for MigrationSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MigrationSet")
            .field("module", &self.module)
            .field("crate_name", &self.crate_name)
            .field("heads", &self.heads)
            .finish()
    }
}
