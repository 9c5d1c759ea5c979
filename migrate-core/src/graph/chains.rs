//! One chain per (module, table): grouped, ordered by version, and checked (one root, no fork,
//! parents that exist and are lower).

use super::names::parse_declared;
use super::{Chain, Node};
use crate::checksum;
use crate::error::GraphError;

/// Groups nodes into chains and checks each: one root, no fork, parents that exist and are lower.
pub(super) fn build_chains(nodes: &mut [Node]) -> Result<Vec<Chain>, GraphError> {
    // Every node by (module, table, version): a chain is a run of this order, root first.
    // The sort is stable, so two nodes of one version keep the order they were registered in.
    let by_name = |a: &Node, b: &Node| {
        let (a, b) = (a.migration, b.migration);
        compare_names(a.set().module(), b.set().module())
            .then_with(|| compare_names(a.table(), b.table()))
    };
    let mut by_table: Vec<usize> = (0..nodes.len()).collect();
    by_table.sort_by(|&a, &b| {
        by_name(&nodes[a], &nodes[b]).then_with(|| nodes[a].version.cmp(&nodes[b].version))
    });
    let runs: Vec<&[usize]> = by_table
        .chunk_by(|&a, &b| by_name(&nodes[a], &nodes[b]).is_eq())
        .collect();
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
