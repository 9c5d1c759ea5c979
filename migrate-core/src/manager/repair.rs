//! Operator repairs: settling a dirty mark, and re-pinning the checksums of an edited step.

use super::setup::{parse_version, MigrationManager};
use crate::backend::StepRecord;
use crate::checksum;
use crate::error::{Error, Result};
use crate::plan::{ChainState, Request, Resumed, Target};
use crate::step::{Direction, DirtyMark, Outcome};

/// How an operator resolves a dirty mark after checking the schema by hand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    /// The unfinished step's change is fully in place: record it as done.
    Completed,
    /// The unfinished step left nothing behind (or it was undone by hand): record it as not run.
    RolledBack,
}

impl MigrationManager {
    /// Clears the dirty mark of `table` after an operator checked the schema by hand. Takes
    /// the run lock.
    ///
    /// A table name two modules share must name its module (`module:table`), else
    /// [`Error::Config`] names both, as for [`stamp`](Self::stamp).
    pub async fn resolve_dirty(&self, table: &str, resolution: Resolution) -> Result<()> {
        let chains = vec![self.resolve_one_table(table)?];
        // Nothing recorded at all: no mark to settle.
        if self.nothing_recorded().await? {
            return Ok(());
        }
        self.locked(None, self.resolve_dirty_locked(chains, resolution))
            .await
    }

    /// Whether the database has no tracking rows at all (none yet, or no tracking tables) and
    /// nothing a run would refuse, read before the lock. Without a row no table has a mark or
    /// a recorded version (a baseline or an adopted version records nothing), so a repair has
    /// nothing to do; taking the lock would create the tracking tables, so it ends here and
    /// changes nothing. Anything else is decided under the lock (and waits for it).
    async fn nothing_recorded(&self) -> Result<bool> {
        let rows = self.backend.read_state().await?;
        if !rows.is_empty() {
            return Ok(false);
        }
        let survey = self.survey_rows(&rows).await?;
        Ok(self.refusal(&survey).is_none())
    }

    async fn resolve_dirty_locked(&self, chains: Vec<usize>, resolution: Resolution) -> Result<()> {
        let states = self.read_states(true).await?;
        // Every mark is checked before any is cleared: a refused repair changes nothing.
        let mut writes = Vec::new();
        for c in chains {
            let Some(mark) = &states[c].dirty else {
                continue;
            };
            let chain = &self.graph.chains[c];
            let pos = semver::Version::parse(&mark.version)
                .ok()
                .and_then(|version| chain.position(&self.graph, &version))
                .ok_or_else(|| Error::unknown_applied(chain.module, chain.table, &mark.version))?;
            let done = matches!(
                (mark.direction, resolution),
                (Direction::Up, Resolution::Completed) | (Direction::Down, Resolution::RolledBack)
            );
            // A resumable step cut off is pending work, not a mark to settle: recorded as
            // done, the rest of its job would never run (its checkpoint says how far it got).
            if done && self.resumes_up(c, mark) {
                return Err(Error::Config(format!(
                    "`{}` step {} is a resumable step that was cut off: the next `up` resumes it \
                     from its checkpoint; recording it as completed would skip the rest of its \
                     job (run `up` instead)",
                    chain.table, mark.version
                )));
            }
            // A fresh install's mark (its function's name, under the step it installs at) was
            // made on a table with nothing recorded: rolled back, it records nothing again, not
            // the step below (whose table would then be taken as built).
            let keep = if done {
                Some(pos)
            } else if self.is_fresh_mark(c, pos, mark) {
                None
            } else {
                pos.checked_sub(1)
            };
            let version = keep.map(|p| self.graph.nodes[chain.nodes[p]].version.to_string());
            let checksum = keep.map(|p| checksum::render(chain.cumulative[p]));
            writes.push((c, version, checksum));
        }
        for (c, version, checksum) in writes {
            let chain = &self.graph.chains[c];
            tracing::info!(
                module = chain.module,
                table = chain.table,
                ?resolution,
                "resolving dirty mark"
            );
            self.backend
                .set_state(
                    chain.module,
                    self.physical(c),
                    version.as_deref(),
                    checksum.as_deref(),
                )
                .await?;
        }
        Ok(())
    }

    /// Accepts the current binary's checksums for the applied steps of `table`: the explicit
    /// re-pin after an intentional edit of an applied migration. Takes the run lock.
    ///
    /// A table name two modules share must name its module (`module:table`), else
    /// [`Error::Config`] names both: re-pinning both would accept an edit nobody reviewed.
    pub async fn accept_checksums(&self, table: &str) -> Result<()> {
        let chains = vec![self.resolve_one_table(table)?];
        // Nothing recorded at all: no checksum to re-pin.
        if self.nothing_recorded().await? {
            return Ok(());
        }
        self.locked(None, self.repin(chains, true)).await
    }

    /// Whether `mark`, on chain `c`, is a `resumable` step cut off on its way up: one the next
    /// `up` clears and runs again. A fresh install cut off is not: its half-built table is not
    /// the step's to resume.
    pub(super) fn resumes_up(&self, c: usize, mark: &DirtyMark) -> bool {
        let chain = &self.graph.chains[c];
        mark.direction == Direction::Up
            && semver::Version::parse(&mark.version)
                .ok()
                .and_then(|v| chain.position(&self.graph, &v))
                .is_some_and(|p| {
                    let migration = self.graph.nodes[chain.nodes[p]].migration;
                    // A transactional step is never cut off half-way (and its commit
                    // requires no mark): only a journalled one resumes.
                    migration.resumable()
                        && !migration.transactional()
                        && !self.is_fresh_mark(c, p, mark)
                })
    }

    /// Whether `mark`, at step `pos` of chain `c`, was left by that step's `fresh` function
    /// (`install_fresh`) rather than by the step itself.
    fn is_fresh_mark(&self, c: usize, pos: usize, mark: &DirtyMark) -> bool {
        let migration = self.graph.nodes[self.graph.chains[c].nodes[pos]].migration;
        migration.fresh_name() == Some(mark.name.as_str()) && migration.name() != mark.name
    }

    /// `request` carrying the `resumable` steps cut off that it runs again (by chain): the
    /// plans it makes take their marks away and keep a baseline below them (see
    /// `plan::below_resumed`), and each step's start replaces its mark in the database (see
    /// [`StepRecord::resumes`](crate::backend::StepRecord::resumes)).
    pub(super) fn resuming(&self, states: &[ChainState], request: &Request) -> Request {
        let mut resuming = request.clone();
        for (c, state) in states.iter().enumerate() {
            let Some(mark) = &state.dirty else {
                continue;
            };
            if !self.resumes_up(c, mark) || !runs_step_of(request, c, &mark.version) {
                continue;
            }
            resuming.resumes.extend(Resumed::of(c, mark));
        }
        resuming
    }

    /// Logs the `resumable` steps cut off that `request` runs again.
    pub(super) fn announce_resumed(&self, request: &Request) {
        for resumed in &request.resumes {
            let chain = &self.graph.chains[resumed.chain];
            tracing::info!(
                module = chain.module,
                table = chain.table,
                step = %resumed.step,
                since = %resumed.since,
                "a resumable step was cut off: running it again"
            );
        }
    }

    /// Re-pins the tables whose stored checksums the earlier algorithm wrote (clean ones: a
    /// dirty table waits for `resolve_dirty`). Runs under the lock of a run; returns whether
    /// anything was re-pinned.
    pub(super) async fn repin_legacy_checksums(&self, states: &[ChainState]) -> Result<bool> {
        let legacy: Vec<usize> = (0..states.len())
            .filter(|&c| states[c].legacy && states[c].dirty.is_none())
            .collect();
        if legacy.is_empty() {
            return Ok(false);
        }
        tracing::info!(
            tables = legacy.len(),
            "re-pinning checksums written before SHA-256"
        );
        self.repin(legacy, false).await?;
        Ok(true)
    }

    /// Marks `table` as being at `version` without running anything (Alembic's `stamp`): for a
    /// schema that was brought there by hand. `version` must be in the table's chain. Takes the
    /// run lock, and writes a `stamped` history row. A table name two modules share must be
    /// written `module:table` ([`Error::Config`] otherwise).
    pub async fn stamp(&self, table: &str, version: &str) -> Result<()> {
        let c = self.resolve_one_table(table)?;
        let target = parse_version(version)?;
        let Some(pos) = self.graph.chains[c].position(&self.graph, &target) else {
            return Err(Error::UnknownVersion {
                table: Some(table.to_string()),
                version: target,
            });
        };
        self.locked(None, async {
            let states = self.read_states(true).await?;
            self.move_record(&states, c, Some(pos), Outcome::Stamped)
                .await
        })
        .await
    }

    /// Steps the record of `table` back one version without running the down: the tracking
    /// row forgets the newest applied step, the schema is left as it is. Takes the run lock,
    /// and writes an `unstamped` history row. A table name two modules share must be written
    /// `module:table` ([`Error::Config`] otherwise).
    pub async fn unstamp(&self, table: &str) -> Result<()> {
        let c = self.resolve_one_table(table)?;
        let recorded = |states: &[ChainState]| {
            let stored = states[c].stored.as_ref()?;
            let pos = self.graph.chains[c].position(&self.graph, stored)?;
            Some((c, pos))
        };
        let nothing = || {
            Error::Config(format!(
                "table `{table}` has no recorded version to unstamp"
            ))
        };
        // Refused before the lock, which would create the tracking tables; checked again under it.
        recorded(&self.read_states(true).await?).ok_or_else(nothing)?;
        self.locked(None, async {
            let states = self.read_states(true).await?;
            let (c, pos) = recorded(&states).ok_or_else(nothing)?;
            // As for a down: no version recorded would read as the baseline. Under
            // `with_baseline_for_existing_tables` it does while the table exists, which an
            // unstamp (unlike a down) leaves in place.
            let reads_as_baseline = states[c].unrecorded_reads_as_baseline
                || (self.baseline_if_exists
                    && pos == 0
                    && self.backend.table_exists(self.physical(c)).await?);
            if let (Some(baseline), true) = (&states[c].baseline, reads_as_baseline) {
                if pos == 0 {
                    return Err(Error::Config(format!(
                        "table `{table}` is at its first step: unstamping would leave no \
                         version recorded, which reads as its baseline {baseline}"
                    )));
                }
            }
            self.move_record(&states, c, pos.checked_sub(1), Outcome::Unstamped)
                .await
        })
        .await
    }

    /// Moves the record of chain `c` to its node at `to` (`None`: nothing applied), under the
    /// lock and from `states` read under it, with a history row naming the step it stamps or
    /// unstamps.
    async fn move_record(
        &self,
        states: &[ChainState],
        c: usize,
        to: Option<usize>,
        outcome: Outcome,
    ) -> Result<()> {
        let state = &states[c];
        let chain = &self.graph.chains[c];
        if let Some(mark) = &state.dirty {
            return Err(Error::dirty(chain.module, chain.table, mark));
        }
        // The step the row names: the one stamped, or the one unstamped.
        let (step, direction) = match (outcome, to) {
            (Outcome::Unstamped, _) => {
                let current = state
                    .stored
                    .as_ref()
                    .and_then(|v| chain.position(&self.graph, v));
                (current, Direction::Down)
            }
            (_, to) => (to, Direction::Up),
        };
        let Some(step) = step else {
            return Ok(());
        };
        let node = &self.graph.nodes[chain.nodes[step]];
        let version = node.version.to_string();
        let new_version = to.map(|p| self.graph.nodes[chain.nodes[p]].version.to_string());
        let new_checksum = to.map(|p| checksum::render(chain.cumulative[p]));
        let record = StepRecord {
            module: chain.module,
            table: self.physical(c),
            version: &version,
            name: node.migration.name(),
            checksum: node.migration.checksum(),
            direction,
            expected: state.raw.as_deref(),
            new_version: new_version.as_deref(),
            new_checksum: new_checksum.as_deref(),
            resumes: None,
        };
        tracing::info!(module = chain.module, table = chain.table, %outcome, to = ?new_version, "moving the record without running");
        if self
            .backend
            .record_without_running(&record, outcome)
            .await?
        {
            Ok(())
        } else {
            Err(Error::ConcurrentRunners {
                table: chain.table.to_string(),
                attempts: 1,
            })
        }
    }

    /// Re-pins the checksums of `chains`; with `accept_added`, steps added below applied ones
    /// are accepted as applied by hand too (only `accept_checksums`, an operator's decision,
    /// does that; the re-pin of an old checksum format inside an `up` does not).
    async fn repin(&self, chains: Vec<usize>, accept_added: bool) -> Result<()> {
        let states = self.read_states(true).await?;
        // Re-pinning rewrites the state row, which would clear a dirty mark: settling a step in
        // doubt is resolve_dirty's decision, so a dirty table is refused before any write.
        for &c in &chains {
            if let Some(mark) = &states[c].dirty {
                let chain = &self.graph.chains[c];
                return Err(Error::dirty(chain.module, chain.table, mark));
            }
        }
        // Steps added below applied ones, accepted here as applied by hand: each gets a
        // `stamped` history row, so that the acceptance lasts (the slow path, taken again at
        // the next edit, would find them again).
        let history = if accept_added {
            self.backend.history(&self.modules(), None).await?
        } else {
            Vec::new()
        };
        for c in chains {
            let chain = &self.graph.chains[c];
            let applied = chain.applied_len(&self.graph, states[c].stored.as_ref());
            let pinned = applied
                .checked_sub(1)
                .map(|last| checksum::render(chain.cumulative[last]));
            let added = if accept_added {
                self.inserted_steps(c, applied, &history)
            } else {
                Vec::new()
            };
            for pos in added {
                let node = &self.graph.nodes[chain.nodes[pos]];
                let version = node.version.to_string();
                let stored = states[c].raw.as_deref();
                let name = format!(
                    "{}{}",
                    node.migration.name(),
                    crate::status::ACCEPTED_SUFFIX
                );
                let record = StepRecord {
                    module: chain.module,
                    table: self.physical(c),
                    version: &version,
                    name: &name,
                    checksum: node.migration.checksum(),
                    direction: Direction::Up,
                    expected: stored,
                    new_version: stored,
                    new_checksum: pinned.as_deref(),
                    resumes: None,
                };
                tracing::info!(module = chain.module, table = chain.table, %version, "accepting a step added below applied ones as applied by hand");
                if !self
                    .backend
                    .record_without_running(&record, Outcome::Stamped)
                    .await?
                {
                    return Err(Error::ConcurrentRunners {
                        table: chain.table.to_string(),
                        attempts: 1,
                    });
                }
            }
            for &n in &chain.nodes[..applied] {
                let node = &self.graph.nodes[n];
                self.backend
                    .set_step_checksum(
                        chain.module,
                        self.physical(c),
                        &node.version.to_string(),
                        node.migration.checksum(),
                    )
                    .await?;
            }
            if let Some(last) = applied.checked_sub(1) {
                let version = self.graph.nodes[chain.nodes[last]].version.to_string();
                self.backend
                    .set_state(
                        chain.module,
                        self.physical(c),
                        Some(&version),
                        Some(&checksum::render(chain.cumulative[last])),
                    )
                    .await?;
            }
        }
        Ok(())
    }
}

/// Whether `request` (an up) would run chain `c`'s step at `version`: the chain is selected
/// and the target is not below it. A cut-off step the request leaves keeps its mark, which
/// guards it (a down is refused as dirty) until an up that runs it.
fn runs_step_of(request: &Request, c: usize, version: &str) -> bool {
    let selected = request
        .chains
        .as_ref()
        .is_none_or(|chains| chains.contains(&c));
    let reached = match (&request.target, semver::Version::parse(version)) {
        (Target::Version(target), Ok(version)) => version <= *target,
        (Target::Version(_), Err(_)) => false,
        (Target::Latest | Target::Base | Target::Back(_) | Target::Each(_), _) => true,
    };
    selected && reached
}
