//! The last "up to date" verdict of a plain `up`, remembered with the state rows it was reached
//! from.
//!
//! A plan is a function of the linked graph, the manager's settings, the request and the state
//! rows. For a plain `up` (every table to its latest version, not forced, not a dry run) on a
//! manager whose survey reads nothing but the state rows (no `with_adopted_versions`, no
//! `with_baseline_for_existing_tables`), the same rows give the same verdict. A service that
//! asks again and again (a health check, a loop over start-ups) then pays the state read and
//! one comparison, not the survey and the plan. A verdict that read the checksum history (a
//! chain checksum that differs) is not remembered: the history is not in the rows.

use crate::backend::StateRow;
use crate::report::Skipped;
use std::sync::Mutex;

/// The remembered verdict; empty until a plain `up` finds nothing to do.
#[derive(Debug, Default)]
pub(super) struct UpToDate(Mutex<Option<Verdict>>);

#[derive(Debug)]
struct Verdict {
    rows: Vec<StateRow>,
    skipped: Vec<Skipped>,
}

impl UpToDate {
    /// The skipped steps of the remembered verdict, if it was reached from `rows`.
    pub(super) fn lookup(&self, rows: &[StateRow]) -> Option<Vec<Skipped>> {
        let memo = self.0.lock().ok()?;
        let verdict = memo.as_ref()?;
        (verdict.rows == rows).then(|| verdict.skipped.clone())
    }

    /// Remembers that `rows` are up to date, with the steps the verdict skipped.
    pub(super) fn remember(&self, rows: Vec<StateRow>, skipped: Vec<Skipped>) {
        if let Ok(mut memo) = self.0.lock() {
            *memo = Some(Verdict { rows, skipped });
        }
    }

    /// Forgets the verdict: the manager's settings changed.
    pub(super) fn forget(&mut self) {
        if let Ok(memo) = self.0.get_mut() {
            *memo = None;
        }
    }
}
