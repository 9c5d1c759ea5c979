//! `migrate::data::Job::finish` and a job's own failures, on every backend: a loop that stopped
//! before its last batch is not marked done (the rows left would be skipped for good), a loop
//! that stopped after a short last batch is, and a job whose own statement failed refuses to
//! go on (its batch may have been rolled back under its checkpoint).

use migrate::data::Batches;
use migrate::testing::{Backend, TestDatabase};
use migrate::{Conn, Dialect, MigrationManager, Result};
use std::sync::Mutex;

migrate::migrations! {}

/// What the step saw, per dialect.
static SEEN: Mutex<Vec<(Dialect, String)>> = Mutex::new(Vec::new());

fn saw(dialect: Dialect, what: impl Into<String>) {
    let mut seen = SEEN.lock().unwrap_or_else(|e| e.into_inner());
    seen.push((dialect, what.into()));
}

fn job() -> Batches {
    Batches::new("early", "early_source", "id").batch_size(10)
}

#[migrate::migration(
    table = "early",
    version = "1.0.0",
    transaction = false,
    resumable,
    irreversible
)]
async fn finish_early(db: &mut Conn<'_>) -> Result<()> {
    let dialect = db.dialect();
    db.execute("CREATE TABLE early_source (id INTEGER PRIMARY KEY)")
        .await?;
    let values: Vec<String> = (1..=25).map(|i| format!("({i})")).collect();
    db.execute(&format!(
        "INSERT INTO early_source (id) VALUES {}",
        values.join(", ")
    ))
    .await?;

    // A loop that stops at a deadline after one batch, 15 rows left.
    let mut stopped = job().start(db).await?;
    let first = stopped.next(db).await?.map_or(0, |rows| rows.len());
    saw(dialect, format!("first batch {first}"));
    match stopped.finish(db).await {
        Ok(_) => saw(dialect, "finished with rows left"),
        Err(err) => saw(dialect, format!("refused: {err}")),
    }

    // Started again: it resumes after the checkpointed batch, and a loop that stops after a
    // short last batch (nothing left after it) is done.
    let mut resumed = job().start(db).await?;
    let mut firsts = Vec::new();
    while let Some(rows) = resumed.next(db).await? {
        firsts.push(rows.first().and_then(|r| r.get(0)).and_then(|v| v.as_i64()));
        if rows.len() < 10 {
            break;
        }
    }
    saw(dialect, format!("resumed at {firsts:?}"));
    resumed.finish(db).await?;
    let mut again = job().start(db).await?;
    let after_done = again.next(db).await?.map(|r| r.len());
    saw(dialect, format!("after done: {after_done:?}"));
    again.finish(db).await?;

    // A job whose own checkpoint fails (its table gone) refuses to go on.
    let mut broken = Batches::new("broken", "early_source", "id")
        .batch_size(10)
        .checkpoint_table("broken_checkpoints")
        .start(db)
        .await?;
    broken.next(db).await?;
    db.execute("DROP TABLE broken_checkpoints").await?;
    let failed = broken.next(db).await;
    saw(dialect, format!("checkpoint failed: {}", failed.is_err()));
    match broken.next(db).await {
        Ok(rows) => saw(dialect, format!("went on: {:?}", rows.map(|r| r.len()))),
        Err(err) => saw(dialect, format!("refused: {err}")),
    }
    if dialect != Dialect::MySql {
        // The failed batch's transaction is the job's: nothing of it is kept.
        let _ = db.execute("ROLLBACK").await;
    }
    Ok(())
}

async fn finish_is_done_only_at_the_end(backend: Backend) {
    let Some(db) = TestDatabase::create(backend).await.expect("database") else {
        return;
    };
    let manager = MigrationManager::new(db.executor().await.expect("executor"), [&MIGRATIONS])
        .expect("graph");
    manager.up().await.expect("the step runs");
    let dialect = manager.backend().dialect();
    let seen: Vec<String> = SEEN
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .filter(|(d, _)| *d == dialect)
        .map(|(_, what)| what.clone())
        .collect();
    assert_eq!(seen.len(), 6, "{seen:#?}");
    assert_eq!(seen[0], "first batch 10");
    assert!(
        seen[1].starts_with("refused: ") && seen[1].contains("rows left after its last batch"),
        "{seen:#?}"
    );
    assert_eq!(seen[2], "resumed at [Some(11), Some(21)]", "{seen:#?}");
    assert_eq!(seen[3], "after done: None", "{seen:#?}");
    assert_eq!(seen[4], "checkpoint failed: true", "{seen:#?}");
    assert!(
        seen[5].starts_with("refused: ") && seen[5].contains("failed earlier"),
        "{seen:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finish_is_done_only_at_the_end_on_sqlite() {
    finish_is_done_only_at_the_end(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finish_is_done_only_at_the_end_on_postgres() {
    finish_is_done_only_at_the_end(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finish_is_done_only_at_the_end_on_mysql() {
    finish_is_done_only_at_the_end(Backend::MySql).await;
}
