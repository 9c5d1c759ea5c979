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

/// A database Agno 3.x built itself: every table created at its latest schema, and
/// `agno_schema_versions` stamped as Agno stamps it, each physical table at the release its
/// manager reached (3.0.0, also on `agno_memories`, whose last step is 2.3.0) and table types
/// it never created stamped too. Adopted, it is at every head: nothing runs, no conflict.
async fn an_agno_3_database_is_adopted_at_its_heads(backend: Backend) {
    let Some(db) = TestDatabase::create(backend).await.expect("database") else {
        return;
    };
    manager(&db)
        .await
        .up()
        .await
        .expect("the tables at their heads");
    // What Agno's own install leaves: its tables, its version table, none of ours.
    for table in [
        "migrate_schema_versions",
        "migrate_schema_versions_history",
        "migrate_schema_versions_lock",
    ] {
        exec(&db, &format!("DROP TABLE IF EXISTS {table}")).await;
    }
    exec(
        &db,
        "CREATE TABLE agno_schema_versions (table_name VARCHAR(255) PRIMARY KEY, \
         version VARCHAR(50) NOT NULL, created_at BIGINT NOT NULL, updated_at BIGINT)",
    )
    .await;
    let stamped = agno_migrations::PHYSICAL
        .iter()
        .map(|(_, physical)| *physical)
        .chain(["agno_culture", "agno_components", "agno_learnings"]);
    for table in stamped {
        exec(
            &db,
            &format!("INSERT INTO agno_schema_versions VALUES ('{table}', '3.0.0', 1, NULL)"),
        )
        .await;
    }
    let m = manager(&db).await;
    let status = m.status().await.expect("status");
    for table in status.iter().filter(|s| !s.table.starts_with("v1_")) {
        assert_eq!(table.current.as_ref(), Some(&table.latest), "{table:?}");
        assert!(table.adoption.is_none(), "{table:?}");
    }
    let report = m.up().await.expect("up");
    let ran: Vec<String> = report.applied.iter().map(|a| a.step.to_string()).collect();
    assert!(
        ran.iter().all(|step| step.contains("v1_")),
        "only the v1 import (which has no Agno stamp) may run: {ran:?}"
    );
}

#[tokio::test]
async fn an_agno_3_database_is_adopted_at_its_heads_on_sqlite() {
    an_agno_3_database_is_adopted_at_its_heads(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agno_3_database_is_adopted_at_its_heads_on_postgres() {
    an_agno_3_database_is_adopted_at_its_heads(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agno_3_database_is_adopted_at_its_heads_on_mysql() {
    an_agno_3_database_is_adopted_at_its_heads(Backend::MySql).await;
}

/// One integer, read outside the manager.
async fn count(db: &TestDatabase, sql: &str) -> i64 {
    use sqlx::{AssertSqlSafe, Connection};
    let sql_text = || AssertSqlSafe(sql.to_string());
    let value = match db.backend() {
        Backend::Sqlite => {
            let mut conn = sqlx::SqliteConnection::connect(db.url()).await.unwrap();
            sqlx::query_scalar(sql_text()).fetch_one(&mut conn).await
        }
        Backend::Postgres => {
            let mut conn = sqlx::PgConnection::connect(db.url()).await.unwrap();
            sqlx::query_scalar(sql_text()).fetch_one(&mut conn).await
        }
        Backend::MySql => {
            let mut conn = sqlx::MySqlConnection::connect(db.url()).await.unwrap();
            sqlx::query_scalar(sql_text()).fetch_one(&mut conn).await
        }
    };
    value.unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// A v1 `memories` table found beside a memories table already at 2.3.0 (an Agno v2 database
/// that kept its v1 tables): the import writes `created_at`, which 2.3.0 made NOT NULL
/// without a default on PostgreSQL and MySQL (the insert failed there).
async fn v1_memories_are_imported_into_a_2_3_0_table(backend: Backend) {
    let Some(db) = TestDatabase::create(backend).await.expect("database") else {
        return;
    };
    let m = manager(&db).await;
    m.up().await.expect("every head");
    m.down()
        .table("v1_memories")
        .to_base()
        .await
        .expect("the import undone");
    exec(
        &db,
        "CREATE TABLE memories (id VARCHAR(64) PRIMARY KEY, user_id VARCHAR(64), memory TEXT, \
         updated_at BIGINT)",
    )
    .await;
    exec(
        &db,
        r#"INSERT INTO memories VALUES ('m-1', 'u-1', '{"memory": "likes tea"}', 1700000000)"#,
    )
    .await;
    m.up().await.expect("the import into the 2.3.0 table");
    assert_eq!(
        count(
            &db,
            "SELECT created_at FROM agno_memories WHERE memory_id = 'm-1'"
        )
        .await,
        1_700_000_000
    );
}

#[tokio::test]
async fn v1_memories_are_imported_into_a_2_3_0_table_on_sqlite() {
    v1_memories_are_imported_into_a_2_3_0_table(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v1_memories_are_imported_into_a_2_3_0_table_on_postgres() {
    v1_memories_are_imported_into_a_2_3_0_table(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v1_memories_are_imported_into_a_2_3_0_table_on_mysql() {
    v1_memories_are_imported_into_a_2_3_0_table(Backend::MySql).await;
}

/// metrics@3.0.0 cut off after its first statement (on MySQL each commits), then run again:
/// it finishes what is missing instead of taking the column for the whole step (which left
/// the 2.x key refusing a second user's row for a day).
async fn metrics_3_0_0_finishes_after_a_cut_off_run(backend: Backend) {
    let Some(db) = TestDatabase::create(backend).await.expect("database") else {
        return;
    };
    let m = manager(&db).await;
    m.up().target("2.3.0").await.expect("up to 2.3.0");
    let (column, index_count) = match backend {
        Backend::MySql => (
            "ALTER TABLE agno_metrics ADD COLUMN user_id VARCHAR(128) NOT NULL DEFAULT ''",
            "SELECT COUNT(DISTINCT INDEX_NAME) FROM information_schema.STATISTICS WHERE \
             TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'agno_metrics' AND INDEX_NAME = ",
        ),
        _ => (
            "ALTER TABLE agno_metrics ADD COLUMN user_id VARCHAR NOT NULL DEFAULT ''",
            "SELECT COUNT(*) FROM pg_indexes WHERE tablename = 'agno_metrics' AND indexname = ",
        ),
    };
    exec(&db, column).await;
    m.up().await.expect("the rest of 3.0.0");
    for (index, expected) in [
        ("'agno_metrics_uq_metrics_user_date_period'", 1),
        ("'agno_metrics_uq_metrics_date_period'", 0),
        ("'idx_agno_metrics_user_id'", 1),
    ] {
        assert_eq!(
            count(&db, &format!("{index_count}{index}")).await,
            expected,
            "{index}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_3_0_0_finishes_after_a_cut_off_run_on_postgres() {
    metrics_3_0_0_finishes_after_a_cut_off_run(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_3_0_0_finishes_after_a_cut_off_run_on_mysql() {
    metrics_3_0_0_finishes_after_a_cut_off_run(Backend::MySql).await;
}

/// A baseline below a table's first version (approvals start at 2.5.0, runs at 3.0.0) says
/// nothing about that table: nothing of it is applied (it read as at 2.0.0, a version it does
/// not have, and a down to the baseline then kept its first step).
#[tokio::test]
async fn a_baseline_below_a_tables_first_version_applies_nothing_of_it() {
    let Some(db) = TestDatabase::create(Backend::Sqlite)
        .await
        .expect("database")
    else {
        return;
    };
    let m = MigrationManager::new(db.executor().await.expect("executor"), [&MIGRATIONS])
        .expect("graph")
        .with_baseline("2.0.0")
        .expect("baseline");
    for (table, expected) in [
        ("session", Some("2.0.0")),
        ("approvals", None),
        ("runs", None),
    ] {
        let current = m.current_version(table).await.expect("current");
        assert_eq!(
            current.map(|v| v.to_string()).as_deref(),
            expected,
            "{table}"
        );
    }
}

/// v1 sessions found beside a sessions table without `runs` (one Agno 3 created itself): the
/// import is refused as `Blocked` before its checkpoint is written, naming the column and the
/// way out (before, every `up` stopped at the upsert's raw driver error).
#[tokio::test]
async fn v1_sessions_beside_a_sessions_table_without_runs_are_refused() {
    let Some(db) = TestDatabase::create(Backend::Sqlite)
        .await
        .expect("database")
    else {
        return;
    };
    let m = manager(&db).await;
    m.up().await.expect("every head");
    m.down()
        .table("v1_sessions")
        .to_base()
        .await
        .expect("the import undone");
    exec(&db, "ALTER TABLE agno_sessions DROP COLUMN runs").await;
    exec(
        &db,
        "CREATE TABLE agent_sessions (session_id VARCHAR(64) PRIMARY KEY, agent_id VARCHAR(64), \
         user_id VARCHAR(64), memory TEXT, session_data TEXT, extra_data TEXT, agent_data TEXT, \
         created_at BIGINT, updated_at BIGINT); \
         INSERT INTO agent_sessions VALUES ('s1', 'a', 'u', '{}', '{}', NULL, '{}', 1, 2)",
    )
    .await;
    let err = m
        .up()
        .table("v1_sessions")
        .await
        .expect_err("no runs column to import into");
    let (reason, fix) = err.refusal().expect("a refusal");
    assert!(reason.contains("no `runs` column"), "{reason}");
    assert!(fix.contains("before 3.0.0"), "{fix}");
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) FROM migrate_data_checkpoints WHERE job LIKE 'agno_v1_%'"
        )
        .await,
        0,
        "no checkpoint written: the import stopped before its job started"
    );
}
