//! A `resumable` step cut off keeps its dirty mark until a run really starts it again, on
//! every backend: the step's start replaces the mark, in the transaction that sets its new
//! one, and only the exact mark it left (its start time).
//!
//! What that guards: with `with_baseline_for_existing_tables`, a first step that began to
//! build its table and was cut off has nothing recorded but its mark. Cleared when the next
//! run was planned (as it was), a run that ended before the step started again (a kill, a
//! panic, another table's step failing first) left a row with nothing in it, and the run
//! after that took the half-built table for one at the baseline and never ran the step.

use migrate::backend::{MigrationFuture, StepOutcome, StepRecord, StepRun};
use migrate::report::{Direction, TableStatus, Timestamp};
use migrate::testing::{Backend, TestDatabase};
use migrate::{Conn, Error, MigrationManager, Result, TableNames, Version};
use sqlx::{AssertSqlSafe, Connection};

migrate::migrations! {}

/// Creates its table, then stops while `ledger_stop` exists; run again, it finishes (every
/// write of it may run twice).
#[migrate::migration(table = "ledger", version = "1.0.0", transaction = false, resumable, down = drop_ledger)]
async fn build_ledger(db: &mut Conn<'_>) -> Result<()> {
    db.execute("CREATE TABLE IF NOT EXISTS ledger (id INTEGER PRIMARY KEY)")
        .await?;
    if db.table_exists("ledger_stop").await? {
        return Err(Error::msg("told to stop after creating the table"));
    }
    db.execute("DELETE FROM ledger WHERE id = 1").await?;
    db.execute("INSERT INTO ledger (id) VALUES (1)").await?;
    Ok(())
}
async fn drop_ledger(db: &mut Conn<'_>) -> Result<()> {
    db.execute("DROP TABLE IF EXISTS ledger").await?;
    Ok(())
}

/// What a step run by hand calls; never reached when its start loses.
fn nothing<'a>(_: &'a mut Conn<'_>) -> MigrationFuture<'a> {
    Box::pin(async { Ok(()) })
}

async fn execute(db: &TestDatabase, statement: &str) {
    let q = || sqlx::raw_sql(AssertSqlSafe(statement.to_string()));
    let url = db.url();
    let done = match db.backend() {
        Backend::Sqlite => {
            let mut conn = sqlx::SqliteConnection::connect(url).await.expect("connect");
            q().execute(&mut conn).await.map(|_| ())
        }
        Backend::Postgres => {
            let mut conn = sqlx::PgConnection::connect(url).await.expect("connect");
            q().execute(&mut conn).await.map(|_| ())
        }
        Backend::MySql => {
            let mut conn = sqlx::MySqlConnection::connect(url).await.expect("connect");
            q().execute(&mut conn).await.map(|_| ())
        }
    };
    done.unwrap_or_else(|e| panic!("{statement}: {e}"));
}

async fn manager_on(url: &str) -> MigrationManager {
    let executor = migrate::connect(url).await.expect("executor");
    MigrationManager::new(executor, [&MIGRATIONS])
        .expect("graph")
        .with_baseline_for_existing_tables("1.0.0")
        .expect("baseline")
}

async fn ledger_status(manager: &MigrationManager) -> TableStatus {
    let status = manager.status().await.expect("status");
    status
        .into_iter()
        .find(|s| s.table == "ledger")
        .expect("the ledger's status")
}

async fn cut_off_step_keeps_its_mark(backend: Backend) {
    let Some(db) = TestDatabase::create(backend).await.expect("database") else {
        return;
    };
    execute(&db, "CREATE TABLE ledger_stop (x INTEGER)").await;
    let manager = manager_on(db.url()).await;

    // No `ledger` table yet, so no baseline: the step runs, creates it, and is cut off.
    let err = manager.up().await.expect_err("told to stop");
    assert!(err.to_string().contains("ledger@1.0.0"), "{err}");
    let marked = ledger_status(&manager).await;
    let mark = marked.dirty.clone().expect("the cut-off step's mark");
    // Its table exists now, but the step never finished: status does not call it at the
    // baseline, and counts the step pending.
    assert!(
        marked.resumes && marked.current.is_none() && marked.pending == 1,
        "{marked:?}"
    );
    execute(&db, "DROP TABLE ledger_stop").await;

    // A start that names another mark than the one there loses, and leaves the mark.
    let names = TableNames::default();
    let other_since = Timestamp::from_micros(mark.since.as_micros() + 1);
    let by_hand = StepRun {
        record: StepRecord {
            module: &marked.module,
            table: "ledger",
            version: "1.0.0",
            name: "build_ledger",
            checksum: "by-hand",
            direction: Direction::Up,
            expected: None,
            new_version: Some("1.0.0"),
            new_checksum: Some("by-hand"),
            resumes: Some(other_since),
        },
        action: nothing,
        transactional: false,
        table_names: &names,
    };
    let executor = db.executor().await.expect("executor");
    executor.prepare().await.expect("prepare");
    let outcome = executor.run_step(&by_hand).await.expect("run by hand");
    assert!(matches!(outcome, StepOutcome::Raced), "{outcome:?}");
    executor.end_run().await.expect("end of the run by hand");
    let still = ledger_status(&manager).await;
    assert_eq!(still.dirty.as_ref(), Some(&mark), "{still:?}");

    // A mark written without its time (by hand, or by another tool) reads as time 0, and is
    // resumed as such.
    execute(
        &db,
        "UPDATE migrate_schema_versions SET dirty_since = NULL WHERE table_name = 'ledger'",
    )
    .await;
    let mark = ledger_status(&manager).await.dirty.expect("the mark");
    assert_eq!(mark.since.as_micros(), 0);

    // A run that ends after it is planned and before the step starts (here its progress
    // callback panics, as a kill would stop it) leaves the mark where it was.
    let url = db.url().to_string();
    let ended = tokio::spawn(async move {
        let manager = manager_on(&url).await;
        let run = manager.up();
        run.on_progress(|_| panic!("the run ends before the step starts"))
            .await
    })
    .await;
    assert!(ended.as_ref().is_err_and(|e| e.is_panic()), "{ended:?}");
    let after = ledger_status(&manager).await;
    assert_eq!(after.dirty.as_ref(), Some(&mark), "{after:?}");
    assert!(after.resumes, "{after:?}");

    // The next run resumes the step, although its table exists and nothing is recorded: the
    // baseline does not take it.
    let report = manager.up().await.expect("resumed");
    let applied: Vec<String> = report.applied.iter().map(|a| a.step.to_string()).collect();
    assert!(
        applied.iter().any(|a| a.contains("ledger@1.0.0")),
        "{report:?}"
    );
    let done = ledger_status(&manager).await;
    assert!(
        done.dirty.is_none() && done.current == Some(Version::new(1, 0, 0)),
        "{done:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_sqlite() {
    cut_off_step_keeps_its_mark(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres() {
    cut_off_step_keeps_its_mark(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_mysql() {
    cut_off_step_keeps_its_mark(Backend::MySql).await;
}
