//! The result of `up` and `down`.

use crate::step::{AppliedStep, Direction, StepKey};
use semver::Version;
use std::time::Duration;

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
#[non_exhaustive]
pub enum ReportStatus {
    /// Steps ran.
    Success,
    /// Nothing needed doing.
    UpToDate,
    /// A dry run: the plan is in [`Report::planned`]; nothing changed.
    DryRun,
    /// A step refused to run ([`Error::blocked`](crate::error::Error::blocked)): its table
    /// stopped there, and [`Report::blocked`] says why and how to fix it. Other tables went on.
    Blocked,
}

/// A step that refused to run, with what the migration said about it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct BlockedStep {
    /// Which step.
    pub step: StepKey,
    /// Up or down.
    pub direction: Direction,
    /// Why it refused.
    pub reason: String,
    /// What an operator does so that the next run goes through.
    pub fix: String,
}

/// A step starting or ending, as told to [`on_progress`](crate::manager::UpRequest::on_progress).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Progress {
    /// The step's position in the run, from 1.
    pub index: usize,
    /// How many steps the run has planned. It can change when another runner moved a table and
    /// the run planned again.
    pub total: usize,
    /// Which step.
    pub step: StepKey,
    /// Up or down.
    pub direction: Direction,
    /// `None` as the step starts; how long it took once it has ended successfully. Its commit
    /// may still wait to ride on the next step's first statement (or, on MySQL, its finish on
    /// the next step's start): a step rolled back with it is reported to the callback again
    /// when the run plans it again, and [`Report::applied`] counts only committed steps.
    pub finished: Option<Duration>,
}

/// What `up` or `down` did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct Report {
    /// Success, up to date, or dry run.
    pub status: ReportStatus,
    /// The steps that ran, in order.
    pub applied: Vec<AppliedStep>,
    /// Per selected table, the steps that were already where the request wanted them.
    pub skipped: Vec<Skipped>,
    /// For a dry run, the steps that would run, in order.
    pub planned: Vec<PlannedStep>,
    /// The steps that refused to run; their tables stopped there.
    pub blocked: Vec<BlockedStep>,
    /// Wall time of the whole call (`total_time_ms` in JSON).
    #[cfg_attr(
        feature = "serde",
        serde(
            rename = "total_time_ms",
            serialize_with = "crate::time::serialize_millis"
        )
    )]
    pub total_time: Duration,
}

impl Report {
    /// The sum of the applied steps' execution times.
    pub fn execution_time(&self) -> Duration {
        self.applied.iter().fold(Duration::ZERO, |sum, a| {
            sum.saturating_add(a.execution_time)
        })
    }
}

/// One step of a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct PlannedStep {
    /// Which step.
    pub step: StepKey,
    /// Up or down.
    pub direction: Direction,
    /// Whether it runs in a transaction with its tracking rows.
    pub transactional: bool,
    /// For a dry run of a step declared by a SQL file: the SQL it would run, templates
    /// rendered for this database.
    pub sql: Option<String>,
    #[cfg_attr(feature = "serde", serde(skip))]
    pub(crate) node: usize,
    #[cfg_attr(feature = "serde", serde(skip))]
    pub(crate) expected: Option<String>,
    #[cfg_attr(feature = "serde", serde(skip))]
    pub(crate) new_version: Option<String>,
    #[cfg_attr(feature = "serde", serde(skip))]
    pub(crate) new_checksum: Option<String>,
}

/// Steps of one table that a request passes over, and why.
///
/// Kept per table, not per step, so that an "already up to date" run costs the same at 10 and
/// at 10,000 migrations.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct Skipped {
    /// The migration set's module.
    pub module: String,
    /// The table.
    pub table: String,
    /// How many of its steps were passed over.
    pub steps: usize,
    /// Why.
    pub reason: SkipReason,
}

/// Why a request passed a table's steps over.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(tag = "kind", rename_all = "snake_case"))]
#[non_exhaustive]
pub enum SkipReason {
    /// The steps are already where the request wants them.
    AlreadyThere,
    /// An `up` to a release target over several tables found this table above it: it stays
    /// where it is (`steps` counts its steps above the target). Naming the table with
    /// `.table(..)` makes this an error instead.
    AboveTarget {
        /// Where the table stands.
        current: Version,
        /// The release the request asked for.
        target: Version,
    },
    /// A `down` to a release target over several tables found this table below it (or with
    /// nothing applied): it stays where it is (`steps` is 0). Naming the table with
    /// `.table(..)` makes this an error instead.
    BelowTarget {
        /// Where the table stands (`None`: nothing applied).
        current: Option<Version>,
        /// The release the request asked for.
        target: Version,
    },
    /// A step of this table refused to run, or a step these depend on did: the table stopped
    /// there (`steps` counts the steps left behind).
    Blocked {
        /// The step that refused.
        by: StepKey,
    },
    /// A down to nothing kept the table's first step (`steps` is 1): the table has a baseline
    /// (`with_baseline`, `with_table_baseline`, an adopted version), and with no version
    /// recorded it would read as at that baseline, so the next `up` would skip what the down
    /// reverted.
    FirstStepKept {
        /// The baseline.
        baseline: Version,
    },
}

impl std::fmt::Display for SkipReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SkipReason::AlreadyThere => f.write_str("already there"),
            SkipReason::AboveTarget { current, target } => {
                write!(f, "at {current}, above the target {target}: left as it is")
            }
            SkipReason::BelowTarget { current, target } => match current {
                Some(current) => {
                    write!(f, "at {current}, below the target {target}: left as it is")
                }
                None => write!(f, "nothing applied, below the target {target}: left as it is"),
            },
            SkipReason::Blocked { by } => write!(f, "stopped: {by} refused to run"),
            SkipReason::FirstStepKept { baseline } => write!(
                f,
                "its first step stays: with no version recorded it would read as at its baseline {baseline}"
            ),
        }
    }
}
