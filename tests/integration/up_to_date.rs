//! "Already up to date" checks without the survey and the plan: a manager knows the state rows
//! of a database at every table's latest version, and remembers its last verdict with the rows
//! it came from; SQLite's executor keeps its last state read while the database's data version
//! holds. None of them may hide a change, whoever made it.

use crate::bad_input::rejects;
use crate::harness::*;
use migrate::report::ReportStatus;
use migrate::{Error, MigrationManager};

fn at_2_0_0() -> Vec<(String, Option<String>)> {
    at(&[
        ("eval", Some("2.0.0")),
        ("memory", Some("2.0.0")),
        ("metrics", Some("2.0.0")),
        ("session", Some("2.0.0")),
    ])
}

fn at_heads() -> Vec<(String, Option<String>)> {
    at(&[
        ("eval", Some("2.1.0")),
        ("memory", Some("2.3.0")),
        ("metrics", Some("2.5.0")),
        ("session", Some("2.3.0")),
    ])
}

/// A manager whose `eval` table stands at its head by baseline: with no row of its own, a
/// database is up to date without being at the heads' rows.
async fn eval_at_its_baseline(db: &TestDb) -> MigrationManager {
    MigrationManager::new(db.executor().await, [&crate::MIGRATIONS])
        .unwrap()
        .with_table_baseline("eval", "2.1.0")
        .unwrap()
}

/// The verdicts given from the rows alone say so at debug level.
#[cfg(feature = "cli")]
fn capture_debug() -> (Captured, crate::harness::CaptureGuard) {
    crate::harness::capture(tracing::Level::DEBUG)
}

#[cfg(feature = "cli")]
const FROM_THE_HEADS: &str = "rows_are=\"the heads' rows\"";
#[cfg(feature = "cli")]
const FROM_THE_LAST: &str = "rows_are=\"the last verdict's rows\"";

each_backend! {
    #[cfg(feature = "cli")]
    async fn a_new_manager_answers_from_the_heads_rows(db) {
        db.manager().await.up().await.expect("up");
        let (log, _guard) = capture_debug();
        assert_eq!(db.manager().await.up().await.unwrap().status, ReportStatus::UpToDate);
        let text = log.text();
        assert!(text.contains(FROM_THE_HEADS), "{text}");
    }

    #[cfg(feature = "cli")]
    async fn a_renamed_table_is_compared_by_its_physical_name(db) {
        let renamed = || async {
            MigrationManager::new(db.executor().await, [&crate::MIGRATIONS])
                .unwrap()
                .with_table_name("memory", "agent_memory")
                .unwrap()
        };
        renamed().await.up().await.expect("up");
        let (log, _guard) = capture_debug();
        assert_eq!(renamed().await.up().await.unwrap().status, ReportStatus::UpToDate);
        let text = log.text();
        assert!(text.contains(FROM_THE_HEADS), "{text}");
    }

    #[cfg(feature = "cli")]
    async fn up_to_date_rows_that_are_not_the_heads_are_remembered(db) {
        // `eval` has no row and a baseline at its head: up to date, not at the heads' rows.
        let manager = eval_at_its_baseline(&db).await;
        manager.up().await.expect("up");
        let (log, _guard) = capture_debug();
        assert_eq!(manager.up().await.unwrap().status, ReportStatus::UpToDate);
        assert!(!log.text().contains("rows_are="), "surveyed and planned:\n{}", log.text());
        assert_eq!(manager.up().await.unwrap().status, ReportStatus::UpToDate);
        assert!(log.text().contains(FROM_THE_LAST), "{}", log.text());
    }

    #[cfg(feature = "cli")]
    async fn one_managers_verdict_at_the_heads_is_remembered_and_gives_way_to_a_change(db) {
        db.manager().await.up().await.expect("up");
        let manager = db.manager().await;
        let (log, _guard) = capture_debug();
        assert_eq!(manager.up().await.unwrap().status, ReportStatus::UpToDate);
        let text = log.text();
        assert!(text.contains(FROM_THE_HEADS) && !text.contains(FROM_THE_LAST), "{text}");
        // The same rows again (on SQLite and MySQL the very rows the executor kept).
        assert_eq!(manager.up().await.unwrap().status, ReportStatus::UpToDate);
        assert!(log.text().contains(FROM_THE_LAST), "{}", log.text());

        // Another connection marks a step dirty: the remembered rows give way.
        let state = "migrate_schema_versions";
        db.exec(&format!("UPDATE {state} SET dirty_version = '2.3.0', dirty_name = 'session_2_3_0', dirty_direction = 'up', dirty_since = 1 WHERE table_name = 'session'")).await;
        rejects!(db, manager.up(), Error::Dirty { .. }, "session");
        db.exec(&format!("UPDATE {state} SET dirty_version = NULL, dirty_name = NULL, dirty_direction = NULL, dirty_since = NULL WHERE table_name = 'session'")).await;
        assert_eq!(manager.up().await.unwrap().status, ReportStatus::UpToDate);

        // And a version this binary does not know.
        db.exec(&format!("UPDATE {state} SET version = '9.9.9' WHERE table_name = 'memory'")).await;
        let err = manager.up().await.expect_err("an unknown version refuses the run");
        assert!(err.to_string().contains("9.9.9"), "{err}");
        db.exec(&format!("UPDATE {state} SET version = '2.3.0' WHERE table_name = 'memory'")).await;
        assert_eq!(manager.up().await.unwrap().status, ReportStatus::UpToDate);
    }

    async fn a_database_at_the_heads_is_up_to_date_for_a_new_manager(db) {
        db.manager().await.up().await.expect("up");
        // A dry run always surveys and plans: the verdict at the heads must skip the same.
        let planned = db.manager().await.up().dry_run(true).await.expect("dry run");
        let manager = db.manager().await;
        let first = manager.up().await.expect("the first check of a new manager");
        assert_eq!(first.status, ReportStatus::UpToDate);
        assert_eq!(first.skipped, planned.skipped);
        assert_eq!(first.skipped.len(), 4, "{:?}", first.skipped);
        assert_eq!(manager.up().await.expect("again").skipped, planned.skipped);
    }

    async fn a_database_at_the_heads_with_one_change_is_judged_afresh(db) {
        db.manager().await.up().await.expect("up");
        let state = "migrate_schema_versions";

        // A dirty mark.
        db.exec(&format!("UPDATE {state} SET dirty_version = '2.3.0', dirty_name = 'session_2_3_0', dirty_direction = 'up', dirty_since = 1 WHERE table_name = 'session'")).await;
        rejects!(db, db.manager().await.up(), Error::Dirty { .. }, "session");
        db.exec(&format!("UPDATE {state} SET dirty_version = NULL, dirty_name = NULL, dirty_direction = NULL, dirty_since = NULL WHERE table_name = 'session'")).await;
        assert_eq!(db.manager().await.up().await.unwrap().status, ReportStatus::UpToDate);

        // A row of this module for a table the binary does not know.
        db.exec(&format!("INSERT INTO {state} (module, table_name, version, updated_at) VALUES ('integration', 'knowledge', '1.0.0', 0)")).await;
        rejects!(db, db.manager().await.up(), Error::UnknownAppliedVersion { .. }, "knowledge");
        db.exec(&format!("DELETE FROM {state} WHERE table_name = 'knowledge'")).await;
        assert_eq!(db.manager().await.up().await.unwrap().status, ReportStatus::UpToDate);

        // A step changed after it was applied: the chain checksum differs, the history names it.
        let sum = |table: &'static str| {
            let db = &db;
            async move {
                db.rows(&format!("SELECT checksum FROM {state} WHERE table_name = '{table}'")).await.remove(0)
            }
        };
        let (chain_sum, step_sum) = (sum("session").await, db.rows("SELECT checksum FROM migrate_schema_versions_history WHERE table_name = 'session' AND version = '2.0.0' AND direction = 'up'").await.remove(0));
        db.exec("UPDATE migrate_schema_versions_history SET checksum = 'sha256:00000000000000000000000000000000000000000000000000000000000000ee' WHERE table_name = 'session' AND version = '2.0.0'").await;
        db.exec(&format!("UPDATE {state} SET checksum = 'sha256-64:0000000000000000' WHERE table_name = 'session'")).await;
        rejects!(db, db.manager().await.up(), Error::ChecksumMismatch { .. }, "session@2.0.0");
        db.exec(&format!("UPDATE migrate_schema_versions_history SET checksum = '{step_sum}' WHERE table_name = 'session' AND version = '2.0.0'")).await;
        db.exec(&format!("UPDATE {state} SET checksum = '{chain_sum}' WHERE table_name = 'session'")).await;
        assert_eq!(db.manager().await.up().await.unwrap().status, ReportStatus::UpToDate);

        // A table's row gone: the table has nothing applied, so its steps run again (they
        // are written to be re-runnable).
        db.exec(&format!("DELETE FROM {state} WHERE table_name = 'eval'")).await;
        let report = db.manager().await.up().await.expect("eval's steps run again");
        assert_eq!(steps(&report), ["eval@2.0.0", "eval@2.1.0"]);
    }

    async fn a_remembered_verdict_gives_way_to_rows_changed_elsewhere(db) {
        // `eval` has no row and a baseline at its head: up to date, but not at the heads' rows,
        // so the first check surveys and plans and the next ones are remembered.
        let manager = eval_at_its_baseline(&db).await;
        manager.up().await.expect("up");
        let planned = manager.up().await.expect("the first no-op plans");
        let remembered = manager.up().await.expect("the second is remembered");
        assert_eq!(planned.status, ReportStatus::UpToDate);
        assert_eq!(remembered.status, ReportStatus::UpToDate);
        assert_eq!(remembered.skipped, planned.skipped);
        assert!(!planned.skipped.is_empty());

        // Another connection stores a version this binary does not know.
        db.exec("UPDATE migrate_schema_versions SET version = '9.9.9' WHERE table_name = 'memory'").await;
        let err = manager.up().await.expect_err("an unknown version refuses the run");
        assert!(err.to_string().contains("9.9.9"), "{err}");

        db.exec("UPDATE migrate_schema_versions SET version = '2.3.0' WHERE table_name = 'memory'").await;
        assert_eq!(manager.up().await.unwrap().status, ReportStatus::UpToDate);
    }

    async fn a_setting_changed_after_a_verdict_forgets_it(db) {
        // `eval` has no row and a baseline at its head: up to date without it.
        let manager = eval_at_its_baseline(&db).await;
        assert_eq!(manager.up().await.expect("up").applied.len(), 8);
        assert_eq!(manager.up().await.unwrap().status, ReportStatus::UpToDate);
        assert_eq!(manager.up().await.unwrap().status, ReportStatus::UpToDate);
        // The same rows, but now `eval` stands at 2.0.0: eval@2.1.0 is to run (and fails, its
        // table was never made), whatever the last verdict said.
        let moved = manager.with_table_baseline("eval", "2.0.0").unwrap();
        match moved.up().await {
            Ok(report) => assert_eq!(steps(&report), ["eval@2.1.0"]),
            Err(err) => assert!(err.to_string().contains("eval"), "{err}"),
        }
    }

    async fn reads_see_steps_run_through_the_same_executor(db) {
        let manager = db.manager().await;
        manager.up().target("2.0.0").await.expect("up to 2.0.0");
        // Read twice: the second read is the one SQLite's executor keeps with its data version.
        assert_eq!(versions(&manager).await, at_2_0_0());
        assert_eq!(versions(&manager).await, at_2_0_0());
        // The steps run on the executor's own connection, which does not move the data version.
        let report = manager.up().await.expect("the rest");
        assert_eq!(report.applied.len(), 6);
        assert_eq!(versions(&manager).await, at_heads());
        assert_eq!(manager.up().await.unwrap().status, ReportStatus::UpToDate);
    }

    async fn a_new_executors_first_check_sees_steps_run_after_it_connected(db) {
        db.manager().await.up().target("2.0.0").await.expect("up to 2.0.0");
        // On SQLite the executor starts its first state read as it connects: the rows at
        // 2.0.0, read before the steps below run (the pause lets that read finish first).
        let watcher = db.manager().await;
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        assert_eq!(db.manager().await.up().await.expect("the rest").applied.len(), 6);
        assert_eq!(versions(&watcher).await, at_heads());
        assert_eq!(watcher.up().await.unwrap().status, ReportStatus::UpToDate);
    }

    async fn reads_see_steps_run_by_another_executor(db) {
        let watcher = db.manager().await;
        let runner = db.manager().await;
        runner.up().target("2.0.0").await.expect("up to 2.0.0");
        assert_eq!(versions(&watcher).await, at_2_0_0());
        assert_eq!(versions(&watcher).await, at_2_0_0());
        assert_eq!(runner.up().await.expect("the rest").applied.len(), 6);
        assert_eq!(versions(&watcher).await, at_heads());
        assert_eq!(watcher.up().await.unwrap().status, ReportStatus::UpToDate);
    }
}

/// SQLite's executor answers from its kept rows while the database's wal-index header holds:
/// a commit by another process must move the header, and the next read must see it. The
/// other process is the built `examples/cli`, on the same file.
#[cfg(all(feature = "cli", feature = "sqlite"))]
#[tokio::test]
async fn a_sqlite_executor_sees_what_another_process_committed() {
    sees_what_another_process_committed(false).await;
}

/// The same with a pool passed in, whose first read confirms the wal-index.
#[cfg(all(feature = "cli", feature = "sqlite"))]
#[tokio::test]
async fn a_sqlite_pool_passed_in_sees_what_another_process_committed() {
    sees_what_another_process_committed(true).await;
}

/// `examples/cli` migrates a file up, down one step and up again while an executor reads its
/// state between each: connected, or on a pool passed in (`from_pool`).
#[cfg(all(feature = "cli", feature = "sqlite"))]
async fn sees_what_another_process_committed(from_pool: bool) {
    use migrate::backend::MigrationBackend;
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("shared.db").display()
    );
    let run = |args: &[&str]| {
        let out = crate::harness::run_cli_example(&url, args);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {out:?}");
    };
    run(&["up"]);
    let db: Box<dyn MigrationBackend> = if from_pool {
        let pool = sqlx::SqlitePool::connect(&url).await.expect("a pool");
        Box::new(migrate::sqlite::SqliteDb::from_pool(pool))
    } else {
        Box::new(migrate::connect(&url).await.expect("connect"))
    };
    let session = |rows: std::sync::Arc<[migrate::backend::StateRow]>| {
        rows.iter()
            .find(|row| row.table == "session")
            .and_then(|row| row.version.clone())
    };
    let before = session(db.read_state().await.expect("read"));
    assert_eq!(before.as_deref(), Some("2.3.0"));
    // Kept now: this read is answered from the rows the first one left.
    assert_eq!(session(db.read_state().await.expect("read")), before);
    run(&["down", "-1", "--table", "session"]);
    let after = session(db.read_state().await.expect("read"));
    assert_ne!(after, before, "the other process's down step is not seen");
    run(&["up"]);
    assert_eq!(session(db.read_state().await.expect("read")), before);
}
