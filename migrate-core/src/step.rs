//! The small types every layer shares: which step, which way, how it ended, and what a run
//! applied.

use crate::time::Timestamp;
use semver::Version;
use std::fmt;
use std::time::Duration;

/// Identifies one step: its module, table and version, and the migration's name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct StepKey {
    /// The migration set's module.
    pub module: String,
    /// The table.
    pub table: String,
    /// The version the step brings the table to.
    pub version: Version,
    /// The migration's name.
    pub name: String,
}

impl fmt::Display for StepKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}@{} ({})",
            self.module, self.table, self.version, self.name
        )
    }
}

/// Whether a step goes up or comes down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum Direction {
    /// Applies a migration.
    Up,
    /// Reverts a migration.
    Down,
}

impl Direction {
    /// `"up"` or `"down"`, as stored in the tracking table.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Up => "up",
            Direction::Down => "down",
        }
    }

    /// Parses the stored form.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "up" => Some(Direction::Up),
            "down" => Some(Direction::Down),
            _ => None,
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a recorded step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
#[non_exhaustive]
pub enum Outcome {
    /// Journalled as started and not (yet) finished: the dirty state.
    Started,
    /// Finished successfully.
    Succeeded,
    /// Returned an error.
    Failed,
    /// Recorded as applied by `stamp`, without running.
    Stamped,
    /// Recorded as not applied by `unstamp`, without running its down.
    Unstamped,
    /// The step refused to run ([`Error::blocked`](crate::error::Error::blocked)): nothing
    /// was changed or stamped, and the row's error holds the reason and the fix.
    Blocked,
}

impl Outcome {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Started => "started",
            Outcome::Succeeded => "succeeded",
            Outcome::Failed => "failed",
            Outcome::Stamped => "stamped",
            Outcome::Unstamped => "unstamped",
            Outcome::Blocked => "blocked",
        }
    }

    /// Parses the stored form.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "started" => Some(Outcome::Started),
            "succeeded" => Some(Outcome::Succeeded),
            "failed" => Some(Outcome::Failed),
            "stamped" => Some(Outcome::Stamped),
            "unstamped" => Some(Outcome::Unstamped),
            "blocked" => Some(Outcome::Blocked),
            _ => None,
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One step that ran.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct AppliedStep {
    /// Which step.
    pub step: StepKey,
    /// Up or down.
    pub direction: Direction,
    /// When it started.
    pub started_at: Timestamp,
    /// How long its function took (`execution_time_ms` in JSON).
    #[cfg_attr(
        feature = "serde",
        serde(
            rename = "execution_time_ms",
            serialize_with = "crate::time::serialize_millis"
        )
    )]
    pub execution_time: Duration,
}

impl AppliedStep {
    /// A step that ran at `started_at` for `execution_time`.
    pub fn new(
        step: StepKey,
        direction: Direction,
        started_at: Timestamp,
        execution_time: Duration,
    ) -> Self {
        AppliedStep {
            step,
            direction,
            started_at,
            execution_time,
        }
    }
}

/// A step that started outside a transaction and never finished, as the state table records it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct DirtyMark {
    /// The step's version, as stored.
    pub version: String,
    /// The step's name.
    pub name: String,
    /// Up or down.
    pub direction: Direction,
    /// When it started.
    pub since: Timestamp,
}

impl DirtyMark {
    /// The mark a journalled step leaves while it runs.
    pub fn new(version: String, name: String, direction: Direction, since: Timestamp) -> Self {
        DirtyMark {
            version,
            name,
            direction,
            since,
        }
    }
}
