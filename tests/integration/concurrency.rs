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

/// The probe step: counts its runs in `race_probe_runs` (in the step's transaction where
/// there is one, so a run that loses its compare-and-set leaves no row).
fn count_run<'a>(db: &'a mut migrate::Conn<'_>) -> migrate::backend::MigrationFuture<'a> {
    Box::pin(async move {
        db.execute("INSERT INTO race_probe_runs (n) VALUES (1)")
            .await?;
        Ok(())
    })
}

/// Runs the probe step expecting the table at `expected`, under the run lock.
async fn probe_step(
    executor: &dyn migrate::backend::MigrationBackend,
    expected: Option<&str>,
) -> migrate::backend::StepOutcome {
    use migrate::backend::{StepRecord, StepRun};
    let lock = executor.lock(None).await.expect("lock");
    let run = StepRun {
        record: StepRecord {
            module: "race_probe",
            table: "t",
            version: "1.0.0",
            name: "count_run",
            checksum: "probe-checksum",
            direction: migrate::report::Direction::Up,
            expected,
            new_version: Some("1.0.0"),
            new_checksum: Some("probe-chain"),
            resumes: None,
        },
        action: count_run,
        transactional: true,
        table_names: &migrate::TableNames::new(),
    };
    let outcome = executor.run_step(&run).await.expect("step");
    executor.end_run().await.expect("end run");
    lock.release().await.expect("release");
    outcome
}

each_backend! {
    async fn a_step_whose_table_moved_first_is_kept_out(db) {
        // What a runner that planned from a stale read sends: the compare-and-set on the
        // state row must stop it, whether the database checks it before the step runs
        // (MySQL's journal) or before it commits (SQLite, PostgreSQL).
        use migrate::backend::StepOutcome;
        db.exec("CREATE TABLE race_probe_runs (n INTEGER NOT NULL)").await;
        let executor = db.executor().await;
        executor.prepare().await.expect("tracking tables");
        let first = probe_step(executor.as_ref(), None).await;
        assert!(matches!(first, StepOutcome::Done { .. }), "{first:?}");
        // Planned from a read that saw no row, or another version, after the row moved.
        for stale in [None, Some("0.9.0")] {
            let outcome = probe_step(executor.as_ref(), stale).await;
            assert!(matches!(outcome, StepOutcome::Raced), "{stale:?}: {outcome:?}");
        }
        assert_eq!(db.rows("SELECT COUNT(*) FROM race_probe_runs").await, ["1"]);
        let history = db
            .rows("SELECT outcome FROM migrate_schema_versions_history WHERE module = 'race_probe'")
            .await;
        assert_eq!(history, ["succeeded"]);
        let state = db
            .rows("SELECT version, COALESCE(dirty_version, '-') FROM migrate_schema_versions WHERE module = 'race_probe'")
            .await;
        assert_eq!(state, ["1.0.0|-"]);
    }
}
