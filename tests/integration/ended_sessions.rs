//! Sessions the server ended while the executor was idle (an administrator, an idle timeout, a
//! restart). The executor keeps one connection between calls and hands it out without the
//! pool's test before acquire, so its state read is the one that meets the dead session: it is
//! sent once more on a connection the pool checks out, and the call answers. On MariaDB a
//! journalled step's finish left waiting goes first, and is sent again the same way.

use crate::harness::TestDb;
use crate::harness::{first_step, run_first_step, v};
use crate::MIGRATIONS;
use migrate::report::ReportStatus;
use migrate::testing::Backend;
use migrate::MigrationManager;
use sqlx::Connection;
use std::time::{Duration, Instant};

/// Ends the PostgreSQL sessions on the test database that match `filter` (a condition on
/// `pg_stat_activity`), except the one it asks from, and waits until they are gone; returns
/// how many it ended.
async fn end_postgres_sessions(db: &TestDb, filter: &str) -> usize {
    let mut conn = sqlx::PgConnection::connect(db.url())
        .await
        .expect("connect");
    // With a timeout, pg_terminate_backend waits until the session is gone.
    let sql = format!(
        "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, 5000)) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid() AND ({filter})"
    );
    let ended: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .fetch_one(&mut conn)
        .await
        .expect("pg_terminate_backend");
    usize::try_from(ended).expect("a count")
}

/// Ends the MariaDB sessions on the test database that match `filter` (a condition on
/// `information_schema.processlist`), except the one it asks from, and waits until the server
/// has closed them; returns how many it ended.
async fn end_mysql_sessions(db: &TestDb, filter: &str) -> usize {
    let mut conn = sqlx::MySqlConnection::connect(db.url())
        .await
        .expect("connect");
    let others = format!(
        "SELECT id FROM information_schema.processlist \
         WHERE db = DATABASE() AND id <> CONNECTION_ID() AND ({filter})"
    );
    let ids: Vec<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(others))
        .fetch_all(&mut conn)
        .await
        .expect("processlist");
    for id in &ids {
        // A session that ended on its own since the list is no error of the test's.
        let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!("KILL CONNECTION {id}")))
            .execute(&mut conn)
            .await;
    }
    // KILL only flags the session; wait until the server has closed them.
    let all = "SELECT id FROM information_schema.processlist WHERE db = DATABASE()";
    let started = Instant::now();
    loop {
        let left: Vec<i64> = sqlx::query_scalar(all)
            .fetch_all(&mut conn)
            .await
            .expect("processlist");
        if !left.iter().any(|id| ids.contains(id)) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "sessions {left:?} outlived KILL"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    ids.len()
}

/// Ends every session on the test database except the one it asks from, and waits until the
/// server has let them go; returns how many it ended.
async fn end_other_sessions(db: &TestDb) -> usize {
    match db.backend() {
        Backend::Postgres => end_postgres_sessions(db, "true").await,
        Backend::MySql => end_mysql_sessions(db, "TRUE").await,
        Backend::Sqlite => unreachable!("SQLite has no server sessions"),
    }
}

/// The manager's first call after the server ended its sessions answers.
async fn the_first_call_after_the_sessions_ended_answers(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let manager = MigrationManager::new(db.executor().await, [&MIGRATIONS]).expect("graph");
    manager.up().await.expect("up");
    // The second call leaves the connection kept with its read.
    let report = manager.up().await.expect("no-op");
    assert_eq!(report.status, ReportStatus::UpToDate);

    let ended = end_other_sessions(&db).await;
    assert!(ended >= 1, "the executor's kept session was among them");

    let report = manager
        .up()
        .await
        .expect("the first call after the sessions ended answers");
    assert_eq!(report.status, ReportStatus::UpToDate);
    // And the connection it read on is kept for the calls after it.
    let report = manager.up().await.expect("the call after it");
    assert_eq!(report.status, ReportStatus::UpToDate);
    let status = manager.status().await.expect("status");
    assert!(!status.is_empty(), "the tables' status");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_terminated_kept_session_is_read_again_on_a_fresh_one() {
    the_first_call_after_the_sessions_ended_answers(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_a_killed_kept_session_is_read_again_on_a_fresh_one() {
    the_first_call_after_the_sessions_ended_answers(Backend::MySql).await;
}

/// MariaDB: an executor whose first check after its read met the ended session still trusts
/// the state table's fingerprint (asking the catalog whether it is generated failed only
/// because the session was gone, which is no answer).
/// (The log capture is the `cli` feature's.)
#[cfg(feature = "cli")]
#[tokio::test]
async fn mysql_a_session_gone_is_no_answer_about_the_fingerprint_column() {
    let Some(db) = TestDb::new(Backend::MySql).await else {
        return;
    };
    let first = MigrationManager::new(db.executor().await, [&MIGRATIONS]).expect("graph");
    first.up().await.expect("up");
    // A new executor's first read keeps the rows; its next check would ask the catalog about
    // the fingerprint column before taking them.
    let manager = MigrationManager::new(db.executor().await, [&MIGRATIONS]).expect("graph");
    let report = manager.up().await.expect("no-op");
    assert_eq!(report.status, ReportStatus::UpToDate);
    assert!(end_other_sessions(&db).await >= 1);

    let (log, _guard) = crate::harness::capture(tracing::Level::DEBUG);
    for call in [
        "the first call after the sessions ended",
        "the call after it",
    ] {
        let report = manager.up().await.expect(call);
        assert_eq!(report.status, ReportStatus::UpToDate, "{call}");
    }
    let text = log.text();
    assert!(
        text.contains("the kept connection's session had ended"),
        "the read was sent again: {text}"
    );
    assert!(
        !text.contains("not a generated one"),
        "the fingerprint column was given up for a session gone: {text}"
    );
}

/// A run with steps to apply takes its run lock on a session that answers, after
/// `end_lock_session` ended the idle session the last lock was taken on (as an idle timeout ends
/// a lock connection used once, while the checks keep the kept connection alive).
async fn a_run_takes_its_lock_on_a_session_that_answers(
    backend: Backend,
    end_lock_session: impl AsyncFnOnce(&TestDb, &MigrationManager) -> usize,
) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let manager = MigrationManager::new(db.executor().await, [&MIGRATIONS]).expect("graph");
    manager.up().await.expect("up");
    manager
        .down()
        .table("metrics")
        .target("2.0.0")
        .await
        .expect("down");
    let ended = end_lock_session(&db, &manager).await;
    assert!(ended >= 1, "the run lock's idle session");

    let report = manager.up().await.expect("the run after it takes its lock");
    assert!(
        report
            .applied
            .iter()
            .any(|a| a.step.table == "metrics" && a.step.version == v("2.5.0")),
        "metrics went back up"
    );
}

/// PostgreSQL: the lock's session is the one whose last statement let the lock go.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_run_takes_its_lock_on_a_session_that_answers() {
    a_run_takes_its_lock_on_a_session_that_answers(Backend::Postgres, async |db, _| {
        end_postgres_sessions(db, "query LIKE '%pg_advisory_unlock%'").await
    })
    .await;
}

/// MariaDB: the process list shows no last statement, so the lock's session is picked out as
/// the one idle the longest, after a check used the kept connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_a_run_takes_its_lock_on_a_session_that_answers() {
    a_run_takes_its_lock_on_a_session_that_answers(Backend::MySql, async |db, manager| {
        tokio::time::sleep(Duration::from_millis(2_100)).await;
        let status = manager.status().await.expect("status");
        assert!(!status.is_empty());
        end_mysql_sessions(db, "command = 'Sleep' AND time >= 2").await
    })
    .await;
}

/// The MariaDB session the last `note_session` step ran on.
static STEP_SESSION: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);

/// A step that changes nothing and notes its session.
fn note_session<'a>(db: &'a mut migrate::Conn<'_>) -> migrate::backend::MigrationFuture<'a> {
    Box::pin(async {
        let id = db.query_i64("SELECT CONNECTION_ID()").await?;
        STEP_SESSION.store(id, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    })
}

/// A step that changes nothing (and, unlike `note_session`, shares no state with another test).
fn change_nothing<'a>(_db: &'a mut migrate::Conn<'_>) -> migrate::backend::MigrationFuture<'a> {
    Box::pin(async { Ok(()) })
}

/// MariaDB: a journalled step's waiting finish (left as in
/// `mysql_a_waiting_finish_is_sent_on_a_fresh_session`) that cannot be recorded, its history
/// table renamed away meanwhile, fails the next call with an error that says so, and leaves the
/// step marked dirty for `repair`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_a_finish_that_cannot_be_recorded_says_so() {
    let Some(db) = TestDb::new(Backend::MySql).await else {
        return;
    };
    let names = migrate::TableNames::new();
    let step = first_step("waiting", "change_nothing", change_nothing, false, &names);
    let executor = run_first_step(&db, step, "the step").await;
    db.exec("RENAME TABLE migrate_schema_versions_history TO history_away")
        .await;
    let err = executor
        .read_state()
        .await
        .expect_err("the finish has no history table to finish");
    let message = err.to_string();
    assert!(
        message.contains(
            "finish of the last journalled step, integration:waiting@1.0.0, could not be recorded"
        ) && message.contains("history"),
        "{message}"
    );
    db.exec("RENAME TABLE history_away TO migrate_schema_versions_history")
        .await;
    let rows = executor.read_state().await.expect("the next call answers");
    let row = rows
        .iter()
        .find(|row| row.table == "waiting")
        .expect("the step's state row");
    assert!(row.version.is_none(), "{row:?}");
    assert_eq!(
        row.dirty.as_ref().map(|d| d.version.as_str()),
        Some("1.0.0")
    );
}

/// MariaDB: a journalled step's finish waits in the executor for the tracking tables' next use
/// (the next step's start, or the run's end). A run dropped between the two leaves it waiting;
/// when the server ends the kept session (the one the step ran on) meanwhile, the next call
/// sends the finish on a fresh session, so the step that succeeded is recorded as such instead
/// of left marked dirty, and the call answers. (The log, which shows the finish was sent
/// again, is captured with the `cli` feature.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_a_waiting_finish_is_sent_on_a_fresh_session() {
    let Some(db) = TestDb::new(Backend::MySql).await else {
        return;
    };
    let names = migrate::TableNames::new();
    let step = first_step("waiting", "note_session", note_session, false, &names);
    let executor = run_first_step(&db, step, "the step").await;
    // The finish waits in the executor: outside, the step is still marked and started.
    let mark = "SELECT COALESCE(version, '-'), COALESCE(dirty_version, '-') \
                FROM migrate_schema_versions WHERE table_name = 'waiting'";
    let history = "SELECT outcome FROM migrate_schema_versions_history \
                   WHERE table_name = 'waiting'";
    assert_eq!(db.rows(mark).await, ["-|1.0.0"]);
    assert_eq!(db.rows(history).await, ["started"]);

    let session = STEP_SESSION.load(std::sync::atomic::Ordering::SeqCst);
    assert_ne!(session, 0, "the step noted its session");
    let ended = end_mysql_sessions(&db, &format!("id = {session}")).await;
    assert_eq!(ended, 1, "the step's session, kept by the executor");

    #[cfg(feature = "cli")]
    let (log, _guard) = crate::harness::capture(tracing::Level::DEBUG);
    let rows = executor
        .read_state()
        .await
        .expect("the first call after the session ended answers");
    #[cfg(feature = "cli")]
    assert!(
        log.text()
            .contains("finish met an ended session; sending it again"),
        "the finish was sent again: {}",
        log.text()
    );
    let row = rows
        .iter()
        .find(|row| row.table == "waiting")
        .expect("the step's state row");
    assert_eq!(row.version.as_deref(), Some("1.0.0"));
    assert!(row.dirty.is_none(), "{row:?}");
    assert_eq!(db.rows(mark).await, ["1.0.0|-"]);
    assert_eq!(db.rows(history).await, ["succeeded"]);
}

/// A step that opens a transaction of its own and returns without ending it.
fn leave_a_transaction_open<'a>(
    db: &'a mut migrate::Conn<'_>,
) -> migrate::backend::MigrationFuture<'a> {
    Box::pin(async {
        db.execute("START TRANSACTION").await?;
        db.execute("INSERT INTO left_open (id) VALUES (1)").await?;
        let id = db.query_i64("SELECT CONNECTION_ID()").await?;
        OPEN_STEP_SESSION.store(id, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    })
}

/// The session `leave_a_transaction_open` ran on.
static OPEN_STEP_SESSION: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);

/// MariaDB: a journalled step that returns with a transaction of its own still open has its
/// writes and its finish committed when it returns, on its own session. Its finish used to wait
/// for the next call like any other; had the session ended meanwhile, the server rolled the
/// step's writes back and the finish, sent again on a fresh session, recorded the step as
/// applied without them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_a_step_leaving_its_transaction_open_is_committed_on_its_session() {
    let Some(db) = TestDb::new(Backend::MySql).await else {
        return;
    };
    db.exec("CREATE TABLE left_open (id INT PRIMARY KEY)").await;
    let names = migrate::TableNames::new();
    let step = first_step(
        "left_open",
        "left_open",
        leave_a_transaction_open,
        false,
        &names,
    );
    let executor = run_first_step(&db, step, "the step").await;
    // Seen from another session: the step's row and its record, both committed.
    assert_eq!(db.rows("SELECT id FROM left_open").await, ["1"]);
    let mark = "SELECT COALESCE(version, '-'), COALESCE(dirty_version, '-') \
                FROM migrate_schema_versions WHERE table_name = 'left_open'";
    assert_eq!(db.rows(mark).await, ["1.0.0|-"]);
    // The step's session ending now loses nothing.
    let session = OPEN_STEP_SESSION.load(std::sync::atomic::Ordering::SeqCst);
    assert_ne!(session, 0, "the step noted its session");
    assert_eq!(end_mysql_sessions(&db, &format!("id = {session}")).await, 1);
    executor.read_state().await.expect("the next call answers");
    assert_eq!(db.rows("SELECT id FROM left_open").await, ["1"]);
    assert_eq!(db.rows(mark).await, ["1.0.0|-"]);
    assert_eq!(
        db.rows(
            "SELECT outcome FROM migrate_schema_versions_history WHERE table_name = 'left_open'"
        )
        .await,
        ["succeeded"]
    );
}
