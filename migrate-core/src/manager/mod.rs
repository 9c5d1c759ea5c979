//! [`MigrationManager`]: the seeds' API (Agno's `up`/`down`/`force`, pgdbm's reports and
//! listings) over a linked migration graph and one [`Executor`].

use crate::executor::{Direction, Executor};
use crate::graph::Graph;
use crate::migration::{MigrationSet, Reversal};
use crate::plan::ChainState;
use crate::status::{HistoryEntry, MigrationInfo, TableStatus};
use crate::{Error, Result};
use semver::Version;
use std::collections::HashMap;

mod run;
mod state;

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
            let checksum = keep.map(|p| crate::checksum::render(chain.cumulative[p]));
            tracing::info!(
                module = chain.module,
                table = chain.table,
                ?resolution,
                "resolving dirty mark"
            );
            self.executor
                .set_state(
                    chain.module,
                    chain.table,
                    version.as_deref(),
                    checksum.as_deref(),
                )
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
                        Some(&crate::checksum::render(chain.cumulative[last])),
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
}
