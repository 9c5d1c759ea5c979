//! The [`MigrationBackend`] trait: what a database backend provides so that the manager can run
//! a plan on it.

use crate::dialect::Dialect;
use crate::error::Result;
use crate::future::BoxFuture;
use crate::migration::MigrationFn;
use crate::status::HistoryEntry;
use crate::step::{Direction, DirtyMark, Outcome};
use crate::table_names::TableNames;
use crate::time::Timestamp;
use std::sync::Arc;
use std::time::Duration;

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

/// What the engine asks the backend to record for one step.
#[derive(Debug, Clone)]
pub struct StepRecord<'a> {
    /// The migration set's module.
    pub module: &'a str,
    /// The table's physical name (the logical name unless the manager renames it).
    pub table: &'a str,
    /// The step's version.
    pub version: &'a str,
    /// The step's name.
    pub name: &'a str,
    /// The step's own checksum.
    pub checksum: &'a str,
    /// Up or down.
    pub direction: Direction,
    /// The stored version the engine planned from. The backend writes the new state only if
    /// the row still holds this (compare-and-set), so two runners never apply a step twice.
    pub expected: Option<&'a str>,
    /// The stored version once the step is done (`None`: nothing applied).
    pub new_version: Option<&'a str>,
    /// The chain checksum to store with `new_version`.
    pub new_checksum: Option<&'a str>,
    /// `Some(since)`: this up runs again a `resumable` step that was cut off, whose dirty
    /// mark (this step's version, going up, started at `since`) is still on the state row. A
    /// journalled start replaces exactly that mark, in the transaction that sets the new one,
    /// instead of requiring none: the old mark stays until the step really starts again, so a
    /// run that ends before then leaves the step marked as cut off. No mark of that `since`
    /// there means another runner came first ([`StepOutcome::Raced`]). `None` for every other
    /// step.
    pub resumes: Option<Timestamp>,
}

/// One step for the backend to run: the record, the function and how to run it.
pub struct StepRun<'a> {
    /// What to record.
    pub record: StepRecord<'a>,
    /// The migration (or its down) to call.
    pub action: MigrationFn,
    /// `true`: run the action and the tracking writes in one transaction. `false`: journal a
    /// "started" row, run the action outside a transaction, then record "finished".
    pub transactional: bool,
    /// The physical names of renamed tables: the backend gives them to the step's
    /// [`Conn`](crate::conn::Conn) with [`Conn::with_table_names`](crate::conn::Conn::with_table_names).
    pub table_names: &'a TableNames,
}

/// What happened to a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepOutcome {
    /// The step ran and was recorded (from
    /// [`run_step_commit_with_next`](MigrationBackend::run_step_commit_with_next): its commit
    /// may still wait for the backend's next statement).
    Done {
        /// When it started.
        started_at: Timestamp,
        /// How long the action took.
        execution_time: Duration,
    },
    /// Another runner moved the tracking row first; nothing of this step was kept.
    Raced,
}

/// What [`MigrationBackend::run_step_commit_with_next`] answers: what became of the step before
/// (whose commit may have waited for this step's first statement), and of this one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepAfterPending {
    /// The step before committed (or nothing waited); this is the step's own outcome.
    Ran(StepOutcome),
    /// The step before, which returned `Done` with its commit left to ride on this step's
    /// first statement, did not commit: another runner moved its table first, its session
    /// lost the prepared record statement, the commit failed or its connection was lost, or
    /// this step used the typed connection before that commit was sent. Both steps were rolled
    /// back (this one may have begun running); re-read the state and plan again.
    PreviousRolledBack,
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

impl std::fmt::Debug for StepRun<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StepRun")
            .field("record", &self.record)
            .field("transactional", &self.transactional)
            .finish_non_exhaustive()
    }
}

/// A database backend. Implemented by `migrate-backends` for SQLite, PostgreSQL and MySQL.
pub trait MigrationBackend: Send + Sync {
    /// The database's dialect.
    fn dialect(&self) -> Dialect;

    /// The schema that `{{tables.x}}` is qualified with, if any (PostgreSQL schemas).
    fn schema(&self) -> Option<&str> {
        None
    }

    /// Where migrations run, for logs and start-up messages: the database (server and
    /// database name, or file), the schema and the tracking table. Never a password.
    fn describe(&self) -> String {
        format!("a {} database", self.dialect())
    }

    /// The tracking (state) table's name, for messages that name it.
    fn tracking_table(&self) -> &str {
        "the tracking table"
    }

    /// Reads `(table_name, version)` of every row of another tool's version table (Agno's
    /// `agno_schema_versions`) in this backend's schema, without writing to it; a missing
    /// table reads as no rows. Backends that cannot say so.
    fn read_adopted<'a>(&'a self, table: &'a str) -> BoxFuture<'a, Result<Vec<(String, String)>>> {
        let _ = table;
        Box::pin(async move {
            Err(crate::error::Error::Config(format!(
                "this {} backend cannot read an adopted version table",
                self.dialect()
            )))
        })
    }

    /// Whether `table` exists in this backend's schema (for baselines that apply only to tables
    /// that exist). Backends that cannot say so.
    fn table_exists<'a>(&'a self, table: &'a str) -> BoxFuture<'a, Result<bool>> {
        let _ = table;
        Box::pin(async move {
            Err(crate::error::Error::Config(format!(
                "this {} backend cannot say whether a table exists",
                self.dialect()
            )))
        })
    }

    /// Reads every row of the state table in one query. A missing tracking table reads as no
    /// rows: this is the whole cost of an "already up to date" run.
    ///
    /// The rows are shared (`Vec::into` makes them): a backend that keeps the rows it read
    /// last, to return them again while it can tell that nothing changed (SQLite's and
    /// MySQL's executors), hands them out without copying them, and the manager knows rows it
    /// has already judged by their address.
    fn read_state(&self) -> BoxFuture<'_, Result<Arc<[StateRow]>>>;

    /// Creates the tracking tables if they do not exist.
    fn prepare(&self) -> BoxFuture<'_, Result<()>>;

    /// Takes the runner lock that serializes concurrent runners for a whole run, waiting at
    /// most `wait` (`None`: the backend's own lock timeout). A zero wait tries once. While
    /// waiting, it emits a `tracing` event at least every 5 s naming the holder; when the wait
    /// ends it returns [`Error::LockTimeout`](crate::error::Error::LockTimeout) naming it.
    fn lock(&self, wait: Option<Duration>) -> BoxFuture<'_, Result<Box<dyn RunLock>>>;

    /// Runs one step with its tracking writes; `Done` means the step's work committed. The
    /// backend may leave work for the next step pending (a transaction begun for it, or, on
    /// MySQL, a journalled step's finish: its state move and history row), which the next call
    /// or [`end_run`](Self::end_run) settles.
    ///
    /// A journalled step whose [`StepRecord::resumes`] is set runs again a `resumable` step
    /// that was cut off: its start must take that mark away (only a mark of that time, going
    /// up; a mark written without a time reads as 0) in the write that sets its own, and
    /// answer [`StepOutcome::Raced`] when the mark is not there. The manager no longer clears
    /// it beforehand: a backend that ignores `resumes` finds the mark and never starts the
    /// step.
    fn run_step<'a>(&'a self, step: &'a StepRun<'a>) -> BoxFuture<'a, Result<StepOutcome>>;

    /// Runs one step, and may leave its tracking writes and commit to ride on the connection's
    /// next statement (the next step's first one), saving a round trip per step: `Done` then
    /// comes before the step is committed. What became of it is the backend's next answer:
    /// [`StepAfterPending::PreviousRolledBack`] from the next call when it did not commit,
    /// anything else when it did; or [`commit_pending`](Self::commit_pending) after the last
    /// step. The manager calls this for every step except in forced runs (which do not plan
    /// again). The default runs [`run_step`](Self::run_step), which leaves no commit pending,
    /// so a backend that wraps another and forwards only `run_step` never leaves a commit that
    /// nobody sends; a wrapper that forwards this forwards `commit_pending` and `end_run` too.
    fn run_step_commit_with_next<'a>(
        &'a self,
        step: &'a StepRun<'a>,
    ) -> BoxFuture<'a, Result<StepAfterPending>> {
        Box::pin(async move { self.run_step(step).await.map(StepAfterPending::Ran) })
    }

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

    /// Records a step as applied or reverted without running it (`stamp`, `unstamp`): moves the
    /// state row with the same compare-and-set as a step, and writes a history row with
    /// `outcome`, in one transaction. `Ok(false)`: the row did not hold `record.expected`.
    fn record_without_running<'a>(
        &'a self,
        record: &'a StepRecord<'a>,
        outcome: Outcome,
    ) -> BoxFuture<'a, Result<bool>>;

    /// Rewrites the recorded checksum of the successful `up` rows of one step.
    fn set_step_checksum<'a>(
        &'a self,
        module: &'a str,
        table: &'a str,
        version: &'a str,
        checksum: &'a str,
    ) -> BoxFuture<'a, Result<()>>;

    /// Commits the tracking writes of the last step that ran through
    /// [`run_step_commit_with_next`](Self::run_step_commit_with_next), if they are still
    /// pending. `Ok(true)`: committed, or
    /// nothing was pending; `Ok(false)`: the step was rolled back and is to be planned again
    /// (another runner moved its table first, or its session lost the record statement);
    /// `Err`: the commit failed, and the step was rolled back.
    fn commit_pending(&self) -> BoxFuture<'_, Result<bool>> {
        Box::pin(async { Ok(true) })
    }

    /// Called once a locked run (or repair) is over, before its lock is released: settles
    /// whatever the backend left pending to save a round trip per step (MySQL commits a
    /// step's finish with the next step's start; PostgreSQL and SQLite end the transaction a
    /// step's commit began for the next step, which on SQLite holds the file's write lock,
    /// after committing a step whose commit is still pending, as after a panic).
    /// Whoever calls [`run_step`](Self::run_step) directly calls this after the last step.
    /// The default has nothing pending; a backend that wraps another must forward it.
    fn end_run(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async { Ok(()) })
    }
}

/// A boxed backend is a backend, so backends chosen at run time (`migrate::connect`) work with
/// the manager.
impl<B: MigrationBackend + ?Sized> MigrationBackend for Box<B> {
    fn dialect(&self) -> Dialect {
        (**self).dialect()
    }
    fn schema(&self) -> Option<&str> {
        (**self).schema()
    }
    fn describe(&self) -> String {
        (**self).describe()
    }
    fn tracking_table(&self) -> &str {
        (**self).tracking_table()
    }
    fn read_adopted<'a>(&'a self, table: &'a str) -> BoxFuture<'a, Result<Vec<(String, String)>>> {
        (**self).read_adopted(table)
    }
    fn table_exists<'a>(&'a self, table: &'a str) -> BoxFuture<'a, Result<bool>> {
        (**self).table_exists(table)
    }
    fn record_without_running<'a>(
        &'a self,
        record: &'a StepRecord<'a>,
        outcome: Outcome,
    ) -> BoxFuture<'a, Result<bool>> {
        (**self).record_without_running(record, outcome)
    }
    fn read_state(&self) -> BoxFuture<'_, Result<Arc<[StateRow]>>> {
        (**self).read_state()
    }
    fn prepare(&self) -> BoxFuture<'_, Result<()>> {
        (**self).prepare()
    }
    fn lock(&self, wait: Option<Duration>) -> BoxFuture<'_, Result<Box<dyn RunLock>>> {
        (**self).lock(wait)
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
    fn run_step_commit_with_next<'a>(
        &'a self,
        step: &'a StepRun<'a>,
    ) -> BoxFuture<'a, Result<StepAfterPending>> {
        (**self).run_step_commit_with_next(step)
    }
    fn commit_pending(&self) -> BoxFuture<'_, Result<bool>> {
        (**self).commit_pending()
    }
    fn end_run(&self) -> BoxFuture<'_, Result<()>> {
        (**self).end_run()
    }
}
