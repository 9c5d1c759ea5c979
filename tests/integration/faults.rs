//! Injected faults. In each case the error names the step (or the database) at fault, and the
//! state is consistent afterwards: what a transaction covered is rolled back, what it could not
//! cover is a dirty mark naming the step, and the next run recovers.
//!
//! - a down that fails after its DDL;
//! - a Rust data step that fails after writing rows;
//! - a PostgreSQL server restarted while a step runs (a cluster of the test's own);
//! - a SQLite file opened read-only;
//! - a PostgreSQL role without CREATE on the schema, also one that waited for the lock while
//!   another made the tracking tables.

use crate::harness::{each_backend, v, TestDb};
use crate::MIGRATIONS;
use migrate::manager::Resolution;
use migrate::report::{Direction, Outcome};
use migrate::testing::{Backend, PostgresServer};
use migrate::MigrationManager;
use std::time::{Duration, Instant};

/// `table@version` of an error's failed step and its direction.
fn failed_step(err: &migrate::Error) -> (String, Direction) {
    match err {
        migrate::Error::StepFailed {
            step, direction, ..
        } => (format!("{}@{}", step.table, step.version), *direction),
        other => panic!("expected StepFailed, got {other:?}"),
    }
}

each_backend! {
    async fn a_down_that_fails_after_its_ddl_names_the_step(db) {
        let m = db.manager().await;
        m.up().await.expect("up");
        db.control("metrics@2.1.0 down", "fail").await;
        let before = db.fingerprint().await;

        let err = m.down().table("metrics").target("2.0.0").await.expect_err("the down fails");
        assert_eq!(failed_step(&err), ("metrics@2.1.0".to_string(), Direction::Down), "{err}");
        let migrate::Error::StepFailed { applied, source, .. } = &err else { unreachable!() };
        let reverted: Vec<String> = applied.iter().map(|a| format!("{}@{}", a.step.table, a.step.version)).collect();
        assert_eq!(reverted, ["metrics@2.5.0"], "the step before it was reverted and is reported");
        assert!(source.to_string().contains("told to fail"), "{source}");
        assert_ne!(db.fingerprint().await, before, "the failure is recorded");
        let last = &m.history(1).await.expect("history")[0];
        assert_eq!((last.version.as_str(), last.direction, last.outcome), ("2.1.0", Direction::Down, Outcome::Failed));
        db.clear_control().await;

        if db.backend() == Backend::MySql {
            // Journalled: the column is gone, and the mark says the down is in doubt.
            assert!(!db.has_column("metrics", "tokens").await);
            let status = m.status().await.expect("status works on a dirty database");
            let mark = status.iter().find(|s| s.table == "metrics").and_then(|s| s.dirty.clone()).expect("dirty");
            assert_eq!((mark.version.as_str(), mark.direction), ("2.1.0", Direction::Down));
            m.resolve_dirty("metrics", Resolution::Completed).await.expect("resolve");
        } else {
            // Rolled back with its transaction: the column is back, the version unchanged.
            assert!(db.has_column("metrics", "tokens").await);
            assert_eq!(m.current_version("metrics").await.unwrap(), Some(v("2.1.0")));
            m.down().table("metrics").target("2.0.0").await.expect("the down runs once fixed");
        }
        assert_eq!(m.current_version("metrics").await.unwrap(), Some(v("2.0.0")));
        assert!(!db.has_column("metrics", "tokens").await);
        // Every other table is where it was.
        assert_eq!(m.current_version("session").await.unwrap(), Some(v("2.3.0")));
    }

    async fn a_data_step_that_fails_after_writing_rows_keeps_none_of_them(db) {
        let m = db.manager().await;
        m.up().table("eval").target("2.0.0").await.expect("eval at 2.0.0");
        db.exec("INSERT INTO eval (id, score) VALUES (1, 7), (2, 9)").await;
        db.control("eval@2.1.0", "fail").await;

        let err = m.up().table("eval").await.expect_err("the data step fails");
        assert_eq!(failed_step(&err), ("eval@2.1.0".to_string(), Direction::Up), "{err}");
        db.clear_control().await;
        let scores = "SELECT score FROM eval ORDER BY id";

        if db.backend() == Backend::MySql {
            // Journalled: the UPDATE committed, and the mark names the step in doubt.
            assert_eq!(db.rows(scores).await, ["700", "900"]);
            let err = m.up().table("eval").await.expect_err("blocked by the mark");
            let migrate::Error::Dirty { table, version, .. } = &err else { panic!("{err:?}") };
            assert_eq!((table.as_str(), version.as_str()), ("eval", "2.1.0"));
            // The operator sees the rows were converted: the step is done.
            m.resolve_dirty("eval", Resolution::Completed).await.expect("resolve");
        } else {
            // Rolled back with its transaction: not one row was changed.
            assert_eq!(db.rows(scores).await, ["7", "9"]);
            assert_eq!(m.current_version("eval").await.unwrap(), Some(v("2.0.0")));
            m.up().table("eval").await.expect("the step runs once fixed");
        }
        // Converted exactly once.
        assert_eq!(db.rows(scores).await, ["700", "900"]);
        assert_eq!(m.current_version("eval").await.unwrap(), Some(v("2.1.0")));
    }
}

/// The test database's URL with `user` in place of its user.
fn with_user(url: &str, user: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("a server URL");
    let host = rest.split_once('@').map_or(rest, |(_, host)| host);
    format!("{scheme}://{user}@{host}")
}

/// A login role named after `prefix` that may not create anything in the schema `public`.
async fn role_without_create(db: &TestDb, prefix: &str) -> String {
    let role = format!("{prefix}_{}", std::process::id());
    db.exec(&format!("CREATE ROLE {role} LOGIN")).await;
    db.exec(&format!(
        "REVOKE CREATE ON SCHEMA public FROM PUBLIC, {role}"
    ))
    .await;
    role
}

/// Lets `role` read and write the tracking tables (and their identity sequence).
async fn grant_tracking_tables(db: &TestDb, role: &str) {
    for table in ["migrate_schema_versions", "migrate_schema_versions_history"] {
        db.exec(&format!(
            "GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO {role}"
        ))
        .await;
    }
    db.exec(&format!(
        "GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {role}"
    ))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_without_create_on_the_schema_is_refused_and_changes_nothing() {
    let Some(db) = TestDb::new(Backend::Postgres).await else {
        return;
    };
    let role = role_without_create(&db, "no_create").await;
    let url = with_user(db.url(), &role);
    let before = db.fingerprint().await;

    // Nothing there yet: the tracking tables cannot be created.
    let m = MigrationManager::new(
        migrate::connect(&url).await.expect("connect"),
        [&MIGRATIONS],
    )
    .expect("graph");
    let err = m.up().await.expect_err("no CREATE");
    let text = format!("{err}");
    assert!(matches!(err, migrate::Error::Database(_)), "{err:?}");
    assert!(text.contains("permission denied"), "{text}");
    assert!(
        text.contains("migrate_schema_versions"),
        "the error names the tracking table: {text}"
    );
    assert_eq!(db.fingerprint().await, before, "nothing was created");

    // The tracking tables exist and the role may write them, but not create a table: the
    // first step is refused, names itself, and is rolled back.
    db.manager()
        .await
        .up()
        .table("eval")
        .target("2.0.0")
        .await
        .expect("the owner starts");
    grant_tracking_tables(&db, &role).await;
    let err = m.up().table("session").await.expect_err("no CREATE");
    assert_eq!(
        failed_step(&err),
        ("session@2.0.0".to_string(), Direction::Up),
        "{err}"
    );
    let migrate::Error::StepFailed { source, .. } = &err else {
        unreachable!()
    };
    assert!(source.to_string().contains("permission denied"), "{source}");
    assert!(!db.has_table("session").await);
    assert_eq!(m.current_version("session").await.expect("current"), None);
    let last = &m.history(1).await.expect("history")[0];
    assert_eq!(
        (last.table.as_str(), last.outcome),
        ("session", Outcome::Failed)
    );
    // The owner's run goes on from there.
    db.manager().await.up().await.expect("the owner finishes");
    assert_eq!(
        m.current_version("session").await.expect("current"),
        Some(v("2.3.0"))
    );
}

/// In the lock-row mode (PgBouncer, CockroachDB) a role that may use the tables but not create
/// any takes the lock: the lock table is looked up before it is created.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_without_create_takes_the_lock_row() {
    use migrate::postgres::{LockMode, PgDb};
    let Some(db) = TestDb::new(Backend::Postgres).await else {
        return;
    };
    let mode = LockMode::Table {
        stale_after: Duration::from_secs(600),
    };
    let owner = MigrationManager::new(
        PgDb::connect(db.url())
            .await
            .expect("connect")
            .with_lock_mode(mode),
        [&MIGRATIONS],
    )
    .expect("graph");
    owner
        .up()
        .table("eval")
        .await
        .expect("the owner starts, making the lock table");
    let role = role_without_create(&db, "lock_row_no_create").await;
    grant_tracking_tables(&db, &role).await;
    db.exec(&format!(
        "GRANT SELECT, INSERT, UPDATE, DELETE ON migrate_schema_versions_lock TO {role}"
    ))
    .await;
    let m = MigrationManager::new(
        PgDb::connect(&with_user(db.url(), &role))
            .await
            .expect("connect")
            .with_lock_mode(mode),
        [&MIGRATIONS],
    )
    .expect("graph");
    m.stamp("eval", "2.0.0")
        .await
        .expect("the lock, without CREATE");
    assert_eq!(
        m.current_version("eval").await.expect("current"),
        Some(v("2.0.0"))
    );
}

/// A runner whose state read found no tracking tables, and which then waited for the lock while
/// another made them, creates nothing: its plain `CREATE TABLE` is refused (PostgreSQL checks
/// the CREATE right before whether the table exists), so it asks the catalog, finds the tables,
/// and its first step is what fails, named, not the tracking tables.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_without_create_uses_tracking_tables_made_while_it_waited() {
    use migrate::backend::MigrationBackend;
    let Some(db) = TestDb::new(Backend::Postgres).await else {
        return;
    };
    let role = role_without_create(&db, "late_no_create").await;
    let executor = migrate::postgres::PgDb::connect(&with_user(db.url(), &role))
        .await
        .expect("connect");
    // The run lock, held here until the tables exist.
    let key = executor.lock_key();
    let mut holder = crate::harness::hold_advisory_lock(db.url(), key).await;
    let m = MigrationManager::new(executor, [&MIGRATIONS]).expect("graph");
    let run = tokio::spawn(async move {
        let result = m.up().table("session").await;
        (m, result)
    });
    // Its state read (no tables) is behind it once it asks for the lock.
    wait_for_activity(
        &mut holder,
        &format!("usename = '{role}' AND query LIKE '%pg_try_advisory_lock%'"),
        "the runner's lock request",
    )
    .await;
    db.executor()
        .await
        .prepare()
        .await
        .expect("the owner makes the tracking tables");
    grant_tracking_tables(&db, &role).await;
    sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(key)
        .execute(&mut holder)
        .await
        .expect("unlock");
    let (m, result) = run.await.expect("task");
    let err = result.expect_err("no CREATE for the step");
    assert_eq!(
        failed_step(&err),
        ("session@2.0.0".to_string(), Direction::Up),
        "{err}"
    );
    let last = &m.history(1).await.expect("history")[0];
    assert_eq!(
        (last.table.as_str(), last.outcome),
        ("session", Outcome::Failed)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_file_opened_read_only_is_refused_and_left_alone() {
    let Some(db) = TestDb::new(Backend::Sqlite).await else {
        return;
    };
    db.manager()
        .await
        .up()
        .target("2.0.0")
        .await
        .expect("up to 2.0.0");
    let before = db.fingerprint().await;
    let path = db.database.sqlite_path().expect("a SQLite file");
    let url = format!("sqlite://{}?mode=ro", path.display());

    let m = MigrationManager::new(
        migrate::connect(&url).await.expect("connect"),
        [&MIGRATIONS],
    )
    .expect("graph");
    // Reading works.
    assert_eq!(
        m.current_version("session").await.expect("current"),
        Some(v("2.0.0"))
    );
    // The lock and the tracking tables need no write; the first step does, and is named.
    let err = m.up().await.expect_err("read-only");
    assert_eq!(
        failed_step(&err),
        ("eval@2.1.0".to_string(), Direction::Up),
        "{err}"
    );
    let migrate::Error::StepFailed { source, .. } = &err else {
        unreachable!()
    };
    assert!(source.to_string().contains("readonly"), "{source}");
    assert_eq!(db.fingerprint().await, before, "nothing changed");
    // A writable connection carries on.
    db.manager().await.up().await.expect("up");
    assert_eq!(
        m.current_version("session").await.expect("current"),
        Some(v("2.3.0"))
    );
}

/// A database another tool made (journal mode DELETE), opened read-only: reading works. The
/// switch to WAL that every other connection makes is a write, which failed the connect.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_file_in_another_journal_mode_opens_read_only() {
    use sqlx::{Connection, Executor};
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("other.db");
    let mut conn =
        sqlx::SqliteConnection::connect(&format!("sqlite://{}?mode=rwc", path.display()))
            .await
            .expect("create");
    conn.execute("CREATE TABLE theirs (id INTEGER)")
        .await
        .expect("table");
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&mut conn)
        .await
        .expect("mode");
    assert_eq!(mode, "delete");
    conn.close().await.expect("close");
    let url = format!("sqlite://{}?mode=ro", path.display());
    let m = MigrationManager::new(
        migrate::connect(&url).await.expect("a read-only connect"),
        [&MIGRATIONS],
    )
    .expect("graph");
    let status = m.status().await.expect("status");
    assert!(status.iter().all(|t| t.current.is_none()), "{status:?}");
}

/// Waits until a server session matches `filter` (a condition on `pg_stat_activity`), failing
/// after a minute without `what`.
async fn wait_for_activity(conn: &mut sqlx::PgConnection, filter: &str, what: &str) {
    let started = Instant::now();
    let sql = format!("SELECT count(*) FROM pg_stat_activity WHERE {filter}");
    loop {
        let busy: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql.clone()))
            .fetch_one(&mut *conn)
            .await
            .expect("pg_stat_activity");
        if busy > 0 {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "never saw {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_restart_mid_step_fails_the_step_and_the_same_manager_recovers() {
    let Some(server) = PostgresServer::start().expect("a cluster of its own") else {
        return;
    };
    let pool = sqlx::PgPool::connect(server.url()).await.expect("connect");
    sqlx::query(
        "CREATE TABLE migrate_test_control (step VARCHAR(64) PRIMARY KEY, action VARCHAR(16))",
    )
    .execute(&pool)
    .await
    .expect("control table");
    sqlx::query("INSERT INTO migrate_test_control VALUES ('metrics@2.1.0', 'server_sleep')")
        .execute(&pool)
        .await
        .expect("control row");
    let manager = std::sync::Arc::new(
        MigrationManager::new(
            migrate::connect(server.url()).await.expect("connect"),
            [&MIGRATIONS],
        )
        .expect("graph"),
    );
    let run = tokio::spawn({
        let manager = manager.clone();
        async move { manager.up().await }
    });
    wait_for_activity(
        &mut pool.acquire().await.expect("connection"),
        "query LIKE 'SELECT pg_sleep(60)%' AND state = 'active'",
        "the step's sleep",
    )
    .await;
    let restarted = Instant::now();
    server.restart().expect("restart");
    let err = run
        .await
        .expect("the run returns")
        .expect_err("the restart ends the step");
    assert_eq!(
        failed_step(&err),
        ("metrics@2.1.0".to_string(), Direction::Up),
        "{err}"
    );
    eprintln!(
        "RELIABILITY fault postgres restart: failed, named the step, recovered ({} ms restart)",
        restarted.elapsed().as_millis()
    );

    // The next run on the same manager (a service does not restart with its database) takes
    // the lock, which ended with the session, and finishes: the step was rolled back.
    sqlx::query("DELETE FROM migrate_test_control")
        .execute(&pool)
        .await
        .expect("clear control");
    let report = manager.up().await.expect("the next run recovers");
    assert!(report
        .applied
        .iter()
        .any(|a| a.step.table == "metrics" && a.step.version == v("2.1.0")));
    for (table, head) in [
        ("session", "2.3.0"),
        ("memory", "2.3.0"),
        ("metrics", "2.5.0"),
        ("eval", "2.1.0"),
    ] {
        assert_eq!(
            manager.current_version(table).await.expect("current"),
            Some(v(head)),
            "{table}"
        );
    }
    let done: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM migrate_schema_versions_history WHERE table_name = 'metrics' AND version = '2.1.0' AND direction = 'up' AND outcome = 'succeeded'",
    )
    .fetch_one(&pool)
    .await
    .expect("history");
    assert_eq!(done, 1, "applied exactly once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_restart_while_idle_fails_no_call() {
    let Some(server) = PostgresServer::start().expect("a cluster of its own") else {
        return;
    };
    let manager = MigrationManager::new(
        migrate::connect(server.url()).await.expect("connect"),
        [&MIGRATIONS],
    )
    .expect("graph");
    manager.up().await.expect("up");
    assert_eq!(
        manager.up().await.expect("no-op").status,
        migrate::report::ReportStatus::UpToDate
    );
    server.restart().expect("restart");
    // Every session the executor held died with the server, the kept one too. Its state read
    // meets the dead session and is sent again on a connection of the pool that answers a
    // ping (the pool's other idle sessions are as dead): the first call answers.
    let report = manager
        .up()
        .await
        .expect("the first call after the restart answers");
    assert_eq!(report.status, migrate::report::ReportStatus::UpToDate);
}
