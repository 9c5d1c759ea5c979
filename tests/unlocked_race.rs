//! Runners that share no run lock still apply every step exactly once; each run also counts
//! itself in `executions`. Every runner plans every step, so only the compare-and-set on the state
//! row keeps a second runner's work out:
//! - SQLite and PostgreSQL: each step runs in a transaction whose tracking writes end in a
//!   compare-and-set that stops it before the commit when another runner moved the table
//!   first, so the losing runner's `executions` row is rolled back with it (on PostgreSQL a
//!   runner that loses every one of its plans gives up with `ConcurrentRunners`);
//! - MySQL: a journalled step's start (its dirty mark and "started" row) is a compare-and-set
//!   committed before the step runs, so the losing runner never runs it; a runner that finds
//!   another's mark refuses with `Dirty` (it has no lock to wait on), and one runner alone
//!   applies what is left. The start of a table's first step also creates its state row: found
//!   there, the row is locked for writing, so runners that found it queue instead of
//!   deadlocking (a start that InnoDB still picks as a deadlock's victim re-plans, like one
//!   that lost the compare-and-set).

use migrate::backend::{
    BoxFuture, MigrationBackend, NoLock, RunLock, StateRow, StepAfterPending, StepOutcome,
    StepRecord, StepRun,
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
    fn read_state(&self) -> BoxFuture<'_, Result<std::sync::Arc<[StateRow]>>> {
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
    fn run_step_commit_with_next<'a>(
        &'a self,
        step: &'a StepRun<'a>,
    ) -> BoxFuture<'a, Result<StepAfterPending>> {
        self.0.run_step_commit_with_next(step)
    }
    fn commit_pending(&self) -> BoxFuture<'_, Result<bool>> {
        self.0.commit_pending()
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
    let _one_at_a_time = MYSQL_SERVER.lock().unwrap_or_else(|e| e.into_inner());
    block_on(runners_sharing_no_lock_apply_each_step_exactly_once(
        Backend::MySql,
    ));
}

/// A set of new tables, one step each, built at run time: every step is a table's first, the
/// one that must create its state row as well as move it.
static FIRST_STEPS: migrate::registry::MigrationSet =
    migrate::registry::MigrationSet::__new("first_steps", "unlocked_race", &[]);
const NEW_TABLES: usize = 12;

fn first_steps() -> Vec<&'static migrate::registry::Migration> {
    fn noop<'a>(_: &'a mut Conn<'_>) -> migrate::backend::MigrationFuture<'a> {
        Box::pin(async {
            // Long enough for the other runners to reach the same table.
            tokio::time::sleep(Duration::from_millis(1)).await;
            Ok(())
        })
    }
    (0..NEW_TABLES)
        .map(|n| {
            let table: &'static str = Box::leak(format!("new_{n:02}").into_boxed_str());
            &*Box::leak(Box::new(migrate::registry::Migration::__new(
                &FIRST_STEPS,
                table,
                "1.0.0",
                None,
                "create",
                noop,
                migrate::registry::Reversal::Irreversible,
                true,
                None,
                "fnv1a64:0000000000000000",
                "unlocked_race.rs",
                n as u32 + 1,
            )))
        })
        .collect()
}

/// Runners that share no lock, started together in rounds, each round's runners all reaching
/// for the first step of the same new table. On MySQL each first step makes sure of the table's state row before
/// its compare-and-set: that must lock the row for writing, or two runners that both found it
/// hold a shared lock each and deadlock on the update that follows.
async fn runners_racing_for_new_tables_only_apply_or_refuse(backend: Backend) {
    let Some(db) = TestDatabase::create(backend).await.expect("database") else {
        return;
    };
    let alone = MigrationManager::from_migrations(
        Unlocked(db.executor().await.expect("executor")),
        first_steps(),
    )
    .expect("graph");
    alone.backend().prepare().await.expect("tracking tables");
    let deadlocks_before = deadlocks(backend, db.url()).await;
    let mut applied = 0;
    for round in 0..NEW_TABLES {
        // Connected first, started together.
        let mut managers = Vec::new();
        for _ in 0..RUNNERS {
            let executor = Unlocked(db.executor().await.expect("executor"));
            managers
                .push(MigrationManager::from_migrations(executor, first_steps()).expect("graph"));
        }
        let table = format!("new_{round:02}");
        let runners: Vec<_> = managers
            .into_iter()
            .map(|manager| {
                let table = table.clone();
                tokio::spawn(async move { manager.up().table(table).await })
            })
            .collect();
        for runner in runners {
            match runner.await.expect("runner task") {
                Ok(report) => applied += report.applied.len(),
                Err(migrate::Error::Dirty { .. }) if backend == Backend::MySql => {}
                Err(migrate::Error::ConcurrentRunners { .. }) if backend == Backend::Postgres => {}
                Err(err) => panic!("a runner failed: {err}"),
            }
        }
    }
    let deadlocks_after = deadlocks(backend, db.url()).await;
    assert_eq!(
        deadlocks_after, deadlocks_before,
        "the runners' starts deadlocked on the server"
    );
    applied += alone.up().await.expect("the rest").applied.len();
    assert_eq!(applied, NEW_TABLES, "each table's first step applied once");
    let versions = column(
        backend,
        db.url(),
        "SELECT version FROM migrate_schema_versions WHERE module = 'first_steps'",
    )
    .await;
    assert_eq!(versions, vec!["1.0.0".to_string(); NEW_TABLES]);
    let succeeded = column(
        backend,
        db.url(),
        "SELECT COUNT(*) FROM migrate_schema_versions_history \
         WHERE module = 'first_steps' AND outcome = 'succeeded'",
    )
    .await;
    assert_eq!(succeeded, [NEW_TABLES.to_string()]);
}

/// The deadlocks the MySQL server has broken since it started (nothing elsewhere).
async fn deadlocks(backend: Backend, url: &str) -> Vec<String> {
    if backend != Backend::MySql {
        return Vec::new();
    }
    column(
        backend,
        url,
        "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS \
         WHERE VARIABLE_NAME = 'INNODB_DEADLOCKS'",
    )
    .await
}

/// The MySQL races share this process's server, whose deadlock count is global: one at a time.
static MYSQL_SERVER: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn runners_racing_for_new_tables_only_apply_or_refuse_on_sqlite() {
    block_on(runners_racing_for_new_tables_only_apply_or_refuse(
        Backend::Sqlite,
    ));
}

#[test]
fn runners_racing_for_new_tables_only_apply_or_refuse_on_postgres() {
    block_on(runners_racing_for_new_tables_only_apply_or_refuse(
        Backend::Postgres,
    ));
}

#[test]
fn runners_racing_for_new_tables_only_apply_or_refuse_on_mysql() {
    let _one_at_a_time = MYSQL_SERVER.lock().unwrap_or_else(|e| e.into_inner());
    block_on(runners_racing_for_new_tables_only_apply_or_refuse(
        Backend::MySql,
    ));
}
