//! Fresh installs: a table created directly at a version by its `fresh` function (or
//! `<stem>.fresh.sql`), stamped there, then brought to its head like any other.

use super::request::RunOptions;
use super::run::finish;
use super::setup::MigrationManager;
use crate::backend::{StepOutcome, StepRecord, StepRun};
use crate::checksum;
use crate::error::{Error, Result};
use crate::plan::{self, ChainState, Request};
use crate::report::Report;
use crate::step::{AppliedStep, Direction};
use std::time::Instant;

impl MigrationManager {
    /// Installs the tables of an empty database the short way. Every table with nothing
    /// recorded (no tracking row, nothing adopted) whose chain has a `fresh` function is
    /// created by the highest such function and stamped at that migration's version, in the
    /// graph's order; then every table goes up to its head as [`up`](Self::up) would, the
    /// tables with nothing recorded starting from nothing (the baseline is for databases that
    /// already hold the tables). Tables already recorded just go up.
    ///
    /// The history records a fresh step under the `fresh` function's name. A table's fresh
    /// function must build exactly what its steps build: `round_trip_tests!` compares the two
    /// on every backend. Takes the run lock.
    ///
    /// ```no_run
    /// # async fn demo(manager: migrate_core::manager::MigrationManager) -> migrate_core::error::Result<()> {
    /// let report = manager.install_fresh().await?;
    /// println!("{} steps, fresh ones included", report.applied.len());
    /// # Ok(()) }
    /// ```
    pub async fn install_fresh(&self) -> Result<Report> {
        let started = Instant::now();
        // Checked before the lock as well as under it: taking the lock creates the tracking
        // tables, which an install refused for bad input must not leave behind. A refusal
        // before the lock stands only on a database no runner has touched (no tracking table:
        // a runner makes it under the lock before anything else); otherwise another runner may
        // be part-way (its dirty mark, a table it made and has not recorded yet), and the
        // check under the lock decides, after it.
        let unlocked = async {
            let states = self.read_states(false).await?;
            let fresh = self.fresh_steps(&states)?;
            self.check_installable(&states, &fresh).await
        };
        if let Err(refused) = unlocked.await {
            let tracking = self
                .backend
                .table_exists(self.backend.tracking_table())
                .await;
            if matches!(tracking, Ok(false)) {
                return Err(refused);
            }
        }
        let ran = self
            .locked(None, async {
                let states = self.read_states(false).await?;
                let fresh = self.fresh_steps(&states)?;
                self.check_installable(&states, &fresh).await?;
                let mut installed = Vec::new();
                for (c, pos) in fresh {
                    match self.run_fresh(c, pos).await {
                        Ok(step) => installed.push(step),
                        Err(err) => return Err(with_applied_first(installed, err)),
                    }
                }
                let mut states = self.read_states(false).await?;
                plan::without_baselines(&mut states);
                let request = Request::latest_up();
                let plan = plan::plan(&self.graph, &states, &request)?;
                let run = RunOptions {
                    fresh: true,
                    ..RunOptions::default()
                };
                let applied = self.apply(&request, &run, plan).await;
                let mut ran = match applied {
                    Ok(ran) => ran,
                    Err(err) => return Err(with_applied_first(installed, err)),
                };
                // A table installed fresh was not "already there": this run made it.
                ran.skipped.retain(|s| {
                    s.reason != crate::report::SkipReason::AlreadyThere
                        || !installed
                            .iter()
                            .any(|i| i.step.module == s.module && i.step.table == s.table)
                });
                installed.append(&mut ran.applied);
                ran.applied = installed;
                Ok(ran)
            })
            .await?;
        finish(ran, started)
    }

    /// The fresh installs of `fresh` (in the graph's order) whose steps' `after` dependencies on
    /// other tables are in place when they run: recorded (or adopted) already, or installed
    /// fresh before them. A fresh install stands for every step of its table up to its
    /// version, and runs before any step; one whose dependency is not in place (a table with no
    /// fresh function, or one installed later) is left out, and its table goes up step by step
    /// in the graph's order instead.
    fn ready_to_install(
        &self,
        fresh: Vec<(usize, usize)>,
        states: &[crate::plan::ChainState],
    ) -> Vec<(usize, usize)> {
        let mut installed: Vec<(usize, usize)> = Vec::new();
        for (c, pos) in fresh {
            let in_place = |dep: usize| {
                let node = &self.graph.nodes[dep];
                let state = &states[node.chain];
                let recorded = state.stored.as_ref().or(if state.adopted {
                    state.baseline.as_ref()
                } else {
                    None
                });
                node.chain == c
                    || recorded.is_some_and(|v| node.version <= *v)
                    || installed.iter().any(|&(d, p)| {
                        d == node.chain && self.graph.chains[d].nodes[..=p].contains(&dep)
                    })
            };
            let blocked = self.graph.chains[c].nodes[..=pos]
                .iter()
                .flat_map(|&n| &self.graph.nodes[n].after)
                .find(|&&dep| !in_place(dep));
            match blocked {
                None => installed.push((c, pos)),
                Some(&dep) => tracing::info!(
                    table = self.graph.chains[c].table,
                    after = %self.graph.nodes[dep].key(),
                    "not installed fresh: a step it stands for runs after a step of another \
                     table, which is not there yet; it goes up step by step"
                ),
            }
        }
        installed
    }

    /// Creates chain `c`'s table with the `fresh` function of its step at `pos`, and records it
    /// at that version.
    async fn run_fresh(&self, c: usize, pos: usize) -> Result<AppliedStep> {
        let chain = &self.graph.chains[c];
        let node = &self.graph.nodes[chain.nodes[pos]];
        let migration = node.migration;
        let (Some(action), Some(name)) = (migration.fresh(), migration.fresh_name()) else {
            return Err(Error::msg(format!("{} has no fresh function", node.key())));
        };
        let version = node.version.to_string();
        let chain_checksum = checksum::render(chain.cumulative[pos]);
        let run = StepRun {
            record: StepRecord {
                module: chain.module,
                table: self.physical(c),
                version: &version,
                name,
                checksum: migration.checksum(),
                direction: Direction::Up,
                expected: None,
                new_version: Some(&version),
                new_checksum: Some(&chain_checksum),
                resumes: None,
            },
            action,
            transactional: migration.transactional(),
            table_names: &self.table_names,
        };
        tracing::info!(module = chain.module, table = chain.table, %version, fresh = name, "installing the table fresh");
        let mut key = node.key();
        match self.backend.run_step(&run).await {
            Ok(StepOutcome::Done {
                started_at,
                execution_time,
            }) => {
                key.name = name.to_string();
                Ok(AppliedStep::new(
                    key,
                    Direction::Up,
                    started_at,
                    execution_time,
                ))
            }
            Ok(StepOutcome::Raced) => Err(Error::ConcurrentRunners {
                table: chain.table.to_string(),
                attempts: 1,
            }),
            Err(source) => Err(Error::StepFailed {
                step: Box::new(key),
                direction: Direction::Up,
                applied: Vec::new(),
                source: Box::new(source),
            }),
        }
    }
}

/// `err`, with `before` (the tables installed fresh) first among what a failed step's run
/// applied; any other error as it is.
fn with_applied_first(mut before: Vec<AppliedStep>, err: Error) -> Error {
    match err {
        Error::StepFailed {
            step,
            direction,
            mut applied,
            source,
        } => {
            before.append(&mut applied);
            Error::StepFailed {
                step,
                direction,
                applied: before,
                source,
            }
        }
        other => other,
    }
}

impl MigrationManager {
    /// The step each table with nothing recorded is installed at (its highest with a `fresh`
    /// function), in rank order, of those ready to install; a dirty table is refused.
    fn fresh_steps(&self, states: &[ChainState]) -> Result<Vec<(usize, usize)>> {
        let mut fresh: Vec<(usize, usize)> = Vec::new();
        for (c, state) in states.iter().enumerate() {
            let chain = &self.graph.chains[c];
            if let Some(mark) = &state.dirty {
                return Err(Error::dirty(chain.module, chain.table, mark));
            }
            if state.stored.is_some() || state.adopted {
                continue;
            }
            let highest = chain
                .nodes
                .iter()
                .rposition(|&n| self.graph.nodes[n].migration.fresh().is_some());
            if let Some(pos) = highest {
                fresh.push((c, pos));
            }
        }
        fresh.sort_by_key(|&(c, pos)| self.graph.nodes[self.graph.chains[c].nodes[pos]].rank);
        Ok(self.ready_to_install(fresh, states))
    }

    /// Refuses an install that could not finish: a SQL step that does not render, or a table a
    /// fresh function would create that exists with nothing recorded.
    async fn check_installable(
        &self,
        states: &[ChainState],
        fresh: &[(usize, usize)],
    ) -> Result<()> {
        // Every SQL step the install may run renders before anything is created (the steps its
        // fresh functions stand for included: checking more is harmless).
        let mut from_nothing = states.to_vec();
        plan::without_baselines(&mut from_nothing);
        if let Ok(planned) = plan::plan(&self.graph, &from_nothing, &Request::latest_up()) {
            self.check_sql_templates(&planned.steps)?;
        }
        // A fresh function creates its table: one that is already there, with nothing
        // recorded, is refused before anything is created.
        for &(c, _) in fresh {
            let physical = self.physical(c);
            if self.backend.table_exists(physical).await? {
                return Err(Error::Config(format!(
                    "install_fresh: table `{physical}` exists but nothing is recorded for \
                     `{}`; install_fresh is for a new database (an existing one goes up from a \
                     baseline, see with_baseline_for_existing_tables)",
                    self.graph.chains[c].table
                )));
            }
        }
        Ok(())
    }
}
