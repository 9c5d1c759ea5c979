//! Running a request: read the state, plan, take the lock when there is work, re-plan under it,
//! and apply step by step, re-planning when another runner moved a table first.

use super::request::RunOptions;
use super::setup::MigrationManager;
use super::up_to_date::Known;
use crate::backend::{StateRow, StepAfterPending, StepOutcome, StepRecord, StepRun};
use crate::error::{Error, Result};
use crate::future::catch_unwind;
use crate::graph::Graph;
use crate::migration::Reversal;
use crate::plan::{self, Plan, Request};
use crate::report::{
    BlockedStep, PlannedStep, Progress, Report, ReportStatus, SkipReason, Skipped,
};
use crate::step::{AppliedStep, Direction};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::Instrument;

/// How many times a run re-plans after another runner moved a tracking row under it.
const MAX_ATTEMPTS: u32 = 16;

impl MigrationManager {
    /// Runs a validated request: reads the state, plans, and (unless it is a dry run or there
    /// is nothing to do) takes the lock and applies the plan step by step.
    pub(super) async fn execute(&self, request: Request, run: RunOptions) -> Result<Report> {
        let span = tracing::info_span!(
            "migrate_run",
            direction = %request.direction,
            dry_run = run.dry_run,
            dialect = %self.backend.dialect(),
            schema = self.backend.schema(),
            // Which database: a process that migrates several (a fleet) tells them apart.
            database = %self.backend.describe(),
        );
        let outcome = self
            .execute_in_span(request, run)
            .instrument(span.clone())
            .await;
        let up_to_date_now =
            matches!(&outcome, Ok((report, _)) if report.status == ReportStatus::UpToDate);
        let up_to_date_before = self.up_to_date.swap_last_ended_up_to_date(up_to_date_now);
        match &outcome {
            // A repeated check that found the rows its manager's last verdict was reached
            // from, right after a run that ended up to date, has nothing new to say: a service
            // that checks often logs nothing at `info` for it (and a subscriber at `info`
            // formats no line per check). After a failure, or any other end, it says so again.
            Ok((report, Some(Known::LastVerdict))) if up_to_date_before => tracing::debug!(
                parent: &span,
                status = ?report.status,
                steps = report.applied.len(),
                duration_ms = millis(report.total_time),
                "migration run ended"
            ),
            Ok((report, _)) => tracing::info!(
                parent: &span,
                status = ?report.status,
                steps = report.applied.len(),
                duration_ms = millis(report.total_time),
                "migration run ended"
            ),
            // As a `dyn Error`, so that a subscriber prints its causes too (`error.sources`):
            // a failed step's message leaves its cause to `source()`.
            Err(err) => tracing::warn!(
                parent: &span,
                kind = err.kind(),
                error = err as &(dyn std::error::Error + 'static),
                "migration run failed"
            ),
        }
        outcome.map(|(report, _)| report)
    }

    /// The run, and which verdict the rows held when it was answered from them alone.
    async fn execute_in_span(
        &self,
        request: Request,
        run: RunOptions,
    ) -> Result<(Report, Option<Known>)> {
        let started = Instant::now();
        let rows = self.backend.read_state().await?;
        let from_rows_alone = self.verdict_from_rows_alone(&request, &run);
        if from_rows_alone {
            let ours = |module: &str| self.sets.iter().any(|s| s.module() == module);
            if let Some((skipped, known)) = self.up_to_date.known(&rows, ours) {
                tracing::debug!(
                    rows_are = known.rows_are(),
                    "up to date from the state rows alone"
                );
                return Ok((up_to_date(skipped, started), Some(known)));
            }
        }
        let report = self
            .plan_and_run(&request, &run, rows, from_rows_alone, started)
            .await?;
        Ok((report, None))
    }

    /// A run that the rows alone did not answer: surveys them, plans, and reports a dry run,
    /// remembers an "up to date" verdict (`from_rows_alone`: one the rows may give next time),
    /// or takes the lock and applies.
    async fn plan_and_run(
        &self,
        request: &Request,
        run: &RunOptions,
        rows: Arc<[StateRow]>,
        from_rows_alone: bool,
        started: Instant,
    ) -> Result<Report> {
        let survey = self.survey_rows(&rows).await?;
        // A verdict that read the checksum history is not the rows' alone.
        let remember = from_rows_alone && survey.suspects.is_empty();
        let states = self.judge(survey, request.force).await?;
        // A dry run plans what the run would: its resumable steps cut off run again.
        let dry_request = (run.dry_run && request.direction == Direction::Up)
            .then(|| self.resuming(&states, request));
        let plan = match plan::plan(
            &self.graph,
            &states,
            dry_request.as_ref().unwrap_or(request),
        ) {
            // A dirty mark may belong to a runner that is still working: wait for the lock,
            // and decide on the state read under it.
            Err(Error::Dirty { .. }) if !run.dry_run => None,
            other => Some(other?),
        };
        // The locked path is boxed: the future of a check that finds nothing to do stays
        // 1.1 KB instead of 3.8 KB (it is allocated and moved on every call).
        let Some(plan) = plan else {
            return Box::pin(self.execute_locked(request, run, started)).await;
        };
        if run.dry_run {
            let planned = self.with_sql(plan.steps)?;
            return Ok(Report {
                status: ReportStatus::DryRun,
                applied: Vec::new(),
                skipped: plan.skipped,
                planned,
                blocked: Vec::new(),
                total_time: started.elapsed(),
            });
        }
        if plan.steps.is_empty() {
            if remember {
                self.up_to_date.remember(rows, plan.skipped.clone());
            }
            return Ok(up_to_date(plan.skipped, started));
        }
        Box::pin(self.execute_locked(request, run, started)).await
    }

    /// Runs `f` holding the run lock (taken within `wait`, else the backend's lock timeout,
    /// the tracking tables prepared under it) and releases the lock whatever `f` returns: runs
    /// and repairs never interleave.
    ///
    /// A panic out of `f` (a migration's, or a progress callback's) is caught, `f` is dropped
    /// (a step's connection with it, which rolls its transaction back), what the backend left
    /// pending commits (on MariaDB, the finish of the step before the panic), the lock is
    /// released, and then the panic goes on to the caller.
    pub(super) async fn locked<T>(
        &self,
        wait: Option<Duration>,
        f: impl std::future::Future<Output = Result<T>>,
    ) -> Result<T> {
        let lock = self.backend.lock(wait).await?;
        let outcome = catch_unwind(async {
            self.backend.prepare().await?;
            f.await
        })
        .await;
        // What the backend left pending commits under the lock, whatever the run returned.
        let ended = self.backend.end_run().await;
        let released = lock.release().await;
        // A run that panicked or failed returns that: what the end and the release met is
        // said in the log, or nothing would say it (a step recorded before the failure may
        // stay marked when its pending finish could not commit).
        let failed = match &outcome {
            Err(_) => Some("after a panic"),
            Ok(Err(_)) => Some("after the run failed"),
            Ok(Ok(_)) => None,
        };
        if let Some(after) = failed {
            if let Err(err) = &ended {
                tracing::warn!(error = %err, "{after}, what the run left pending could not commit");
            }
        }
        if let (Some(after), Err(err)) = (failed, &released) {
            tracing::warn!(error = %err, "{after}, the run lock could not be released");
        }
        let value = outcome.unwrap_or_else(|panic| std::panic::resume_unwind(panic))?;
        ended?;
        // A lock whose session ended during the run is released by the backend with a warning
        // (it went with its session); any other failure to release (a lock row left behind
        // keeps other runners waiting) is the caller's to know.
        released?;
        Ok(value)
    }

    /// Whether a verdict on `request` may be remembered and reused (see `up_to_date`): a plain
    /// `up`, on a manager whose survey reads nothing but the state rows.
    fn verdict_from_rows_alone(&self, request: &Request, run: &RunOptions) -> bool {
        request.is_latest_up() && !run.dry_run && self.surveys_rows_alone()
    }

    /// Takes the runner lock, re-reads the state under it, re-plans and applies.
    async fn execute_locked(
        &self,
        request: &Request,
        run: &RunOptions,
        started: Instant,
    ) -> Result<Report> {
        let ran = self
            .locked(run.lock_wait, async {
                let mut states = self.read_states(request.force).await?;
                let mut request = request.clone();
                if request.direction == Direction::Up {
                    // The marks stay until each step's start replaces its own: a run that
                    // ends before then leaves them for the next.
                    request = self.resuming(&states, &request);
                    self.announce_resumed(&request);
                }
                if self.repin_legacy_checksums(&states).await? {
                    // Re-pinning rewrites the stored version text the compare-and-set expects.
                    states = self.read_states(request.force).await?;
                }
                // `steps(n)` counted once, from the state read under the lock.
                let request = plan::resolved(&self.graph, &states, &request);
                let plan = plan::plan(&self.graph, &states, &request)?;
                self.check_sql_templates(&plan.steps)?;
                self.apply(&request, run, plan).await
            })
            .await?;
        finish(ran, started)
    }

    /// Applies `plan`; when another runner moved a tracking row first, re-reads the state and
    /// re-plans, so every step is applied exactly once. A step that refuses stops its table
    /// and the steps tied to it by `after`; the others go on.
    pub(super) async fn apply(
        &self,
        request: &Request,
        run: &RunOptions,
        mut plan: Plan,
    ) -> Result<Ran> {
        let mut applied = Vec::new();
        // How many of `applied` ran before the plan in hand was made: a plan made again
        // counts those as already there.
        let mut before_plan = 0;
        let mut stops = Stops::default();
        for attempt in 1..=MAX_ATTEMPTS {
            let mut raced = None;
            // The last step that ran, while its commit rides on the next step's first
            // statement (`run_step_commit_with_next`): counted once the backend's next answer
            // says it committed.
            let mut uncommitted: Option<AppliedStep> = None;
            // A forced run does not plan again, which a step rolled back with the next would
            // need.
            let commit_with_next = !request.force;
            let total = applied.len() + plan.steps.len();
            for step in &plan.steps {
                if stops.holds_back(&self.graph, step) {
                    continue;
                }
                let node = &self.graph.nodes[step.node];
                let migration = node.migration;
                let action = match (step.direction, migration.reversal()) {
                    (Direction::Up, _) => migration.up(),
                    (Direction::Down, Reversal::Down(f)) => f,
                    (Direction::Down, Reversal::Irreversible) => {
                        return Err(Error::Irreversible {
                            step: Box::new(step.step.clone()),
                        })
                    }
                };
                let version = node.version.to_string();
                let run_step = StepRun {
                    record: StepRecord {
                        module: migration.set().module(),
                        table: self.physical(node.chain),
                        version: &version,
                        name: migration.name(),
                        checksum: migration.checksum(),
                        direction: step.direction,
                        expected: step.expected.as_deref(),
                        new_version: step.new_version.as_deref(),
                        new_checksum: step.new_checksum.as_deref(),
                        resumes: request.resumed_since(node.chain, step.direction, &node.version),
                    },
                    action,
                    transactional: migration.transactional(),
                    table_names: &self.table_names,
                };
                let span = tracing::info_span!(
                    "migrate_step",
                    module = step.step.module,
                    table = step.step.table,
                    version = %step.step.version,
                    name = step.step.name,
                    direction = %step.direction,
                );
                let mut progress = Progress {
                    index: applied.len() + usize::from(uncommitted.is_some()) + 1,
                    total,
                    step: step.step.clone(),
                    direction: step.direction,
                    finished: None,
                };
                if let Some(report) = &run.progress {
                    report(&progress);
                }
                let step_started = Instant::now();
                let outcome = if commit_with_next {
                    self.backend
                        .run_step_commit_with_next(&run_step)
                        .instrument(span.clone())
                        .await
                } else {
                    let ran = self.backend.run_step(&run_step);
                    ran.instrument(span.clone())
                        .await
                        .map(StepAfterPending::Ran)
                };
                let duration_ms = millis(step_started.elapsed());
                let outcome = match outcome {
                    Ok(StepAfterPending::Ran(outcome)) => Ok(outcome),
                    Err(err) => Err(err),
                    Ok(StepAfterPending::PreviousRolledBack) => {
                        let lost = uncommitted
                            .take()
                            .map_or_else(|| step.step.clone(), |lost| lost.step);
                        tracing::info!(parent: &span, duration_ms, outcome = "previous_rolled_back", previous = %lost, "the step before did not commit (another runner moved its table first, or its commit failed), and was rolled back; re-planning");
                        raced = Some(lost.table.clone());
                        break;
                    }
                };
                // Any answer but `PreviousRolledBack` says the step before committed.
                applied.extend(uncommitted.take());
                match outcome {
                    Ok(StepOutcome::Done {
                        started_at,
                        execution_time,
                    }) => {
                        tracing::info!(parent: &span, duration_ms, outcome = "applied", "migration step ended");
                        progress.finished = Some(execution_time);
                        if let Some(report) = &run.progress {
                            report(&progress);
                        }
                        uncommitted = Some(AppliedStep::new(
                            step.step.clone(),
                            step.direction,
                            started_at,
                            execution_time,
                        ));
                    }
                    Ok(StepOutcome::Raced) => {
                        tracing::info!(parent: &span, duration_ms, outcome = "raced", "another runner moved this table first; re-planning");
                        raced = Some(step.step.table.clone());
                        break;
                    }
                    Err(Error::Blocked { reason, fix, .. }) => {
                        tracing::warn!(parent: &span, duration_ms, outcome = "blocked", reason = %reason, fix = %fix, "migration step refused to run; its table stops here");
                        stops.block(
                            node.chain,
                            BlockedStep {
                                step: step.step.clone(),
                                direction: step.direction,
                                reason,
                                fix,
                            },
                        );
                    }
                    Err(err @ Error::LockTimeout { .. }) => {
                        // Not a failed step: the step never started.
                        tracing::warn!(parent: &span, duration_ms, outcome = "lock_timeout", error = %err, "could not take the lock for the step");
                        if applied.is_empty() {
                            return Err(err);
                        }
                        // After steps were applied the error carries what the run did (a bare
                        // `LockTimeout` says nothing ran); its category stays `Locked`.
                        return Err(Error::StepFailed {
                            step: Box::new(step.step.clone()),
                            direction: step.direction,
                            applied,
                            source: Box::new(err),
                        });
                    }
                    Err(source) => {
                        tracing::error!(parent: &span, duration_ms, outcome = "failed", error = &source as &(dyn std::error::Error + 'static), "migration step failed");
                        return Err(Error::StepFailed {
                            step: Box::new(step.step.clone()),
                            direction: step.direction,
                            applied,
                            source: Box::new(source),
                        });
                    }
                }
            }
            if let Some(last) = uncommitted.take() {
                match self.backend.commit_pending().await {
                    Ok(true) => applied.push(last),
                    Ok(false) => {
                        tracing::info!(step = %last.step, "the last step did not commit (another runner moved its table first, or its session lost the record statement); re-planning");
                        raced = Some(last.step.table.clone());
                    }
                    Err(source) => {
                        tracing::error!(step = %last.step, error = &source as &(dyn std::error::Error + 'static), "the last step's commit failed");
                        return Err(Error::StepFailed {
                            step: Box::new(last.step),
                            direction: last.direction,
                            applied,
                            source: Box::new(source),
                        });
                    }
                }
            }
            let Some(table) = raced else {
                return Ok(stops.finish(&self.graph, applied, before_plan, plan));
            };
            if request.force || attempt == MAX_ATTEMPTS {
                return Err(Error::ConcurrentRunners {
                    table,
                    attempts: attempt,
                });
            }
            let mut states = self.read_states(false).await?;
            if run.fresh {
                plan::without_baselines(&mut states);
            }
            plan = plan::plan(&self.graph, &states, request)?;
            self.check_sql_templates(&plan.steps)?;
            before_plan = applied.len();
            // The new plan's held-back steps are counted again.
            stops.held.clear();
        }
        Ok(stops.finish(&self.graph, applied, before_plan, plan))
    }
}

/// The report of a run that found nothing to do.
fn up_to_date(skipped: Vec<Skipped>, started: Instant) -> Report {
    Report {
        status: ReportStatus::UpToDate,
        applied: Vec::new(),
        skipped,
        planned: Vec::new(),
        blocked: Vec::new(),
        total_time: started.elapsed(),
    }
}

/// The report of a run that applied `ran`; a refusal makes it [`Error::Blocked`], carrying the
/// report.
pub(super) fn finish(ran: Ran, started: Instant) -> Result<Report> {
    let status = if !ran.blocked.is_empty() {
        ReportStatus::Blocked
    } else if ran.applied.is_empty() {
        ReportStatus::UpToDate
    } else {
        ReportStatus::Success
    };
    let report = Report {
        status,
        applied: ran.applied,
        skipped: ran.skipped,
        planned: Vec::new(),
        blocked: ran.blocked,
        total_time: started.elapsed(),
    };
    match report.blocked.first() {
        None => Ok(report),
        Some(first) => Err(Error::Blocked {
            reason: first.reason.clone(),
            fix: first.fix.clone(),
            step: Some(Box::new(first.step.clone())),
            report: Some(Box::new(report)),
        }),
    }
}

/// What [`MigrationManager::apply`] did.
pub(super) struct Ran {
    pub(super) applied: Vec<AppliedStep>,
    pub(super) skipped: Vec<Skipped>,
    pub(super) blocked: Vec<BlockedStep>,
}

/// The tables a refusal stopped, and why.
#[derive(Default)]
struct Stops {
    /// Stopped chains, with the refusal that stopped each (its index in `blocked`).
    chains: Vec<(usize, usize)>,
    blocked: Vec<BlockedStep>,
    /// Steps held back, per stopped chain.
    held: Vec<(usize, usize)>,
}

impl Stops {
    fn block(&mut self, chain: usize, refusal: BlockedStep) {
        self.chains.push((chain, self.blocked.len()));
        self.blocked.push(refusal);
    }

    fn stopped_by(&self, chain: usize) -> Option<usize> {
        self.chains
            .iter()
            .find(|(c, _)| *c == chain)
            .map(|(_, b)| *b)
    }

    /// Whether `step` waits behind a refusal: its table stopped, or (going up) it runs after
    /// a step of a stopped table, or (going down) a step of a stopped table runs after it.
    /// A step held back stops its own table too.
    fn holds_back(&mut self, graph: &Graph, step: &PlannedStep) -> bool {
        if self.chains.is_empty() {
            return false;
        }
        let node = &graph.nodes[step.node];
        let by = self
            .stopped_by(node.chain)
            .or_else(|| match step.direction {
                Direction::Up => node
                    .after
                    .iter()
                    .find_map(|&n| self.stopped_by(graph.nodes[n].chain)),
                Direction::Down => graph.nodes.iter().find_map(|other| {
                    other
                        .after
                        .contains(&step.node)
                        .then(|| self.stopped_by(other.chain))
                        .flatten()
                }),
            });
        let Some(by) = by else {
            return false;
        };
        if self.stopped_by(node.chain).is_none() {
            self.chains.push((node.chain, by));
        }
        // The refused step itself, planned again after a re-plan, is in `blocked`, not held.
        if self.blocked.iter().any(|b| b.step == step.step) {
            return true;
        }
        match self.held.iter_mut().find(|(c, _)| *c == node.chain) {
            Some((_, count)) => *count += 1,
            None => self.held.push((node.chain, 1)),
        }
        true
    }

    /// What the run did; `plan` was made after the first `before_plan` steps of `applied`
    /// ran, so its "already there" counts those, which this run applied: taken out.
    fn finish(
        self,
        graph: &Graph,
        applied: Vec<AppliedStep>,
        before_plan: usize,
        plan: Plan,
    ) -> Ran {
        let mut skipped = plan.skipped;
        for done in &applied[..before_plan.min(applied.len())] {
            let there = skipped.iter_mut().find(|s| {
                s.reason == SkipReason::AlreadyThere
                    && s.module == done.step.module
                    && s.table == done.step.table
            });
            if let Some(there) = there {
                there.steps = there.steps.saturating_sub(1);
            }
        }
        skipped.retain(|s| s.steps > 0 || s.reason != SkipReason::AlreadyThere);
        for &(chain, steps) in &self.held {
            let Some(by) = self.stopped_by(chain) else {
                continue;
            };
            let table = &graph.chains[chain];
            skipped.push(Skipped {
                module: table.module.to_string(),
                table: table.table.to_string(),
                steps,
                reason: SkipReason::Blocked {
                    by: self.blocked[by].step.clone(),
                },
            });
        }
        Ran {
            applied,
            skipped,
            blocked: self.blocked,
        }
    }
}

/// A duration as whole milliseconds, for log fields.
fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
