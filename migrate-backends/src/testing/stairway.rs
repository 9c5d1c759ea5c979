//! The stairway: every step of every table's chain, up, down and up again, on a fresh
//! database, comparing schema snapshots (pytest-alembic's `test_up_down_consistency`, on every
//! backend).
//!
//! For each step, in the order `up` runs them: snapshot, (seed rows), up, snapshot, (check),
//! down, snapshot and compare with the one before the up, (check), up again and compare with
//! the one after the first up. A failing step is recorded with its diff and the walk goes on
//! from a fresh database brought to just after that step, so one run names every bad step.
//! `irreversible` steps are passed over, and the report says so.

use super::snapshot::{snapshot, ColumnMove, Schema};
use super::{Backend, TestDatabase};
use crate::DEFAULT_TRACKING_TABLE;
use migrate_core::error::{Error, Result};
use migrate_core::manager::MigrationManager;
use migrate_core::migration::{MigrationFn, MigrationSet};
use migrate_core::status::MigrationInfo;
use migrate_core::step::StepKey;
use std::fmt;

/// Rows to seed before a step's up, and assertions after its up and after its down: for data
/// migrations. Each is an `async fn(&mut Conn<'_>) -> Result<()>` behind the same boxing shim
/// as a migration: `|db| Box::pin(seed(db))`.
#[derive(Clone, Copy)]
pub struct DataCheck {
    /// Runs before the up (on the schema at the step's parent).
    pub seed: MigrationFn,
    /// Runs after the up; return an error to fail the step.
    pub after_up: MigrationFn,
    /// Runs after the down.
    pub after_down: MigrationFn,
}

/// Where in a step the stairway found a problem.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// The up failed.
    Up,
    /// The down failed, or did not restore the schema from before the up.
    Down,
    /// The second up failed, or did not give the schema of the first.
    Redo,
    /// A data check failed.
    Data,
}

/// One step that failed the round trip.
#[derive(Debug, Clone)]
pub struct StairwayFailure {
    /// The step.
    pub step: StepKey,
    /// Where it failed.
    pub phase: Phase,
    /// The schema diff, or the error.
    pub detail: String,
}

impl fmt::Display for StairwayFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.phase {
            Phase::Up => "up failed",
            Phase::Down => "down did not restore the schema from before the up",
            Phase::Redo => "up after down did not give the schema of the first up",
            Phase::Data => "data check failed",
        };
        write!(
            f,
            "{} ({}): {what}:\n{}",
            self.step,
            self.step.table,
            self.detail.trim_end()
        )
    }
}

/// What a stairway run did.
#[derive(Debug, Clone)]
pub struct StairwayReport {
    /// The backend it ran on.
    pub backend: Backend,
    /// Steps that went up, down and up again cleanly.
    pub passed: Vec<StepKey>,
    /// `irreversible` steps, applied but not reverted.
    pub irreversible: Vec<StepKey>,
    /// Columns that a round trip moved (dropped and re-added); not failures unless
    /// [`Stairway::strict_column_order`] is set.
    pub column_moves: Vec<(StepKey, ColumnMove)>,
    /// Steps that failed.
    pub failures: Vec<StairwayFailure>,
}

impl StairwayReport {
    /// Panics with every failure, each naming its step and showing its diff.
    pub fn assert_ok(&self) {
        if !self.failures.is_empty() {
            let list: Vec<String> = self.failures.iter().map(ToString::to_string).collect();
            panic!(
                "stairway on {}: {} of {} steps failed\n\n{}",
                self.backend.name(),
                self.failures.len(),
                self.failures.len() + self.passed.len() + self.irreversible.len(),
                list.join("\n\n")
            );
        }
    }
}

impl fmt::Display for StairwayReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "stairway on {}: {} passed, {} failed, {} irreversible (passed over)",
            self.backend.name(),
            self.passed.len(),
            self.failures.len(),
            self.irreversible.len()
        )?;
        for step in &self.irreversible {
            writeln!(f, "  irreversible, not reverted: {step}")?;
        }
        for (step, m) in &self.column_moves {
            writeln!(
                f,
                "  {step}: column {} moved from position {} to {}",
                m.column, m.from, m.to
            )?;
        }
        for failure in &self.failures {
            writeln!(f, "{failure}")?;
        }
        Ok(())
    }
}

/// Configures and runs the stairway over some migration sets.
///
/// ```no_run
/// # async fn demo(set: &'static migrate_core::migration::MigrationSet) -> migrate_core::error::Result<()> {
/// use migrate_backends::testing::{Backend, Stairway};
/// if let Some(report) = Stairway::new([set]).run(Backend::Sqlite).await? {
///     report.assert_ok();
/// }
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Stairway {
    sets: Vec<&'static MigrationSet>,
    strict_column_order: bool,
    checks: Vec<(String, DataCheck)>,
}

impl fmt::Debug for DataCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DataCheck").finish_non_exhaustive()
    }
}

impl fmt::Debug for Stairway {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stairway")
            .field("sets", &self.sets)
            .field("strict_column_order", &self.strict_column_order)
            .field(
                "checks",
                &self.checks.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Stairway {
    /// A stairway over the migrations of `sets`.
    pub fn new(sets: impl IntoIterator<Item = &'static MigrationSet>) -> Self {
        Stairway {
            sets: sets.into_iter().collect(),
            strict_column_order: false,
            checks: Vec::new(),
        }
    }

    /// Whether a column that a round trip moved fails the step (default: reported only).
    pub fn strict_column_order(mut self, strict: bool) -> Self {
        self.strict_column_order = strict;
        self
    }

    /// Adds a data check around the step `table@X.Y.Z` (or `module:table@X.Y.Z`). A name that
    /// no linked migration has makes [`run`](Self::run) fail before it creates a database,
    /// instead of a check that silently never runs.
    pub fn check(mut self, step: &str, check: DataCheck) -> Self {
        self.checks.push((step.to_string(), check));
        self
    }

    /// Walks every step on a fresh database of `backend`; `Ok(None)` when the backend's server
    /// is unavailable (reported as skipped).
    pub async fn run(&self, backend: Backend) -> Result<Option<StairwayReport>> {
        self.check_names()?;
        let Some(mut db) = TestDatabase::create(backend).await? else {
            return Ok(None);
        };
        let mut manager = MigrationManager::new(db.executor().await?, self.sets.iter().copied())?;
        let steps = manager.pending().await?;
        let mut report = StairwayReport {
            backend,
            passed: Vec::new(),
            irreversible: Vec::new(),
            column_moves: Vec::new(),
            failures: Vec::new(),
        };
        for (i, info) in steps.iter().enumerate() {
            let failure = match self.round_trip(&db, &manager, info, &mut report).await {
                Ok(()) => continue,
                Err(failure) => failure,
            };
            report.failures.push(*failure);
            // Start again from a fresh database brought to just after this step.
            db = TestDatabase::create(backend)
                .await?
                .ok_or_else(|| Error::Config(format!("{} went away", backend.name())))?;
            manager = MigrationManager::new(db.executor().await?, self.sets.iter().copied())?;
            for earlier in &steps[..=i] {
                up_to(&manager, &earlier.step).await?;
            }
        }
        Ok(Some(report))
    }

    fn data_check(&self, step: &StepKey) -> Option<DataCheck> {
        let name = format!("{}@{}", step.table, step.version);
        let qualified = format!("{}:{name}", step.module);
        self.checks
            .iter()
            .find(|(s, _)| *s == name || *s == qualified)
            .map(|(_, c)| *c)
    }

    /// Every check names a linked step: `table@X.Y.Z` or `module:table@X.Y.Z`.
    fn check_names(&self) -> Result<()> {
        if self.checks.is_empty() {
            return Ok(());
        }
        let graph = migrate_core::graph::Graph::build(self.sets.iter().copied())?;
        let steps: Vec<(String, String)> = graph
            .steps()
            .map(|key| {
                let name = format!("{}@{}", key.table, key.version);
                (format!("{}:{name}", key.module), name)
            })
            .collect();
        for (name, _) in &self.checks {
            if !steps
                .iter()
                .any(|(qualified, bare)| name == qualified || name == bare)
            {
                let mut known: Vec<&str> = steps.iter().map(|(_, bare)| bare.as_str()).collect();
                known.sort_unstable();
                known.dedup();
                return Err(migrate_core::error::Error::Config(format!(
                    "stairway check `{name}` names no linked migration (expected table@X.Y.Z); the steps are {}",
                    known.join(", ")
                )));
            }
        }
        Ok(())
    }

    async fn round_trip(
        &self,
        db: &TestDatabase,
        manager: &MigrationManager,
        info: &MigrationInfo,
        report: &mut StairwayReport,
    ) -> std::result::Result<(), Box<StairwayFailure>> {
        let step = &info.step;
        let fail = |phase, detail: String| {
            Box::new(StairwayFailure {
                step: step.clone(),
                phase,
                detail,
            })
        };
        let err = |phase| move |e: Error| fail(phase, format!("  {e}"));
        let check = self.data_check(step);
        let before = snap(db).await.map_err(err(Phase::Up))?;
        if let Some(check) = check {
            run_check(db, check.seed).await.map_err(err(Phase::Data))?;
        }
        up_to(manager, step).await.map_err(err(Phase::Up))?;
        let after = snap(db).await.map_err(err(Phase::Up))?;
        if let Some(check) = check {
            run_check(db, check.after_up)
                .await
                .map_err(err(Phase::Data))?;
        }
        if !info.reversible {
            report.irreversible.push(step.clone());
            return Ok(());
        }
        let table = format!("{}:{}", step.module, step.table);
        let down = match &info.parent {
            Some(parent) => manager.down().table(table).target(parent.to_string()).await,
            None => manager.down().table(table).to_base().await,
        };
        down.map_err(err(Phase::Down))?;
        let reverted = snap(db).await.map_err(err(Phase::Down))?;
        self.compare(step, &before, &reverted, Phase::Down, report)?;
        if let Some(check) = check {
            run_check(db, check.after_down)
                .await
                .map_err(err(Phase::Data))?;
        }
        up_to(manager, step).await.map_err(err(Phase::Redo))?;
        let again = snap(db).await.map_err(err(Phase::Redo))?;
        self.compare(step, &after, &again, Phase::Redo, report)?;
        report.passed.push(step.clone());
        Ok(())
    }

    fn compare(
        &self,
        step: &StepKey,
        expected: &Schema,
        actual: &Schema,
        phase: Phase,
        report: &mut StairwayReport,
    ) -> std::result::Result<(), Box<StairwayFailure>> {
        let diff = expected.diff(actual);
        let clean = if self.strict_column_order {
            diff.is_empty()
        } else {
            diff.is_empty_ignoring_moves()
        };
        if !clean {
            return Err(Box::new(StairwayFailure {
                step: step.clone(),
                phase,
                detail: diff.to_string(),
            }));
        }
        for m in diff.moves {
            report.column_moves.push((step.clone(), m));
        }
        Ok(())
    }
}

async fn snap(db: &TestDatabase) -> Result<Schema> {
    snapshot(db.url(), None, DEFAULT_TRACKING_TABLE).await
}

async fn up_to(manager: &MigrationManager, step: &StepKey) -> Result<()> {
    manager
        .up()
        .table(format!("{}:{}", step.module, step.table))
        .target(step.version.to_string())
        .await
        .map(|_| ())
}

/// Runs a data-check function on a connection to the test database.
async fn run_check(db: &TestDatabase, f: MigrationFn) -> Result<()> {
    let url = db.url();
    let scheme = url.split(':').next().unwrap_or_default();
    macro_rules! on {
        ($conn:ty) => {{
            use sqlx::Connection;
            type Db = <$conn as Connection>::Database;
            let names = crate::statements::TrackingNames::new(
                <Db as crate::driver::Driver>::DIALECT,
                None,
                DEFAULT_TRACKING_TABLE,
            );
            let sql = <Db as crate::driver::Driver>::statements(&names);
            let mut conn = <$conn>::connect(url).await?;
            let mut raw =
                crate::raw::SqlxRaw::<<$conn as Connection>::Database>::new(&mut conn, &sql);
            let mut wrapped = migrate_core::conn::Conn::new(&mut raw, None);
            let result = f(&mut wrapped).await;
            conn.close().await?;
            result
        }};
    }
    match scheme {
        #[cfg(feature = "sqlite")]
        "sqlite" => on!(sqlx::SqliteConnection),
        #[cfg(feature = "postgres")]
        "postgres" => on!(sqlx::PgConnection),
        #[cfg(feature = "mysql")]
        "mysql" => on!(sqlx::MySqlConnection),
        _ => Err(Error::Config(format!("no backend for {url}"))),
    }
}
