//! The stairway: every step of every table's chain, up, down and up again, on a fresh
//! database, comparing schema snapshots (pytest-alembic's `test_up_down_consistency`, on every
//! backend).
//!
//! For each step, in the order `up` runs them: snapshot, (seed rows), up, snapshot, (check),
//! down, snapshot and compare with the one before the up, (check), up again and compare with
//! the one after the first up. A failing step is recorded with its diff and the walk goes on
//! from a fresh database brought to just after that step, so one run names every bad step; a
//! step whose up fails leaves its table just before it, and the table's later steps are
//! reported as not reached. `irreversible` steps are passed over, and the report says so.

use super::{Backend, TestDatabase};
use crate::snapshot::{snapshot, ColumnMove, Schema, SchemaDiff};
use crate::DEFAULT_TRACKING_TABLE;
use migrate_core::conn::Conn;
use migrate_core::error::{Error, Result};
use migrate_core::manager::MigrationManager;
use migrate_core::migration::{MigrationFuture, MigrationSet};
use migrate_core::status::MigrationInfo;
use migrate_core::step::StepKey;
use std::fmt;
use std::sync::Arc;

/// A data check's function: an async closure over the connection, which may capture state
/// (`move |db| Box::pin(async move { ... })`).
pub type CheckFn =
    Arc<dyn for<'a, 'b> Fn(&'a mut Conn<'b>) -> MigrationFuture<'a> + Send + Sync + 'static>;

/// Rows to seed before a step's up, and assertions after its up and after its down: for data
/// migrations. Each part is optional, and each is a closure that may capture state:
///
/// ```
/// use migrate_backends::testing::DataCheck;
/// use std::sync::Arc;
/// let expected = Arc::new(5_i64);
/// let check = DataCheck::new()
///     .seed(|db| Box::pin(async move {
///         db.execute("INSERT INTO healthy (id, score) VALUES (1, 2), (2, 3)").await?;
///         Ok(())
///     }))
///     .after_down(move |db| {
///         let expected = Arc::clone(&expected);
///         Box::pin(async move {
///             let sum = db.query_i64("SELECT SUM(score) FROM healthy").await?;
///             if sum == *expected { Ok(()) } else { Err(migrate_core::error::Error::msg("scores lost")) }
///         })
///     });
/// # let _ = check;
/// ```
#[derive(Clone, Default)]
pub struct DataCheck {
    seed: Option<CheckFn>,
    after_up: Option<CheckFn>,
    after_down: Option<CheckFn>,
}

impl DataCheck {
    /// A check that does nothing yet.
    pub fn new() -> Self {
        DataCheck::default()
    }

    /// Runs before the up, on the schema at the step's parent.
    pub fn seed<F>(mut self, f: F) -> Self
    where
        F: for<'a, 'b> Fn(&'a mut Conn<'b>) -> MigrationFuture<'a> + Send + Sync + 'static,
    {
        self.seed = Some(Arc::new(f));
        self
    }

    /// Runs after the up; an error fails the step.
    pub fn after_up<F>(mut self, f: F) -> Self
    where
        F: for<'a, 'b> Fn(&'a mut Conn<'b>) -> MigrationFuture<'a> + Send + Sync + 'static,
    {
        self.after_up = Some(Arc::new(f));
        self
    }

    /// Runs after the down; an error fails the step.
    pub fn after_down<F>(mut self, f: F) -> Self
    where
        F: for<'a, 'b> Fn(&'a mut Conn<'b>) -> MigrationFuture<'a> + Send + Sync + 'static,
    {
        self.after_down = Some(Arc::new(f));
        self
    }
}

/// Where in a step the stairway found a problem.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Before the up: the snapshot of the schema at the step's parent.
    BeforeUp,
    /// The up, or the snapshot after it.
    Up,
    /// The down, or the comparison with the schema from before the up.
    Down,
    /// The second up, or the comparison with the schema of the first.
    Redo,
    /// A data check: the seed, or the check after the up or after the down.
    Data,
}

/// What went wrong in a phase, as data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The migration (or the data check) returned an error: it did not run to the end.
    Failed {
        /// The error, as text.
        error: String,
    },
    /// The schema could not be read.
    Snapshot {
        /// The error, as text.
        error: String,
    },
    /// The phase ran, and left the schema different from what it should be. The changes are
    /// in `diff.changes`, one value per line; column moves in `diff.moves`.
    SchemaDiffers {
        /// Expected (before) against found (after).
        diff: SchemaDiff,
    },
}

/// One step that failed the round trip.
#[derive(Debug, Clone)]
pub struct StairwayFailure {
    /// The step.
    pub step: StepKey,
    /// Where it failed.
    pub phase: Phase,
    /// What happened.
    pub problem: Problem,
}

impl fmt::Display for StairwayFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match (&self.problem, self.phase) {
            (Problem::Snapshot { .. }, Phase::BeforeUp) => {
                "the schema before the up could not be read"
            }
            (Problem::Snapshot { .. }, _) => "the schema could not be read",
            (_, Phase::BeforeUp) => "the step could not be prepared",
            (Problem::Failed { .. }, Phase::Up) => "up failed",
            (Problem::Failed { .. }, Phase::Down) => "down failed",
            (Problem::Failed { .. }, Phase::Redo) => "up after down failed",
            (_, Phase::Data) => "data check failed",
            (Problem::SchemaDiffers { .. }, Phase::Down) => {
                "down did not restore the schema from before the up"
            }
            (Problem::SchemaDiffers { .. }, _) => {
                "up after down did not give the schema of the first up"
            }
        };
        write!(f, "{} ({}): {what}:", self.step, self.step.table)?;
        match &self.problem {
            Problem::Failed { error } | Problem::Snapshot { error } => write!(f, "\n  {error}"),
            Problem::SchemaDiffers { diff } => write!(f, "\n{}", diff.to_string().trim_end()),
        }
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
    /// Steps not tried: an earlier step of their table failed to come up.
    pub not_reached: Vec<StepKey>,
}

impl StairwayReport {
    /// Panics with every failure, each naming its step and showing its diff.
    pub fn assert_ok(&self) {
        if !self.failures.is_empty() {
            let list: Vec<String> = self.failures.iter().map(ToString::to_string).collect();
            panic!(
                "stairway on {}: {} of {} steps failed{}\n\n{}",
                self.backend.name(),
                self.failures.len(),
                self.failures.len()
                    + self.passed.len()
                    + self.irreversible.len()
                    + self.not_reached.len(),
                if self.not_reached.is_empty() {
                    String::new()
                } else {
                    format!(", {} not reached", self.not_reached.len())
                },
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
        for step in &self.not_reached {
            writeln!(
                f,
                "  not reached (an earlier step of its table did not come up): {step}"
            )?;
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
        f.debug_struct("DataCheck")
            .field("seed", &self.seed.is_some())
            .field("after_up", &self.after_up.is_some())
            .field("after_down", &self.after_down.is_some())
            .finish()
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
            not_reached: Vec::new(),
        };
        // The steps that could not come up: their table's later steps are not tried, and a
        // rebuilt database stops the table before them.
        let mut stuck: Vec<StepKey> = Vec::new();
        for (i, info) in steps.iter().enumerate() {
            if stopped(&stuck, &info.step) {
                report.not_reached.push(info.step.clone());
                continue;
            }
            let failure = match self
                .round_trip(&db, &manager, info, &stuck, &mut report)
                .await
            {
                Ok(Tried::RoundTripped) => continue,
                // A step of another table it runs after did not come up: nothing ran, and
                // its table stops here too.
                Ok(Tried::NotReached) => {
                    report.not_reached.push(info.step.clone());
                    stuck.push(info.step.clone());
                    continue;
                }
                Err(failure) => failure,
            };
            if matches!(
                (failure.phase, &failure.problem),
                (Phase::Up, Problem::Failed { .. })
            ) {
                stuck.push(info.step.clone());
            }
            report.failures.push(*failure);
            // Start again from a fresh database brought to just after this step (before it,
            // for a step that did not come up).
            db = TestDatabase::create(backend)
                .await?
                .ok_or_else(|| Error::Config(format!("{} went away", backend.name())))?;
            manager = MigrationManager::new(db.executor().await?, self.sets.iter().copied())?;
            for earlier in &steps[..=i] {
                if stopped(&stuck, &earlier.step) {
                    continue;
                }
                // A step that failed before its up was tried (its seed, its first snapshot)
                // may fail here: its table stops, and the report keeps what it found.
                if let Err(err) = up_to(&manager, &earlier.step).await {
                    stuck.push(earlier.step.clone());
                    report.failures.push(StairwayFailure {
                        step: earlier.step.clone(),
                        phase: Phase::Up,
                        problem: Problem::Failed {
                            error: super::with_causes(&err),
                        },
                    });
                }
            }
        }
        Ok(Some(report))
    }

    fn data_check(&self, step: &StepKey) -> Option<&DataCheck> {
        let name = format!("{}@{}", step.table, step.version);
        let qualified = format!("{}:{name}", step.module);
        self.checks
            .iter()
            .find(|(s, _)| *s == name || *s == qualified)
            .map(|(_, c)| c)
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
        for (i, (name, _)) in self.checks.iter().enumerate() {
            let same_step = |other: &str| {
                steps.iter().any(|(qualified, bare)| {
                    (name == qualified || name == bare) && (other == qualified || other == bare)
                })
            };
            // Only the first check of a step would run: a second one is refused, not skipped.
            if let Some((other, _)) = self.checks[..i].iter().find(|(other, _)| same_step(other)) {
                return Err(migrate_core::error::Error::Config(format!(
                    "stairway checks `{other}` and `{name}` name the same step: give it one \
                     DataCheck (seed, after_up and after_down together)"
                )));
            }
            let irreversible = self.sets.iter().flat_map(|set| set.migrations()).any(|m| {
                let bare = format!("{}@{}", m.table(), m.version_str());
                let qualified = format!("{}:{bare}", m.set().module());
                (*name == bare || *name == qualified)
                    && matches!(
                        m.reversal(),
                        migrate_core::migration::Reversal::Irreversible
                    )
            });
            if irreversible && self.checks[i].1.after_down.is_some() {
                return Err(migrate_core::error::Error::Config(format!(
                    "stairway check `{name}` has an after_down, but the step is irreversible: \
                     it never comes down, so the check would never run"
                )));
            }
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
        stuck: &[StepKey],
        report: &mut StairwayReport,
    ) -> std::result::Result<Tried, Box<StairwayFailure>> {
        let step = &info.step;
        let fail = |phase, problem| {
            Box::new(StairwayFailure {
                step: step.clone(),
                phase,
                problem,
            })
        };
        let failed = |phase| {
            move |e: Error| {
                fail(
                    phase,
                    Problem::Failed {
                        error: super::with_causes(&e),
                    },
                )
            }
        };
        let unreadable = |phase| {
            move |e: Error| {
                fail(
                    phase,
                    Problem::Snapshot {
                        error: super::with_causes(&e),
                    },
                )
            }
        };
        let check = self.data_check(step);
        let hook = |pick: fn(&DataCheck) -> &Option<CheckFn>| check.and_then(|c| pick(c).clone());
        let before = snap(db).await.map_err(unreadable(Phase::BeforeUp))?;
        if let Some(seed) = hook(|c| &c.seed) {
            run_check(db, &seed).await.map_err(failed(Phase::Data))?;
        }
        if let Err(err) = up_to(manager, step).await {
            if let Error::DependencyNotApplied { dependency, .. } = &err {
                if stopped(stuck, dependency) {
                    return Ok(Tried::NotReached);
                }
            }
            return Err(failed(Phase::Up)(err));
        }
        let after = snap(db).await.map_err(unreadable(Phase::Up))?;
        if let Some(after_up) = hook(|c| &c.after_up) {
            run_check(db, &after_up)
                .await
                .map_err(failed(Phase::Data))?;
        }
        if !info.reversible {
            report.irreversible.push(step.clone());
            return Ok(Tried::RoundTripped);
        }
        let table = format!("{}:{}", step.module, step.table);
        let down = match &info.parent {
            Some(parent) => manager.down().table(table).target(parent.to_string()).await,
            None => manager.down().table(table).to_base().await,
        };
        down.map_err(failed(Phase::Down))?;
        let reverted = snap(db).await.map_err(unreadable(Phase::Down))?;
        self.compare(step, &before, &reverted, Phase::Down, report)?;
        if let Some(after_down) = hook(|c| &c.after_down) {
            run_check(db, &after_down)
                .await
                .map_err(failed(Phase::Data))?;
        }
        up_to(manager, step).await.map_err(failed(Phase::Redo))?;
        let again = snap(db).await.map_err(unreadable(Phase::Redo))?;
        self.compare(step, &after, &again, Phase::Redo, report)?;
        report.passed.push(step.clone());
        Ok(Tried::RoundTripped)
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
                problem: Problem::SchemaDiffers { diff },
            }));
        }
        for m in diff.moves {
            report.column_moves.push((step.clone(), m));
        }
        Ok(())
    }
}

/// How far the stairway got with one step.
enum Tried {
    /// Up, down and up again (or up alone, for an irreversible step).
    RoundTripped,
    /// Not tried: a step it runs after did not come up.
    NotReached,
}

/// Whether `step` is at or above a step of its table that could not come up.
fn stopped(stuck: &[StepKey], step: &StepKey) -> bool {
    stuck
        .iter()
        .any(|s| s.module == step.module && s.table == step.table && step.version >= s.version)
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
async fn run_check(db: &TestDatabase, f: &CheckFn) -> Result<()> {
    // sqlx's MySQL driver takes only `mysql:` (`connect` takes `mariadb:` too).
    let url = match db.url().strip_prefix("mariadb:") {
        Some(rest) => format!("mysql:{rest}"),
        None => db.url().to_string(),
    };
    let url = url.as_str();
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
    match db.backend() {
        #[cfg(feature = "sqlite")]
        Backend::Sqlite => on!(sqlx::SqliteConnection),
        #[cfg(feature = "postgres")]
        Backend::Postgres => on!(sqlx::PgConnection),
        #[cfg(feature = "mysql")]
        Backend::MySql => on!(sqlx::MySqlConnection),
        #[allow(unreachable_patterns)]
        other => Err(Error::Config(format!(
            "data checks on {} need the `{}` feature",
            other.name(),
            other.name()
        ))),
    }
}
