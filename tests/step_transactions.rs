//! A transactional step runs in a transaction that sqlx counts (a step's commit may begin the
//! next step's transaction in the same round trip, and sqlx must still know it is in one): a
//! migration that begins a transaction of its own through the driver gets a savepoint, so
//! committing it keeps nothing until the step commits, and a failure later in the step takes
//! it back. On SQLite and PostgreSQL; a MariaDB step commits its DDL as it goes.
//!
//! On PostgreSQL a step's tracking writes run a statement prepared on the session (one for a
//! table's first step, one for its later steps), with the values written in: a step that
//! deallocates them is undone and run again, once, recording the other way; a module name with
//! a backslash and a quote is kept exactly with `standard_conforming_strings` off; and a pooled
//! session that holds only one of the two gets the other prepared.

use migrate::backend::{MigrationFn, MigrationFuture};
use migrate::registry::{Migration, MigrationSet, Reversal};
use migrate::testing::{Backend, TestDatabase};
use migrate::{Conn, ConnExt, Dialect, MigrationManager, Result};
use sqlx::{Connection, Executor};
use std::sync::atomic::{AtomicUsize, Ordering};

migrate::migrations! {}

/// A nested transaction through the driver, committed: a table created in it.
async fn nested_commit(db: &mut Conn<'_>, table: &str) -> Result<()> {
    let sql = format!("CREATE TABLE {table} (id INTEGER)");
    match db.dialect() {
        Dialect::Postgres => {
            let mut tx = db.postgres()?.begin().await?;
            tx.execute(sqlx::AssertSqlSafe(sql)).await?;
            tx.commit().await?;
        }
        Dialect::Sqlite => {
            let mut tx = db.sqlite()?.begin().await?;
            tx.execute(sqlx::AssertSqlSafe(sql)).await?;
            tx.commit().await?;
        }
        _ => {}
    }
    Ok(())
}

#[migrate::migration(table = "kept", version = "1.0.0", irreversible)]
async fn kept(db: &mut Conn<'_>) -> Result<()> {
    db.execute("CREATE TABLE kept_outer (id INTEGER)").await?;
    nested_commit(db, "kept_inner").await?;
    db.execute("INSERT INTO kept_outer (id) VALUES (1)").await?;
    Ok(())
}

#[migrate::migration(table = "undone", version = "1.0.0", irreversible)]
async fn undone(db: &mut Conn<'_>) -> Result<()> {
    db.execute("CREATE TABLE undone_outer (id INTEGER)").await?;
    nested_commit(db, "undone_inner").await?;
    // Fails after the nested commit: nothing of the step may stay.
    db.execute("INSERT INTO no_such_table (id) VALUES (1)")
        .await?;
    Ok(())
}

/// A fresh database on `backend`; `None` (reported as skipped) when its server cannot be had.
async fn database(backend: Backend) -> Option<TestDatabase> {
    TestDatabase::create(backend).await.expect("test database")
}

async fn has_table(db: &TestDatabase, table: &str) -> bool {
    let executor = db.executor().await.expect("executor");
    executor.table_exists(table).await.expect("catalog")
}

async fn a_nested_transaction_is_a_savepoint_of_the_step(backend: Backend) {
    let Some(db) = database(backend).await else {
        return;
    };
    let manager = MigrationManager::new(db.executor().await.expect("executor"), [&MIGRATIONS])
        .expect("graph");
    let report = manager.up().table("kept").await.expect("up kept");
    assert_eq!(report.applied.len(), 1);
    assert!(has_table(&db, "kept_outer").await);
    assert!(has_table(&db, "kept_inner").await);

    let err = manager
        .up()
        .table("undone")
        .await
        .expect_err("the step fails after its nested commit");
    assert!(matches!(err, migrate::Error::StepFailed { .. }), "{err:?}");
    assert!(
        !has_table(&db, "undone_inner").await,
        "the nested commit was a savepoint, undone with the step"
    );
    assert!(!has_table(&db, "undone_outer").await);
    assert_eq!(
        manager.current_version("undone").await.expect("state"),
        None
    );
    assert!(manager
        .current_version("kept")
        .await
        .expect("state")
        .is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nested_transaction_is_a_savepoint_of_the_step_on_sqlite() {
    a_nested_transaction_is_a_savepoint_of_the_step(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nested_transaction_is_a_savepoint_of_the_step_on_postgres() {
    a_nested_transaction_is_a_savepoint_of_the_step(Backend::Postgres).await;
}

/// A migration function `$name` that creates `$table` (one integer column).
macro_rules! creates {
    ($name:ident, $table:literal) => {
        fn $name<'a>(db: &'a mut Conn<'_>) -> MigrationFuture<'a> {
            Box::pin(async move {
                db.execute(concat!("CREATE TABLE ", $table, " (id INTEGER)"))
                    .await?;
                Ok(())
            })
        }
    };
}

/// A transactional, irreversible step of `set`, built at run time.
fn step(
    set: &'static MigrationSet,
    table: &'static str,
    version: &'static str,
    parent: Option<&'static str>,
    up: MigrationFn,
) -> &'static Migration {
    Box::leak(Box::new(Migration::__new(
        set,
        table,
        version,
        parent,
        "step",
        up,
        Reversal::Irreversible,
        true,
        None,
        "fnv1a64:0000000000000000",
        "step_transactions.rs",
        1,
    )))
}

/// A set of its own, built at run time: a table, then a step that deallocates the session's
/// prepared record statements on its first run.
static DEALLOCATING: MigrationSet =
    MigrationSet::__new("dealloc'ating \\ set\\", "step_transactions", &[]);

/// How many times the deallocating step ran.
static DEALLOCATING_RUNS: AtomicUsize = AtomicUsize::new(0);

creates!(create_rows, "rows_once");

fn deallocate_once<'a>(db: &'a mut Conn<'_>) -> MigrationFuture<'a> {
    Box::pin(async move {
        db.execute("INSERT INTO rows_once (id) VALUES (1)").await?;
        if DEALLOCATING_RUNS.fetch_add(1, Ordering::SeqCst) == 0 {
            let names = db
                .query("SELECT name FROM pg_prepared_statements WHERE name LIKE 'migrate_record_%'")
                .await?;
            if names.is_empty() {
                return Err(migrate::Error::msg(
                    "no prepared record statement to deallocate",
                ));
            }
            for row in names {
                let name = row.get(0).and_then(|v| v.as_str()).unwrap_or_default();
                db.execute(&format!("DEALLOCATE {}", db.quote_ident(name)))
                    .await?;
            }
        }
        Ok(())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_that_deallocates_the_record_statement_runs_again_on_postgres() {
    let Some(db) = database(Backend::Postgres).await else {
        return;
    };
    let migrations = [
        step(&DEALLOCATING, "rows_once", "1.0.0", None, create_rows),
        step(
            &DEALLOCATING,
            "rows_once",
            "1.1.0",
            Some("1.0.0"),
            deallocate_once,
        ),
    ];
    let mut conn = sqlx::PgConnection::connect(db.url())
        .await
        .expect("connect");
    // New connections read a backslash in a plain string literal as an escape.
    let database: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(&mut conn)
        .await
        .expect("database name");
    conn.execute(sqlx::AssertSqlSafe(format!(
        "ALTER DATABASE {} SET standard_conforming_strings = off",
        Dialect::Postgres.quote_ident(&database)
    )))
    .await
    .expect("standard_conforming_strings off");
    let manager =
        MigrationManager::from_migrations(db.executor().await.expect("executor"), migrations)
            .expect("graph");
    let report = manager.up().await.expect("up");
    assert_eq!(report.applied.len(), 2);
    assert_eq!(
        DEALLOCATING_RUNS.load(Ordering::SeqCst),
        2,
        "the step whose record statement was deallocated runs again"
    );
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM rows_once")
        .fetch_one(&mut conn)
        .await
        .expect("count");
    assert_eq!(count, 1, "the first run's insert was rolled back");
    assert_eq!(
        manager
            .current_version("rows_once")
            .await
            .expect("state")
            .map(|v| v.to_string()),
        Some("1.1.0".to_string())
    );
    let modules: Vec<String> =
        sqlx::query_scalar("SELECT DISTINCT module FROM migrate_schema_versions_history")
            .fetch_all(&mut conn)
            .await
            .expect("history");
    assert_eq!(modules, ["dealloc'ating \\ set\\"]);
}

/// A set of its own: two tables, one step each (each a table's first step).
static PARTIAL: MigrationSet = MigrationSet::__new("partial", "step_transactions", &[]);

creates!(create_partial_a, "partial_a");

creates!(create_partial_b, "partial_b");

/// The session statements (`name`, `PREPARE ...`) a connection holds.
async fn session_statements(conn: &mut sqlx::PgConnection) -> Vec<(String, String)> {
    sqlx::query_as(
        "SELECT name, statement FROM pg_prepared_statements \
         WHERE name LIKE 'migrate_record_%' ORDER BY name",
    )
    .fetch_all(conn)
    .await
    .expect("prepared statements")
}

/// A pooled session that holds the later steps' record statement but not the first steps'
/// (another executor's step deallocated it) gets the missing one prepared, and the executor
/// goes on recording in one exchange: preparing both again would fail on the one it holds
/// (SQLSTATE 42P05) and turn that way off.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_holding_one_record_statement_gets_the_other_on_postgres() {
    let Some(db) = database(Backend::Postgres).await else {
        return;
    };
    let migrations = [
        step(&PARTIAL, "partial_a", "1.0.0", None, create_partial_a),
        step(&PARTIAL, "partial_b", "1.0.0", None, create_partial_b),
    ];
    // Two connections: the run lock's and the steps'.
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .min_connections(2)
        .connect(db.url())
        .await
        .expect("pool");
    let first = MigrationManager::from_migrations(
        migrate::postgres::PgDb::from_pool(pool.clone()),
        migrations,
    )
    .expect("graph");
    first.up().table("partial_a").await.expect("up partial_a");
    drop(first);

    // The steps' session holds both statements, the run lock's none.
    let mut a = pool.acquire().await.expect("connection");
    let mut b = pool.acquire().await.expect("connection");
    let (mut held_by, mut other) = (&mut *a, &mut *b);
    if session_statements(held_by).await.is_empty() {
        std::mem::swap(&mut held_by, &mut other);
    }
    assert_eq!(session_statements(other).await, []);
    let held = session_statements(held_by).await;
    assert_eq!(held.len(), 2, "both record statements: {held:?}");
    let (later, first_name) = (&held[0], &held[1].0);
    assert!(first_name.ends_with("_first"), "{held:?}");
    // The text the session was prepared with holds both statements; the later one comes first.
    let prepare_later = later.1.split("; PREPARE ").next().unwrap_or_default();
    assert!(
        prepare_later.starts_with(&format!("PREPARE {} AS ", later.0)),
        "{held:?}"
    );
    // Now both sessions hold the later steps' statement only.
    held_by
        .execute(sqlx::AssertSqlSafe(format!("DEALLOCATE {first_name}")))
        .await
        .expect("deallocate");
    other
        .execute(sqlx::AssertSqlSafe(prepare_later.to_string()))
        .await
        .expect("prepare the later one");
    drop((a, b));

    let second = MigrationManager::from_migrations(
        migrate::postgres::PgDb::from_pool(pool.clone()),
        migrations,
    )
    .expect("graph");
    second.up().await.expect("up partial_b");
    drop(second);
    // The session that ran partial_b prepared the first steps' statement again, and recorded
    // partial_b's first step through it.
    let executions = format!(
        "SELECT generic_plans + custom_plans FROM pg_prepared_statements WHERE name = '{first_name}'"
    );
    let mut runs = Vec::new();
    for conn in [
        &mut *pool.acquire().await.expect("connection"),
        &mut *pool.acquire().await.expect("connection"),
    ] {
        let found: Option<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(executions.clone()))
            .fetch_optional(conn)
            .await
            .expect("executions");
        runs.extend(found);
    }
    assert_eq!(
        runs,
        [1],
        "{first_name} prepared and run once, on one session"
    );
}

/// A set of its own: a transactional SQLite step that turns the foreign keys off, as SQLite's
/// table rebuild does; SQLite ignores that inside a transaction, so a rebuild of a parent
/// table would delete its children (`ON DELETE CASCADE`). The step is refused, and the
/// children are kept.
static REBUILDING: MigrationSet = MigrationSet::__new("rebuilding", "step_transactions", &[]);

fn rebuild_parent<'a>(db: &'a mut Conn<'_>) -> MigrationFuture<'a> {
    Box::pin(async move {
        db.execute("PRAGMA foreign_keys=OFF").await?;
        db.execute("CREATE TABLE parent_new (id INTEGER PRIMARY KEY)")
            .await?;
        db.execute("INSERT INTO parent_new SELECT id FROM parent")
            .await?;
        db.execute("DROP TABLE parent").await?;
        db.execute("ALTER TABLE parent_new RENAME TO parent")
            .await?;
        Ok(())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_keys_pragma_inside_a_sqlite_step_is_refused() {
    let Some(db) = database(Backend::Sqlite).await else {
        return;
    };
    let executor = db.executor().await.expect("executor");
    let setup = "CREATE TABLE parent (id INTEGER PRIMARY KEY); \
         CREATE TABLE child (id INTEGER PRIMARY KEY, parent INTEGER REFERENCES parent (id) ON DELETE CASCADE); \
         INSERT INTO parent VALUES (1); INSERT INTO child VALUES (10, 1);";
    let mut conn = sqlx::SqliteConnection::connect(db.url())
        .await
        .expect("connect");
    conn.execute(setup).await.expect("setup");
    let manager = MigrationManager::from_migrations(
        executor,
        [step(&REBUILDING, "parent", "1.0.0", None, rebuild_parent)],
    )
    .expect("graph");
    let err = manager.up().await.expect_err("refused");
    assert!(
        err.to_string().contains("transaction = false")
            || std::error::Error::source(&err)
                .is_some_and(|s| s.to_string().contains("transaction = false")),
        "{err:?}"
    );
    let children: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM child")
        .fetch_one(&mut conn)
        .await
        .expect("count");
    assert_eq!(children, 1, "the child row is kept");
}
