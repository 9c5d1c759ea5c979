//! One chain per (module, table): grouped, ordered by version, and checked (one root, no fork,
//! parents that exist and are lower).

use super::names::parse_declared;
use super::{Chain, Node};
use crate::checksum;
use crate::error::GraphError;
use std::collections::HashMap;

/// Groups nodes into chains and checks each: one root, no fork, parents that exist and are lower.
pub(super) fn build_chains(nodes: &mut [Node]) -> Result<Vec<Chain>, GraphError> {
    let groups = group_by_table(nodes);
    let mut chains = Vec::with_capacity(groups.len());
    for mut members in groups {
        // Root first. The sort is stable, so two nodes of one version keep the order they were
        // registered in; a table's steps are usually registered in order (or in reverse), which
        // the sort takes as one run.
        members.sort_by(|&a, &b| nodes[a].version.cmp(&nodes[b].version));
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
                _ => parent_position(nodes, &members, node, module, table, parent_text)?,
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
        for &i in &members {
            nodes[i].chain = chain_index;
            acc = checksum::combine(acc, nodes[i].migration.checksum());
            cumulative.push(acc);
        }
        chains.push(Chain {
            module,
            table,
            nodes: members,
            cumulative,
        });
    }
    Ok(chains)
}

/// The nodes of each (module, table), each group in registration order, the groups sorted by
/// module and table.
///
/// A node's names are matched by address first: every migration of a set names its module
/// through the set, and the compiler usually keeps one copy of a table name written in many
/// attributes. So the node's group is usually the previous node's, or found among a few
/// groups without reading a name; names at another address are looked up by their text.
fn group_by_table(nodes: &[Node]) -> Vec<Vec<usize>> {
    /// Up to this many groups, a node's group is looked for by address among all of them.
    const SCANNED: usize = 32;
    let mut groups: Vec<(&'static str, &'static str, Vec<usize>)> = Vec::new();
    let mut by_text: HashMap<(&'static str, &'static str), usize> = HashMap::new();
    // The previous node's names and group: a table's steps are often registered together.
    let mut previous: Option<(&'static str, &'static str, usize)> = None;
    for (i, node) in nodes.iter().enumerate() {
        let (module, table) = (node.migration.set().module(), node.migration.table());
        let same = |m: &str, t: &str| std::ptr::eq(m, module) && std::ptr::eq(t, table);
        let found = previous
            .filter(|&(m, t, _)| same(m, t))
            .map(|(_, _, g)| g)
            .or_else(|| {
                (groups.len() <= SCANNED).then(|| groups.iter().position(|(m, t, _)| same(m, t)))?
            })
            .or_else(|| by_text.get(&(module, table)).copied());
        let g = found.unwrap_or_else(|| {
            by_text.insert((module, table), groups.len());
            groups.push((module, table, Vec::new()));
            groups.len() - 1
        });
        groups[g].2.push(i);
        previous = Some((module, table, g));
    }
    groups.sort_by(|a, b| compare_names(a.0, b.0).then_with(|| compare_names(a.1, b.1)));
    groups.into_iter().map(|(_, _, members)| members).collect()
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
