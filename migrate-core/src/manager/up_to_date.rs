//! The "up to date" verdicts a plain `up` can give from the state rows alone, without the
//! survey and the plan.
//!
//! A plan is a function of the linked graph, the manager's settings, the request and the state
//! rows. For a plain `up` (every table to its latest version, not forced, not a dry run) on a
//! manager whose survey reads nothing but the state rows (no `with_adopted_versions`, no
//! `with_baseline_for_existing_tables`), the same rows give the same verdict. Two verdicts are
//! kept:
//! - **at the heads**, worked out when the manager is built or its settings change: the rows
//!   a run leaves when every table is at its latest version (the version and chain checksum a
//!   step records, no dirty mark). A service's start-up check on an up-to-date database, on a
//!   new connection and a new manager, then pays the state read and one comparison.
//! - **the last one**, remembered with the rows it was reached from: an up-to-date database
//!   whose rows differ from the heads' (a chain at its baseline with no row, a checksum of an
//!   earlier release still trusted) is surveyed and planned once, not on every call. A
//!   verdict at the heads is remembered too, so rows a backend hands out again unchanged (the
//!   same shared rows: see [`MigrationBackend::read_state`]) are known by their address,
//!   without comparing them.
//!
//! [`MigrationBackend::read_state`]: crate::backend::MigrationBackend::read_state
//!
//! A verdict that read the checksum history (a chain checksum that differs) is not
//! remembered: the history is not in the rows. Rows of modules that are not the manager's are
//! left out of the comparison with the heads, as the survey leaves them out.

use crate::backend::StateRow;
use crate::report::Skipped;
use std::cmp::Ordering;
use std::sync::atomic::{AtomicBool, Ordering as AtomicOrdering};
use std::sync::{Arc, Mutex};

/// The verdicts; the last one is empty until a plain `up` finds nothing to do.
#[derive(Debug, Default)]
pub(super) struct UpToDate {
    heads: Option<Verdict>,
    last: Mutex<Option<Verdict>>,
    /// Whether the manager's last run ended with the database up to date (for the level its
    /// next repeated check is logged at).
    last_ended_up_to_date: AtomicBool,
}

/// Which verdict the rows were found to hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Known {
    /// The rows the last verdict was reached from: a repeated check with nothing new to say.
    LastVerdict,
    /// The rows of a database with every table at its head (a manager's first check).
    Heads,
}

impl Known {
    /// What the rows are, for the debug event.
    pub(super) fn rows_are(self) -> &'static str {
        match self {
            Known::LastVerdict => "the last verdict's rows",
            Known::Heads => "the heads' rows",
        }
    }
}

/// A verdict: the rows it was reached from and the steps it skips.
#[derive(Clone, Debug)]
pub(super) struct Verdict {
    rows: Arc<[StateRow]>,
    skipped: Vec<Skipped>,
}

impl UpToDate {
    /// Nothing remembered yet, and `heads` as the verdict at the heads: the rows of a database
    /// with every table at its latest version (one per chain), and the steps the verdict skips.
    pub(super) fn at_heads(heads: Option<(Vec<StateRow>, Vec<Skipped>)>) -> Self {
        let heads = heads.map(|(mut rows, skipped)| {
            rows.sort_by(by_key);
            Verdict {
                rows: rows.into(),
                skipped,
            }
        });
        Self::with_heads(heads)
    }

    /// Nothing remembered yet, and `heads` (from [`heads`](Self::heads) of a manager over the
    /// same graph and settings) as the verdict at the heads.
    pub(super) fn with_heads(heads: Option<Verdict>) -> Self {
        UpToDate {
            heads,
            last: Mutex::default(),
            last_ended_up_to_date: AtomicBool::new(false),
        }
    }

    /// The verdict at the heads (its rows shared, not copied).
    pub(super) fn heads(&self) -> Option<Verdict> {
        self.heads.clone()
    }

    /// Records whether the run that just ended found the database up to date, and returns
    /// whether the run before it did.
    pub(super) fn swap_last_ended_up_to_date(&self, up_to_date: bool) -> bool {
        self.last_ended_up_to_date
            .swap(up_to_date, AtomicOrdering::Relaxed)
    }

    /// The skipped steps of an "up to date" verdict `rows` give alone, and which verdict it is:
    /// the last verdict first, since rows a backend hands out again unchanged are known by
    /// their address; then the heads', which is remembered for that.
    pub(super) fn known(
        &self,
        rows: &Arc<[StateRow]>,
        ours: impl Fn(&str) -> bool,
    ) -> Option<(Vec<Skipped>, Known)> {
        if let Some(skipped) = self.remembered(rows) {
            return Some((skipped, Known::LastVerdict));
        }
        let skipped = self.at_the_heads(rows, ours)?;
        self.remember(rows.clone(), skipped.clone());
        Some((skipped, Known::Heads))
    }

    /// The skipped steps of the verdict at the heads, if the rows of the manager's modules
    /// (`ours`) in `rows` are exactly the heads' rows.
    fn at_the_heads(&self, rows: &[StateRow], ours: impl Fn(&str) -> bool) -> Option<Vec<Skipped>> {
        let heads = self.heads.as_ref()?;
        holds_exactly(&heads.rows, rows, ours).then(|| heads.skipped.clone())
    }

    /// The skipped steps of the last verdict, if it was reached from the same `rows`: the very
    /// rows (the memo holds them, so their address cannot be another's), or equal ones.
    fn remembered(&self, rows: &Arc<[StateRow]>) -> Option<Vec<Skipped>> {
        let memo = self.last.lock().ok()?;
        let verdict = memo.as_ref()?;
        (Arc::ptr_eq(&verdict.rows, rows) || verdict.rows[..] == rows[..])
            .then(|| verdict.skipped.clone())
    }

    /// Remembers that `rows` are up to date, with the steps the verdict skipped.
    pub(super) fn remember(&self, rows: Arc<[StateRow]>, skipped: Vec<Skipped>) {
        if let Ok(mut memo) = self.last.lock() {
            *memo = Some(Verdict { rows, skipped });
        }
    }
}

/// The order of the heads' rows: by module, then table (the state table's key).
fn by_key(a: &StateRow, b: &StateRow) -> Ordering {
    (a.module.as_str(), a.table.as_str()).cmp(&(b.module.as_str(), b.table.as_str()))
}

/// Whether the rows of `ours` modules in `rows`, in any order, are exactly `expected` (sorted
/// by [`by_key`], one per key): each is equal to the expected row of its key, no key comes
/// twice (the state tables' key forbids it; a backend of someone else's might not), and every
/// expected row is there.
fn holds_exactly(expected: &[StateRow], rows: &[StateRow], ours: impl Fn(&str) -> bool) -> bool {
    let mut found = vec![false; expected.len()];
    for row in rows.iter().filter(|row| ours(&row.module)) {
        match expected.binary_search_by(|e| by_key(e, row)) {
            Ok(i) if expected[i] == *row && !found[i] => found[i] = true,
            _ => return false,
        }
    }
    found.iter().all(|&f| f)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::SkipReason;
    use crate::step::DirtyMark;

    fn row(module: &str, table: &str, version: &str, checksum: &str) -> StateRow {
        StateRow {
            module: module.to_string(),
            table: table.to_string(),
            version: Some(version.to_string()),
            checksum: Some(checksum.to_string()),
            dirty: None,
        }
    }

    fn heads() -> UpToDate {
        let skipped = vec![Skipped {
            module: "app".to_string(),
            table: "session".to_string(),
            steps: 2,
            reason: SkipReason::AlreadyThere,
        }];
        UpToDate::at_heads(Some((
            vec![
                row("app", "session", "2.0.0", "c2"),
                row("app", "memory", "1.0.0", "m1"),
            ],
            skipped,
        )))
    }

    fn ours(module: &str) -> bool {
        module == "app"
    }

    #[test]
    fn the_heads_rows_in_any_order_give_the_heads_verdict() {
        let verdict = heads();
        let rows = [
            row("app", "session", "2.0.0", "c2"),
            row("app", "memory", "1.0.0", "m1"),
        ];
        assert_eq!(verdict.at_the_heads(&rows, ours).map(|s| s.len()), Some(1));
        let reversed = [rows[1].clone(), rows[0].clone()];
        assert!(verdict.at_the_heads(&reversed, ours).is_some());
    }

    #[test]
    fn rows_of_other_modules_are_left_out() {
        let rows = [
            row("other", "session", "9.0.0", "x"),
            row("app", "memory", "1.0.0", "m1"),
            row("app", "session", "2.0.0", "c2"),
        ];
        assert!(heads().at_the_heads(&rows, ours).is_some());
    }

    #[test]
    fn any_difference_from_the_heads_gives_no_verdict() {
        let verdict = heads();
        let at_heads = [
            row("app", "session", "2.0.0", "c2"),
            row("app", "memory", "1.0.0", "m1"),
        ];
        let mut older = at_heads.clone();
        older[0] = row("app", "session", "1.0.0", "c1");
        let mut drifted = at_heads.clone();
        drifted[1].checksum = Some("other".to_string());
        let mut dirty = at_heads.clone();
        dirty[0].dirty = Some(DirtyMark::new(
            "2.1.0".to_string(),
            "add".to_string(),
            crate::step::Direction::Up,
            crate::time::Timestamp::now(),
        ));
        let missing = [at_heads[0].clone()];
        let twice = [at_heads[0].clone(), at_heads[0].clone()];
        let mut twice_and_all = at_heads.to_vec();
        twice_and_all.push(at_heads[0].clone());
        let mut stranger = at_heads.to_vec();
        stranger.push(row("app", "eval", "1.0.0", "e1"));
        for rows in [
            &older[..],
            &drifted,
            &dirty,
            &missing,
            &twice,
            &twice_and_all,
            &stranger,
            &[],
        ] {
            assert!(verdict.at_the_heads(rows, ours).is_none(), "{rows:?}");
        }
    }

    #[test]
    fn a_verdict_at_the_heads_is_remembered_for_the_same_rows() {
        let verdict = heads();
        let rows: Arc<[StateRow]> = vec![
            row("app", "memory", "1.0.0", "m1"),
            row("app", "session", "2.0.0", "c2"),
        ]
        .into();
        let first = verdict.known(&rows, ours).expect("the heads' rows");
        assert_eq!((first.0.len(), first.1), (1, Known::Heads));
        let again = verdict.known(&rows, ours).expect("remembered");
        assert_eq!((again.0, again.1), (first.0, Known::LastVerdict));
        let older: Arc<[StateRow]> = vec![row("app", "session", "1.0.0", "c1")].into();
        assert!(verdict.known(&older, ours).is_none());
    }

    #[test]
    fn the_last_verdict_needs_the_same_rows() {
        let verdict = UpToDate::at_heads(None);
        let rows: Arc<[StateRow]> = vec![row("app", "session", "1.0.0", "c1")].into();
        assert!(verdict.at_the_heads(&rows, ours).is_none());
        assert!(verdict.remembered(&rows).is_none());
        verdict.remember(rows.clone(), Vec::new());
        assert_eq!(verdict.remembered(&rows), Some(Vec::new()));
        // Equal rows read again (another allocation) are the same rows.
        let again: Arc<[StateRow]> = rows.to_vec().into();
        assert_eq!(verdict.remembered(&again), Some(Vec::new()));
        let other: Arc<[StateRow]> = vec![row("app", "session", "1.0.0", "c0")].into();
        assert!(verdict.remembered(&other).is_none());
    }
}
