//! Read-only views: where each table stands, what is pending or applied, and the history.

use crate::error::Error;
use crate::step::{Direction, DirtyMark, Outcome, StepKey};
use crate::time::Timestamp;
use semver::Version;
use std::time::Duration;

/// Where one table stands. Listings never fail on what the tracking rows say: a dirty mark,
/// checksum drift, or a version this binary does not know are shown here, and only runs refuse
/// them.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct TableStatus {
    /// The migration set's module.
    pub module: String,
    /// The table.
    pub table: String,
    /// The current version: the stored one (also when this binary does not know it, as long as
    /// it parses), else the baseline, else `None`.
    pub current: Option<Version>,
    /// Whether the version comes from a tracking row (`false`: baseline or nothing).
    pub recorded: bool,
    /// The newest version the linked migrations know.
    pub latest: Version,
    /// How many steps `up` would apply.
    pub pending: usize,
    /// The unfinished step, if any.
    pub dirty: Option<DirtyMark>,
    /// The recorded version, when this binary has no migration of that version for the table:
    /// the database is ahead of the binary, or the row was edited by hand.
    pub unknown_version: Option<String>,
    /// An applied step that was edited after it ran.
    pub drift: Option<ChecksumDrift>,
    /// Whether this binary links migrations for the table; `false` for a table a newer binary
    /// recorded under one of this manager's modules (`latest` is then `0.0.0`).
    pub linked: bool,
    /// The dirty mark is a `resumable` step cut off on its way up: the next `up` clears it and
    /// runs the step again from its own checkpoint (it is counted in `pending`).
    pub resumes: bool,
    /// The adopted version table ([`with_adopted_versions`]) and this manager's own tracking
    /// table disagree on this table: a run refuses it with `Error::AdoptedVersion`.
    ///
    /// [`with_adopted_versions`]: crate::manager::MigrationManager::with_adopted_versions
    pub adoption: Option<AdoptionConflict>,
}

impl TableStatus {
    /// Whether a run would be refused for this table, or an operator should look: a dirty
    /// mark, checksum drift, an unknown version, a table this binary does not know, or an
    /// adopted version that disagrees with this manager's.
    pub fn needs_attention(&self) -> bool {
        self.dirty.is_some()
            || self.drift.is_some()
            || self.adoption.is_some()
            || self.unknown_version.is_some()
            || !self.linked
    }
}

/// Where another tool's version table, adopted with `with_adopted_versions`, and this
/// manager's own tracking table cannot both be right about a table.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct AdoptionConflict {
    /// The adopted version table (`agno_schema_versions`).
    pub from: String,
    /// The version it records for the table.
    pub adopted: String,
    /// This manager's tracking table.
    pub tracking: String,
    /// The version the tracking table records: `None` when it has no row for the table, and
    /// the adopted version is one no migration of the table declares.
    pub current: Option<String>,
}

/// The end of the history name `accept_checksums` records a step added below applied ones
/// under (its `stamped` row: `add_state (accepted)`), accepted as applied by hand.
pub const ACCEPTED_SUFFIX: &str = " (accepted)";

pub use crate::error::NEVER_APPLIED;

/// An applied step whose migration changed after it ran, or a step added below its table's
/// recorded version, which never ran ([`never_applied`](Self::never_applied)).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct ChecksumDrift {
    /// The edited step.
    pub step: StepKey,
    /// Where it is declared: `file:line` of its `#[migration]`, or its SQL file.
    pub location: String,
    /// The checksum recorded when it was applied.
    pub applied: String,
    /// The checksum of the migration in this binary.
    pub current: String,
    /// The step never ran: it was added below steps already applied (`applied` is then
    /// [`NEVER_APPLIED`]); in JSON, so that a consumer need not compare that text.
    pub never_applied: bool,
}

impl ChecksumDrift {
    /// Whether the step never ran: it was added, or given a version, below steps already
    /// applied, so a run would take it as applied and skip it (`applied` is
    /// [`NEVER_APPLIED`]).
    pub fn never_applied(&self) -> bool {
        self.never_applied
    }

    /// The error a run meets at this drift.
    pub(crate) fn into_error(self) -> Error {
        Error::ChecksumMismatch {
            step: Box::new(self.step),
            location: self.location,
            applied: self.applied,
            current: self.current,
        }
    }
}

/// One migration, as listed by `pending()` and `applied()`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct MigrationInfo {
    /// Which step.
    pub step: StepKey,
    /// The version it upgrades from.
    pub parent: Option<Version>,
    /// Whether it runs in a transaction.
    pub transactional: bool,
    /// Whether it has a down.
    pub reversible: bool,
    /// Its checksum.
    pub checksum: String,
    /// `file:line` of its attribute.
    pub location: String,
}

/// One row of the history: a step that ran (or started) up or down.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct HistoryEntry {
    /// Row id, increasing.
    pub id: i64,
    /// The migration set's module.
    pub module: String,
    /// The table.
    pub table: String,
    /// The step's version.
    pub version: String,
    /// The step's name.
    pub name: String,
    /// The step's checksum when it ran.
    pub checksum: String,
    /// Up or down.
    pub direction: Direction,
    /// How it ended.
    pub outcome: Outcome,
    /// When it started.
    pub started_at: Timestamp,
    /// When it finished.
    pub finished_at: Option<Timestamp>,
    /// How long it took (`execution_time_ms` in JSON).
    #[cfg_attr(
        feature = "serde",
        serde(
            rename = "execution_time_ms",
            serialize_with = "crate::time::serialize_optional_millis"
        )
    )]
    pub execution_time: Option<Duration>,
    /// The error, for failed steps.
    pub error: Option<String>,
}

impl HistoryEntry {
    #[doc(hidden)]
    #[allow(clippy::too_many_arguments)]
    pub fn __new(
        id: i64,
        module: String,
        table: String,
        version: String,
        name: String,
        checksum: String,
        direction: Direction,
        outcome: Outcome,
        started_at: Timestamp,
        finished_at: Option<Timestamp>,
        execution_time: Option<Duration>,
        error: Option<String>,
    ) -> Self {
        HistoryEntry {
            id,
            module,
            table,
            version,
            name,
            checksum,
            direction,
            outcome,
            started_at,
            finished_at,
            execution_time,
            error,
        }
    }
}
