//! The result of `up` and `down`.

pub use crate::plan::{PlannedStep, Skipped};
use crate::step::AppliedStep;
use std::time::Duration;

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReportStatus {
    /// Steps ran.
    Success,
    /// Nothing needed doing.
    UpToDate,
    /// A dry run: the plan is in [`Report::planned`]; nothing changed.
    DryRun,
}

/// What `up` or `down` did.
#[derive(Debug, Clone, PartialEq, Eq)]
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
    /// Wall time of the whole call.
    pub total_time: Duration,
}

impl Report {
    /// The sum of the applied steps' execution times.
    pub fn execution_time(&self) -> Duration {
        self.applied.iter().map(|a| a.execution_time).sum()
    }
}
