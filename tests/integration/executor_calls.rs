//! What a run asks of its executor, seen from outside: a finished run fully recorded when `up`
//! returns, and the "already up to date" check one state read (the executor's calls counted).

use crate::harness::each_backend;
use crate::MIGRATIONS;
use migrate::report::ReportStatus;
use migrate::MigrationManager;

/// Counts the executor calls a run makes, around a real executor of each database.
struct Counting {
    inner: Box<dyn migrate::backend::MigrationBackend>,
    calls: std::sync::Arc<std::sync::Mutex<Vec<&'static str>>>,
}

impl Counting {
    fn note(&self, call: &'static str) {
        self.calls.lock().unwrap().push(call);
    }
}

impl migrate::backend::MigrationBackend for Counting {
    fn dialect(&self) -> migrate::Dialect {
        self.inner.dialect()
    }
    fn read_state(
        &self,
    ) -> migrate::backend::BoxFuture<
        '_,
        migrate::Result<std::sync::Arc<[migrate::backend::StateRow]>>,
    > {
        self.note("read_state");
        self.inner.read_state()
    }
    fn prepare(&self) -> migrate::backend::BoxFuture<'_, migrate::Result<()>> {
        self.note("prepare");
        self.inner.prepare()
    }
    fn lock(
        &self,
        wait: Option<std::time::Duration>,
    ) -> migrate::backend::BoxFuture<'_, migrate::Result<Box<dyn migrate::backend::RunLock>>> {
        self.note("lock");
        self.inner.lock(wait)
    }
    fn run_step<'a>(
        &'a self,
        step: &'a migrate::backend::StepRun<'a>,
    ) -> migrate::backend::BoxFuture<'a, migrate::Result<migrate::backend::StepOutcome>> {
        self.note("run_step");
        self.inner.run_step(step)
    }
    fn history<'a>(
        &'a self,
        modules: &'a [&'a str],
        limit: Option<usize>,
    ) -> migrate::backend::BoxFuture<'a, migrate::Result<Vec<migrate::report::HistoryEntry>>> {
        self.note("history");
        self.inner.history(modules, limit)
    }
    fn set_state<'a>(
        &'a self,
        module: &'a str,
        table: &'a str,
        version: Option<&'a str>,
        checksum: Option<&'a str>,
    ) -> migrate::backend::BoxFuture<'a, migrate::Result<()>> {
        self.note("set_state");
        self.inner.set_state(module, table, version, checksum)
    }
    fn schema(&self) -> Option<&str> {
        self.inner.schema()
    }
    fn record_without_running<'a>(
        &'a self,
        record: &'a migrate::backend::StepRecord<'a>,
        outcome: migrate::report::Outcome,
    ) -> migrate::backend::BoxFuture<'a, migrate::Result<bool>> {
        self.note("record_without_running");
        self.inner.record_without_running(record, outcome)
    }
    fn set_step_checksum<'a>(
        &'a self,
        module: &'a str,
        table: &'a str,
        version: &'a str,
        checksum: &'a str,
    ) -> migrate::backend::BoxFuture<'a, migrate::Result<()>> {
        self.note("set_step_checksum");
        self.inner
            .set_step_checksum(module, table, version, checksum)
    }
    fn run_step_commit_with_next<'a>(
        &'a self,
        step: &'a migrate::backend::StepRun<'a>,
    ) -> migrate::backend::BoxFuture<'a, migrate::Result<migrate::backend::StepAfterPending>> {
        self.note("run_step");
        self.inner.run_step_commit_with_next(step)
    }
    fn commit_pending(&self) -> migrate::backend::BoxFuture<'_, migrate::Result<bool>> {
        self.inner.commit_pending()
    }
    fn end_run(&self) -> migrate::backend::BoxFuture<'_, migrate::Result<()>> {
        self.inner.end_run()
    }
}

each_backend! {
    /// Seen from outside the framework as soon as `up` returns: every step recorded, its
    /// history row finished, and no dirty mark left (MariaDB commits a step's finish with the
    /// next step's start, and the last one before the run lock is released).
    async fn a_finished_run_is_fully_recorded_before_up_returns(db) {
        let report = db.manager().await.up().await.expect("up");
        assert_eq!(report.applied.len(), 10);
        let marks = db
            .rows("SELECT table_name FROM migrate_schema_versions WHERE dirty_version IS NOT NULL")
            .await;
        assert!(marks.is_empty(), "marks left behind: {marks:?}");
        let versions = db
            .rows("SELECT table_name, version FROM migrate_schema_versions ORDER BY table_name")
            .await;
        assert_eq!(
            versions,
            ["eval|2.1.0", "memory|2.3.0", "metrics|2.5.0", "session|2.3.0"]
        );
        let unfinished = db
            .rows("SELECT table_name, version FROM migrate_schema_versions_history WHERE outcome <> 'succeeded'")
            .await;
        assert!(unfinished.is_empty(), "{unfinished:?}");
        let succeeded = db
            .rows("SELECT COUNT(*) FROM migrate_schema_versions_history WHERE outcome = 'succeeded'")
            .await;
        assert_eq!(succeeded, ["10"]);
    }

    async fn already_up_to_date_is_one_state_read(db) {
        db.manager().await.up().await.expect("up");
        let calls = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let counting = Counting {
            inner: db.executor().await,
            calls: calls.clone(),
        };
        let manager = MigrationManager::new(counting, [&MIGRATIONS]).unwrap();
        let report = manager.up().await.expect("no-op up");
        assert_eq!(report.status, ReportStatus::UpToDate);
        assert_eq!(
            *calls.lock().unwrap(),
            ["read_state"],
            "a no-op is one state read, and the state read is one query"
        );
    }
}
