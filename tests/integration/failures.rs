//! Failures: a failing step stops the run with nothing after it applied; a journalled step that
//! fails or is killed leaves a dirty mark until an operator resolves it.
//!
//! MySQL commits DDL implicitly, so there every step is journalled: a failing step leaves a
//! dirty mark and whatever DDL it had already run, instead of being rolled back. The tests
//! assert that documented difference.

use crate::harness::{each_backend, v, TestDb};
use crate::MIGRATIONS;
use migrate::manager::Resolution;
use migrate::report::{Direction, Outcome};
use migrate::testing::Backend;
use migrate::MigrationManager;
use std::time::Duration;

/// Runs this test binary again as a child that migrates the database at `url` until killed
/// (a step told to `hang` keeps it there).
pub fn spawn_child_runner(url: &str) -> std::process::Child {
    std::process::Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "failures::child_runs_until_killed",
            "--ignored",
            "--nocapture",
        ])
        .env("MIGRATE_TEST_CHILD_URL", url)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn the child runner")
}

/// Not a test of its own: the child process of the kill tests, which run it with `--ignored`
/// and kill it while a step hangs.
#[tokio::test]
#[ignore = "run as a child process by the kill tests"]
async fn child_runs_until_killed() {
    let url = std::env::var("MIGRATE_TEST_CHILD_URL").expect("MIGRATE_TEST_CHILD_URL");
    let executor = migrate::connect(&url).await.expect("connect");
    let manager = MigrationManager::new(executor, [&MIGRATIONS]).expect("graph");
    manager
        .up()
        .await
        .expect("the parent kills this process before up returns");
    unreachable!("a step hangs until the process is killed");
}

/// Waits until `check` holds, failing if the child exits or a minute passes.
pub async fn wait_for(
    db: &TestDb,
    child: &mut std::process::Child,
    what: &str,
    sql: &str,
    expected: &[&str],
) {
    let started = std::time::Instant::now();
    loop {
        let ready =
            db.has_table("migrate_schema_versions_history").await && db.rows(sql).await == expected;
        if ready {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the child never reached {what}"
        );
        assert!(
            child.try_wait().expect("child status").is_none(),
            "the child exited before {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

each_backend! {
    async fn a_failing_step_stops_the_run(db) {
        let m = db.manager().await;
        db.control("metrics@2.1.0", "fail").await;

        let err = m.up().await.expect_err("metrics 2.1.0 fails");
        let migrate::Error::StepFailed { step, applied, source, direction } = &err else {
            panic!("expected StepFailed, got {err:?}");
        };
        assert_eq!((step.table.as_str(), step.version.to_string().as_str(), *direction), ("metrics", "2.1.0", Direction::Up), "{step}");
        let before: Vec<String> = applied.iter().map(|a| format!("{}@{}", a.step.table, a.step.version)).collect();
        assert_eq!(before, ["eval@2.0.0", "memory@2.0.0", "metrics@2.0.0", "session@2.0.0", "eval@2.1.0"]);
        assert!(source.to_string().contains("told to fail"), "{source}");
        let message = err.to_string();
        assert!(message.contains("nothing after it ran") && message.contains("eval@2.1.0"), "{message}");
        assert!(!message.contains("told to fail"), "the cause is the source, printed once: {message}");

        // Nothing after it ran.
        assert_eq!(m.current_version("session").await.unwrap(), Some(v("2.0.0")));
        assert!(!db.has_column("session", "created_at").await);
        let history = m.history(1).await.unwrap();
        assert_eq!(history[0].outcome, Outcome::Failed);
        assert_eq!(history[0].version, "2.1.0");
        assert!(history[0].error.as_deref().unwrap_or("").contains("told to fail"));
        db.clear_control().await;

        if db.backend() == Backend::MySql {
            // Journalled: the ADD COLUMN before the failure stays, and so does the mark.
            assert!(db.has_column("metrics", "tokens").await);
            let err = m.up().await.expect_err("blocked by the dirty mark");
            assert!(matches!(err, migrate::Error::Dirty { .. }), "{err}");
            m.resolve_dirty("metrics", Resolution::RolledBack).await.expect("resolve");
        } else {
            // Rolled back with its transaction.
            assert!(!db.has_column("metrics", "tokens").await);
            assert_eq!(m.current_version("metrics").await.unwrap(), Some(v("2.0.0")));
        }
        // The step is idempotent (it checks for its column), so the retry works everywhere.
        let report = m.up().await.expect("the run goes on once the cause is fixed");
        assert_eq!(report.applied.len(), 5);
        assert_eq!(m.current_version("metrics").await.unwrap(), Some(v("2.5.0")));
    }

    async fn a_failing_journalled_step_leaves_a_dirty_mark_until_resolved(db) {
        let m = db.manager().await;
        m.up().target("2.1.0").await.expect("up to 2.1.0");
        db.control("metrics@2.5.0", "fail").await;

        let err = m.up().await.expect_err("metrics 2.5.0 fails");
        assert!(matches!(err, migrate::Error::StepFailed { .. }), "{err}");
        let metrics = m.status().await.unwrap().into_iter().find(|s| s.table == "metrics").unwrap();
        let mark = metrics.dirty.expect("dirty mark");
        assert_eq!((mark.version.as_str(), mark.direction), ("2.5.0", Direction::Up));
        assert_eq!(metrics.current, Some(v("2.1.0")));

        db.clear_control().await;
        let err = m.up().await.expect_err("blocked by the mark");
        assert!(matches!(err, migrate::Error::Dirty { .. }), "{err}");

        // The operator looked: the index was not created. Record the step as not run, and retry.
        m.resolve_dirty("metrics", Resolution::RolledBack).await.expect("resolve");
        assert_eq!(m.current_version("metrics").await.unwrap(), Some(v("2.1.0")));
        let report = m.up().await.expect("up after resolving");
        // memory@2.3.0 and session@2.3.0 ran before metrics@2.5.0 failed; only it is left.
        assert_eq!(report.applied.len(), 1);
        assert_eq!(m.current_version("metrics").await.unwrap(), Some(v("2.5.0")));
    }

    async fn resolving_as_completed_records_the_step_as_done(db) {
        let m = db.manager().await;
        m.up().target("2.1.0").await.expect("up to 2.1.0");
        db.control("metrics@2.5.0", "fail").await;
        m.up().table("metrics").await.expect_err("fails");
        db.clear_control().await;
        // The operator created the index by hand and records the step as completed.
        db.exec("CREATE INDEX idx_metrics_day ON metrics (day)").await;
        m.resolve_dirty("metrics", Resolution::Completed).await.expect("resolve");
        assert_eq!(m.current_version("metrics").await.unwrap(), Some(v("2.5.0")));
        assert_eq!(m.up().table("metrics").await.unwrap().status, migrate::report::ReportStatus::UpToDate);
        m.down().table("metrics").target("2.1.0").await.expect("and it comes down");
    }

    async fn a_killed_journalled_step_leaves_a_dirty_mark(db) {
        db.control("metrics@2.5.0", "hang").await;
        let mut child = spawn_child_runner(db.url());
        wait_for(
            &db,
            &mut child,
            "metrics@2.5.0",
            "SELECT outcome FROM migrate_schema_versions_history WHERE table_name = 'metrics' AND version = '2.5.0'",
            &["started"],
        )
        .await;
        child.kill().expect("kill the child");
        child.wait().expect("reap the child");

        db.clear_control().await;
        let m = db.manager().await;
        let err = m.up().await.expect_err("blocked by the dirty mark");
        let migrate::Error::Dirty { table, version, name, .. } = &err else {
            panic!("expected Dirty, got {err:?}");
        };
        assert_eq!((table.as_str(), version.as_str(), name.as_str()), ("metrics", "2.5.0", "metrics_2_5_0"));
        // Everything before the killed step is recorded as applied.
        assert_eq!(m.current_version("session").await.unwrap(), Some(v("2.3.0")));
    }
}

/// A journalled step (`transaction = false`) that returns with a transaction of its own still
/// open, on SQLite, where the finish's `BEGIN` cannot nest: the step fails, and its connection
/// is closed (rolling that transaction back) instead of going back to the pool holding the
/// file's write lock, where every other writer would wait on it.
#[tokio::test]
async fn sqlite_a_step_left_inside_its_own_transaction_fails_and_holds_no_write_lock() {
    use migrate::backend::MigrationBackend;
    use sqlx::Connection;
    let Some(db) = TestDb::new(Backend::Sqlite).await else {
        return;
    };
    let names = migrate::TableNames::new();
    let step = crate::harness::first_step("opened", "leave_open", leave_open, false, &names);
    let executor = db.executor().await;
    executor.prepare().await.expect("tracking tables");
    let err = executor
        .run_step(&step)
        .await
        .expect_err("the finish cannot nest in the step's transaction");
    assert!(!matches!(err, migrate::Error::LockTimeout { .. }), "{err}");
    let mut other = sqlx::SqliteConnection::connect(db.url())
        .await
        .expect("another connection");
    sqlx::raw_sql("PRAGMA busy_timeout = 300; BEGIN IMMEDIATE; COMMIT")
        .execute(&mut other)
        .await
        .expect("the write lock is free");
    assert!(
        !db.has_table("opened_inside").await,
        "the step's open transaction was rolled back"
    );
    drop(executor);
}

fn leave_open<'a>(db: &'a mut migrate::Conn<'_>) -> migrate::backend::MigrationFuture<'a> {
    Box::pin(async move {
        db.execute("BEGIN").await?;
        db.execute("CREATE TABLE opened_inside (x INT)").await?;
        Ok(())
    })
}

static LOCKING: migrate::registry::MigrationSet =
    migrate::registry::MigrationSet::__new("locking", "failures_locking", &[]);

/// A step in mysqldump's shape that fails between its `LOCK TABLES` and its `UNLOCK TABLES`.
fn lock_then_fail<'a>(db: &'a mut migrate::Conn<'_>) -> migrate::backend::MigrationFuture<'a> {
    Box::pin(async move {
        db.execute("LOCK TABLES locked_t WRITE").await?;
        db.execute("INSERT INTO locked_t VALUES (1)").await?;
        db.execute("UNLOCK TABLES").await?;
        Ok(())
    })
}

/// The session a failed journalled step leaves behind (here MariaDB's table locks) is not
/// handed to the next statement: the failure is recorded, other sessions can write the table,
/// and the manager reads its state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_mariadb_step_leaves_no_table_lock_behind() {
    let Some(db) = TestDb::new(migrate::testing::Backend::MySql).await else {
        return;
    };
    db.exec("CREATE TABLE locked_t (id INT PRIMARY KEY)").await;
    db.exec("INSERT INTO locked_t VALUES (1)").await;
    let step: &'static migrate::registry::Migration =
        Box::leak(Box::new(migrate::registry::Migration::__new(
            &LOCKING,
            "locked_t",
            "1.0.0",
            None,
            "lock_then_fail",
            lock_then_fail,
            migrate::registry::Reversal::Irreversible,
            false,
            None,
            "fnv1a64:0000000000000000",
            "failures.rs",
            1,
        )));
    let manager = MigrationManager::from_migrations(db.executor().await, [step]).expect("graph");
    let err = manager.up().await.expect_err("a duplicate key");
    assert!(err.to_string().contains("locked_t"), "{err}");
    let status = manager.status().await.expect("the state reads");
    assert!(status[0].dirty.is_some(), "{status:?}");
    let failed = db
        .rows("SELECT outcome FROM migrate_schema_versions_history WHERE table_name = 'locked_t' ORDER BY id")
        .await;
    assert_eq!(
        failed.last().map(String::as_str),
        Some("failed"),
        "{failed:?}"
    );
    db.exec("SET SESSION lock_wait_timeout = 5; INSERT INTO locked_t VALUES (2)")
        .await;
}
