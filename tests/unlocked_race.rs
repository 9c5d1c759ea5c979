//! Runners that share no run lock still apply every step exactly once; each run also counts
//! itself in `executions`. Every runner plans every step, so only the compare-and-set on the state
//! row keeps a second runner's work out:
//! - SQLite and PostgreSQL: each step runs in a transaction whose tracking writes end in a
//!   compare-and-set that stops it before the commit when another runner moved the table
//!   first, so the losing runner's `executions` row is rolled back with it (on PostgreSQL a
//!   runner that loses every one of its plans gives up with `ConcurrentRunners`);
//! - MySQL: a journalled step's start (its dirty mark and "started" row) is a compare-and-set
//!   committed before the step runs, so the losing runner never runs it; a runner that finds
//!   another's mark refuses with `Dirty` (it has no lock to wait on), one whose start InnoDB
//!   chose as a deadlock's victim fails before its step, and one runner alone applies what is
//!   left.

use migrate::backend::{
    BoxFuture, MigrationBackend, NoLock, RunLock, StateRow, StepOutcome, StepRecord, StepRun,
};
use migrate::report::HistoryEntry;
use migrate::testing::{block_on, Backend, TestDatabase};
use migrate::{Conn, Dialect, MigrationManager, Result};
use std::time::Duration;

migrate::migrations! {}

const STEPS: usize = 24;
const RUNNERS: usize = 8;

async fn step(db: &mut Conn<'_>, n: usize) -> Result<()> {
    db.execute(&format!("INSERT INTO executions (step) VALUES ({n})"))
        .await?;
    // Long enough for the other runners to plan the same step.
    tokio::time::sleep(Duration::from_millis(2)).await;
    Ok(())
}

macro_rules! steps {
    ($($n:literal => $name:ident, $version:literal, $parent:literal;)*) => {$(
        #[migrate::migration(table = "counted", version = $version, parent = $parent, irreversible)]
        async fn $name(db: &mut Conn<'_>) -> Result<()> {
            step(db, $n).await
        }
    )*};
}

#[migrate::migration(table = "counted", version = "1.0.0", irreversible)]
async fn step_0(db: &mut Conn<'_>) -> Result<()> {
    step(db, 0).await
}

steps! {
    1 => step_1, "1.1.0", "1.0.0";
    2 => step_2, "1.2.0", "1.1.0";
    3 => step_3, "1.3.0", "1.2.0";
    4 => step_4, "1.4.0", "1.3.0";
    5 => step_5, "1.5.0", "1.4.0";
    6 => step_6, "1.6.0", "1.5.0";
    7 => step_7, "1.7.0", "1.6.0";
    8 => step_8, "1.8.0", "1.7.0";
    9 => step_9, "1.9.0", "1.8.0";
    10 => step_10, "1.10.0", "1.9.0";
    11 => step_11, "1.11.0", "1.10.0";
    12 => step_12, "1.12.0", "1.11.0";
    13 => step_13, "1.13.0", "1.12.0";
    14 => step_14, "1.14.0", "1.13.0";
    15 => step_15, "1.15.0", "1.14.0";
    16 => step_16, "1.16.0", "1.15.0";
    17 => step_17, "1.17.0", "1.16.0";
    18 => step_18, "1.18.0", "1.17.0";
    19 => step_19, "1.19.0", "1.18.0";
    20 => step_20, "1.20.0", "1.19.0";
    21 => step_21, "1.21.0", "1.20.0";
    22 => step_22, "1.22.0", "1.21.0";
    23 => step_23, "1.23.0", "1.22.0";
}

/// An executor whose run lock is no lock: only the database itself keeps runners apart.
struct Unlocked(Box<dyn MigrationBackend>);

impl MigrationBackend for Unlocked {
    fn dialect(&self) -> Dialect {
        self.0.dialect()
    }
    fn read_state(&self) -> BoxFuture<'_, Result<Vec<StateRow>>> {
        self.0.read_state()
    }
    fn prepare(&self) -> BoxFuture<'_, Result<()>> {
        self.0.prepare()
    }
    fn lock(&self, _wait: Option<Duration>) -> BoxFuture<'_, Result<Box<dyn RunLock>>> {
        Box::pin(async { Ok(Box::new(NoLock) as Box<dyn RunLock>) })
    }
    fn run_step<'a>(&'a self, step: &'a StepRun<'a>) -> BoxFuture<'a, Result<StepOutcome>> {
        self.0.run_step(step)
    }
    fn history<'a>(
        &'a self,
        modules: &'a [&'a str],
        limit: Option<usize>,
    ) -> BoxFuture<'a, Result<Vec<HistoryEntry>>> {
        self.0.history(modules, limit)
    }
    fn set_state<'a>(
        &'a self,
        module: &'a str,
        table: &'a str,
        version: Option<&'a str>,
        checksum: Option<&'a str>,
    ) -> BoxFuture<'a, Result<()>> {
        self.0.set_state(module, table, version, checksum)
    }
    fn record_without_running<'a>(
        &'a self,
        record: &'a StepRecord<'a>,
        outcome: migrate::report::Outcome,
    ) -> BoxFuture<'a, Result<bool>> {
        self.0.record_without_running(record, outcome)
    }
    fn set_step_checksum<'a>(
        &'a self,
        module: &'a str,
        table: &'a str,
        version: &'a str,
        checksum: &'a str,
    ) -> BoxFuture<'a, Result<()>> {
        self.0.set_step_checksum(module, table, version, checksum)
    }
    fn end_run(&self) -> BoxFuture<'_, Result<()>> {
        self.0.end_run()
    }
}

/// Values read from outside the framework, each rendered as text.
async fn column(backend: Backend, url: &str, sql: &str) -> Vec<String> {
    use sqlx::{Connection, Row};
    let sql = sqlx::AssertSqlSafe(sql.to_string());
    macro_rules! read {
        ($conn:ty) => {{
            let mut conn = <$conn>::connect(url).await.expect("connect");
            let rows = sqlx::raw_sql(sql)
                .fetch_all(&mut conn)
                .await
                .expect("query");
            rows.iter()
                .map(|row| match row.try_get::<String, _>(0) {
                    Ok(text) => text,
                    Err(_) => row
                        .try_get::<i64, _>(0)
                        .expect("text or integer")
                        .to_string(),
                })
                .collect()
        }};
    }
    match backend {
        Backend::Sqlite => read!(sqlx::SqliteConnection),
        Backend::Postgres => read!(sqlx::PgConnection),
        Backend::MySql => read!(sqlx::MySqlConnection),
    }
}

async fn runners_sharing_no_lock_apply_each_step_exactly_once(backend: Backend) {
    let Some(db) = TestDatabase::create(backend).await.expect("database") else {
        return;
    };
    // The tracking tables and `executions` exist before the race, as after any first run
    // (creating them concurrently is not what this tests).
    let first = MigrationManager::new(
        Unlocked(db.executor().await.expect("executor")),
        [&MIGRATIONS],
    )
    .expect("graph");
    first.backend().prepare().await.expect("tracking tables");
    column(
        backend,
        db.url(),
        "CREATE TABLE executions (step BIGINT NOT NULL)",
    )
    .await;
    let mut runners = Vec::new();
    for _ in 0..RUNNERS {
        let executor = Unlocked(db.executor().await.expect("executor"));
        let manager = MigrationManager::new(executor, [&MIGRATIONS]).expect("graph");
        runners.push(tokio::spawn(async move { manager.up().await }));
    }
    let (mut applied, mut refused) = (0, 0);
    for runner in runners {
        match runner.await.expect("runner task") {
            Ok(report) => applied += report.applied.len(),
            // MySQL: another runner's step is in progress (its mark is committed before it
            // runs); without a shared lock this runner cannot wait for it, so it refuses.
            Err(migrate::Error::Dirty { .. }) if backend == Backend::MySql => refused += 1,
            // MySQL: two runners both making sure of the state row (`INSERT IGNORE` takes a
            // shared lock on it) and then marking it may deadlock; InnoDB rolls one back,
            // before its step runs.
            Err(err) if backend == Backend::MySql && err.to_string().contains("Deadlock") => {
                refused += 1
            }
            // PostgreSQL: a runner that lost the compare-and-set on every one of its plans
            // gives up (its report, with what it applied before, goes with the error).
            Err(migrate::Error::ConcurrentRunners { .. }) if backend == Backend::Postgres => {
                refused += 1
            }
            Err(err) => panic!("a runner failed: {err}"),
        }
    }
    // What the refusing runners left, applied by one runner alone.
    applied += first.up().await.expect("the rest").applied.len();
    if refused == 0 {
        assert_eq!(
            applied, STEPS,
            "the runners together applied each step once"
        );
    }
    assert!(applied <= STEPS, "{applied} steps reported applied");
    let executions = column(
        backend,
        db.url(),
        "SELECT step FROM executions ORDER BY step",
    )
    .await;
    let expected: Vec<String> = (0..STEPS).map(|n| n.to_string()).collect();
    assert_eq!(
        executions, expected,
        "each step's work committed exactly once"
    );
    let succeeded = column(
        backend,
        db.url(),
        "SELECT COUNT(*) FROM migrate_schema_versions_history WHERE outcome = 'succeeded'",
    )
    .await;
    assert_eq!(succeeded, [STEPS.to_string()]);
    let version = column(
        backend,
        db.url(),
        "SELECT version FROM migrate_schema_versions WHERE table_name = 'counted'",
    )
    .await;
    assert_eq!(version, ["1.23.0"]);
}

#[test]
fn runners_sharing_no_lock_apply_each_step_exactly_once_on_sqlite() {
    block_on(runners_sharing_no_lock_apply_each_step_exactly_once(
        Backend::Sqlite,
    ));
}

#[test]
fn runners_sharing_no_lock_apply_each_step_exactly_once_on_postgres() {
    block_on(runners_sharing_no_lock_apply_each_step_exactly_once(
        Backend::Postgres,
    ));
}

#[test]
fn runners_sharing_no_lock_apply_each_step_exactly_once_on_mysql() {
    block_on(runners_sharing_no_lock_apply_each_step_exactly_once(
        Backend::MySql,
    ));
}
