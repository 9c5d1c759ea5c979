//! Reading the state table and checking it against the linked graph: versions this binary does
//! not know, and checksum drift (the history is read only when a chain checksum differs).

use super::setup::MigrationManager;
use crate::backend::StateRow;
use crate::checksum;
use crate::error::{Error, Result};
use crate::plan::ChainState;
use crate::step::{Direction, Outcome};
use semver::Version;

impl MigrationManager {
    /// Reads the state table (one query) and checks it against the graph: a version this binary
    /// does not know is an error, and so is checksum drift unless `force` (the recovery path).
    pub(super) async fn read_states(&self, force: bool) -> Result<Vec<ChainState>> {
        let rows = self.backend.read_state().await?;
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
            if row.checksum.as_deref().is_some_and(checksum::is_legacy) {
                // Written before SHA-256: trusted as is, re-pinned by the next locked run.
                state.legacy = true;
            } else if row.checksum.as_deref()
                != Some(checksum::render(chain.cumulative[pos]).as_str())
            {
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
        let history = self.backend.history(&modules, None).await?;
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
                        && h.outcome == Outcome::Succeeded
                });
                if let Some(h) = recorded {
                    if h.checksum != node.migration.checksum() && !checksum::is_legacy(&h.checksum)
                    {
                        return Err(Error::ChecksumMismatch {
                            step: Box::new(node.key()),
                            location: node.migration.location(),
                            applied: h.checksum.clone(),
                            current: node.migration.checksum().to_string(),
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
}

fn ahead(module: &str, table: &str, version: String) -> Error {
    Error::UnknownAppliedVersion {
        module: module.to_string(),
        table: table.to_string(),
        version,
    }
}
