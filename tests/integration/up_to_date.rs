//! Repeated "already up to date" checks: the manager remembers its last verdict with the state
//! rows it came from, and SQLite's executor keeps its last state read while the database's data
//! version holds. Neither may hide a change, whoever made it.

use crate::harness::*;
use migrate::report::ReportStatus;
use migrate::MigrationManager;

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

each_backend! {
    async fn a_remembered_verdict_gives_way_to_rows_changed_elsewhere(db) {
        let manager = db.manager().await;
        manager.up().await.expect("up");
        let planned = manager.up().await.expect("the first no-op plans");
        let remembered = manager.up().await.expect("the second is remembered");
        assert_eq!(planned.status, ReportStatus::UpToDate);
        assert_eq!(remembered.status, ReportStatus::UpToDate);
        assert_eq!(remembered.skipped, planned.skipped);
        assert!(!planned.skipped.is_empty());

        // Another connection stores a version this binary does not know.
        db.exec("UPDATE migrate_schema_versions SET version = '9.9.9' WHERE table_name = 'eval'").await;
        let err = manager.up().await.expect_err("an unknown version refuses the run");
        assert!(err.to_string().contains("9.9.9"), "{err}");

        db.exec("UPDATE migrate_schema_versions SET version = '2.1.0' WHERE table_name = 'eval'").await;
        assert_eq!(manager.up().await.unwrap().status, ReportStatus::UpToDate);
    }

    async fn a_setting_changed_after_a_verdict_forgets_it(db) {
        // `eval` has no row and a baseline at its head: up to date without it.
        let manager = MigrationManager::new(db.executor().await, [&crate::MIGRATIONS])
            .unwrap()
            .with_table_baseline("eval", "2.1.0")
            .unwrap();
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
