//! SQLite runners that share no run lock still apply every step exactly once: each step runs
//! in `BEGIN IMMEDIATE`, and its tracking writes and `COMMIT` go in one statement list whose
//! compare-and-set stops it before the commit when another runner moved the table first. The
//! steps here are idempotent, so a runner that loses the race runs its step to the end and is
//! caught only by that compare-and-set; each run also counts itself in `executions`, whose rows
//! commit only with the step's tracking rows.

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
    db.execute("CREATE TABLE IF NOT EXISTS executions (step INTEGER NOT NULL)")
        .await?;
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

/// A SQLite executor whose run lock is no lock: only the database itself keeps runners apart.
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

#[test]
fn runners_sharing_no_lock_apply_each_step_exactly_once() {
    block_on(async {
        let db = TestDatabase::create(Backend::Sqlite)
            .await
            .expect("database")
            .expect("sqlite is always there");
        // The tracking tables exist before the race, as after any first run.
        let first = MigrationManager::new(
            Unlocked(db.executor().await.expect("executor")),
            [&MIGRATIONS],
        )
        .expect("graph");
        first.status().await.expect("status");
        let mut runners = Vec::new();
        for _ in 0..RUNNERS {
            let executor = Unlocked(db.executor().await.expect("executor"));
            let manager = MigrationManager::new(executor, [&MIGRATIONS]).expect("graph");
            runners.push(tokio::spawn(async move { manager.up().await }));
        }
        let mut applied = 0;
        for runner in runners {
            let report = runner
                .await
                .expect("runner task")
                .expect("every runner succeeds");
            applied += report.applied.len();
        }
        assert_eq!(
            applied, STEPS,
            "the runners together applied each step once"
        );

        use sqlx::Connection;
        let mut conn = sqlx::SqliteConnection::connect(db.url())
            .await
            .expect("connect");
        let executions: Vec<i64> = sqlx::query_scalar("SELECT step FROM executions ORDER BY step")
            .fetch_all(&mut conn)
            .await
            .expect("executions");
        assert_eq!(
            executions,
            (0..STEPS as i64).collect::<Vec<_>>(),
            "each step's work committed exactly once"
        );
        let succeeded: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM migrate_schema_versions_history WHERE outcome = 'succeeded'",
        )
        .fetch_one(&mut conn)
        .await
        .expect("history");
        assert_eq!(succeeded, STEPS as i64);
        let version: String = sqlx::query_scalar(
            "SELECT version FROM migrate_schema_versions WHERE table_name = 'counted'",
        )
        .fetch_one(&mut conn)
        .await
        .expect("state");
        assert_eq!(version, "1.23.0");
    });
}
