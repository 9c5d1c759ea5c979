//! Running a request: read the state, plan, take the lock when there is work, re-plan under it,
//! and apply step by step, re-planning when another runner moved a table first.

use super::setup::MigrationManager;
use crate::backend::{StepOutcome, StepRecord, StepRun};
use crate::error::{Error, Result};
use crate::migration::Reversal;
use crate::plan::{self, Plan, PlannedStep, Request, Skipped};
use crate::report::{Report, ReportStatus};
use crate::step::{AppliedStep, Direction};
use crate::template;
use std::time::Instant;

/// How many times a run re-plans after another runner moved a tracking row under it.
const MAX_ATTEMPTS: u32 = 16;

impl MigrationManager {
    /// Runs a validated request: reads the state, plans, and (unless it is a dry run or there
    /// is nothing to do) takes the lock and applies the plan step by step.
    pub(super) async fn execute(&self, request: Request, dry_run: bool) -> Result<Report> {
        let started = Instant::now();
        let states = self.read_states(request.force).await?;
        let plan = match plan::plan(&self.graph, &states, &request) {
            // A dirty mark may belong to a runner that is still working: wait for the lock,
            // and decide on the state read under it.
            Err(Error::Dirty { .. }) if !dry_run => None,
            other => Some(other?),
        };
        let Some(plan) = plan else {
            return self.execute_locked(&request, started).await;
        };
        if dry_run {
            let planned = self.with_sql(plan.steps)?;
            return Ok(Report {
                status: ReportStatus::DryRun,
                applied: Vec::new(),
                skipped: plan.skipped,
                planned,
                total_time: started.elapsed(),
            });
        }
        if plan.steps.is_empty() {
            return Ok(Report {
                status: ReportStatus::UpToDate,
                applied: Vec::new(),
                skipped: plan.skipped,
                planned: Vec::new(),
                total_time: started.elapsed(),
            });
        }
        self.execute_locked(&request, started).await
    }

    /// The planned steps with the SQL of the steps that SQL files declare, rendered for this
    /// database: the offline `--sql` view of a run.
    fn with_sql(&self, mut steps: Vec<PlannedStep>) -> Result<Vec<PlannedStep>> {
        let dialect = self.backend.dialect();
        let schema = self.backend.schema();
        for step in &mut steps {
            let migration = self.graph.nodes[step.node].migration;
            let sql = match step.direction {
                Direction::Up => migration.sql(),
                Direction::Down => migration.down_sql(),
            };
            if let Some(sql) = sql {
                step.sql = Some(template::render(dialect, schema, sql)?.into_owned());
            }
        }
        Ok(steps)
    }

    /// Runs `f` holding the run lock (taken within the lock timeout, the tracking tables
    /// prepared under it) and releases the lock whatever `f` returns: runs and repairs never
    /// interleave.
    pub(super) async fn locked<T>(
        &self,
        f: impl std::future::Future<Output = Result<T>>,
    ) -> Result<T> {
        let lock = self.backend.lock().await?;
        let outcome = async {
            self.backend.prepare().await?;
            f.await
        }
        .await;
        let released = lock.release().await;
        let value = outcome?;
        released?;
        Ok(value)
    }

    /// Takes the runner lock, re-reads the state under it, re-plans and applies.
    async fn execute_locked(&self, request: &Request, started: Instant) -> Result<Report> {
        let (applied, skipped) = self
            .locked(async {
                let mut states = self.read_states(request.force).await?;
                if self.repin_legacy_checksums(&states).await? {
                    // Re-pinning rewrites the stored version text the compare-and-set expects.
                    states = self.read_states(request.force).await?;
                }
                let plan = plan::plan(&self.graph, &states, request)?;
                self.apply(request, plan).await
            })
            .await?;
        Ok(Report {
            status: if applied.is_empty() {
                ReportStatus::UpToDate
            } else {
                ReportStatus::Success
            },
            applied,
            skipped,
            planned: Vec::new(),
            total_time: started.elapsed(),
        })
    }

    /// Applies `plan`; when another runner moved a tracking row first, re-reads the state and
    /// re-plans, so every step is applied exactly once.
    async fn apply(
        &self,
        request: &Request,
        mut plan: Plan,
    ) -> Result<(Vec<AppliedStep>, Vec<Skipped>)> {
        let mut applied = Vec::new();
        for attempt in 1..=MAX_ATTEMPTS {
            let mut raced = None;
            for step in &plan.steps {
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
                let run = StepRun {
                    record: StepRecord {
                        module: migration.set().module(),
                        table: migration.table(),
                        version: &version,
                        name: migration.name(),
                        checksum: migration.checksum(),
                        direction: step.direction,
                        expected: step.expected.as_deref(),
                        new_version: step.new_version.as_deref(),
                        new_checksum: step.new_checksum.as_deref(),
                    },
                    action,
                    transactional: migration.transactional(),
                };
                tracing::info!(step = %step.step, direction = %step.direction, "running migration step");
                match self.backend.run_step(&run).await {
                    Ok(StepOutcome::Done {
                        started_at,
                        execution_time,
                    }) => applied.push(AppliedStep::new(
                        step.step.clone(),
                        step.direction,
                        started_at,
                        execution_time,
                    )),
                    Ok(StepOutcome::Raced) => {
                        tracing::info!(step = %step.step, "another runner moved this table first; re-planning");
                        raced = Some(step.step.table.clone());
                        break;
                    }
                    Err(err @ Error::LockTimeout { .. }) => {
                        // Not a failed step: the step never started. What ran before is in the
                        // history and the log.
                        tracing::warn!(step = %step.step, applied = applied.len(), "could not take the lock for the next step");
                        return Err(err);
                    }
                    Err(source) => {
                        tracing::error!(step = %step.step, error = %source, "migration step failed");
                        return Err(Error::StepFailed {
                            step: Box::new(step.step.clone()),
                            direction: step.direction,
                            applied,
                            source: Box::new(source),
                        });
                    }
                }
            }
            let Some(table) = raced else {
                return Ok((applied, plan.skipped));
            };
            if request.force || attempt == MAX_ATTEMPTS {
                return Err(Error::ConcurrentRunners {
                    table,
                    attempts: attempt,
                });
            }
            let states = self.read_states(false).await?;
            plan = plan::plan(&self.graph, &states, request)?;
        }
        Ok((applied, plan.skipped))
    }
}
