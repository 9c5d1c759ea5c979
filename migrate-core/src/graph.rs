//! The version graph: one chain per (module, table), plus `after` edges between chains, sorted
//! into one deterministic order.

use crate::checksum;
use crate::dialect::{tracked_name_problem, MAX_TRACKED_NAME_CHARS};
use crate::error::{GraphError, Result};
use crate::migration::{registered, Migration, MigrationSet};
use crate::step::StepKey;
use semver::Version;
use std::collections::{BinaryHeap, HashMap};

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
        for migration in migrations {
            check_names(migration)?;
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
            let (table, version) = after.split_once('@').ok_or_else(unknown)?;
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
        let n = self.nodes.len();
        // Every node by (version, chain, index): the tie-break order (chains are sorted by
        // module and table; the index only makes the keys unique).
        let mut tie_order: Vec<usize> = (0..n).collect();
        tie_order.sort_unstable_by(|&a, &b| {
            let (x, y) = (&self.nodes[a], &self.nodes[b]);
            (&x.version, x.chain, a).cmp(&(&y.version, y.chain, b))
        });
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

/// No two of `names` of the same kind (`what`: "module", or "`app` table" for the tables of a
/// module) are equal but for case.
fn check_case<'n>(names: impl Iterator<Item = (String, &'n str)>) -> Result<(), GraphError> {
    let mut seen: HashMap<(String, String), &str> = HashMap::new();
    for (what, name) in names {
        let key = (what, name.to_lowercase());
        match seen.get(&key) {
            Some(&first) if first != name => {
                return Err(GraphError::NamesDifferOnlyInCase {
                    what: key.0,
                    first: first.to_string(),
                    second: name.to_string(),
                })
            }
            _ => {
                seen.insert(key, name);
            }
        }
    }
    Ok(())
}

fn check_modules(sets: &[&'static MigrationSet]) -> Result<(), GraphError> {
    check_case(sets.iter().map(|s| ("module".to_string(), s.module())))?;
    let mut seen: HashMap<&str, &MigrationSet> = HashMap::new();
    for set in sets {
        if let Some(first) = seen.insert(set.module(), set) {
            if !std::ptr::eq(first, *set) {
                return Err(GraphError::DuplicateModule {
                    module: set.module().to_string(),
                    first: first.crate_name().to_string(),
                    second: set.crate_name().to_string(),
                });
            }
        }
    }
    Ok(())
}

/// The migration's module and table are names the tracking tables keep exactly, its version
/// fits their column, and its name (stored as text) holds no NUL.
fn check_names(migration: &Migration) -> Result<(), GraphError> {
    let invalid = |what, name: &str, reason| {
        Err(GraphError::InvalidName {
            location: migration.location(),
            what,
            name: name.escape_debug().to_string(),
            reason,
        })
    };
    for (what, name) in [
        ("module", migration.set().module()),
        ("table", migration.table()),
    ] {
        if let Some(reason) = tracked_name_problem(name) {
            return invalid(what, name, reason);
        }
    }
    if migration.name().contains('\0') {
        return invalid("migration", migration.name(), "contains NUL".to_string());
    }
    let version = migration.version_str();
    // A character is at least a byte: only a long text needs counting.
    if version.len() > MAX_TRACKED_NAME_CHARS && version.chars().count() > MAX_TRACKED_NAME_CHARS {
        return invalid(
            "version",
            version,
            format!(
                "is longer than the {MAX_TRACKED_NAME_CHARS} characters the tracking tables keep"
            ),
        );
    }
    Ok(())
}

fn parse_declared(migration: &Migration, text: &str) -> Result<Version, GraphError> {
    Version::parse(text).map_err(|e| GraphError::InvalidVersion {
        location: migration.location(),
        version: text.to_string(),
        reason: e.to_string(),
    })
}

/// Groups nodes into chains and checks each: one root, no fork, parents that exist and are lower.
fn build_chains(nodes: &mut [Node]) -> Result<Vec<Chain>, GraphError> {
    // Every node by (module, table, version): a chain is a run of this order, root first.
    // The sort is stable, so two nodes of one version keep the order they were registered in.
    let mut by_table: Vec<usize> = (0..nodes.len()).collect();
    by_table.sort_by(|&a, &b| {
        let (a, b) = (&nodes[a], &nodes[b]);
        compare_names(a.migration.set().module(), b.migration.set().module())
            .then_with(|| compare_names(a.migration.table(), b.migration.table()))
            .then_with(|| a.version.cmp(&b.version))
    });
    let same_table = |&a: &usize, &b: &usize| {
        let (a, b) = (nodes[a].migration, nodes[b].migration);
        compare_names(a.set().module(), b.set().module()).is_eq()
            && compare_names(a.table(), b.table()).is_eq()
    };
    let runs: Vec<&[usize]> = by_table.chunk_by(same_table).collect();
    let mut chains = Vec::with_capacity(runs.len());
    for members in runs {
        let first = nodes[members[0]].migration;
        let (module, table) = (first.set().module(), first.table());
        for pair in members.windows(2) {
            let (a, b) = (&nodes[pair[0]], &nodes[pair[1]]);
            if a.version == b.version {
                return Err(GraphError::Duplicate {
                    module: module.to_string(),
                    table: table.to_string(),
                    version: a.version.to_string(),
                    first: a.migration.location(),
                    second: b.migration.location(),
                });
            }
        }
        let mut root = None;
        // `first_child[p]`: the node whose parent is `members[p]`, once one is seen.
        let mut first_child: Vec<Option<usize>> = vec![None; members.len()];
        for (position, &i) in members.iter().enumerate() {
            let node = &nodes[i];
            let Some(parent_text) = node.migration.parent_str() else {
                if let Some(first) = root.replace(i) {
                    return Err(GraphError::TwoRoots {
                        module: module.to_string(),
                        table: table.to_string(),
                        first: nodes[first].migration.location(),
                        second: node.migration.location(),
                    });
                }
                continue;
            };
            let parent = match position.checked_sub(1) {
                // The usual case: the parent is the version just below, written the same way
                // (the same text is the same version, and it is lower and present).
                Some(below) if nodes[members[below]].migration.version_str() == parent_text => {
                    below
                }
                _ => parent_position(nodes, members, node, module, table, parent_text)?,
            };
            if let Some(first) = first_child[parent].replace(i) {
                return Err(GraphError::Fork {
                    module: module.to_string(),
                    table: table.to_string(),
                    parent: nodes[members[parent]].version.to_string(),
                    first: nodes[first].migration.location(),
                    second: node.migration.location(),
                });
            }
        }
        // Every node has a parent that exists, parents are lower, and no parent has two
        // children: with one root, sorted order is exactly the chain.
        let chain_index = chains.len();
        let mut cumulative = Vec::with_capacity(members.len());
        let mut acc = 0;
        for &i in members {
            nodes[i].chain = chain_index;
            acc = checksum::combine(acc, nodes[i].migration.checksum());
            cumulative.push(acc);
        }
        chains.push(Chain {
            module,
            table,
            nodes: members.to_vec(),
            cumulative,
        });
    }
    Ok(chains)
}

/// Orders two names as `str` does, without reading them when they are the same text in
/// memory (every migration of a set names its module through the set, and the compiler
/// usually keeps one copy of a table name written in many attributes).
fn compare_names(a: &str, b: &str) -> std::cmp::Ordering {
    if std::ptr::eq(a, b) {
        std::cmp::Ordering::Equal
    } else {
        a.cmp(b)
    }
}

/// The position in `members` (one chain's nodes, sorted by version) of `node`'s parent,
/// declared as `parent_text`: it must parse, be lower than the node, and be one of them.
fn parent_position(
    nodes: &[Node],
    members: &[usize],
    node: &Node,
    module: &str,
    table: &str,
    parent_text: &str,
) -> Result<usize, GraphError> {
    let parent = parse_declared(node.migration, parent_text)?;
    if parent >= node.version {
        return Err(GraphError::NotIncreasing {
            location: node.migration.location(),
            table: table.to_string(),
            version: node.version.to_string(),
            parent: parent.to_string(),
        });
    }
    members
        .binary_search_by(|&m| nodes[m].version.cmp(&parent))
        .map_err(|_| GraphError::MissingParent {
            location: node.migration.location(),
            module: module.to_string(),
            table: table.to_string(),
            version: node.version.to_string(),
            parent: parent.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conn::Conn;
    use crate::migration::{MigrationFuture, Reversal};

    fn noop<'a>(_: &'a mut Conn<'_>) -> MigrationFuture<'a> {
        Box::pin(async { Ok(()) })
    }

    static SET: MigrationSet = MigrationSet::__new("app", "app_crate", &[]);

    fn migration(
        table: &'static str,
        version: &'static str,
        parent: Option<&'static str>,
        after: Option<&'static str>,
    ) -> &'static Migration {
        named_in(&SET, table, version, parent, after, "m")
    }

    /// A migration of `set` named `name`.
    fn named_in(
        set: &'static MigrationSet,
        table: &'static str,
        version: &'static str,
        parent: Option<&'static str>,
        after: Option<&'static str>,
        name: &'static str,
    ) -> &'static Migration {
        Box::leak(Box::new(Migration::__new(
            set,
            table,
            version,
            parent,
            name,
            noop,
            Reversal::Down(noop),
            true,
            after,
            "fnv1a64:0000000000000000",
            "graph.rs",
            // A line of its own per migration, so that errors show which one they name.
            NEXT_LINE.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        )))
    }

    static NEXT_LINE: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);

    fn order(graph: &Graph) -> Vec<String> {
        graph
            .steps()
            .map(|s| format!("{}@{}", s.table, s.version))
            .collect()
    }

    #[test]
    fn orders_by_version_then_table_respecting_after() {
        let graph = Graph::from_migrations([
            migration("b", "1.0.0", None, None),
            migration("a", "1.0.0", None, None),
            migration("a", "2.0.0", Some("1.0.0"), Some("b@3.0.0")),
            migration("b", "3.0.0", Some("1.0.0"), None),
        ])
        .unwrap();
        assert_eq!(order(&graph), ["a@1.0.0", "b@1.0.0", "b@3.0.0", "a@2.0.0"]);
    }

    #[test]
    fn rejects_names_the_tracking_tables_cannot_keep() {
        let long: &'static str = Box::leak("t".repeat(MAX_TRACKED_NAME_CHARS + 1).into_boxed_str());
        // 192 characters of two bytes each: counted in characters, not bytes.
        let long_wide: &'static str =
            Box::leak("é".repeat(MAX_TRACKED_NAME_CHARS + 1).into_boxed_str());
        for (table, reason) in [
            ("a\0b", "contains NUL"),
            ("  ", "is blank"),
            (long, "is 192 characters long"),
            (long_wide, "is 192 characters long"),
        ] {
            let m = migration(table, "1.0.0", None, None);
            let err = Graph::from_migrations([m]).unwrap_err();
            assert!(
                matches!(&err, GraphError::InvalidName { what: "table", reason: r, .. } if r.starts_with(reason)),
                "{err}"
            );
            assert!(
                err.to_string()
                    .starts_with(&format!("{}: table name", m.location())),
                "{err}"
            );
        }
        static NUL_MODULE: MigrationSet = MigrationSet::__new("app\0x", "app_crate", &[]);
        let bad = named_in(&NUL_MODULE, "t", "1.0.0", None, None, "m");
        let named = named_in(&SET, "t", "1.0.0", None, None, "m\0");
        let err = Graph::from_migrations([named]).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("{}: migration name `m\\0` contains NUL", named.location())
        );
        let err = Graph::from_migrations([bad]).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("{}: module name `app\\0x` contains NUL", bad.location())
        );
        let err = Graph::from_migrations([migration("session ", "1.0.0", None, None)]).unwrap_err();
        assert!(
            err.to_string().ends_with("starts or ends with whitespace"),
            "{err}"
        );
        let long_version: &'static str =
            Box::leak(format!("1.0.0-{}", "a".repeat(MAX_TRACKED_NAME_CHARS)).into_boxed_str());
        let err = Graph::from_migrations([migration("t", long_version, None, None)]).unwrap_err();
        assert!(
            matches!(
                err,
                GraphError::InvalidName {
                    what: "version",
                    ..
                }
            ),
            "{err}"
        );
        let err = Graph::from_migrations([
            migration("Session", "1.0.0", None, None),
            migration("session", "1.0.0", None, None),
        ])
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "`app` table names `Session` and `session` differ only in case; MySQL's tracking tables would take them for one: rename one"
        );
        static UPPER: MigrationSet = MigrationSet::__new("App", "other_crate", &[]);
        let upper = named_in(&UPPER, "t", "1.0.0", None, None, "m");
        let err = Graph::from_migrations([migration("t", "1.0.0", None, None), upper]).unwrap_err();
        assert!(
            matches!(&err, GraphError::NamesDifferOnlyInCase { what, .. } if what == "module"),
            "{err}"
        );
        let longest: &'static str = Box::leak("é".repeat(MAX_TRACKED_NAME_CHARS).into_boxed_str());
        assert!(Graph::from_migrations([migration(longest, "1.0.0", None, None)]).is_ok());
    }

    #[test]
    fn rejects_forks_roots_gaps_duplicates_and_cycles() {
        let err = |ms: Vec<&'static Migration>| Graph::from_migrations(ms).unwrap_err();
        assert!(matches!(
            err(vec![
                migration("t", "1.0.0", None, None),
                migration("t", "1.1.0", Some("1.0.0"), None),
                migration("t", "1.2.0", Some("1.0.0"), None),
            ]),
            GraphError::Fork { .. }
        ));
        // A fork whose second child's parent is not the version just below it, registered in
        // any order: the parent it names is reported, and its two children in version order.
        let chain = [
            migration("t", "1.0.0", None, None),
            migration("t", "1.1.0", Some("1.0.0"), None),
            migration("t", "1.2.0", Some("1.1.0"), None),
            migration("t", "1.3.0", Some("1.0.0"), None),
        ];
        for ms in [chain.to_vec(), chain.iter().rev().copied().collect()] {
            match err(ms) {
                GraphError::Fork {
                    parent,
                    first,
                    second,
                    ..
                } => {
                    assert_eq!(parent, "1.0.0");
                    assert_eq!((first, second), (chain[1].location(), chain[3].location()));
                }
                other => panic!("expected the fork at 1.0.0, got {other}"),
            }
        }
        // Two migrations of one version, another version registered between them: the first
        // registered is named first.
        let (b, x, a) = (
            named_in(&SET, "t", "1.0.0", None, None, "b"),
            migration("t", "0.9.0", None, None),
            named_in(&SET, "t", "1.0.0", None, None, "a"),
        );
        match err(vec![b, x, a]) {
            GraphError::Duplicate { first, second, .. } => {
                assert_eq!((first, second), (b.location(), a.location()));
            }
            other => panic!("expected a duplicate, got {other}"),
        }
        assert!(matches!(
            err(vec![
                migration("t", "1.0.0", None, None),
                migration("t", "2.0.0", None, None)
            ]),
            GraphError::TwoRoots { .. }
        ));
        assert!(matches!(
            err(vec![
                migration("t", "1.0.0", None, None),
                migration("t", "1.2.0", Some("1.1.0"), None)
            ]),
            GraphError::MissingParent { .. }
        ));
        assert!(matches!(
            err(vec![
                migration("t", "1.0.0", None, None),
                migration("t", "1.0.0", None, None)
            ]),
            GraphError::Duplicate { .. }
        ));
        assert!(matches!(
            err(vec![
                migration("t", "2.0.0", None, None),
                migration("t", "1.0.0", Some("2.0.0"), None)
            ]),
            GraphError::NotIncreasing { .. }
        ));
        assert!(matches!(
            err(vec![
                migration("a", "1.0.0", None, Some("b@1.0.0")),
                migration("b", "1.0.0", None, Some("a@1.0.0")),
            ]),
            GraphError::Cycle { .. }
        ));
        assert!(matches!(
            err(vec![migration("a", "1.0.0", None, Some("b@9.0.0"))]),
            GraphError::UnknownAfter { .. }
        ));
    }

    #[test]
    fn an_after_edge_already_implied_leaves_the_order_as_it_is() {
        // Three tables with the same versions (ties go by table), registered out of order:
        // the order without any `after` edge (the sorted order itself) and with one that the
        // versions already imply (Kahn's algorithm) must be the same.
        let build = |implied_after: Option<&'static str>| {
            let mut ms = Vec::new();
            for table in ["c", "a", "b"] {
                let mut parent = None;
                for minor in 0..10 {
                    let version: &'static str = Box::leak(format!("1.{minor}.0").into_boxed_str());
                    let after = (table == "c" && minor == 9)
                        .then_some(implied_after)
                        .flatten();
                    ms.push(migration(table, version, parent, after));
                    parent = Some(version);
                }
            }
            ms.reverse();
            let graph = Graph::from_migrations(ms).unwrap();
            graph
                .steps()
                .map(|s| format!("{}@{}", s.table, s.version))
                .collect::<Vec<_>>()
        };
        let plain = build(None);
        assert_eq!(plain.len(), 30);
        assert_eq!(plain[..4], ["a@1.0.0", "b@1.0.0", "c@1.0.0", "a@1.1.0"]);
        assert_eq!(plain[29], "c@1.9.0");
        assert_eq!(plain, build(Some("a@1.0.0")));
    }

    #[test]
    fn ten_thousand_migrations_build_into_one_chain_per_table() {
        let mut ms = Vec::new();
        let tables = ["s", "m", "x", "e", "k", "c"];
        let mut last: [Option<&'static str>; 6] = [None; 6];
        for i in 0..10_000 {
            let t = i % 6;
            let version: &'static str = Box::leak(format!("1.0.{i}").into_boxed_str());
            ms.push(migration(tables[t], version, last[t], None));
            last[t] = Some(version);
        }
        let graph = Graph::from_migrations(ms).unwrap();
        assert_eq!(graph.len(), 10_000);
        assert_eq!(graph.chains.len(), 6);
        assert_eq!(
            graph.steps().next().map(|s| s.version.to_string()),
            Some("1.0.0".into())
        );
    }
}
