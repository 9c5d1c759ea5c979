//! A journalled step's finish that the database picks as a deadlock's victim: on MySQL it is
//! sent again, instead of leaving a step that succeeded marked dirty; on PostgreSQL it is not
//! (see below), and the step's mark names it.
//!
//! A journalled step's finish (its state row moved, its mark cleared, its history row
//! finished) is one transaction: on PostgreSQL right after the step, on MySQL with whatever
//! uses the tracking tables next (here the run's end). A transaction from outside the framework
//! takes the step's history row while the step runs, then, once the finish has moved the state
//! row and waits for that history row, asks for the state row too: a deadlock. The finish is
//! its victim: PostgreSQL's waiter that checks first (the finish, waiting half a second
//! longer than the outside transaction, with `deadlock_timeout` at its 1 s default) rolls
//! itself back, and InnoDB rolls back the lighter transaction (the outside one has written 500
//! rows, the finish one). The finish is rolled back whole. On MySQL it is sent again, and
//! commits once the outside transaction does: its `START TRANSACTION` had committed anything
//! the step left open. On PostgreSQL the finish would commit a transaction the step left open
//! and roll it back with itself, so it is not sent again: the run fails and the mark stays.
//! The server's deadlock count shows the deadlock happened; the state and history rows show
//! what was recorded.

use migrate::backend::MigrationFuture;
use migrate::registry::{Migration, MigrationSet, Reversal};
use migrate::testing::{block_on, Backend, TestDatabase};
use migrate::{Conn, MigrationManager};
use sqlx::{Connection, MySqlConnection, PgConnection};
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

static SET: MigrationSet = MigrationSet::__new("finish_deadlock", "finish_deadlock", &[]);

/// Where the step is: not started, running (its start committed), told to return.
static PHASE: AtomicU8 = AtomicU8::new(IDLE);
const IDLE: u8 = 0;
const RUNNING: u8 = 1;
const RETURN: u8 = 2;

/// Longer than any wait here should take: a test that goes wrong fails instead of hanging.
const PATIENCE: Duration = Duration::from_secs(30);

/// Runs until the test tells it to return.
fn held_open<'a>(_db: &'a mut Conn<'_>) -> MigrationFuture<'a> {
    Box::pin(async {
        PHASE.store(RUNNING, Ordering::SeqCst);
        let clock = Instant::now();
        while PHASE.load(Ordering::SeqCst) != RETURN {
            if clock.elapsed() > PATIENCE {
                return Err(migrate::Error::msg("the test never let the step return"));
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        Ok(())
    })
}

fn step() -> &'static Migration {
    Box::leak(Box::new(Migration::__new(
        &SET,
        "victim",
        "1.0.0",
        None,
        "held_open",
        held_open,
        Reversal::Irreversible,
        false,
        None,
        "fnv1a64:0000000000000000",
        "finish_deadlock.rs",
        1,
    )))
}

/// A connection from outside the framework.
enum Outside {
    Postgres(PgConnection),
    MySql(MySqlConnection),
}

impl Outside {
    async fn connect(backend: Backend, url: &str) -> Outside {
        match backend {
            Backend::Postgres => {
                Outside::Postgres(PgConnection::connect(url).await.expect("connect"))
            }
            Backend::MySql => Outside::MySql(MySqlConnection::connect(url).await.expect("connect")),
            Backend::Sqlite => unreachable!("SQLite has no deadlocks: a writer waits for the lock"),
        }
    }

    async fn run(&mut self, sql: &str) {
        let statement = sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string()));
        let done = match self {
            Outside::Postgres(conn) => statement.execute(conn).await.map(drop),
            Outside::MySql(conn) => statement.execute(conn).await.map(drop),
        };
        done.unwrap_or_else(|err| panic!("{sql}: {err}"));
    }

    async fn text(&mut self, sql: &str) -> Vec<String> {
        let query = || sqlx::AssertSqlSafe(sql.to_string());
        let rows = match self {
            Outside::Postgres(conn) => sqlx::query_scalar(query()).fetch_all(conn).await,
            Outside::MySql(conn) => sqlx::query_scalar(query()).fetch_all(conn).await,
        };
        rows.unwrap_or_else(|err| panic!("{sql}: {err}"))
    }

    /// The deadlocks the server has broken: since it started on MySQL (this test's process
    /// alone uses it), in this database on PostgreSQL, whose statistics may lag a moment.
    async fn deadlocks(&mut self) -> u64 {
        let sql = match self {
            Outside::Postgres(_) => {
                self.run("SELECT pg_stat_clear_snapshot()").await;
                "SELECT deadlocks::text FROM pg_stat_database WHERE datname = current_database()"
            }
            Outside::MySql(_) => {
                "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS \
                 WHERE VARIABLE_NAME = 'INNODB_DEADLOCKS'"
            }
        };
        let count = self.text(sql).await;
        count
            .first()
            .and_then(|n| n.parse().ok())
            .expect("a deadlock count")
    }
}

async fn a_finish_that_loses_a_deadlock(backend: Backend) {
    let Some(db) = TestDatabase::create(backend).await.expect("database") else {
        return;
    };
    let manager =
        MigrationManager::from_migrations(db.executor().await.expect("executor"), [step()])
            .expect("graph");
    let mut outside = Outside::connect(backend, db.url()).await;
    outside.run("CREATE TABLE ballast (n INT NOT NULL)").await;
    let before = outside.deadlocks().await;

    PHASE.store(IDLE, Ordering::SeqCst);
    let runner = tokio::spawn(async move { manager.up().await });
    let clock = Instant::now();
    while PHASE.load(Ordering::SeqCst) != RUNNING {
        assert!(clock.elapsed() < PATIENCE, "the step never started");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // The step runs: its mark and "started" row are committed. The outside transaction
    // weighs 500 rows, and takes the history row.
    outside.run("START TRANSACTION").await;
    let values: Vec<String> = (1..=500).map(|n| format!("({n})")).collect();
    outside
        .run(&format!(
            "INSERT INTO ballast (n) VALUES {}",
            values.join(", ")
        ))
        .await;
    let started = outside
        .text(
            "SELECT outcome FROM migrate_schema_versions_history \
         WHERE module = 'finish_deadlock' AND table_name = 'victim' FOR UPDATE",
        )
        .await;
    assert_eq!(started, ["started"]);
    PHASE.store(RETURN, Ordering::SeqCst);
    // The finish moves the state row, then waits for the history row.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !runner.is_finished(),
        "the finish did not wait for the history row"
    );
    // Asking for the state row closes the cycle: InnoDB rolls back the lighter finish.
    let marked = outside
        .text(
            "SELECT dirty_version FROM migrate_schema_versions \
         WHERE module = 'finish_deadlock' AND table_name = 'victim' FOR UPDATE",
        )
        .await;
    assert_eq!(
        marked,
        ["1.0.0"],
        "the step's mark, as the rolled-back finish left it"
    );
    outside.run("COMMIT").await;

    let outcome = runner.await.expect("runner task");
    let clock = Instant::now();
    let mut deadlocks = outside.deadlocks().await;
    while deadlocks == before && clock.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        deadlocks = outside.deadlocks().await;
    }
    assert_eq!(deadlocks, before + 1, "the finish was a deadlock's victim");
    let state = outside
        .text(
            "SELECT COALESCE(dirty_version, 'clean') FROM migrate_schema_versions \
             WHERE module = 'finish_deadlock' AND table_name = 'victim'",
        )
        .await;
    let outcomes = outside
        .text(
            "SELECT outcome FROM migrate_schema_versions_history \
             WHERE module = 'finish_deadlock' AND table_name = 'victim'",
        )
        .await;
    match backend {
        // The finish, left pending after the step, is sent again and commits.
        Backend::MySql => {
            let report = outcome.expect("the run succeeds although its finish lost a deadlock");
            assert_eq!(report.applied.len(), 1);
            assert_eq!(state, ["clean"]);
            assert_eq!(outcomes, ["succeeded"]);
        }
        // The finish runs right after the step, and would commit a transaction the step left
        // open: it is not sent again (the step's writes may have gone with it). The run fails
        // with the deadlock, and the step's mark names it for `repair`.
        _ => {
            let err = outcome.expect_err("the finish lost a deadlock");
            assert!(err.to_string().contains("held_open"), "{err}");
            let cause = std::error::Error::source(&err).map(|c| c.to_string());
            assert!(
                cause
                    .as_deref()
                    .is_some_and(|c| c.contains("deadlock detected")),
                "{err}: {cause:?}"
            );
            assert_eq!(state, ["1.0.0"]);
            assert_eq!(outcomes, ["started"]);
        }
    }
}

/// The step's phase is one for the process: one test at a time.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn a_finish_that_loses_a_deadlock_leaves_the_mark_on_postgres() {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    block_on(a_finish_that_loses_a_deadlock(Backend::Postgres));
}

#[test]
fn a_finish_that_loses_a_deadlock_is_sent_again_on_mysql() {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    block_on(a_finish_that_loses_a_deadlock(Backend::MySql));
}
