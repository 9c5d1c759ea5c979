//! The version graph: one chain per (module, table), plus `after` edges between chains, sorted
//! into one deterministic order.

mod chains;
mod names;

use chains::build_chains;
use names::{check_case, check_modules, parse_declared, NameChecks};

use crate::error::{GraphError, Result};
use crate::migration::{registered, Migration, MigrationSet};
use crate::step::StepKey;
use semver::Version;
use std::collections::BinaryHeap;

/// One node of the graph.
#[derive(Debug)]
pub(crate) struct Node {
    pub(crate) migration: &'static Migration,
    pub(crate) version: Version,
    /// Index of the chain this node belongs to.
    pub(crate) chain: usize,
    /// Position in the global deterministic order.
    pub(crate) rank: usize,
    /// Nodes this one must run after (besides its parent), from `after`.
    pub(crate) after: Vec<usize>,
}

impl Node {
    pub(crate) fn key(&self) -> StepKey {
        StepKey {
            module: self.migration.set().module().to_string(),
            table: self.migration.table().to_string(),
            version: self.version.clone(),
            name: self.migration.name().to_string(),
        }
    }
}

/// One table's version line within one module, root first.
#[derive(Debug)]
pub(crate) struct Chain {
    pub(crate) module: &'static str,
    pub(crate) table: &'static str,
    /// Node indices, root first.
    pub(crate) nodes: Vec<usize>,
    /// `cumulative[i]`: the combined checksum of nodes `0..=i` (see `checksum::render`).
    pub(crate) cumulative: Vec<u64>,
}

impl Chain {
    /// The position of `version` in the chain.
    pub(crate) fn position(&self, graph: &Graph, version: &Version) -> Option<usize> {
        self.nodes
            .binary_search_by(|&n| graph.nodes[n].version.cmp(version))
            .ok()
    }

    /// How many nodes are at or below `version` (the prefix that counts as applied).
    pub(crate) fn applied_len(&self, graph: &Graph, version: Option<&Version>) -> usize {
        match version {
            None => 0,
            Some(v) => self
                .nodes
                .partition_point(|&n| graph.nodes[n].version <= *v),
        }
    }

    pub(crate) fn head<'g>(&self, graph: &'g Graph) -> Option<&'g Version> {
        self.nodes.last().map(|&n| &graph.nodes[n].version)
    }
}

/// The validated graph of every migration in the sets given to it.
#[derive(Debug)]
pub struct Graph {
    pub(crate) nodes: Vec<Node>,
    pub(crate) chains: Vec<Chain>,
    /// Node indices in the deterministic order in which `up` runs them.
    pub(crate) order: Vec<usize>,
}

impl Graph {
    /// Collects the migrations of `sets` and validates them: non-empty sets, distinct modules,
    /// semver versions, one root and no fork per table, parents that exist and are lower,
    /// heads that match, `after` edges that resolve and form no cycle.
    pub fn build(
        sets: impl IntoIterator<Item = &'static MigrationSet>,
    ) -> Result<Graph, GraphError> {
        let sets: Vec<&'static MigrationSet> = sets.into_iter().collect();
        check_modules(&sets)?;
        let mut by_set: Vec<Vec<&'static Migration>> = vec![Vec::new(); sets.len()];
        for migration in registered() {
            if let Some(i) = sets.iter().position(|s| std::ptr::eq(*s, migration.set())) {
                by_set[i].push(migration);
            }
        }
        for (set, migrations) in sets.iter().zip(&by_set) {
            if migrations.is_empty() {
                return Err(GraphError::EmptySet {
                    crate_name: set.crate_name().to_string(),
                    module: set.module().to_string(),
                });
            }
        }
        Self::from_parts(&sets, by_set.into_iter().flatten())
    }

    /// Builds the graph of migrations made at run time instead of registered by
    /// `#[migration]` (generated sets, benchmarks), with the same validation. Their sets are
    /// the distinct `set` they point to.
    pub fn from_migrations(
        migrations: impl IntoIterator<Item = &'static Migration>,
    ) -> Result<Graph, GraphError> {
        let migrations: Vec<&'static Migration> = migrations.into_iter().collect();
        let mut sets: Vec<&'static MigrationSet> = Vec::new();
        for m in &migrations {
            if !sets.iter().any(|s| std::ptr::eq(*s, m.set())) {
                sets.push(m.set());
            }
        }
        check_modules(&sets)?;
        Self::from_parts(&sets, migrations)
    }

    fn from_parts(
        sets: &[&'static MigrationSet],
        migrations: impl IntoIterator<Item = &'static Migration>,
    ) -> Result<Graph, GraphError> {
        let mut nodes = Vec::new();
        let mut names = NameChecks::default();
        for migration in migrations {
            names.check(migration)?;
            let version = parse_declared(migration, migration.version_str())?;
            nodes.push(Node {
                migration,
                version,
                chain: 0,
                rank: 0,
                after: Vec::new(),
            });
        }
        let chains = build_chains(&mut nodes)?;
        check_case(
            chains
                .iter()
                .map(|c| (format!("`{}` table", c.module), c.table)),
        )?;
        let mut graph = Graph {
            nodes,
            chains,
            order: Vec::new(),
        };
        for set in sets {
            graph.check_heads(set)?;
        }
        graph.resolve_after()?;
        graph.sort()?;
        Ok(graph)
    }

    /// Every (module, table) with migrations, sorted.
    pub fn tables(&self) -> impl Iterator<Item = (&'static str, &'static str)> + '_ {
        self.chains.iter().map(|c| (c.module, c.table))
    }

    /// Whether some module has migrations for the logical table `table`.
    pub fn has_table(&self, table: &str) -> bool {
        self.tables().any(|(_, t)| t == table)
    }

    /// [`Error::UnknownTable`](crate::error::Error::UnknownTable) for `table`, listing the
    /// tables that have migrations.
    pub fn unknown_table(&self, table: &str) -> crate::error::Error {
        let mut known: Vec<String> = self.tables().map(|(_, t)| t.to_string()).collect();
        known.sort();
        known.dedup();
        crate::error::Error::UnknownTable {
            table: table.to_string(),
            known,
        }
    }

    /// The number of registered migrations.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the graph holds no migration (never true for a built graph).
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Every step in the order `up` runs them.
    pub fn steps(&self) -> impl Iterator<Item = StepKey> + '_ {
        self.order.iter().map(|&n| self.nodes[n].key())
    }

    pub(crate) fn chain_index(&self, module: &str, table: &str) -> Option<usize> {
        self.chains
            .binary_search_by(|c| (c.module, c.table).cmp(&(module, table)))
            .ok()
    }

    fn check_heads(&self, set: &MigrationSet) -> Result<(), GraphError> {
        for &(table, head) in set.heads() {
            let declared = Version::parse(head).map_err(|e| GraphError::InvalidVersion {
                location: format!("heads of crate `{}`", set.crate_name()),
                version: head.to_string(),
                reason: e.to_string(),
            })?;
            let actual = self
                .chain_index(set.module(), table)
                .and_then(|c| self.chains[c].head(self));
            if actual != Some(&declared) {
                return Err(GraphError::HeadMismatch {
                    crate_name: set.crate_name().to_string(),
                    table: table.to_string(),
                    head: head.to_string(),
                    actual: actual.map_or_else(|| "no migrations".to_string(), |v| v.to_string()),
                });
            }
        }
        Ok(())
    }

    fn resolve_after(&mut self) -> Result<(), GraphError> {
        for i in 0..self.nodes.len() {
            let migration = self.nodes[i].migration;
            let Some(after) = migration.after() else {
                continue;
            };
            let unknown = || GraphError::UnknownAfter {
                location: migration.location(),
                after: after.to_string(),
            };
            // At the last `@`: a table name may hold one, a version never does.
            let (table, version) = after.rsplit_once('@').ok_or_else(unknown)?;
            let version = Version::parse(version).map_err(|_| unknown())?;
            let chain = self
                .chain_index(migration.set().module(), table)
                .ok_or_else(unknown)?;
            let pos = self.chains[chain]
                .position(self, &version)
                .ok_or_else(unknown)?;
            let target = self.chains[chain].nodes[pos];
            self.nodes[i].after.push(target);
        }
        Ok(())
    }

    /// The order `up` runs the nodes in: every node after its parent and its `after` targets,
    /// and among the nodes ready at once the smallest (version, module, table) first, so every
    /// machine applies the same order.
    fn sort(&mut self) -> Result<(), GraphError> {
        let tie_order = self.tie_order();
        // Without `after` edges it is the order itself: a parent's version is lower than its
        // child's, so the smallest node left is always ready.
        let order = if self.nodes.iter().all(|node| node.after.is_empty()) {
            tie_order
        } else {
            self.kahn(tie_order)?
        };
        for (rank, &i) in order.iter().enumerate() {
            self.nodes[i].rank = rank;
        }
        self.order = order;
        Ok(())
    }

    /// Every node by (version, chain): the tie-break order, chains being sorted by module and
    /// table (no two nodes of one chain share a version). A stable sort of the nodes as they
    /// were registered, because it merges the runs it finds: registration usually lists a
    /// table's steps in version order (a run per table), or every step in order (one run),
    /// or the reverse of either (`inventory` hands out the last registered first).
    fn tie_order(&self) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.nodes.len()).collect();
        order.sort_by(|&a, &b| {
            let (x, y) = (&self.nodes[a], &self.nodes[b]);
            (&x.version, x.chain).cmp(&(&y.version, y.chain))
        });
        order
    }

    /// Kahn's algorithm over parent and `after` edges, taking first the ready node that comes
    /// first in `tie_order` (the heap holds positions in it, not cloned versions); a cycle of
    /// `after` edges is an error.
    fn kahn(&self, tie_order: Vec<usize>) -> Result<Vec<usize>, GraphError> {
        let n = self.nodes.len();
        let mut indegree = vec![0usize; n];
        // A node's successors: the next node of its chain, and the nodes that name it in
        // `after` (few: an empty list allocates nothing).
        let mut next_in_chain: Vec<Option<usize>> = vec![None; n];
        let mut waiting_after: Vec<Vec<usize>> = vec![Vec::new(); n];
        for chain in &self.chains {
            for pair in chain.nodes.windows(2) {
                next_in_chain[pair[0]] = Some(pair[1]);
                indegree[pair[1]] += 1;
            }
        }
        for (i, node) in self.nodes.iter().enumerate() {
            for &before in &node.after {
                waiting_after[before].push(i);
                indegree[i] += 1;
            }
        }
        // `tie_position[i]`: where node `i` is in `tie_order`.
        let mut tie_position = vec![0; n];
        for (position, &i) in tie_order.iter().enumerate() {
            tie_position[i] = position;
        }
        let mut ready: BinaryHeap<std::cmp::Reverse<usize>> = (0..n)
            .filter(|&i| indegree[i] == 0)
            .map(|i| std::cmp::Reverse(tie_position[i]))
            .collect();
        let mut order = Vec::with_capacity(n);
        while let Some(std::cmp::Reverse(position)) = ready.pop() {
            let i = tie_order[position];
            order.push(i);
            for &next in next_in_chain[i].iter().chain(&waiting_after[i]) {
                indegree[next] -= 1;
                if indegree[next] == 0 {
                    ready.push(std::cmp::Reverse(tie_position[next]));
                }
            }
        }
        if order.len() < n {
            let stuck = (0..n)
                .find(|&i| indegree[i] > 0 && !self.nodes[i].after.is_empty())
                .unwrap_or(0);
            let to = self.nodes[stuck].after.first().copied().unwrap_or(stuck);
            return Err(GraphError::Cycle {
                from: self.nodes[stuck].key().to_string(),
                to: self.nodes[to].key().to_string(),
            });
        }
        Ok(order)
    }
}

impl MigrationSet {
    /// Validates this set on its own: the graph check that the anchor's generated test runs.
    pub fn validate(&'static self) -> Result<Graph> {
        Ok(Graph::build([self])?)
    }
}

#[cfg(test)]
mod tests;
