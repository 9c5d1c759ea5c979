//! The [`Executor`] trait: what a backend provides so the engine can run a plan on a database.

use crate::conn::Dialect;
use crate::migration::MigrationFn;
use crate::status::{DirtyMark, HistoryEntry};
use crate::{BoxFuture, Result, Timestamp};
use std::fmt;
use std::time::Duration;

/// Whether a step goes up or comes down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Applies a migration.
    Up,
    /// Reverts a migration.
    Down,
}

impl Direction {
    /// `"up"` or `"down"`, as stored in the tracking table.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Up => "up",
            Direction::Down => "down",
        }
    }

    /// Parses the stored form.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "up" => Some(Direction::Up),
            "down" => Some(Direction::Down),
            _ => None,
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a recorded step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Journalled as started and not (yet) finished: the dirty state.
    Started,
    /// Finished successfully.
    Succeeded,
    /// Returned an error.
    Failed,
}

impl Outcome {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Started => "started",
            Outcome::Succeeded => "succeeded",
            Outcome::Failed => "failed",
        }
    }

    /// Parses the stored form.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "started" => Some(Outcome::Started),
            "succeeded" => Some(Outcome::Succeeded),
            "failed" => Some(Outcome::Failed),
            _ => None,
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One (module, table) row of the tracking table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateRow {
    /// The migration set's module.
    pub module: String,
    /// The table.
    pub table: String,
    /// The stored version; `None` when nothing is applied.
    pub version: Option<String>,
    /// The combined checksum of the chain up to `version`.
    pub checksum: Option<String>,
    /// The unfinished step, if a journalled step started and never finished.
    pub dirty: Option<DirtyMark>,
}

/// What the engine asks the executor to record for one step.
#[derive(Debug, Clone)]
pub struct StepRecord<'a> {
    /// The migration set's module.
    pub module: &'a str,
    /// The table.
    pub table: &'a str,
    /// The step's version.
    pub version: &'a str,
    /// The step's name.
    pub name: &'a str,
    /// The step's own checksum.
    pub checksum: &'a str,
    /// Up or down.
    pub direction: Direction,
    /// The stored version the engine planned from. The executor writes the new state only if
    /// the row still holds this (compare-and-set), so two runners never apply a step twice.
    pub expected: Option<&'a str>,
    /// The stored version once the step is done (`None`: nothing applied).
    pub new_version: Option<&'a str>,
    /// The chain checksum to store with `new_version`.
    pub new_checksum: Option<&'a str>,
}

/// One step for the executor to run: the record, the function and how to run it.
pub struct StepRun<'a> {
    /// What to record.
    pub record: StepRecord<'a>,
    /// The migration (or its down) to call.
    pub action: MigrationFn,
    /// `true`: run the action and the tracking writes in one transaction. `false`: journal a
    /// "started" row, run the action outside a transaction, then record "finished".
    pub transactional: bool,
}

/// What happened to a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepOutcome {
    /// The step ran and was recorded.
    Done {
        /// When it started.
        started_at: Timestamp,
        /// How long the action took.
        execution_time: Duration,
    },
    /// Another runner moved the tracking row first; nothing of this step was kept.
    Raced,
}

/// A held runner lock. [`release`](RunLock::release) it when the run ends; an implementation
/// must also free the lock when dropped unreleased (an unwinding panic).
pub trait RunLock: Send {
    /// Releases the lock.
    fn release(self: Box<Self>) -> BoxFuture<'static, Result<()>>;
}

/// A lock that serializes nothing, for databases whose per-step transactions already do.
#[derive(Debug, Default)]
pub struct NoLock;

impl RunLock for NoLock {
    fn release(self: Box<Self>) -> BoxFuture<'static, Result<()>> {
        Box::pin(async { Ok(()) })
    }
}

/// A database backend. Implemented by `migrate-backends` for SQLite, PostgreSQL and MySQL.
pub trait Executor: Send + Sync {
    /// The database's dialect.
    fn dialect(&self) -> Dialect;

    /// Reads every row of the state table in one query. A missing tracking table reads as no
    /// rows: this is the whole cost of an "already up to date" run.
    fn read_state(&self) -> BoxFuture<'_, Result<Vec<StateRow>>>;

    /// Creates the tracking tables if they do not exist.
    fn prepare(&self) -> BoxFuture<'_, Result<()>>;

    /// Takes the runner lock that serializes concurrent runners for a whole run.
    fn lock(&self) -> BoxFuture<'_, Result<Box<dyn RunLock>>>;

    /// Runs one step with its tracking writes.
    fn run_step<'a>(&'a self, step: &'a StepRun<'a>) -> BoxFuture<'a, Result<StepOutcome>>;

    /// Reads history rows of the given modules, newest first, at most `limit` (all if `None`).
    fn history<'a>(
        &'a self,
        modules: &'a [&'a str],
        limit: Option<usize>,
    ) -> BoxFuture<'a, Result<Vec<HistoryEntry>>>;

    /// Overwrites a table's state row: used to resolve a dirty mark and to accept checksums.
    /// Clears the dirty mark. `version = None` means nothing applied.
    fn set_state<'a>(
        &'a self,
        module: &'a str,
        table: &'a str,
        version: Option<&'a str>,
        checksum: Option<&'a str>,
    ) -> BoxFuture<'a, Result<()>>;

    /// Rewrites the recorded checksum of the successful `up` rows of one step.
    fn set_step_checksum<'a>(
        &'a self,
        module: &'a str,
        table: &'a str,
        version: &'a str,
        checksum: &'a str,
    ) -> BoxFuture<'a, Result<()>>;
}

/// A boxed executor is an executor, so backends chosen at run time (`migrate::connect`) work
/// with the manager.
impl<E: Executor + ?Sized> Executor for Box<E> {
    fn dialect(&self) -> Dialect {
        (**self).dialect()
    }
    fn read_state(&self) -> BoxFuture<'_, Result<Vec<StateRow>>> {
        (**self).read_state()
    }
    fn prepare(&self) -> BoxFuture<'_, Result<()>> {
        (**self).prepare()
    }
    fn lock(&self) -> BoxFuture<'_, Result<Box<dyn RunLock>>> {
        (**self).lock()
    }
    fn run_step<'a>(&'a self, step: &'a StepRun<'a>) -> BoxFuture<'a, Result<StepOutcome>> {
        (**self).run_step(step)
    }
    fn history<'a>(
        &'a self,
        modules: &'a [&'a str],
        limit: Option<usize>,
    ) -> BoxFuture<'a, Result<Vec<HistoryEntry>>> {
        (**self).history(modules, limit)
    }
    fn set_state<'a>(
        &'a self,
        module: &'a str,
        table: &'a str,
        version: Option<&'a str>,
        checksum: Option<&'a str>,
    ) -> BoxFuture<'a, Result<()>> {
        (**self).set_state(module, table, version, checksum)
    }
    fn set_step_checksum<'a>(
        &'a self,
        module: &'a str,
        table: &'a str,
        version: &'a str,
        checksum: &'a str,
    ) -> BoxFuture<'a, Result<()>> {
        (**self).set_step_checksum(module, table, version, checksum)
    }
}
