//! The catalog the identifier fuzz compares before and after each case: every object outside
//! the system schemas, read through a pool of the test's own.

use sqlx::Row;
use std::collections::BTreeSet;

/// A catalog object: `(schema, name, kind)`.
pub(super) type Object = (String, String, String);

/// A pool on the test database, for the catalog.
pub(super) enum Catalog {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

impl Catalog {
    /// Every object outside the system schemas: `(schema, name, kind)`.
    pub(super) async fn objects(&self) -> BTreeSet<Object> {
        let rows: Vec<Object> = match self {
            Catalog::Sqlite(pool) => sqlx::query("SELECT 'main', name, type FROM sqlite_master")
                .fetch_all(pool)
                .await
                .expect("sqlite_master")
                .iter()
                .map(|r| (r.get(0), r.get(1), r.get(2)))
                .collect(),
            Catalog::Postgres(pool) => sqlx::query(
                "SELECT n.nspname::text, coalesce(c.relname::text, ''), coalesce(c.relkind::text, 'schema') \
                 FROM pg_namespace n LEFT JOIN pg_class c ON c.relnamespace = n.oid \
                 WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%' \
                 AND n.nspname NOT LIKE 'pg_temp%' \
                 UNION ALL SELECT nspname::text, '', 'schema' FROM pg_namespace",
            )
            .fetch_all(pool)
            .await
            .expect("pg_class")
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect(),
        };
        rows.into_iter().collect()
    }

    /// Runs statements that the test writes itself (cleanup).
    pub(super) async fn exec(&self, sql: &str) {
        let sql = sqlx::AssertSqlSafe(sql.to_string());
        match self {
            Catalog::Sqlite(pool) => sqlx::raw_sql(sql).execute(pool).await.map(|_| ()),
            Catalog::Postgres(pool) => sqlx::raw_sql(sql).execute(pool).await.map(|_| ()),
        }
        .unwrap_or_else(|e| panic!("cleanup failed: {e}"));
    }

    /// Deletes the tracking rows of `module` (bound, like the framework's own statements).
    pub(super) async fn forget_module(&self, module: &str) {
        if module.contains('\0') && matches!(self, Catalog::Postgres(_)) {
            // PostgreSQL's text cannot hold it: nothing was written, nothing can match.
            return;
        }
        for table in ["migrate_schema_versions", "migrate_schema_versions_history"] {
            let sql = match self {
                Catalog::Sqlite(_) => format!("DELETE FROM {table} WHERE module = ?"),
                Catalog::Postgres(_) => format!("DELETE FROM {table} WHERE module = $1"),
            };
            let sql = sqlx::AssertSqlSafe(sql);
            match self {
                Catalog::Sqlite(pool) => sqlx::query(sql)
                    .bind(module)
                    .execute(pool)
                    .await
                    .map(|_| ()),
                Catalog::Postgres(pool) => sqlx::query(sql)
                    .bind(module)
                    .execute(pool)
                    .await
                    .map(|_| ()),
            }
            .expect("forget the module's rows");
        }
    }
}

/// The objects `after` has that `before` has not, and the reverse.
pub(super) fn difference(
    before: &BTreeSet<Object>,
    after: &BTreeSet<Object>,
) -> (Vec<Object>, Vec<Object>) {
    (
        after.difference(before).cloned().collect(),
        before.difference(after).cloned().collect(),
    )
}
