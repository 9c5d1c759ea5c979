//! The typed errors of the framework. Every variant names the thing at fault.

use crate::report::AppliedStep;
use std::time::Duration;

/// `Result` with this crate's [`Error`]: the return type of every migration function.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while planning or running migrations.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The linked migration graph is broken (see [`GraphError`]).
    #[error(transparent)]
    Graph(Box<GraphError>),

    /// A caller-supplied version is not semver.
    #[error("`{input}` is not a semver version (expected MAJOR.MINOR.PATCH): {reason}")]
    InvalidVersion {
        /// The text the caller gave.
        input: String,
        /// Why the semver parser refused it.
        reason: String,
    },

    /// A caller-supplied target version exists in no selected table's chain.
    #[error("version {version} is not in the migration graph{}", in_table(.table))]
    UnknownVersion {
        /// The table the target was meant for, when the request named one.
        table: Option<String>,
        /// The version that was asked for.
        version: semver::Version,
    },

    /// A caller-supplied table has no migrations.
    #[error("unknown table `{table}`: the migrations know {}", known.join(", "))]
    UnknownTable {
        /// The table that was asked for.
        table: String,
        /// The tables that do have migrations.
        known: Vec<String>,
    },

    /// `up` to a version below the one a table is at.
    #[error(
        "cannot go up to {target}: table `{table}` is already at {current}; use down to go back"
    )]
    TargetBelowCurrent {
        /// The table.
        table: String,
        /// Where it stands.
        current: semver::Version,
        /// Where the caller wanted it.
        target: semver::Version,
    },

    /// `down` to a version above the one a table is at.
    #[error("cannot go down to {target}: table `{table}` is at {}, below the target; use up to go forward", current.as_ref().map_or_else(|| "no version".to_string(), |v| v.to_string()))]
    TargetAboveCurrent {
        /// The table.
        table: String,
        /// Where it stands (`None`: nothing applied).
        current: Option<semver::Version>,
        /// Where the caller wanted it.
        target: semver::Version,
    },

    /// `down` was awaited without a target.
    #[error("down needs a target: call .target(\"X.Y.Z\") or .to_base() before awaiting it")]
    MissingDownTarget,

    /// The database records a version that this binary has no migration for: a newer binary ran
    /// against it.
    #[error("the database is ahead of this binary: `{module}` table `{table}` is recorded at {version}, which no linked migration declares")]
    UnknownAppliedVersion {
        /// The migration set's module.
        module: String,
        /// The table.
        table: String,
        /// The version found in the tracking table.
        version: String,
    },

    /// An applied migration was edited after it ran.
    #[error("checksum drift in {step}: it was applied with checksum {applied}, but the binary now has {current}; revert the edit, or accept it with MigrationManager::accept_checksums")]
    ChecksumMismatch {
        /// The step, as `module:table@version (name)`.
        step: String,
        /// The checksum recorded when it was applied.
        applied: String,
        /// The checksum of the migration in this binary.
        current: String,
    },

    /// A step that runs outside a transaction started and never finished.
    #[error("`{module}` table `{table}` is dirty: {direction} step {version} ({name}) started at {since} and never finished; check the schema by hand, then call MigrationManager::resolve_dirty")]
    Dirty {
        /// The migration set's module.
        module: String,
        /// The table.
        table: String,
        /// The version of the step that did not finish.
        version: String,
        /// Its name.
        name: String,
        /// Up or down.
        direction: crate::Direction,
        /// When it started.
        since: crate::Timestamp,
    },

    /// `down` would have to cross a migration declared `irreversible`.
    #[error("cannot revert {step}: it is declared irreversible")]
    Irreversible {
        /// The step, as `module:table@version (name)`.
        step: String,
    },

    /// An `after` dependency of a planned step is neither applied nor part of the run.
    #[error("{step} must run after {dependency}, which is not applied and not part of this run; include its table")]
    DependencyNotApplied {
        /// The step that waits.
        step: String,
        /// What it waits for.
        dependency: String,
    },

    /// Reverting a step would leave a step that runs `after` it applied.
    #[error(
        "cannot revert {step}: {dependent} runs after it and stays applied; include its table"
    )]
    DependentStillApplied {
        /// The step that would be reverted.
        step: String,
        /// The applied step that depends on it.
        dependent: String,
    },

    /// Another runner holds the migration lock.
    #[error("could not take the migration lock within {waited:?}{}", held_by(.holder))]
    LockTimeout {
        /// How long the runner waited.
        waited: Duration,
        /// Who holds it, when the database can tell.
        holder: Option<String>,
    },

    /// Other runners kept moving the tracking rows under this one.
    #[error("gave up after {attempts} attempts: other runners kept changing `{table}` while this one planned")]
    ConcurrentRunners {
        /// The table.
        table: String,
        /// How many plans were tried.
        attempts: u32,
    },

    /// A step failed. Nothing after it ran.
    #[error("migration {step} failed: {source}. Applied before it in this run: [{}]. Nothing after it ran.", applied_list(.applied))]
    StepFailed {
        /// The step, as `module:table@version (name)`.
        step: String,
        /// What this run applied before the failure.
        applied: Vec<AppliedStep>,
        /// Why it failed.
        #[source]
        source: Box<Error>,
    },

    /// A `{{...}}` template in SQL could not be rendered.
    #[error("bad template in SQL: {0}")]
    Template(String),

    /// A migration asked for a database other than the one it runs on.
    #[error("this migration needs {wanted}, but it runs on {actual}")]
    WrongDialect {
        /// The database the code asked for.
        wanted: crate::Dialect,
        /// The database it runs on.
        actual: crate::Dialect,
    },

    /// A configuration value is unusable (an empty table name, say).
    #[error("invalid configuration: {0}")]
    Config(String),

    /// An error reported by a migration function itself.
    #[error("{0}")]
    Migration(String),

    /// The database driver failed.
    #[error("database error: {message}")]
    Database {
        /// The driver's message.
        message: String,
        /// The driver's error.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
}

fn in_table(table: &Option<String>) -> String {
    table
        .as_ref()
        .map(|t| format!(" of table `{t}`"))
        .unwrap_or_default()
}

fn held_by(holder: &Option<String>) -> String {
    holder
        .as_ref()
        .map(|h| format!(" (held by {h})"))
        .unwrap_or_default()
}

fn applied_list(applied: &[AppliedStep]) -> String {
    applied
        .iter()
        .map(|a| a.step.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

impl Error {
    /// An error from a migration function, with a message of its own.
    pub fn msg(message: impl std::fmt::Display) -> Self {
        Error::Migration(message.to_string())
    }

    /// Wraps any driver error.
    pub fn database(err: impl std::error::Error + Send + Sync + 'static) -> Self {
        Error::Database {
            message: err.to_string(),
            source: Some(Box::new(err)),
        }
    }
}

impl From<GraphError> for Error {
    fn from(err: GraphError) -> Self {
        Error::Graph(Box::new(err))
    }
}

#[cfg(feature = "sqlx")]
impl From<sqlx_core::Error> for Error {
    fn from(err: sqlx_core::Error) -> Self {
        Error::database(err)
    }
}

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
