//! What a fleet run did: one [`TargetReport`] per target, and the [`FleetOutcome`] over all.

use super::target::Target;
use crate::report::Report;
use crate::report::TableStatus;
use crate::Error;
use std::time::Duration;

/// How a fleet run ended over all its targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FleetOutcome {
    /// Every target succeeded (a fleet of none included).
    AllSucceeded,
    /// Some targets failed; [`FleetReport::failures`] names them.
    PartlyFailed,
    /// No target succeeded: each failed, or (with `fail_fast`) was not run after a failure.
    AllFailed,
}

impl FleetOutcome {
    /// `all_succeeded`, `partly_failed` or `all_failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            FleetOutcome::AllSucceeded => "all_succeeded",
            FleetOutcome::PartlyFailed => "partly_failed",
            FleetOutcome::AllFailed => "all_failed",
        }
    }
}

/// What happened on one target.
#[derive(Debug)]
#[non_exhaustive]
pub enum TargetOutcome {
    /// `up` ran (or found nothing to do).
    Ran(Report),
    /// `status` or `verify` read it; for `verify`, nothing needed attention.
    Read(Vec<TableStatus>),
    /// It failed: the error names the step, the lock holder, the dirty mark, or what `verify`
    /// found.
    Failed(Error),
    /// `fail_fast` stopped the fleet before this target started.
    NotRun,
}

/// One target's part of a fleet run.
#[derive(Debug)]
#[non_exhaustive]
pub struct TargetReport {
    /// The target.
    pub target: Target,
    /// What happened.
    pub outcome: TargetOutcome,
    /// How long it took.
    pub elapsed: Duration,
}

impl TargetReport {
    /// Whether it failed (or was not run because of another's failure).
    pub fn failed(&self) -> bool {
        matches!(
            self.outcome,
            TargetOutcome::Failed(_) | TargetOutcome::NotRun
        )
    }
}

/// What a fleet run did, target by target, in the order the targets were given.
#[derive(Debug)]
#[non_exhaustive]
pub struct FleetReport {
    /// Over all targets.
    pub outcome: FleetOutcome,
    /// One per target.
    pub targets: Vec<TargetReport>,
    /// The most connections the run's pools could hold, all pools that connected counted as if
    /// open at once (an upper bound: a server's pool is closed after its last target).
    pub max_connections: u32,
    /// Wall time of the whole run.
    pub total_time: Duration,
}

impl FleetReport {
    pub(super) fn new(
        targets: Vec<TargetReport>,
        max_connections: u32,
        total_time: Duration,
    ) -> Self {
        let failed = targets.iter().filter(|t| t.failed()).count();
        let outcome = match failed {
            0 => FleetOutcome::AllSucceeded,
            n if n == targets.len() => FleetOutcome::AllFailed,
            _ => FleetOutcome::PartlyFailed,
        };
        FleetReport {
            outcome,
            targets,
            max_connections,
            total_time,
        }
    }

    /// The failed targets with their errors (targets not run are left out).
    pub fn failures(&self) -> impl Iterator<Item = (&Target, &Error)> {
        self.targets.iter().filter_map(|t| match &t.outcome {
            TargetOutcome::Failed(err) => Some((&t.target, err)),
            _ => None,
        })
    }

    /// How many targets succeeded.
    pub fn succeeded(&self) -> usize {
        self.targets.iter().filter(|t| !t.failed()).count()
    }
}
