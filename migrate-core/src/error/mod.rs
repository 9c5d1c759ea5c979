//! The typed errors of the framework. Every variant names the thing at fault.
//!
//! Each cause is printed once: a variant that wraps another error ([`Error::StepFailed`]) returns
//! it from [`source()`](std::error::Error::source) and leaves it out of its own message, so
//! `anyhow`'s `{:#}` or any chain printer shows every cause exactly once.

use crate::dialect::Dialect;
use crate::step::{AppliedStep, Direction, DirtyMark, StepKey};
use crate::time::Timestamp;
use semver::Version;
use std::path::PathBuf;
use std::time::Duration;

mod category;
mod database;
mod graph;
pub use category::ErrorCategory;
pub use database::DatabaseError;
pub use graph::GraphError;

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
        version: Version,
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
        current: Version,
        /// Where the caller wanted it.
        target: Version,
    },

    /// `down` to a version above the one a table is at.
    #[error("cannot go down to {target}: table `{table}` is at {}, below the target; use up to go forward", current.as_ref().map_or_else(|| "no version".to_string(), |v| v.to_string()))]
    TargetAboveCurrent {
        /// The table.
        table: String,
        /// Where it stands (`None`: nothing applied).
        current: Option<Version>,
        /// Where the caller wanted it.
        target: Version,
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
    #[error("{}", mismatch_text(.step, .location, .applied, .current))]
    ChecksumMismatch {
        /// The edited step.
        step: Box<StepKey>,
        /// Where it is declared: `file:line` of its `#[migration]`, or its SQL file.
        location: String,
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
        direction: Direction,
        /// When it started.
        since: Timestamp,
    },

    /// `down` would have to cross a migration declared `irreversible`.
    #[error("cannot revert {step}: it is declared irreversible")]
    Irreversible {
        /// The irreversible step.
        step: Box<StepKey>,
    },

    /// An `after` dependency of a planned step is neither applied nor part of the run.
    #[error("{step} must run after {dependency}, which is not applied and not part of this run; include its table")]
    DependencyNotApplied {
        /// The step that waits.
        step: Box<StepKey>,
        /// What it waits for.
        dependency: Box<StepKey>,
    },

    /// Reverting a step would leave a step that runs `after` it applied.
    #[error(
        "cannot revert {step}: {dependent} runs after it and stays applied; include its table"
    )]
    DependentStillApplied {
        /// The step that would be reverted.
        step: Box<StepKey>,
        /// The applied step that depends on it.
        dependent: Box<StepKey>,
    },

    /// Another runner holds the migration lock.
    #[error("could not take the migration lock within {waited:?}{}", held_by(.holder))]
    LockTimeout {
        /// How long the runner waited.
        waited: Duration,
        /// Who holds it, when the database can tell.
        holder: Option<String>,
    },

    /// No connection to the database server could be opened within the connect timeout: the
    /// server is down, the address is wrong, or a firewall drops the packets.
    #[error("could not connect to {target} within {waited:?}: is the server running, and is the address right?")]
    Unreachable {
        /// The server, as `scheme://host:port/database` (never the user or password).
        target: String,
        /// How long connecting was tried.
        waited: Duration,
    },

    /// Other runners kept moving the tracking rows under this one.
    #[error("gave up after {attempts} attempts: other runners kept changing `{table}` while this one planned")]
    ConcurrentRunners {
        /// The table.
        table: String,
        /// How many plans were tried.
        attempts: u32,
    },

    /// A step failed. Nothing after it ran. Why it failed is the [`source`](std::error::Error::source).
    #[error("migration {step} failed ({direction}); applied before it in this run: [{}]; nothing after it ran", applied_list(.applied))]
    StepFailed {
        /// The step that failed.
        step: Box<StepKey>,
        /// Whether it was going up or down.
        direction: Direction,
        /// What this run applied before the failure.
        applied: Vec<AppliedStep>,
        /// Why it failed.
        #[source]
        source: Box<Error>,
    },

    /// The version table adopted with `MigrationManager::with_adopted_versions` says something
    /// this manager cannot take: a version that no table of the module declares (or one below
    /// the table's first version), or one standing for a version above what this manager's own
    /// tracking table records (another tool migrated the table after it was adopted).
    #[error("{}", adopted_text(.table, .from, .adopted, .tracking, .current))]
    AdoptedVersion {
        /// The table (logical name).
        table: String,
        /// The adopted version table (`agno_schema_versions`).
        from: String,
        /// The version it records.
        adopted: String,
        /// This manager's tracking table.
        tracking: String,
        /// The version the tracking table records, if it has a row for the table.
        current: Option<String>,
    },

    /// A migration refused to run ([`Error::blocked`]): the data is not ready for it. Nothing
    /// of the step was kept or stamped, and its table stopped there; the next run tries again.
    /// Returned by the manager with the step and the run's report (other tables went on).
    #[error("{}refused to run: {reason}; to fix it: {fix}", refusing(.step))]
    Blocked {
        /// Why the step refused.
        reason: String,
        /// What an operator does so that the next run goes through.
        fix: String,
        /// The step, once the manager has seen the refusal.
        step: Option<Box<StepKey>>,
        /// What the run did, every refusal included, once the manager has seen it.
        report: Option<Box<crate::report::Report>>,
    },

    /// A method of the blocking API was called on a thread that is already running an async
    /// runtime, where blocking on it would stall that runtime.
    #[error("{method} blocks, and was called inside an async runtime's context: call it from a std::thread (tokio::task::spawn_blocking's threads carry the runtime's context too), or use the async API there")]
    InsideRuntime {
        /// The method called, by its path (`migrate::blocking::MigrationManager::status`).
        method: &'static str,
    },

    /// A `{{...}}` template in SQL could not be rendered.
    #[error("bad template in SQL: {0}")]
    Template(String),

    /// A migration asked for a database other than the one it runs on.
    #[error("this migration needs {wanted}, but it runs on {actual}")]
    WrongDialect {
        /// The database the code asked for.
        wanted: Dialect,
        /// The database it runs on.
        actual: Dialect,
    },

    /// A configuration value is unusable (an empty table name, say).
    #[error("invalid configuration: {0}")]
    Config(String),

    /// A file the framework needs (the SQLite run-lock file) could not be used.
    #[error("could not {operation} `{}`", path.display())]
    Io {
        /// What was being done: "open", "lock", "unlock".
        operation: &'static str,
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },

    /// An error reported by a migration function itself, with its own chain of causes.
    #[error(transparent)]
    Migration(Box<dyn std::error::Error + Send + Sync + 'static>),

    /// The database driver failed.
    #[error(transparent)]
    Database(DatabaseError),
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

/// `ChecksumDrift::applied` (and [`Error::ChecksumMismatch`]'s `applied`) of a step that never
/// ran, though it lies below its table's recorded version (`ChecksumDrift::never_applied`).
pub const NEVER_APPLIED: &str = "never applied";

fn mismatch_text(step: &StepKey, location: &str, applied: &str, current: &str) -> String {
    if applied == NEVER_APPLIED {
        format!(
            "{step}, declared at {location}, has no run recorded, though its table is recorded \
             above it: it was added below steps already applied, and a run would skip it; give \
             it a version above the recorded one, or, once it is applied by hand, accept it \
             with MigrationManager::accept_checksums"
        )
    } else {
        format!(
            "checksum drift in {step}, declared at {location}: it was applied with checksum \
             {applied}, but the binary now has {current}; revert the edit, or accept it with \
             MigrationManager::accept_checksums"
        )
    }
}

fn adopted_text(
    table: &str,
    from: &str,
    adopted: &str,
    tracking: &str,
    current: &Option<String>,
) -> String {
    match current {
        None => format!(
            "`{from}` records table `{table}` at {adopted}, which is no release these migrations \
             declare (or is below the table's first version); correct that row, or delete it to \
             start from the baseline"
        ),
        Some(current) => format!(
            "`{from}` records table `{table}` at {adopted}, but `{tracking}` records it at {current}: \
             another tool migrated it after it was adopted; check the schema, then correct one of the two"
        ),
    }
}

fn refusing(step: &Option<Box<StepKey>>) -> String {
    step.as_ref()
        .map(|s| format!("migration {s} "))
        .unwrap_or_else(|| "a migration ".to_string())
}

fn applied_list(applied: &[AppliedStep]) -> String {
    applied
        .iter()
        .map(|a| a.step.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

impl Error {
    /// The error a run meets at a table's dirty mark.
    pub(crate) fn dirty(module: &str, table: &str, mark: &DirtyMark) -> Self {
        Error::Dirty {
            module: module.to_string(),
            table: table.to_string(),
            version: mark.version.clone(),
            name: mark.name.clone(),
            direction: mark.direction,
            since: mark.since,
        }
    }

    /// The error for a recorded version that no linked migration of the table declares.
    pub(crate) fn unknown_applied(module: &str, table: &str, version: impl Into<String>) -> Self {
        Error::UnknownAppliedVersion {
            module: module.to_string(),
            table: table.to_string(),
            version: version.into(),
        }
    }

    /// An error from a migration function, with a message of its own.
    ///
    /// ```
    /// # async fn step(db: &mut migrate_core::conn::Conn<'_>) -> migrate_core::error::Result<()> {
    /// if db.table_exists("legacy").await? {
    ///     return Err(migrate_core::error::Error::msg("drop the `legacy` table first"));
    /// }
    /// # Ok(()) }
    /// ```
    pub fn msg(message: impl std::fmt::Display) -> Self {
        Error::Migration(message.to_string().into())
    }

    /// A migration's refusal to run: the data is not ready for the change (duplicate ids
    /// before a primary key, say). Return it before changing anything. The step is not
    /// stamped, its table stops, the other tables go on, and the report, the history and the
    /// CLI (exit code 7) carry `reason` and `fix`. The next run tries the step again.
    ///
    /// ```
    /// # async fn step(db: &mut migrate_core::conn::Conn<'_>) -> migrate_core::error::Result<()> {
    /// use migrate_core::error::Error;
    /// let duplicates = db
    ///     .query_i64("SELECT COUNT(*) FROM (SELECT session_id FROM {{tables.session}} GROUP BY session_id HAVING COUNT(*) > 1) d")
    ///     .await?;
    /// if duplicates > 0 {
    ///     return Err(Error::blocked(
    ///         format!("{duplicates} session ids appear more than once"),
    ///         "delete or rename the duplicate sessions, then run the migrations again",
    ///     ));
    /// }
    /// # Ok(()) }
    /// ```
    pub fn blocked(reason: impl Into<String>, fix: impl Into<String>) -> Self {
        Error::Blocked {
            reason: reason.into(),
            fix: fix.into(),
            step: None,
            report: None,
        }
    }

    /// The reason and the fix of a refusal ([`Error::blocked`]), also when it is the cause of
    /// another error.
    pub fn refusal(&self) -> Option<(&str, &str)> {
        let mut current: Option<&(dyn std::error::Error + 'static)> = Some(self);
        while let Some(err) = current {
            if let Some(Error::Blocked { reason, fix, .. }) = err.downcast_ref::<Error>() {
                return Some((reason, fix));
            }
            current = err.source();
        }
        None
    }

    /// An error from a migration function that keeps `err` and its chain of causes.
    pub fn migration(err: impl std::error::Error + Send + Sync + 'static) -> Self {
        Error::Migration(Box::new(err))
    }

    /// Wraps any driver error. Its message is kept with any password in a URL blanked out.
    pub fn database(err: impl std::error::Error + Send + Sync + 'static) -> Self {
        Error::Database(DatabaseError::new(Box::new(err)))
    }

    /// The same error with every occurrence of `secret` in its messages replaced by `***`: a
    /// backend applies it to the errors of a connection made with that password.
    pub fn redact(self, secret: &str) -> Self {
        self.redact_as(secret, "***")
    }

    /// The same error with every occurrence of `text` in its messages replaced by
    /// `replacement`: for a short password, which is blanked only where a URL writes it
    /// (`:pw@` becomes `:***@`), as bare text it would blank unrelated letters.
    pub fn redact_as(self, text: &str, replacement: &str) -> Self {
        if text.is_empty() {
            return self;
        }
        match self {
            Error::Database(db) => Error::Database(db.redact_as(text, replacement)),
            Error::Config(message) => Error::Config(message.replace(text, replacement)),
            other => other,
        }
    }
}

impl From<GraphError> for Error {
    fn from(err: GraphError) -> Self {
        Error::Graph(Box::new(err))
    }
}

/// How the PostgreSQL backend's statements prepared on a session (SQL `PREPARE`) are named.
#[doc(hidden)]
pub const SESSION_STATEMENT_PREFIX: &str = "migrate_record_";

#[cfg(feature = "sqlx")]
impl From<sqlx_core::error::Error> for Error {
    fn from(err: sqlx_core::error::Error) -> Self {
        // sqlx names its prepared statements `sqlx_s_N` (the PostgreSQL backend's own start
        // with `SESSION_STATEMENT_PREFIX`); a server that has one already, or has lost one, is
        // a transaction-pooling proxy handing this client another connection.
        let text = err.to_string();
        let proxied = text.contains("prepared statement \"sqlx_s_")
            || text.contains(&format!("prepared statement \"{SESSION_STATEMENT_PREFIX}"));
        // The connection's failure, not a statement's: no connection within the pool's
        // timeout, the socket refused or lost, the pool closed by its host.
        let connection_failed = matches!(
            err,
            sqlx_core::error::Error::Io(_)
                | sqlx_core::error::Error::PoolTimedOut
                | sqlx_core::error::Error::PoolClosed
        );
        match Error::database(err) {
            Error::Database(db) if proxied => Error::Database(db.context(
                "the server looks like a transaction-pooling proxy (PgBouncer's transaction mode); \
                 connect with ConnectOptions::transaction_pooling (CLI --transaction-pooling)",
            )),
            Error::Database(db) if connection_failed => Error::Database(db.connection_failed()),
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn a_step_failure_prints_its_cause_once() {
        let cause = Error::msg("column `x` exists");
        let err = Error::StepFailed {
            step: Box::new(StepKey {
                module: "app".into(),
                table: "t".into(),
                version: Version::new(1, 0, 0),
                name: "m".into(),
            }),
            direction: Direction::Up,
            applied: Vec::new(),
            source: Box::new(cause),
        };
        assert!(!err.to_string().contains("column `x` exists"), "{err}");
        let source = err.source().map(|s| s.to_string());
        assert_eq!(source.as_deref(), Some("column `x` exists"));
    }

    #[test]
    fn redaction_reaches_message_and_debug() {
        let err =
            Error::database(std::io::Error::other("login failed for hunter2")).redact("hunter2");
        assert!(!err.to_string().contains("hunter2"), "{err}");
        assert!(!format!("{err:?}").contains("hunter2"), "{err:?}");
    }

    #[cfg(feature = "sqlx")]
    #[test]
    fn a_failed_connection_is_unreachable_and_a_failed_statement_is_not() {
        use sqlx_core::error::Error as Sqlx;
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        for err in [Sqlx::Io(refused), Sqlx::PoolTimedOut, Sqlx::PoolClosed] {
            let err = Error::from(err);
            assert_eq!(err.category(), ErrorCategory::Unreachable, "{err}");
            assert_eq!(err.kind(), "Database");
        }
        let statement = Error::from(Sqlx::RowNotFound);
        assert_eq!(statement.category(), ErrorCategory::Other, "{statement}");
    }
}
