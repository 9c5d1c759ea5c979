//! Fresh databases for each run: SQLite files, and databases on the throwaway PostgreSQL and
//! MariaDB servers of `migrate::testing` (or the servers in `MIGRATE_TEST_*_URL`).

use migrate::testing::{Backend, TestDatabase};
use sqlx::{AssertSqlSafe, Connection};

/// One fresh database.
pub struct Target {
    pub backend: Backend,
    pub url: String,
    /// Keeps a SQLite file alive until the target is dropped.
    _database: TestDatabase,
}

impl Target {
    pub async fn fresh(backend: Backend) -> Option<Target> {
        let database = TestDatabase::create(backend)
            .await
            .expect("test database")?;
        Some(Target {
            backend,
            url: database.url().to_string(),
            _database: database,
        })
    }

    /// The SQLite file path, for drivers that take a path.
    pub fn sqlite_path(&self) -> String {
        self.url
            .trim_start_matches("sqlite://")
            .split('?')
            .next()
            .unwrap_or_default()
            .to_string()
    }

    /// Runs a query returning one integer, outside every contender.
    pub async fn scalar(&self, sql: &str) -> i64 {
        let sql = AssertSqlSafe(sql.to_string());
        let value: Result<i64, sqlx::Error> = match self.backend {
            Backend::Sqlite => {
                let mut c = sqlx::SqliteConnection::connect(&self.url)
                    .await
                    .expect("connect");
                sqlx::query_scalar(sql).fetch_one(&mut c).await
            }
            Backend::Postgres => {
                let mut c = sqlx::PgConnection::connect(&self.url)
                    .await
                    .expect("connect");
                sqlx::query_scalar(sql).fetch_one(&mut c).await
            }
            Backend::MySql => {
                let mut c = sqlx::MySqlConnection::connect(&self.url)
                    .await
                    .expect("connect");
                sqlx::query_scalar(sql).fetch_one(&mut c).await
            }
        };
        value.unwrap_or_else(|e| panic!("{}: {e}", self.url))
    }
}
