//! Shared test support: a fresh database per test, and ways to look at it from the outside.

#![allow(dead_code)]

use migrate::sqlite::SqliteDb;
use sqlx::{AssertSqlSafe, Row};
use std::path::PathBuf;

/// A throwaway SQLite database file in its own temporary directory.
pub struct TestDb {
    _dir: tempfile::TempDir,
    pub path: PathBuf,
    pool: sqlx::SqlitePool,
}

impl TestDb {
    pub async fn new() -> TestDb {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("test.db");
        let db = SqliteDb::open(&path).await.expect("open test database");
        TestDb {
            _dir: dir,
            path,
            pool: db.pool().clone(),
        }
    }

    /// A new executor on this database (each manager gets its own).
    pub async fn executor(&self) -> SqliteDb {
        SqliteDb::open(&self.path)
            .await
            .expect("open test database")
    }

    /// Runs SQL outside the framework.
    pub async fn exec(&self, sql: &str) {
        sqlx::raw_sql(AssertSqlSafe(sql.to_string()))
            .execute(&self.pool)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// Rows of a query, each rendered as `a|b|c`.
    pub async fn rows(&self, sql: &str) -> Vec<String> {
        let rows = sqlx::query(AssertSqlSafe(sql.to_string()))
            .fetch_all(&self.pool)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        rows.iter()
            .map(|row| {
                (0..row.len())
                    .map(|i| {
                        row.try_get::<Option<String>, _>(i)
                            .map(|v| v.unwrap_or_else(|| "NULL".into()))
                            .or_else(|_| {
                                row.try_get::<Option<i64>, _>(i)
                                    .map(|v| v.map_or("NULL".into(), |v| v.to_string()))
                            })
                            .unwrap_or_else(|e| panic!("column {i} of {sql}: {e}"))
                    })
                    .collect::<Vec<_>>()
                    .join("|")
            })
            .collect()
    }

    /// Whether `table` has `column`.
    pub async fn has_column(&self, table: &str, column: &str) -> bool {
        !self
            .rows(&format!(
                "SELECT name FROM pragma_table_info('{table}') WHERE name = '{column}'"
            ))
            .await
            .is_empty()
    }

    /// Whether `table` exists.
    pub async fn has_table(&self, table: &str) -> bool {
        !self
            .rows(&format!(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name = '{table}'"
            ))
            .await
            .is_empty()
    }

    /// Everything a bad request must leave alone: the schema, and every tracking row.
    pub async fn fingerprint(&self) -> Vec<String> {
        let mut out = self
            .rows("SELECT type || ' ' || name || ' ' || COALESCE(sql, '') FROM sqlite_master ORDER BY type, name")
            .await;
        if self.has_table("migrate_schema_versions").await {
            out.extend(self.rows("SELECT module, table_name, version, checksum, dirty_version, updated_at FROM migrate_schema_versions ORDER BY module, table_name").await);
            out.extend(self.rows("SELECT id, version, direction, outcome, checksum FROM migrate_schema_versions_history ORDER BY id").await);
        }
        out
    }

    /// Tells `step` (as `table@version`) to `fail` or `hang` when it runs.
    pub async fn control(&self, step: &str, action: &str) {
        self.exec(
            "CREATE TABLE IF NOT EXISTS migrate_test_control (step TEXT PRIMARY KEY, action TEXT)",
        )
        .await;
        self.exec(&format!(
            "INSERT INTO migrate_test_control (step, action) VALUES ('{step}', '{action}') \
             ON CONFLICT (step) DO UPDATE SET action = excluded.action"
        ))
        .await;
    }

    /// Lets every step run normally again.
    pub async fn clear_control(&self) {
        self.exec("DROP TABLE IF EXISTS migrate_test_control").await;
    }
}
