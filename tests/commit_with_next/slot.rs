//! The executor's slot: a step whose connection finds it filled by another task.

use super::{dialect_of, pairs};
use migrate::testing::{block_on, Backend, TestDatabase};
use migrate::{Conn, Dialect};

/// The executor of each dialect's slot test, for its step to use from another task.
static SLOT_EXECUTORS: std::sync::Mutex<Vec<(Dialect, SharedBackend)>> =
    std::sync::Mutex::new(Vec::new());

type SharedBackend = std::sync::Arc<dyn migrate::backend::MigrationBackend>;

/// Writes, then has another task read the state through the same executor while the step
/// holds its connection: that task's connection goes back to the executor's slot first.
fn fill_the_slot<'a>(db: &'a mut Conn<'_>) -> migrate::backend::MigrationFuture<'a> {
    Box::pin(async move {
        db.execute("CREATE TABLE slot_rows (id INTEGER)").await?;
        db.execute("INSERT INTO slot_rows (id) VALUES (1)").await?;
        let dialect = db.dialect();
        let executor = SLOT_EXECUTORS
            .lock()
            .expect("executors")
            .iter()
            .find(|(d, _)| *d == dialect)
            .map(|(_, executor)| executor.clone())
            .expect("the test's executor");
        tokio::spawn(async move { executor.read_state().await.map(|_| ()) })
            .await
            .expect("the other task")?;
        Ok(())
    })
}

/// A step whose connection finds the executor's slot filled by another task when it is done
/// (closed, it would take the step with it) commits at once instead of leaving its commit
/// for the next statement.
async fn a_step_commits_at_once_when_another_task_filled_the_slot(backend: Backend) {
    let dialect = dialect_of(backend);
    use migrate::backend::{StepAfterPending, StepOutcome, StepRecord, StepRun};
    let Some(db) = TestDatabase::create(backend).await.expect("database") else {
        return;
    };
    let executor: SharedBackend = db.executor().await.expect("executor").into();
    executor.prepare().await.expect("tracking tables");
    SLOT_EXECUTORS
        .lock()
        .expect("executors")
        .push((dialect, executor.clone()));
    let run = StepRun {
        record: StepRecord {
            module: "slot_module",
            table: "slot",
            version: "1.0.0",
            name: "fill_the_slot",
            checksum: "slot-checksum",
            direction: migrate::report::Direction::Up,
            expected: None,
            new_version: Some("1.0.0"),
            new_checksum: Some("slot-chain"),
            resumes: None,
        },
        action: fill_the_slot,
        transactional: true,
        table_names: &migrate::TableNames::new(),
    };
    let outcome = executor
        .run_step_commit_with_next(&run)
        .await
        .expect("step");
    assert!(
        matches!(outcome, StepAfterPending::Ran(StepOutcome::Done { .. })),
        "{outcome:?}"
    );
    assert!(executor.commit_pending().await.expect("commit"));
    executor.end_run().await.expect("end run");
    let state = pairs(
        &db,
        "SELECT version, COUNT(*) FROM migrate_schema_versions WHERE table_name = 'slot' \
         GROUP BY version",
    )
    .await;
    assert_eq!(state, [("1.0.0".to_string(), 1)], "the step was recorded");
    let rows = pairs(&db, "SELECT 'rows', COUNT(*) FROM slot_rows").await;
    assert_eq!(rows, [("rows".to_string(), 1)], "the step's write was kept");
}

#[test]
fn a_step_commits_at_once_when_another_task_filled_the_slot_on_sqlite() {
    block_on(a_step_commits_at_once_when_another_task_filled_the_slot(
        Backend::Sqlite,
    ));
}

#[test]
fn a_step_commits_at_once_when_another_task_filled_the_slot_on_postgres() {
    block_on(a_step_commits_at_once_when_another_task_filled_the_slot(
        Backend::Postgres,
    ));
}
