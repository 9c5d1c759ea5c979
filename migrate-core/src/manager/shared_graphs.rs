//! The graphs of the process's managers, built once per set of [`MigrationSet`]s.
//!
//! A manager's linked graph, and its "up to date" verdict at the heads under the default
//! settings, are functions of the migrations registered in the binary. Building them is almost
//! all of [`MigrationManager::new`](super::MigrationManager::new): a chain checksum (SHA-256)
//! per migration, a sort, and a plan over every step. A process that builds many managers over
//! the same sets (a fleet, one manager per target; a test suite; a service that builds one per
//! request) builds them once; the first manager of a process pays as before.
//!
//! An entry is used only while the registry is as it was when the entry was made: a library
//! loaded at run time that registers migrations moves the registry's mark
//! ([`registry_mark`](crate::migration::registry_mark)), and the graph is built again. Only
//! graphs that were built are kept: an invalid graph is refused again, with the same error, on
//! every call.

use super::up_to_date::Verdict;
use crate::graph::Graph;
use crate::migration::MigrationSet;
use std::sync::{Arc, Mutex};

/// The most graphs kept: a process uses a few sets of sets; more are built each time.
const KEPT: usize = 8;

struct Entry {
    /// The sets, by address, in the order the manager was given them.
    sets: Vec<usize>,
    /// The registry's mark when the graph was built.
    mark: (usize, usize),
    graph: Arc<Graph>,
    heads: Option<Verdict>,
}

static KEPT_GRAPHS: Mutex<Vec<Entry>> = Mutex::new(Vec::new());

fn addresses(sets: &[&'static MigrationSet]) -> Vec<usize> {
    sets.iter()
        .map(|set| std::ptr::from_ref(*set) as usize)
        .collect()
}

/// The graph and the verdict at the heads kept for exactly `sets`, in this order, for the
/// registry at `mark` ([`registry_mark`](crate::migration::registry_mark), read once by a
/// manager before it looks up or builds its graph, so that a graph is never kept under a mark
/// later than what it was built from).
pub(super) fn kept(
    sets: &[&'static MigrationSet],
    mark: (usize, usize),
) -> Option<(Arc<Graph>, Option<Verdict>)> {
    let wanted = addresses(sets);
    let kept = KEPT_GRAPHS.lock().ok()?;
    kept.iter()
        .find(|entry| entry.sets == wanted && entry.mark == mark)
        .map(|entry| (entry.graph.clone(), entry.heads.clone()))
}

/// Keeps the graph built for `sets` from the registry at `mark`, and its verdict at the heads
/// under the default settings, in place of an entry for the same sets, or of the oldest when
/// [`KEPT`] are kept.
pub(super) fn keep(
    sets: &[&'static MigrationSet],
    mark: (usize, usize),
    graph: Arc<Graph>,
    heads: Option<Verdict>,
) {
    let Ok(mut kept) = KEPT_GRAPHS.lock() else {
        return;
    };
    let sets = addresses(sets);
    kept.retain(|entry| entry.sets != sets);
    if kept.len() >= KEPT {
        kept.remove(0);
    }
    kept.push(Entry {
        sets,
        mark,
        graph,
        heads,
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::migration::registry_mark;

    static FIRST: MigrationSet = MigrationSet::__new("first", "shared_graphs_test", &[]);
    static SECOND: MigrationSet = MigrationSet::__new("second", "shared_graphs_test", &[]);
    static OTHERS: [MigrationSet; KEPT] = [
        MigrationSet::__new("o0", "shared_graphs_test", &[]),
        MigrationSet::__new("o1", "shared_graphs_test", &[]),
        MigrationSet::__new("o2", "shared_graphs_test", &[]),
        MigrationSet::__new("o3", "shared_graphs_test", &[]),
        MigrationSet::__new("o4", "shared_graphs_test", &[]),
        MigrationSet::__new("o5", "shared_graphs_test", &[]),
        MigrationSet::__new("o6", "shared_graphs_test", &[]),
        MigrationSet::__new("o7", "shared_graphs_test", &[]),
    ];

    fn graph() -> Arc<Graph> {
        Arc::new(Graph {
            nodes: Vec::new(),
            chains: Vec::new(),
            order: Vec::new(),
        })
    }

    fn keep_now(sets: &[&'static MigrationSet], graph: Arc<Graph>) {
        keep(sets, registry_mark(), graph, None);
    }

    fn kept_now(sets: &[&'static MigrationSet]) -> Option<(Arc<Graph>, Option<Verdict>)> {
        kept(sets, registry_mark())
    }

    // One test: the kept graphs are the process's, and these steps depend on their order. No
    // other unit test of this crate calls `MigrationManager::new` (it would keep a graph too,
    // and could push one of these out); the integration tests run in binaries of their own.
    #[test]
    fn a_graph_is_kept_for_exactly_its_sets_while_the_registry_is_unchanged() {
        let built = graph();
        keep_now(&[&FIRST], built.clone());
        let (found, heads) = kept_now(&[&FIRST]).expect("kept for the same sets");
        assert!(Arc::ptr_eq(&found, &built) && heads.is_none());
        assert!(kept_now(&[&SECOND]).is_none(), "other sets");
        assert!(kept_now(&[&FIRST, &SECOND]).is_none(), "more sets");
        let (newest, groups) = registry_mark();
        assert!(
            kept(&[&FIRST], (newest ^ 1, groups)).is_none(),
            "a registry that grew builds again"
        );

        keep_now(&[&FIRST, &SECOND], graph());
        assert!(
            kept_now(&[&SECOND, &FIRST]).is_none(),
            "the sets' order is part of the key"
        );

        // Kept again for the same sets: replaced, not kept twice.
        let rebuilt = graph();
        keep_now(&[&FIRST], rebuilt.clone());
        let (found, _) = kept_now(&[&FIRST]).expect("kept");
        assert!(Arc::ptr_eq(&found, &rebuilt));

        // At most KEPT: the oldest goes first.
        for other in &OTHERS[..KEPT - 1] {
            keep_now(&[other], graph());
        }
        assert!(
            kept_now(&[&FIRST, &SECOND]).is_none(),
            "the oldest was dropped"
        );
        assert!(kept_now(&[&FIRST]).is_some() && kept_now(&[&OTHERS[KEPT - 2]]).is_some());
        assert_eq!(KEPT_GRAPHS.lock().expect("kept").len(), KEPT);
    }
}
