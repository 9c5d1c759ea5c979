//! Read-only views of where the database stands against the linked graph. They never fail on
//! what the tracking rows say (dirty, drifted, or newer than the binary): they show it.

use super::setup::MigrationManager;
use crate::error::{Error, Result};
use crate::migration::Reversal;
use crate::plan::{ChainState, Resumed};
use crate::status::{AdoptionConflict, ChecksumDrift, HistoryEntry, MigrationInfo, TableStatus};
use semver::Version;

impl MigrationManager {
    /// The current version of `table`: the stored one, else the baseline, else `None`.
    ///
    /// A stored version this binary does not know is returned as it is, so that a database
    /// ahead of the binary shows where it stands; one that is not a version at all (a row edited
    /// by hand) is [`Error::UnknownAppliedVersion`]. Dirty marks and checksum drift do not
    /// matter here: [`status`](Self::status) shows them. A table name two modules share is
    /// written `module:table` ([`Error::Config`] otherwise, naming both).
    pub async fn current_version(&self, table: &str) -> Result<Option<Version>> {
        let c = self.resolve_one_table(table)?;
        let survey = self.survey().await?;
        let state = &survey.states[c];
        match (&state.unknown, shown_version(state)) {
            (Some(text), None) => {
                let chain = &self.graph.chains[c];
                Err(Error::unknown_applied(chain.module, chain.table, text))
            }
            (_, shown) => Ok(shown),
        }
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

    /// The steps `up` would apply, in order: those above each table's current version. For a
    /// table whose recorded version this binary does not know, the steps above that version
    /// (none, when the database is ahead).
    pub async fn pending(&self) -> Result<Vec<MigrationInfo>> {
        self.listed(false).await
    }

    /// Every linked migration, in the order `up` runs them. Touches no database.
    pub fn migrations(&self) -> Vec<MigrationInfo> {
        self.infos(|_| true)
    }

    /// The steps that are applied (at or below each table's current version), in order.
    pub async fn applied(&self) -> Result<Vec<MigrationInfo>> {
        self.listed(true).await
    }

    /// The steps that are `applied` (else those that are not), in order; each chain's
    /// [`shown_version`] is found once, not once per migration.
    async fn listed(&self, applied: bool) -> Result<Vec<MigrationInfo>> {
        let states = self.survey().await?.states;
        let shown: Vec<Option<Version>> = states.iter().map(shown_version).collect();
        Ok(self.infos(|n| self.is_applied(&shown, n) == applied))
    }

    /// The newest `limit` history rows of this manager's modules, newest first.
    pub async fn history(&self, limit: usize) -> Result<Vec<HistoryEntry>> {
        let modules = self.modules();
        let mut rows = self.backend.history(&modules, Some(limit)).await?;
        if !self.table_names.is_empty() {
            for row in &mut rows {
                row.table = self.table_names.logical(&row.table).to_string();
            }
        }
        Ok(rows)
    }

    /// Where every table stands, with what would make a run refuse it: dirty marks, checksum
    /// drift (the history is read only when a chain checksum differs), versions this binary does
    /// not know, and tables a newer binary recorded. It fails only when the database cannot be
    /// read.
    pub async fn status(&self) -> Result<Vec<TableStatus>> {
        let survey = self.survey().await?;
        // The slow path, only when a chain checksum differs: the drifted step of each chain.
        let mut drift_of: Vec<Option<ChecksumDrift>> = vec![None; self.graph.chains.len()];
        if !survey.suspects.is_empty() {
            for (c, drift) in self.find_drift(&survey.suspects).await? {
                drift_of[c] = Some(drift);
            }
        }
        let mut rows: Vec<TableStatus> = self
            .graph
            .chains
            .iter()
            .enumerate()
            .map(|(c, chain)| {
                let state = &survey.states[c];
                let resumes = self.resumes(c, state);
                // A step the next `up` resumes never finished, whatever a baseline says.
                let resumed = state
                    .dirty
                    .as_ref()
                    .filter(|_| resumes)
                    .and_then(|mark| Resumed::of(c, mark))
                    .map(|resumed| resumed.state_of(&self.graph, state));
                let current = shown_version(resumed.as_ref().unwrap_or(state));
                let applied = chain.applied_len(&self.graph, current.as_ref());
                TableStatus {
                    module: chain.module.to_string(),
                    table: chain.table.to_string(),
                    current,
                    recorded: state.stored.is_some() || state.unknown.is_some(),
                    latest: chain
                        .head(&self.graph)
                        .cloned()
                        .unwrap_or_else(|| Version::new(0, 0, 0)),
                    pending: chain.nodes.len() - applied,
                    dirty: state.dirty.clone(),
                    unknown_version: state.unknown.clone(),
                    drift: drift_of[c].take(),
                    linked: true,
                    resumes,
                    adoption: self.adoption_conflict(state),
                }
            })
            .collect();
        rows.extend(survey.strangers.into_iter().map(|row| TableStatus {
            current: row.version.as_deref().and_then(|v| Version::parse(v).ok()),
            recorded: true,
            latest: Version::new(0, 0, 0),
            pending: 0,
            dirty: row.dirty,
            unknown_version: row.version,
            drift: None,
            linked: false,
            resumes: false,
            adoption: None,
            module: row.module,
            table: row.table,
        }));
        Ok(rows)
    }

    /// Whether chain `c`'s dirty mark is one the next `up` resumes.
    fn resumes(&self, c: usize, state: &ChainState) -> bool {
        state
            .dirty
            .as_ref()
            .is_some_and(|mark| self.resumes_up(c, mark))
    }

    /// What the adopted version table and the tracking table disagree on, for one chain.
    fn adoption_conflict(&self, state: &ChainState) -> Option<AdoptionConflict> {
        let (adopted, current) = state.adoption.as_ref()?;
        Some(AdoptionConflict {
            from: self.adopted_from.clone()?,
            adopted: adopted.clone(),
            tracking: self.backend.tracking_table().to_string(),
            current: current.clone(),
        })
    }

    /// Whether `node` is at or below its chain's version in `shown` (one per chain).
    fn is_applied(&self, shown: &[Option<Version>], node: usize) -> bool {
        let node = &self.graph.nodes[node];
        shown[node.chain]
            .as_ref()
            .is_some_and(|current| node.version <= *current)
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
                    parent: m.parent_str().and_then(|p| Version::parse(p).ok()),
                    transactional: m.transactional(),
                    reversible: matches!(m.reversal(), Reversal::Down(_)),
                    checksum: m.checksum().to_string(),
                    location: m.location(),
                }
            })
            .collect()
    }
}

/// The version a listing shows for a chain: the stored one even when this binary does not know
/// it (as long as it parses), else the baseline.
fn shown_version(state: &ChainState) -> Option<Version> {
    match &state.unknown {
        Some(text) => Version::parse(text).ok(),
        None => state.current().cloned(),
    }
}
