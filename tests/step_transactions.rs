//! A transactional step runs in a transaction that sqlx counts (a step's commit may begin the
//! next step's transaction in the same round trip, and sqlx must still know it is in one): a
//! migration that begins a transaction of its own through the driver gets a savepoint, so
//! committing it keeps nothing until the step commits, and a failure later in the step takes
//! it back. On SQLite and PostgreSQL; a MariaDB step commits its DDL as it goes.

use migrate::testing::{Backend, TestDatabase};
use migrate::{Conn, ConnExt, Dialect, MigrationManager, Result};
use sqlx::{Connection, Executor};

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

async fn has_table(db: &TestDatabase, table: &str) -> bool {
    let executor = db.executor().await.expect("executor");
    executor.table_exists(table).await.expect("catalog")
}

async fn a_nested_transaction_is_a_savepoint_of_the_step(backend: Backend) {
    let Some(db) = TestDatabase::create(backend).await.expect("test database") else {
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
