//! Concurrent runners apply every step exactly once.

use crate::harness::each_backend;
use crate::MIGRATIONS;
use migrate::MigrationManager;

each_backend! {
    async fn runners_started_together_apply_each_step_exactly_once(db) {
        let mut runners = Vec::new();
        for _ in 0..4 {
            let manager = MigrationManager::new(db.executor().await, [&MIGRATIONS]).unwrap();
            runners.push(tokio::spawn(async move { manager.up().await }));
        }
        let mut applied = 0;
        for runner in runners {
            let report = runner.await.expect("runner task").expect("every runner succeeds");
            applied += report.applied.len();
        }
        assert_eq!(applied, 10, "the runners together applied each step once");
        let ups = db
            .rows("SELECT table_name, version FROM migrate_schema_versions_history WHERE outcome = 'succeeded' ORDER BY id")
            .await;
        let mut unique = ups.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(ups.len(), 10, "{ups:?}");
        assert_eq!(unique.len(), 10, "a step ran twice: {ups:?}");
    }
}
