//! What kind of trouble an [`Error`] is: the classes that exit codes, HTTP statuses and start-up
//! policies are chosen by.

use super::Error;

/// The class of an [`Error`], for the code that must answer it differently: a CLI's exit code,
/// an HTTP status, a start-up check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCategory {
    /// The caller asked for something wrong: a version that does not parse or is not in the
    /// graph, an unknown table, a target on the wrong side, `down` without a target, a bad
    /// option.
    BadInput,
    /// Another runner holds the migration lock (or, for a [`Error::StepFailed`] whose cause is
    /// a [`Error::LockTimeout`], held the lock a later step of the run needed: the steps before
    /// it are listed).
    Locked,
    /// A table carries a dirty mark: a step started outside a transaction and never finished.
    Dirty,
    /// The database does not match this binary: an applied step was edited (checksum drift), or
    /// the database is ahead (a recorded version no linked migration declares).
    Drift,
    /// The plan cannot run as asked: an irreversible step, a dependency across tables, or other
    /// runners that kept moving the tables.
    Refused,
    /// A step ran and failed.
    StepFailed,
    /// A step refused to run because the data is not ready ([`Error::blocked`]).
    Blocked,
    /// The database server could not be reached: no connection opened within the connect
    /// timeout, or a connection failed or was lost while in use (an I/O error, no pooled
    /// connection within the pool's timeout, whether the server is gone or the pool busy; an
    /// [`Error::Database`] whose
    /// [`is_connection_failure`](super::DatabaseError::is_connection_failure)). Trying again
    /// later is the answer; a step cut off this way is a [`StepFailed`](Self::StepFailed).
    Unreachable,
    /// Anything else: the driver, the file system, the graph, a misuse of the API.
    Other,
}

impl Error {
    /// The class of this error.
    ///
    /// ```
    /// use migrate_core::error::{Error, ErrorCategory};
    /// assert_eq!(Error::MissingDownTarget.category(), ErrorCategory::BadInput);
    /// ```
    pub fn category(&self) -> ErrorCategory {
        match self {
            Error::InvalidVersion { .. }
            | Error::UnknownVersion { .. }
            | Error::UnknownTable { .. }
            | Error::TargetBelowCurrent { .. }
            | Error::TargetAboveCurrent { .. }
            | Error::MissingDownTarget
            | Error::Config(_) => ErrorCategory::BadInput,
            Error::LockTimeout { .. } => ErrorCategory::Locked,
            Error::Dirty { .. } => ErrorCategory::Dirty,
            Error::ChecksumMismatch { .. }
            | Error::UnknownAppliedVersion { .. }
            | Error::AdoptedVersion { .. } => ErrorCategory::Drift,
            Error::Irreversible { .. }
            | Error::DependencyNotApplied { .. }
            | Error::DependentStillApplied { .. }
            | Error::ConcurrentRunners { .. } => ErrorCategory::Refused,
            // A later step of a run that could not take the lock: the run stopped there, as
            // a run that never began does; retrying is still the answer.
            Error::StepFailed { source, .. } if matches!(**source, Error::LockTimeout { .. }) => {
                ErrorCategory::Locked
            }
            Error::StepFailed { .. } => ErrorCategory::StepFailed,
            Error::Blocked { .. } => ErrorCategory::Blocked,
            Error::Unreachable { .. } => ErrorCategory::Unreachable,
            Error::Database(db) if db.is_connection_failure() => ErrorCategory::Unreachable,
            Error::Graph(_)
            | Error::InsideRuntime { .. }
            | Error::Template(_)
            | Error::WrongDialect { .. }
            | Error::Io { .. }
            | Error::Migration(_)
            | Error::Database(_) => ErrorCategory::Other,
        }
    }

    /// The variant's name (`"LockTimeout"`, `"StepFailed"`, …): a stable machine-readable kind
    /// for JSON errors and logs.
    ///
    /// ```
    /// use migrate_core::error::Error;
    /// assert_eq!(Error::MissingDownTarget.kind(), "MissingDownTarget");
    /// ```
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Graph(_) => "Graph",
            Error::InvalidVersion { .. } => "InvalidVersion",
            Error::UnknownVersion { .. } => "UnknownVersion",
            Error::UnknownTable { .. } => "UnknownTable",
            Error::TargetBelowCurrent { .. } => "TargetBelowCurrent",
            Error::TargetAboveCurrent { .. } => "TargetAboveCurrent",
            Error::MissingDownTarget => "MissingDownTarget",
            Error::UnknownAppliedVersion { .. } => "UnknownAppliedVersion",
            Error::ChecksumMismatch { .. } => "ChecksumMismatch",
            Error::Dirty { .. } => "Dirty",
            Error::Irreversible { .. } => "Irreversible",
            Error::DependencyNotApplied { .. } => "DependencyNotApplied",
            Error::DependentStillApplied { .. } => "DependentStillApplied",
            Error::LockTimeout { .. } => "LockTimeout",
            Error::Unreachable { .. } => "Unreachable",
            Error::ConcurrentRunners { .. } => "ConcurrentRunners",
            Error::StepFailed { .. } => "StepFailed",
            Error::Blocked { .. } => "Blocked",
            Error::AdoptedVersion { .. } => "AdoptedVersion",
            Error::InsideRuntime { .. } => "InsideRuntime",
            Error::Template(_) => "Template",
            Error::WrongDialect { .. } => "WrongDialect",
            Error::Config(_) => "Config",
            Error::Io { .. } => "Io",
            Error::Migration(_) => "Migration",
            Error::Database(_) => "Database",
        }
    }
}
