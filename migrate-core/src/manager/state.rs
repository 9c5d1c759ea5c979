//! Reading the state table and checking it against the linked graph: versions this binary does
//! not know, and checksum drift (the history is read only when a chain checksum differs).
//!
//! Reading is split from judging: [`MigrationManager::survey`] never fails on what the rows say,
//! so the listings can show a dirty, drifted or newer database; [`MigrationManager::read_states`]
//! turns the same survey into the errors that refuse a run.

use super::setup::MigrationManager;
use crate::backend::StateRow;
use crate::checksum;
use crate::error::{Error, Result};
use crate::plan::{self, ChainState, Request};
use crate::report::Skipped;
use crate::status::ChecksumDrift;
use crate::step::{Direction, Outcome};
use semver::Version;

/// What the state table says about this manager's modules, before any judgement.
pub(super) struct Survey {
    /// One state per chain of the graph, in the graph's chain order.
    pub(super) states: Vec<ChainState>,
    /// Rows that record a version for a table this binary has no migrations for.
    pub(super) strangers: Vec<StateRow>,
    /// Chains whose stored chain checksum differs from the binary's, with their row.
    pub(super) suspects: Vec<(usize, StateRow)>,
}

impl MigrationManager {
    /// Reads the state table (one query) and checks it against the graph: a version this binary
    /// does not know is an error, and so is checksum drift unless `force` (the recovery path).
    pub(super) async fn read_states(&self, force: bool) -> Result<Vec<ChainState>> {
        let survey = self.survey().await?;
        self.judge(survey, force).await
    }

    /// Turns a survey into the chain states a run plans from, or the error that refuses it.
    pub(super) async fn judge(&self, survey: Survey, force: bool) -> Result<Vec<ChainState>> {
        if let Some(refusal) = self.refusal(&survey) {
            return Err(refusal);
        }
        if !survey.suspects.is_empty() && !force {
            if let Some((_, drift)) = self.find_drift(&survey.suspects).await?.into_iter().next() {
                return Err(drift.into_error());
            }
        }
        Ok(survey.states)
    }

    /// What refuses a run in the rows themselves, before any history is read: a version or
    /// table this binary does not know, or an adoption two tools disagree on.
    pub(super) fn refusal(&self, survey: &Survey) -> Option<Error> {
        if let Some(row) = survey.strangers.first() {
            return Some(match (&row.version, &row.dirty) {
                (None, Some(mark)) => Error::dirty(&row.module, &row.table, mark),
                (version, _) => Error::unknown_applied(
                    &row.module,
                    &row.table,
                    version.as_deref().unwrap_or_default(),
                ),
            });
        }
        for (c, state) in survey.states.iter().enumerate() {
            if let (Some((adopted, current)), Some(from)) = (&state.adoption, &self.adopted_from) {
                return Some(Error::AdoptedVersion {
                    table: self.graph.chains[c].table.to_string(),
                    from: from.clone(),
                    adopted: adopted.clone(),
                    tracking: self.backend.tracking_table().to_string(),
                    current: current.clone(),
                });
            }
            if let Some(text) = &state.unknown {
                let chain = &self.graph.chains[c];
                return Some(Error::unknown_applied(chain.module, chain.table, text));
            }
        }
        None
    }

    /// Whether a survey reads nothing but the state rows: not with `with_adopted_versions`
    /// or `with_baseline_for_existing_tables`, which read other tables.
    pub(super) fn surveys_rows_alone(&self) -> bool {
        self.adopted_from.is_none() && !self.baseline_if_exists
    }

    /// Reads the state table (one query) without judging it: versions this binary does not know
    /// are kept as text in [`ChainState::unknown`], and chains whose checksum differs are listed.
    pub(super) async fn survey(&self) -> Result<Survey> {
        let rows = self.backend.read_state().await?;
        self.survey_rows(&rows).await
    }

    /// [`survey`](Self::survey) of rows already read.
    pub(super) async fn survey_rows(&self, rows: &[StateRow]) -> Result<Survey> {
        let (mut survey, has_row) = self.survey_rows_alone(rows);
        if self.baseline_if_exists {
            for (c, state) in survey.states.iter_mut().enumerate() {
                // No version recorded (no row, or a row a cleared mark left behind).
                if state.stored.is_none()
                    && state.unknown.is_none()
                    && state.baseline.is_some()
                    && !self.backend.table_exists(self.physical(c)).await?
                {
                    state.baseline = None;
                }
            }
        }
        if let Some(from) = &self.adopted_from {
            let adopted = self.backend.read_adopted(from).await?;
            let missing = self.adopted_but_missing(&adopted, &has_row).await?;
            self.adopt(&adopted, &has_row, &missing, &mut survey.states);
            self.keep_own_downs(&mut survey.states).await?;
        }
        Ok(survey)
    }

    /// The chains whose adopted row names a table that does not exist, among those with no
    /// row of their own and a row this manager would take: the other tool records a version
    /// for tables it never created (Agno's manager stamps every table type it knows, created
    /// or not), which says nothing about them. A version it cannot take is refused whether or
    /// not the table exists. One catalog query per such table, only with
    /// `with_adopted_versions`.
    async fn adopted_but_missing(
        &self,
        adopted: &[(String, String)],
        has_row: &[bool],
    ) -> Result<Vec<bool>> {
        let mut missing = vec![false; has_row.len()];
        for (c, flag) in missing.iter_mut().enumerate() {
            let physical = self.physical(c);
            let taken = adopted
                .iter()
                .find(|(table, _)| table == physical)
                .is_some_and(|(_, text)| self.adopted_version(c, text).is_some());
            if !has_row[c] && taken && !self.backend.table_exists(physical).await? {
                *flag = true;
            }
        }
        Ok(missing)
    }

    /// What an adopted row's `text` is compared with this manager's own version as: the
    /// release it stands for, else the version as written (one no table declares).
    fn adopted_compared(&self, c: usize, text: &str) -> Option<Version> {
        self.adopted_version(c, text)
            .or_else(|| super::setup::parse_version(text).ok())
    }

    /// The version of chain `c` that an adopted row's `text` stands for, read as a release of
    /// the product: the chain's highest version at or below it, when some table of the same
    /// module declares that version (the other tool numbers its versions per release, and
    /// stamps a table with a release none of that table's own steps carry: Agno stamps its
    /// memories table 3.0.0, the memories steps ending at 2.3.0). `None` for a version no
    /// table of the module declares, or one below the chain's first.
    pub(super) fn adopted_version(&self, c: usize, text: &str) -> Option<Version> {
        let version = super::setup::parse_version(text).ok()?;
        let chain = &self.graph.chains[c];
        let released = self.graph.chains.iter().any(|other| {
            other.module == chain.module && other.position(&self.graph, &version).is_some()
        });
        if !released {
            return None;
        }
        let below = chain.applied_len(&self.graph, Some(&version));
        let node = *chain.nodes.get(below.checked_sub(1)?)?;
        Some(self.graph.nodes[node].version.clone())
    }

    /// Clears the adoption conflicts this manager's own moves made: an adopted version above
    /// the tracking row's is the other tool migrating the table again only if this manager's
    /// own history never had the table that far (an up applied or stamped there, or a down
    /// that reverted it from there). After such a move below it, the adopted table still says
    /// where the other tool left it. The history is read only when the rows suggest a
    /// conflict this manager has not already found settled.
    async fn keep_own_downs(&self, states: &mut [ChainState]) -> Result<()> {
        let mut open = Vec::new();
        for (c, state) in states.iter_mut().enumerate() {
            let Some((text, Some(_))) = &state.adoption else {
                continue;
            };
            let known = self
                .adoptions_reached
                .lock()
                .is_ok_and(|known| known.iter().any(|(k, t)| *k == c && t == text));
            if known {
                state.adoption = None;
            } else {
                open.push(c);
            }
        }
        if open.is_empty() {
            return Ok(());
        }
        let history = self.backend.history(&self.modules(), None).await?;
        for c in open {
            let chain = &self.graph.chains[c];
            let physical = self.physical(c);
            let highest = history
                .iter()
                .filter(|e| e.module == chain.module && e.table == physical)
                .filter(|e| {
                    matches!(
                        (e.direction, e.outcome),
                        (Direction::Up, Outcome::Succeeded | Outcome::Stamped)
                            | (Direction::Down, Outcome::Succeeded)
                    )
                })
                .filter_map(|e| semver::Version::parse(&e.version).ok())
                .max();
            let Some((text, _)) = states[c].adoption.clone() else {
                continue;
            };
            if let (Some(adopted), Some(highest)) = (self.adopted_compared(c, &text), highest) {
                if adopted <= highest {
                    states[c].adoption = None;
                    if let Ok(mut known) = self.adoptions_reached.lock() {
                        known.push((c, text));
                    }
                }
            }
        }
        Ok(())
    }

    /// What the rows alone say, before the settings that read other tables
    /// (`with_baseline_for_existing_tables`, `with_adopted_versions`); with, per chain, whether
    /// it has a row.
    pub(super) fn survey_rows_alone(&self, rows: &[StateRow]) -> (Survey, Vec<bool>) {
        let mut states: Vec<ChainState> = (0..self.graph.chains.len())
            .map(|c| {
                // A baseline below a table's first version (a table a later release added)
                // says nothing about it: nothing of it is applied.
                let chain = &self.graph.chains[c];
                let baseline = self
                    .baseline_of(c)
                    .filter(|b| chain.applied_len(&self.graph, Some(b)) > 0);
                ChainState {
                    unrecorded_reads_as_baseline: baseline.is_some() && !self.baseline_if_exists,
                    baseline,
                    ..ChainState::default()
                }
            })
            .collect();
        let mut strangers = Vec::new();
        let mut suspects = Vec::new();
        let mut has_row = vec![false; states.len()];
        for row in rows {
            if !self.sets.iter().any(|s| s.module() == row.module) {
                continue;
            }
            let table = self.table_names.logical(&row.table);
            // A row under the logical name of a table this manager renames was written by a
            // manager without the mapping: another physical table, not this one's state.
            let named_here = self.table_names.physical(table) == row.table;
            let chain = named_here
                .then(|| self.graph.chain_index(&row.module, table))
                .flatten();
            let Some(c) = chain else {
                // A newer binary's table: recorded, or dirty from its first step.
                if row.version.is_some() || row.dirty.is_some() {
                    strangers.push(row.clone());
                }
                continue;
            };
            // A row with no version and no mark (a refused first step's) records nothing: the
            // baseline or an adopted version still applies to it.
            has_row[c] |= row.version.is_some() || row.dirty.is_some();
            let state = &mut states[c];
            state.dirty = row.dirty.clone();
            let Some(text) = row.version.clone() else {
                continue;
            };
            let chain = &self.graph.chains[c];
            let position = Version::parse(&text)
                .ok()
                .and_then(|v| chain.position(&self.graph, &v));
            let Some(pos) = position else {
                state.unknown = Some(text);
                continue;
            };
            state.stored = Some(self.graph.nodes[chain.nodes[pos]].version.clone());
            state.raw = Some(text);
            if row.checksum.as_deref().is_some_and(checksum::is_legacy) {
                // Written before SHA-256: trusted as is, re-pinned by the next locked run.
                state.legacy = true;
            } else if row.checksum.as_deref()
                != Some(checksum::render(chain.cumulative[pos]).as_str())
            {
                suspects.push((c, row.clone()));
            }
        }
        let survey = Survey {
            states,
            strangers,
            suspects,
        };
        (survey, has_row)
    }

    /// The state rows of a database where every table is at its latest version, as a run
    /// writes them (the head's version, the chain checksum up to it, no dirty mark), and the
    /// steps a plain `up` skips there; `None` when the settings make the survey read more than
    /// the rows, or the verdict on those rows would not be "up to date".
    pub(super) fn verdict_at_heads(&self) -> Option<(Vec<StateRow>, Vec<Skipped>)> {
        if !self.surveys_rows_alone() {
            return None;
        }
        let rows = self
            .graph
            .chains
            .iter()
            .enumerate()
            .map(|(c, chain)| {
                Some(StateRow {
                    module: chain.module.to_string(),
                    table: self.physical(c).to_string(),
                    version: Some(chain.head(&self.graph)?.to_string()),
                    checksum: Some(checksum::render(*chain.cumulative.last()?)),
                    dirty: None,
                })
            })
            .collect::<Option<Vec<StateRow>>>()?;
        // The same survey, judgement and plan a run makes of these rows.
        let (survey, _) = self.survey_rows_alone(&rows);
        if self.refusal(&survey).is_some() || !survey.suspects.is_empty() {
            return None;
        }
        let plan = plan::plan(&self.graph, &survey.states, &Request::latest_up()).ok()?;
        plan.steps.is_empty().then_some((rows, plan.skipped))
    }

    /// Takes the adopted version table's rows as the starting state of the chains that have
    /// no row of their own (each row read as a release, see [`adopted_version`]; a row for a
    /// table that does not exist, flagged in `missing`, is passed over), and notes where the
    /// two cannot both be right.
    ///
    /// [`adopted_version`]: Self::adopted_version
    fn adopt(
        &self,
        adopted: &[(String, String)],
        has_row: &[bool],
        missing: &[bool],
        states: &mut [ChainState],
    ) {
        for (c, state) in states.iter_mut().enumerate() {
            let physical = self.physical(c);
            let Some((_, text)) = adopted.iter().find(|(table, _)| table == physical) else {
                continue;
            };
            let chain = &self.graph.chains[c];
            let version = self.adopted_version(c, text);
            if has_row[c] {
                // Ours counts; the other tool moving past it means two tools migrate one table.
                if let (Some(compared), Some(current)) =
                    (&self.adopted_compared(c, text), &state.stored)
                {
                    if compared > current {
                        state.adoption = Some((text.clone(), Some(current.to_string())));
                    }
                }
                // A row with no version would read as the adopted version again: a down keeps
                // the first step, as under a baseline.
                if let Some(version) = version {
                    state.baseline = Some(version);
                    state.unrecorded_reads_as_baseline = true;
                }
                continue;
            }
            if missing.get(c).copied().unwrap_or(false) {
                tracing::debug!(
                    table = chain.table,
                    adopted = %text,
                    "the adopted version names a table that does not exist; passed over"
                );
                continue;
            }
            match version {
                Some(version) => {
                    tracing::debug!(table = chain.table, %version, adopted = %text, "adopted starting version");
                    state.baseline = Some(version);
                    state.adopted = true;
                    state.unrecorded_reads_as_baseline = true;
                }
                None => state.adoption = Some((text.clone(), None)),
            }
        }
    }

    /// A step of chain `c` below its recorded version that never ran although steps on both
    /// sides of it did: a migration added under versions already applied (refinery's
    /// "missing", sqlx's too), which a run would take as applied and skip.
    fn inserted_below(
        &self,
        c: usize,
        applied: usize,
        history: &[crate::status::HistoryEntry],
    ) -> Option<ChecksumDrift> {
        let pos = *self.inserted_steps(c, applied, history).first()?;
        let node = &self.graph.nodes[self.graph.chains[c].nodes[pos]];
        Some(ChecksumDrift {
            step: node.key(),
            location: node.migration.location(),
            applied: crate::status::NEVER_APPLIED.to_string(),
            current: node.migration.checksum().to_string(),
            never_applied: true,
        })
    }

    /// The positions, among chain `c`'s first `applied` steps, of the steps with no history
    /// row at all whose nearest recorded neighbours below and above are both runs. Not such a
    /// step: one with any row (a failed run an operator completed by hand), and one at or
    /// under a stamp or a fresh install, which stand for the steps below them (as a baseline
    /// does, whose steps have no rows and no run below them). Each step is judged by its
    /// newest row (a run after a stamp is a run), and an acceptance by `accept_checksums`
    /// ([`ACCEPTED_SUFFIX`](crate::status::ACCEPTED_SUFFIX)) vouches for its own step only.
    pub(super) fn inserted_steps(
        &self,
        c: usize,
        applied: usize,
        history: &[crate::status::HistoryEntry],
    ) -> Vec<usize> {
        #[derive(Clone, Copy, PartialEq)]
        enum Record {
            Run,
            Anchor,
            Other,
        }
        let chain = &self.graph.chains[c];
        let physical = self.physical(c);
        let records: Vec<Option<Record>> = chain.nodes[..applied]
            .iter()
            .map(|&n| {
                let node = &self.graph.nodes[n];
                let version = node.version.to_string();
                let fresh = node.migration.fresh_name();
                let rows = history.iter().filter(|h| {
                    h.module == chain.module && h.table == physical && h.version == version
                });
                // The history is newest first: the step's newest row says what it is now.
                let newest = rows.into_iter().next()?;
                Some(match (newest.direction, newest.outcome) {
                    (Direction::Up, Outcome::Stamped)
                        if newest.name.ends_with(crate::status::ACCEPTED_SUFFIX) =>
                    {
                        Record::Run
                    }
                    (Direction::Up, Outcome::Stamped) => Record::Anchor,
                    (Direction::Up, Outcome::Succeeded) if Some(newest.name.as_str()) == fresh => {
                        Record::Anchor
                    }
                    (Direction::Up, Outcome::Succeeded) => Record::Run,
                    _ => Record::Other,
                })
            })
            .collect();
        (0..applied)
            .filter(|&i| {
                records[i].is_none()
                    && !records[i..].contains(&Some(Record::Anchor))
                    && records[..i].iter().rev().flatten().next() == Some(&Record::Run)
                    && records[i + 1..].iter().flatten().next() == Some(&Record::Run)
            })
            .collect()
    }

    /// The slow path, taken only when a chain checksum differs: finds, per suspect chain, the
    /// first applied step whose recorded checksum differs from the binary's, or a step added
    /// below steps already applied.
    pub(super) async fn find_drift(
        &self,
        suspects: &[(usize, StateRow)],
    ) -> Result<Vec<(usize, ChecksumDrift)>> {
        let modules = self.modules();
        let history = self.backend.history(&modules, None).await?;
        let mut drifts = Vec::new();
        for (c, row) in suspects {
            let chain = &self.graph.chains[*c];
            let stored = row.version.as_deref().and_then(|v| Version::parse(v).ok());
            let applied = chain.applied_len(&self.graph, stored.as_ref());
            let drifted = chain.nodes[..applied].iter().find_map(|&n| {
                let node = &self.graph.nodes[n];
                let version = node.version.to_string();
                // History is newest first: the latest successful up of this step is what ran.
                let recorded = history.iter().find(|h| {
                    h.module == chain.module
                        && h.table == self.physical(*c)
                        && h.version == version
                        && h.direction == Direction::Up
                        && h.outcome == Outcome::Succeeded
                })?;
                let current = node.migration.checksum();
                (recorded.checksum != current && !checksum::is_legacy(&recorded.checksum)).then(
                    || ChecksumDrift {
                        step: node.key(),
                        location: node.migration.location(),
                        applied: recorded.checksum.clone(),
                        current: current.to_string(),
                        never_applied: false,
                    },
                )
            });
            match drifted.or_else(|| self.inserted_below(*c, applied, &history)) {
                Some(drift) => drifts.push((*c, drift)),
                None => tracing::debug!(
                    module = chain.module,
                    table = chain.table,
                    "chain checksum differs, but no applied step drifted (steps below the baseline)"
                ),
            }
        }
        Ok(drifts)
    }
}
