//! The result of `up` and `down`.

pub use crate::plan::{PlannedStep, SkipReason, Skipped};
use crate::step::{AppliedStep, Direction, StepKey};
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
    /// `None` as the step starts; how long it took once it has ended successfully.
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
        self.applied.iter().map(|a| a.execution_time).sum()
    }
}
