//! `examples/agno` proven: every step up, down and up again on every backend, the fresh
//! install equal to the upgrade, 2.5.0 refusing duplicate session ids with its fix, and the
//! history under Agno's table names.

use agno_migrations::MIGRATIONS;

migrate::round_trip_tests!(agno_migrations::MIGRATIONS);

use migrate::error::ErrorCategory;
use migrate::report::ReportStatus;
use migrate::testing::{Backend, TestDatabase};
use migrate::{Error, MigrationManager};

async fn manager(db: &TestDatabase) -> MigrationManager {
    let manager = MigrationManager::new(db.executor().await.expect("executor"), [&MIGRATIONS])
        .expect("graph");
    agno_migrations::configure(manager).expect("configure")
}

async fn exec(db: &TestDatabase, sql: &str) {
    use sqlx::{AssertSqlSafe, Connection};
    let q = sqlx::raw_sql(AssertSqlSafe(sql.to_string()));
    let done = match db.backend() {
        Backend::Sqlite => q
            .execute(&mut sqlx::SqliteConnection::connect(db.url()).await.unwrap())
            .await
            .map(|_| ()),
        Backend::Postgres => q
            .execute(&mut sqlx::PgConnection::connect(db.url()).await.unwrap())
            .await
            .map(|_| ()),
        Backend::MySql => q
            .execute(&mut sqlx::MySqlConnection::connect(db.url()).await.unwrap())
            .await
            .map(|_| ()),
    };
    done.unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// 2.5.0 refuses while session ids repeat: nothing of it is stamped, the other tables go on,
/// the error carries the fix; once the data is fixed the run completes.
async fn duplicate_session_ids_stop_2_5_0(backend: Backend) {
    let Some(db) = TestDatabase::create(backend).await.expect("database") else {
        return;
    };
    let m = manager(&db).await;
    m.up().target("2.3.0").await.expect("up to 2.3.0");
    // An old database whose sessions table lost its unique key, with a repeated id.
    let drop_unique = match backend {
        Backend::MySql => "ALTER TABLE agno_sessions DROP INDEX agno_sessions_uq_session_id",
        _ => "ALTER TABLE agno_sessions DROP CONSTRAINT agno_sessions_uq_session_id",
    };
    exec(&db, drop_unique).await;
    for _ in 0..2 {
        exec(&db, "INSERT INTO agno_sessions (session_id, session_type, created_at) VALUES ('s-1', 'agent', 1)").await;
    }
    let err = m.up().await.expect_err("2.5.0 refuses");
    assert_eq!(err.category(), ErrorCategory::Blocked, "{err}");
    let (reason, fix) = err.refusal().expect("a refusal");
    assert!(
        reason.contains("1 session ids appear more than once") && reason.contains("s-1"),
        "{reason}"
    );
    assert!(fix.contains("keeping one row per session_id"), "{fix}");
    let Error::Blocked {
        report: Some(report),
        ..
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!(report.status, ReportStatus::Blocked);
    assert!(
        report.applied.iter().any(|a| a.step.table == "metrics"),
        "other tables went on"
    );
    let current = m
        .current_version("session")
        .await
        .expect("current")
        .map(|v| v.to_string());
    assert_eq!(
        current.as_deref(),
        Some("2.3.0"),
        "nothing of 2.5.0 was stamped"
    );

    exec(&db, "DELETE FROM agno_sessions WHERE session_id = 's-1'").await;
    m.up().await.expect("the fixed data goes through");
    let status = m.status().await.expect("status");
    assert!(
        status.iter().all(|s| s.current.as_ref() == Some(&s.latest)),
        "{status:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_session_ids_stop_2_5_0_on_postgres() {
    duplicate_session_ids_stop_2_5_0(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_session_ids_stop_2_5_0_on_mysql() {
    duplicate_session_ids_stop_2_5_0(Backend::MySql).await;
}
