//! [`GraphError`]: what is wrong with the linked migration graph.

/// What is wrong with the linked migration graph. Most of these are compile errors already; the
/// runtime check covers what only the linked binary can see (several crates, `after` cycles,
/// an anchor whose crate was never linked).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GraphError {
    /// A set passed to the manager has no registered migrations.
    #[error("migration set `{module}` of crate `{crate_name}` has no registered migrations: the crate declares none, or its migrations were not linked")]
    EmptySet {
        /// The set's crate.
        crate_name: String,
        /// The set's module.
        module: String,
    },
    /// Two sets use the same module name and would share tracking rows.
    #[error("crates `{first}` and `{second}` both use module name `{module}`; give one `module = \"...\"` in migrations!{{}}")]
    DuplicateModule {
        /// The module name.
        module: String,
        /// The first crate.
        first: String,
        /// The second crate.
        second: String,
    },
    /// A module or table name the tracking tables cannot keep exactly (blank, with a NUL, or
    /// longer than [`MAX_TRACKED_NAME_CHARS`](crate::dialect::MAX_TRACKED_NAME_CHARS)), or a
    /// migration name with a NUL.
    #[error("{location}: {what} name `{name}` {reason}")]
    InvalidName {
        /// Where the migration that uses it was declared.
        location: String,
        /// `module`, `table` or `migration`.
        what: &'static str,
        /// The name, escaped (a NUL shows as `\\0`).
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Two names that differ only in case: MySQL's tracking tables compare them as one (their
    /// collation ignores case), so the two would share a state row there.
    #[error("{what} names `{first}` and `{second}` differ only in case; MySQL's tracking tables would take them for one: rename one")]
    NamesDifferOnlyInCase {
        /// `module`, or `` `app` table`` for the tables of module `app`.
        what: String,
        /// One name.
        first: String,
        /// The other.
        second: String,
    },
    /// A version (or parent, or head) is not semver.
    #[error("{location}: `{version}` is not a semver version: {reason}")]
    InvalidVersion {
        /// Where it was declared.
        location: String,
        /// The text.
        version: String,
        /// Why it does not parse.
        reason: String,
    },
    /// Two migrations declare the same (table, version).
    #[error(
        "`{module}` table `{table}` declares version {version} twice: at {first} and at {second}"
    )]
    Duplicate {
        /// The module.
        module: String,
        /// The table.
        table: String,
        /// The version.
        version: String,
        /// One declaration.
        first: String,
        /// The other.
        second: String,
    },
    /// A `parent` names no migration.
    #[error("{location}: `{module}` table `{table}` version {version} names parent {parent}, which no migration declares")]
    MissingParent {
        /// Where.
        location: String,
        /// The module.
        module: String,
        /// The table.
        table: String,
        /// The version.
        version: String,
        /// The missing parent.
        parent: String,
    },
    /// Two migrations upgrade from the same parent.
    #[error(
        "`{module}` table `{table}` forks at {parent}: {first} and {second} both upgrade from it"
    )]
    Fork {
        /// The module.
        module: String,
        /// The table.
        table: String,
        /// The shared parent.
        parent: String,
        /// One child.
        first: String,
        /// The other.
        second: String,
    },
    /// Two first migrations for one table.
    #[error(
        "`{module}` table `{table}` has two first migrations (no parent): {first} and {second}"
    )]
    TwoRoots {
        /// The module.
        module: String,
        /// The table.
        table: String,
        /// One root.
        first: String,
        /// The other.
        second: String,
    },
    /// A version that is not greater than its parent.
    #[error(
        "{location}: version {version} of table `{table}` is not greater than its parent {parent}"
    )]
    NotIncreasing {
        /// Where.
        location: String,
        /// The table.
        table: String,
        /// The version.
        version: String,
        /// The parent.
        parent: String,
    },
    /// `after = "..."` that is malformed or names no migration.
    #[error("{location}: after = \"{after}\" names no migration (expected \"table@X.Y.Z\" of the same module)")]
    UnknownAfter {
        /// Where.
        location: String,
        /// The text.
        after: String,
    },
    /// `after` edges form a cycle.
    #[error("`after` edges form a cycle: {from} must run after {to}, and {to} (through the chain) after {from}")]
    Cycle {
        /// One end.
        from: String,
        /// The other end.
        to: String,
    },
    /// A `heads` entry disagrees with the chain.
    #[error("crate `{crate_name}` declares head {head} for table `{table}`, but its chain ends at {actual}")]
    HeadMismatch {
        /// The crate.
        crate_name: String,
        /// The table.
        table: String,
        /// The declared head.
        head: String,
        /// The chain's real head (or "no migrations").
        actual: String,
    },
}
