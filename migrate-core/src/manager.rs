//! [`MigrationManager`]: the seeds' API (Agno's `up`/`down`/`force`, pgdbm's reports and
//! listings) over a linked migration graph and one [`Executor`].

use crate::executor::{Direction, Executor, StateRow, StepOutcome, StepRecord, StepRun};
use crate::graph::Graph;
use crate::migration::{MigrationSet, Reversal};
use crate::plan::{self, ChainState, Plan, Request};
use crate::report::{AppliedStep, Report, ReportStatus};
use crate::status::{HistoryEntry, MigrationInfo, TableStatus};
use crate::{Error, Result};
use semver::Version;
use std::collections::HashMap;
use std::time::Instant;

pub use crate::request::{DownRequest, UpRequest};

/// How many times a run re-plans after another runner moved a tracking row under it.
const MAX_ATTEMPTS: u32 = 16;

/// How an operator resolves a dirty mark after checking the schema by hand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    /// The unfinished step's change is fully in place: record it as done.
    Completed,
    /// The unfinished step left nothing behind (or it was undone by hand): record it as not run.
    RolledBack,
}

/// Runs the migrations of the given sets against one database.
///
/// ```no_run
/// # async fn demo(db: impl migrate_core::Executor + 'static, set: &'static migrate_core::MigrationSet) -> migrate_core::Result<()> {
/// use migrate_core::MigrationManager;
/// let manager = MigrationManager::new(db, [set])?.with_baseline("2.0.0")?;
/// let report = manager.up().await?;                       // every table to its latest version
/// manager.up().table("memory").target("2.3.0").await?;    // one table, to a version
/// manager.down().target("2.0.0").await?;                  // every table back to 2.0.0
/// println!("{:?} in {:?}", report.status, report.total_time);
/// # Ok(()) }
/// ```
pub struct MigrationManager {
    executor: Box<dyn Executor>,
    graph: Graph,
    sets: Vec<&'static MigrationSet>,
    baseline: Option<Version>,
    table_baselines: HashMap<String, Version>,
}

impl std::fmt::Debug for MigrationManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MigrationManager")
            .field("dialect", &self.executor.dialect())
            .field("sets", &self.sets)
            .field("migrations", &self.graph.len())
            .field("baseline", &self.baseline)
            .finish_non_exhaustive()
    }
}

/// Parses a caller's version, accepting a leading `v` as Agno's docs write it (`"v2.3.0"`).
pub(crate) fn parse_version(input: &str) -> Result<Version> {
    let trimmed = input.trim();
    let text = trimmed.strip_prefix('v').unwrap_or(trimmed);
    Version::parse(text).map_err(|e| Error::InvalidVersion {
        input: input.to_string(),
        reason: e.to_string(),
    })
}

impl MigrationManager {
    /// Builds a manager over the migrations of `sets`, validating the linked graph (an empty set,
    /// a duplicate module, an `after` cycle are errors here). Touches no database.
    pub fn new<E: Executor + 'static>(
        db: E,
        sets: impl IntoIterator<Item = &'static MigrationSet>,
    ) -> Result<Self> {
        let sets: Vec<_> = sets.into_iter().collect();
        let graph = Graph::build(sets.iter().copied())?;
        Ok(MigrationManager {
            executor: Box::new(db),
            graph,
            sets,
            baseline: None,
            table_baselines: HashMap::new(),
        })
    }

    /// Builds a manager over migrations made at run time (see [`Graph::from_migrations`]).
    pub fn from_migrations<E: Executor + 'static>(
        db: E,
        migrations: impl IntoIterator<Item = &'static crate::Migration>,
    ) -> Result<Self> {
        let graph = Graph::from_migrations(migrations)?;
        let mut sets: Vec<&'static MigrationSet> = Vec::new();
        for node in &graph.nodes {
            if !sets.iter().any(|s| std::ptr::eq(*s, node.migration.set)) {
                sets.push(node.migration.set);
            }
        }
        Ok(MigrationManager {
            executor: Box::new(db),
            graph,
            sets,
            baseline: None,
            table_baselines: HashMap::new(),
        })
    }

    /// The version a table is at when the tracking table has no row for it (Agno: "no stored
    /// version means 2.0.0"). Without a baseline such a table has nothing applied.
    pub fn with_baseline(mut self, version: &str) -> Result<Self> {
        self.baseline = Some(parse_version(version)?);
        Ok(self)
    }

    /// A baseline for one table, overriding [`with_baseline`](Self::with_baseline).
    pub fn with_table_baseline(mut self, table: &str, version: &str) -> Result<Self> {
        self.resolve_tables(&[table.to_string()])?;
        self.table_baselines
            .insert(table.to_string(), parse_version(version)?);
        Ok(self)
    }

    /// The validated graph.
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// The executor this manager runs on.
    pub fn executor(&self) -> &dyn Executor {
        self.executor.as_ref()
    }

    /// Starts an `up` request: every table to its latest version unless narrowed with
    /// [`target`](UpRequest::target) and [`table`](UpRequest::table). Await it to run it.
    pub fn up(&self) -> UpRequest<'_> {
        UpRequest::new(self)
    }

    /// Starts a `down` request. It needs [`target`](DownRequest::target) (or
    /// [`to_base`](DownRequest::to_base)); awaiting it without one is
    /// [`Error::MissingDownTarget`].
    pub fn down(&self) -> DownRequest<'_> {
        DownRequest::new(self)
    }

    /// The current version of `table`: the stored one, else the baseline, else `None`.
    pub async fn current_version(&self, table: &str) -> Result<Option<Version>> {
        let chains = self.resolve_tables(&[table.to_string()])?;
        let states = self.read_states(false).await?;
        Ok(chains.first().and_then(|&c| states[c].current().cloned()))
    }

    /// The newest version any linked migration declares.
    pub fn latest_version(&self) -> Option<Version> {
        self.graph.nodes.iter().map(|n| &n.version).max().cloned()
    }

    /// The newest version declared for `table`.
    pub fn latest_version_of(&self, table: &str) -> Result<Version> {
        let chains = self.resolve_tables(&[table.to_string()])?;
        chains
            .iter()
            .filter_map(|&c| self.graph.chains[c].head(&self.graph))
            .max()
            .cloned()
            .ok_or_else(|| self.unknown_table(table))
    }

    /// Every version any linked migration declares, ascending, without repeats.
    pub fn available_versions(&self) -> Vec<Version> {
        let mut versions: Vec<Version> =
            self.graph.nodes.iter().map(|n| n.version.clone()).collect();
        versions.sort();
        versions.dedup();
        versions
    }

    /// The steps `up` would apply, in order.
    pub async fn pending(&self) -> Result<Vec<MigrationInfo>> {
        let states = self.read_states(false).await?;
        Ok(self.infos(|n| !self.is_applied(&states, n)))
    }

    /// The steps that are applied (at or below each table's current version), in order.
    pub async fn applied(&self) -> Result<Vec<MigrationInfo>> {
        let states = self.read_states(false).await?;
        Ok(self.infos(|n| self.is_applied(&states, n)))
    }

    /// The newest `limit` history rows of this manager's modules, newest first.
    pub async fn history(&self, limit: usize) -> Result<Vec<HistoryEntry>> {
        let modules = self.modules();
        self.executor.history(&modules, Some(limit)).await
    }

    /// Where every table stands.
    pub async fn status(&self) -> Result<Vec<TableStatus>> {
        let states = self.read_states(false).await?;
        Ok(self
            .graph
            .chains
            .iter()
            .enumerate()
            .map(|(c, chain)| {
                let state = &states[c];
                let applied = chain.applied_len(&self.graph, state.current());
                TableStatus {
                    module: chain.module.to_string(),
                    table: chain.table.to_string(),
                    current: state.current().cloned(),
                    recorded: state.stored.is_some(),
                    latest: chain
                        .head(&self.graph)
                        .cloned()
                        .unwrap_or_else(|| Version::new(0, 0, 0)),
                    pending: chain.nodes.len() - applied,
                    dirty: state.dirty.clone(),
                }
            })
            .collect())
    }

    /// Clears the dirty mark of `table` after an operator checked the schema by hand.
    pub async fn resolve_dirty(&self, table: &str, resolution: Resolution) -> Result<()> {
        let chains = self.resolve_tables(&[table.to_string()])?;
        let states = self.read_states(true).await?;
        for c in chains {
            let Some(mark) = &states[c].dirty else {
                continue;
            };
            let chain = &self.graph.chains[c];
            let version = parse_version(&mark.version)?;
            let pos = chain.position(&self.graph, &version).ok_or_else(|| {
                Error::UnknownAppliedVersion {
                    module: chain.module.to_string(),
                    table: chain.table.to_string(),
                    version: mark.version.clone(),
                }
            })?;
            let done = matches!(
                (mark.direction, resolution),
                (Direction::Up, Resolution::Completed) | (Direction::Down, Resolution::RolledBack)
            );
            let keep = if done { Some(pos) } else { pos.checked_sub(1) };
            let version = keep.map(|p| self.graph.nodes[chain.nodes[p]].version.to_string());
            let checksum = keep.map(|p| chain.cumulative[p].as_str());
            tracing::info!(
                module = chain.module,
                table = chain.table,
                ?resolution,
                "resolving dirty mark"
            );
            self.executor
                .set_state(chain.module, chain.table, version.as_deref(), checksum)
                .await?;
        }
        Ok(())
    }

    /// Accepts the current binary's checksums for the applied steps of `table`: the explicit
    /// re-pin after an intentional edit of an applied migration.
    pub async fn accept_checksums(&self, table: &str) -> Result<()> {
        let chains = self.resolve_tables(&[table.to_string()])?;
        let states = self.read_states(true).await?;
        for c in chains {
            let chain = &self.graph.chains[c];
            let applied = chain.applied_len(&self.graph, states[c].stored.as_ref());
            for &n in &chain.nodes[..applied] {
                let node = &self.graph.nodes[n];
                self.executor
                    .set_step_checksum(
                        chain.module,
                        chain.table,
                        &node.version.to_string(),
                        node.migration.checksum,
                    )
                    .await?;
            }
            if let Some(last) = applied.checked_sub(1) {
                let version = self.graph.nodes[chain.nodes[last]].version.to_string();
                self.executor
                    .set_state(
                        chain.module,
                        chain.table,
                        Some(&version),
                        Some(&chain.cumulative[last]),
                    )
                    .await?;
            }
        }
        Ok(())
    }

    fn modules(&self) -> Vec<&'static str> {
        self.sets.iter().map(|s| s.module()).collect()
    }

    fn unknown_table(&self, table: &str) -> Error {
        let mut known: Vec<String> = self
            .graph
            .chains
            .iter()
            .map(|c| c.table.to_string())
            .collect();
        known.dedup();
        Error::UnknownTable {
            table: table.to_string(),
            known,
        }
    }

    /// Chains named by `tables`: `table` matches that table in every module, `module:table`
    /// one module's.
    pub(crate) fn resolve_tables(&self, tables: &[String]) -> Result<Vec<usize>> {
        let mut chains = Vec::new();
        for name in tables {
            let (module, table) = match name.split_once(':') {
                Some((m, t)) => (Some(m), t),
                None => (None, name.as_str()),
            };
            let matched: Vec<usize> = (0..self.graph.chains.len())
                .filter(|&c| {
                    let chain = &self.graph.chains[c];
                    chain.table == table && module.is_none_or(|m| m == chain.module)
                })
                .collect();
            if matched.is_empty() {
                return Err(self.unknown_table(name));
            }
            for c in matched {
                if !chains.contains(&c) {
                    chains.push(c);
                }
            }
        }
        Ok(chains)
    }

    fn baseline_of(&self, table: &str) -> Option<Version> {
        self.table_baselines
            .get(table)
            .or(self.baseline.as_ref())
            .cloned()
    }

    fn is_applied(&self, states: &[ChainState], node: usize) -> bool {
        let node = &self.graph.nodes[node];
        states[node.chain]
            .current()
            .is_some_and(|cur| node.version <= *cur)
    }

    fn infos(&self, keep: impl Fn(usize) -> bool) -> Vec<MigrationInfo> {
        self.graph
            .order
            .iter()
            .copied()
            .filter(|&n| keep(n))
            .map(|n| {
                let node = &self.graph.nodes[n];
                let m = node.migration;
                MigrationInfo {
                    step: node.key(),
                    parent: m.parent.and_then(|p| Version::parse(p).ok()),
                    transactional: m.transaction,
                    reversible: matches!(m.reversal, Reversal::Down(_)),
                    checksum: m.checksum.to_string(),
                    location: m.location(),
                }
            })
            .collect()
    }

    /// Reads the state table (one query) and checks it against the graph: a version this binary
    /// does not know is an error, and so is checksum drift unless `force` (the recovery path).
    pub(crate) async fn read_states(&self, force: bool) -> Result<Vec<ChainState>> {
        let rows = self.executor.read_state().await?;
        let mut states: Vec<ChainState> = self
            .graph
            .chains
            .iter()
            .map(|c| ChainState {
                baseline: self.baseline_of(c.table),
                ..ChainState::default()
            })
            .collect();
        let mut suspects = Vec::new();
        for row in rows {
            if !self.sets.iter().any(|s| s.module() == row.module) {
                continue;
            }
            let chain = self.graph.chain_index(&row.module, &row.table);
            let Some(c) = chain else {
                if let Some(version) = row.version {
                    return Err(ahead(&row.module, &row.table, version));
                }
                continue;
            };
            let state = &mut states[c];
            state.dirty = row.dirty.clone();
            let Some(text) = row.version.clone() else {
                continue;
            };
            let chain = &self.graph.chains[c];
            let pos = Version::parse(&text)
                .ok()
                .and_then(|v| chain.position(&self.graph, &v))
                .ok_or_else(|| ahead(&row.module, &row.table, text.clone()))?;
            state.stored = Some(self.graph.nodes[chain.nodes[pos]].version.clone());
            state.raw = Some(text);
            if row.checksum.as_deref() != Some(chain.cumulative[pos].as_str()) {
                suspects.push((c, row));
            }
        }
        if !suspects.is_empty() && !force {
            self.find_drift(&suspects).await?;
        }
        Ok(states)
    }

    /// The slow path, taken only when a chain checksum differs: finds the edited step in the
    /// history and reports both checksums.
    async fn find_drift(&self, suspects: &[(usize, StateRow)]) -> Result<()> {
        let modules = self.modules();
        let history = self.executor.history(&modules, None).await?;
        for (c, row) in suspects {
            let chain = &self.graph.chains[*c];
            let stored = row.version.as_deref().and_then(|v| Version::parse(v).ok());
            let applied = chain.applied_len(&self.graph, stored.as_ref());
            for &n in &chain.nodes[..applied] {
                let node = &self.graph.nodes[n];
                let version = node.version.to_string();
                // History is newest first: the latest successful up of this step is what ran.
                let recorded = history.iter().find(|h| {
                    h.module == chain.module
                        && h.table == chain.table
                        && h.version == version
                        && h.direction == Direction::Up
                        && h.outcome == crate::executor::Outcome::Succeeded
                });
                if let Some(h) = recorded {
                    if h.checksum != node.migration.checksum {
                        return Err(Error::ChecksumMismatch {
                            step: node.key().to_string(),
                            applied: h.checksum.clone(),
                            current: node.migration.checksum.to_string(),
                        });
                    }
                }
            }
            tracing::debug!(
                module = chain.module,
                table = chain.table,
                "chain checksum differs, but no applied step drifted (steps below the baseline)"
            );
        }
        Ok(())
    }

    /// Runs a validated request: reads the state, plans, and (unless it is a dry run or there
    /// is nothing to do) takes the lock and applies the plan step by step.
    pub(crate) async fn execute(&self, request: Request, dry_run: bool) -> Result<Report> {
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
            return Ok(Report {
                status: ReportStatus::DryRun,
                applied: Vec::new(),
                skipped: plan.skipped,
                planned: plan.steps,
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

    /// Takes the runner lock, re-reads the state under it, re-plans and applies.
    async fn execute_locked(&self, request: &Request, started: Instant) -> Result<Report> {
        let lock = self.executor.lock().await?;
        let outcome = async {
            self.executor.prepare().await?;
            let states = self.read_states(request.force).await?;
            let plan = plan::plan(&self.graph, &states, request)?;
            self.apply(request, plan).await
        }
        .await;
        let released = lock.release().await;
        let (applied, skipped) = outcome?;
        released?;
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
    ) -> Result<(Vec<AppliedStep>, Vec<crate::plan::Skipped>)> {
        let mut applied = Vec::new();
        for attempt in 1..=MAX_ATTEMPTS {
            let mut raced = None;
            for step in &plan.steps {
                let node = &self.graph.nodes[step.node];
                let migration = node.migration;
                let action = match (step.direction, migration.reversal) {
                    (Direction::Up, _) => migration.up,
                    (Direction::Down, Reversal::Down(f)) => f,
                    (Direction::Down, Reversal::Irreversible) => {
                        return Err(Error::Irreversible {
                            step: step.step.to_string(),
                        })
                    }
                };
                let version = node.version.to_string();
                let run = StepRun {
                    record: StepRecord {
                        module: migration.set.module(),
                        table: migration.table,
                        version: &version,
                        name: migration.name,
                        checksum: migration.checksum,
                        direction: step.direction,
                        expected: step.expected.as_deref(),
                        new_version: step.new_version.as_deref(),
                        new_checksum: step.new_checksum.as_deref(),
                    },
                    action,
                    transactional: migration.transaction,
                };
                tracing::info!(step = %step.step, direction = %step.direction, "running migration step");
                match self.executor.run_step(&run).await {
                    Ok(StepOutcome::Done {
                        started_at,
                        execution_time,
                    }) => applied.push(AppliedStep {
                        step: step.step.clone(),
                        direction: step.direction,
                        started_at,
                        execution_time,
                    }),
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
                            step: step.step.to_string(),
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

fn ahead(module: &str, table: &str, version: String) -> Error {
    Error::UnknownAppliedVersion {
        module: module.to_string(),
        table: table.to_string(),
        version,
    }
}
