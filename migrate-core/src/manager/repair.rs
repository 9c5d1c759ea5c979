//! Operator repairs: settling a dirty mark, and re-pinning the checksums of an edited step.

use super::setup::{parse_version, MigrationManager};
use crate::checksum;
use crate::error::{Error, Result};
use crate::step::Direction;

/// How an operator resolves a dirty mark after checking the schema by hand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    /// The unfinished step's change is fully in place: record it as done.
    Completed,
    /// The unfinished step left nothing behind (or it was undone by hand): record it as not run.
    RolledBack,
}

impl MigrationManager {
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
            let checksum = keep.map(|p| checksum::render(chain.cumulative[p]));
            tracing::info!(
                module = chain.module,
                table = chain.table,
                ?resolution,
                "resolving dirty mark"
            );
            self.backend
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
                self.backend
                    .set_step_checksum(
                        chain.module,
                        chain.table,
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
                        chain.table,
                        Some(&version),
                        Some(&checksum::render(chain.cumulative[last])),
                    )
                    .await?;
            }
        }
        Ok(())
    }
}
