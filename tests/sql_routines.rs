//! SQL files holding routines whose bodies have statements of their own: a SQLite trigger, a
//! MariaDB procedure (with `IF`, `WHILE` and `CASE` blocks) and trigger, PostgreSQL's
//! SQL-standard bodies (`BEGIN ATOMIC ... END`). They compile (the check for a file that
//! controls its own transaction read the body's `END` as one), and a no-transaction file, run
//! statement by statement, keeps each body in its statement. Each backend runs its own table.

use migrate::testing::{Backend, TestDatabase};
use migrate::MigrationManager;

migrate::migrations! {}

migrate::sql_dir!(table = "routines_sqlite", dir = "tests/sql_routines/sqlite");
migrate::sql_dir!(table = "routines_mysql", dir = "tests/sql_routines/mysql");
migrate::sql_dir!(
    table = "routines_postgres",
    dir = "tests/sql_routines/postgres"
);

/// Runs `table`'s files up on `backend`, runs `exercise` (which calls what they made), reads
/// the counter, and takes the files down again.
async fn routines_run_and_come_back_down(
    backend: Backend,
    table: &str,
    exercise: &[&'static str],
    expected: i64,
) {
    let Some(db) = TestDatabase::create(backend).await.expect("database") else {
        return;
    };
    let manager =
        MigrationManager::new(db.executor().await.expect("connect"), [&MIGRATIONS]).expect("graph");
    let report = manager.up().table(table).await.expect("up");
    assert_eq!(report.applied.len(), 2, "{report:?}");
    let counter = format!("SELECT CAST(n AS SIGNED) FROM {table} WHERE id = 1");
    let exists =
        format!("SELECT COUNT(*) FROM information_schema.tables WHERE table_name = '{table}'");
    let (n, left): (i64, i64) = match backend {
        Backend::Sqlite => {
            let pool = sqlx::SqlitePool::connect(db.url()).await.expect("sqlite");
            for sql in exercise {
                sqlx::raw_sql(*sql).execute(&pool).await.expect(sql);
            }
            let n = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "SELECT n FROM {table} WHERE id = 1"
            )))
            .fetch_one(&pool)
            .await
            .expect("counter");
            down(&manager, table).await;
            let left = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "SELECT COUNT(*) FROM sqlite_master WHERE name = '{table}'"
            )))
            .fetch_one(&pool)
            .await
            .expect("catalog");
            (n, left)
        }
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(db.url()).await.expect("postgres");
            for sql in exercise {
                sqlx::raw_sql(*sql).execute(&pool).await.expect(sql);
            }
            let n = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "SELECT n::bigint FROM {table} WHERE id = 1"
            )))
            .fetch_one(&pool)
            .await
            .expect("counter");
            down(&manager, table).await;
            let left = sqlx::query_scalar(sqlx::AssertSqlSafe(exists))
                .fetch_one(&pool)
                .await
                .expect("catalog");
            (n, left)
        }
        Backend::MySql => {
            let pool = sqlx::MySqlPool::connect(db.url()).await.expect("mysql");
            for sql in exercise {
                sqlx::raw_sql(*sql).execute(&pool).await.expect(sql);
            }
            let n = sqlx::query_scalar(sqlx::AssertSqlSafe(counter))
                .fetch_one(&pool)
                .await
                .expect("counter");
            down(&manager, table).await;
            let exists = format!("{exists} AND table_schema = DATABASE()");
            let left = sqlx::query_scalar(sqlx::AssertSqlSafe(exists))
                .fetch_one(&pool)
                .await
                .expect("catalog");
            (n, left)
        }
    };
    assert_eq!(n, expected, "{table}'s counter");
    assert_eq!(left, 0, "{table} is gone after the downs");
}

async fn down(manager: &MigrationManager, table: &str) {
    manager
        .down()
        .table(table)
        .to_base()
        .await
        .expect("down to nothing");
}

#[tokio::test]
async fn sqlite_triggers() {
    // Two log rows: the first trigger adds 10 ('end;') then 1, the second 1,000 each.
    routines_run_and_come_back_down(
        Backend::Sqlite,
        "routines_sqlite",
        &[
            "INSERT INTO routines_sqlite_log (id, note) VALUES (1, 'end;')",
            "INSERT INTO routines_sqlite_log (id, note) VALUES (2, 'x')",
        ],
        2_011,
    )
    .await;
}

#[tokio::test]
async fn mysql_procedure_and_trigger() {
    // The procedure adds 3; the trigger 10 ('end;') and 1.
    routines_run_and_come_back_down(
        Backend::MySql,
        "routines_mysql",
        &[
            "CALL routines_mysql_bump(3)",
            "INSERT INTO routines_mysql_log (id, note) VALUES (1, 'end;')",
            "INSERT INTO routines_mysql_log (id, note) VALUES (2, 'x')",
        ],
        14,
    )
    .await;
}

#[tokio::test]
async fn postgres_standard_bodies() {
    // Each call adds 1, then 10 while at most 100.
    routines_run_and_come_back_down(
        Backend::Postgres,
        "routines_postgres",
        &[
            "CALL routines_postgres_bump()",
            "CALL routines_postgres_bump()",
            "SELECT routines_postgres_total()",
        ],
        22,
    )
    .await;
}
