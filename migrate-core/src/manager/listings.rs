//! Read-only views of where the database stands against the linked graph.

use super::setup::MigrationManager;
use crate::error::Result;
use crate::migration::Reversal;
use crate::plan::ChainState;
use crate::status::{HistoryEntry, MigrationInfo, TableStatus};
use semver::Version;

impl MigrationManager {
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
        self.backend.history(&modules, Some(limit)).await
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
