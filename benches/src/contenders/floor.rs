//! The raw floor on sqlx: per migration a transaction, the SQL, one prepared version-row insert
//! and the commit; the no-op is one `SELECT MAX(version)`: unprepared on a new connection (one
//! round trip, as a service's first check can be; prepared, it would be two), prepared from
//! then on (one round trip, and no parse).

use crate::target::Target;
use crate::workload::Step;
use migrate::testing::Backend;
use sqlx::{AssertSqlSafe, Connection};
use std::sync::Arc;

pub enum Conn {
    Sqlite(sqlx::SqliteConnection),
    Postgres(sqlx::PgConnection),
    MySql(sqlx::MySqlConnection),
}

pub struct Floor {
    conn: Conn,
    steps: Arc<Vec<Step>>,
    /// No check has run on this connection yet.
    first: bool,
}

macro_rules! floor_run {
    ($conn:expr, $first:expr, $steps:expr, $insert:literal) => {{
        use sqlx::Row;
        let conn = $conn;
        const READ: &str = "SELECT MAX(version) FROM raw_migrations";
        let read: Result<Option<i64>, sqlx::Error> = if std::mem::take($first) {
            match sqlx::raw_sql(READ).fetch_one(&mut *conn).await {
                Ok(row) => row.try_get(0),
                Err(err) => Err(err),
            }
        } else {
            sqlx::query_scalar(READ).fetch_one(&mut *conn).await
        };
        let max: Option<i64> = match read {
            Ok(max) => max,
            Err(_) => {
                sqlx::raw_sql("CREATE TABLE raw_migrations (version BIGINT PRIMARY KEY)")
                    .execute(&mut *conn)
                    .await
                    .expect("create raw_migrations");
                None
            }
        };
        let done = usize::try_from(max.unwrap_or(0)).unwrap_or(0);
        for step in $steps.iter().skip(done) {
            let mut tx = conn.begin().await.expect("begin");
            sqlx::raw_sql(AssertSqlSafe(step.sql.as_str()))
                .execute(&mut *tx)
                .await
                .expect("migration");
            sqlx::query($insert)
                .bind(step.index as i64)
                .execute(&mut *tx)
                .await
                .expect("version row");
            tx.commit().await.expect("commit");
        }
    }};
}

impl Floor {
    pub async fn open(target: &Target, steps: Arc<Vec<Step>>) -> Floor {
        Floor::open_url(target.backend, &target.url, steps).await
    }

    pub async fn open_url(backend: Backend, url: &str, steps: Arc<Vec<Step>>) -> Floor {
        let conn = match backend {
            Backend::Sqlite => Conn::Sqlite(crate::sqlite_connection(url).await),
            Backend::Postgres => {
                Conn::Postgres(sqlx::PgConnection::connect(url).await.expect("connect"))
            }
            Backend::MySql => {
                Conn::MySql(sqlx::MySqlConnection::connect(url).await.expect("connect"))
            }
        };
        Floor {
            conn,
            steps,
            first: true,
        }
    }

    pub async fn run(&mut self) {
        match &mut self.conn {
            Conn::Sqlite(c) => floor_run!(
                c,
                &mut self.first,
                self.steps,
                "INSERT INTO raw_migrations (version) VALUES (?1)"
            ),
            Conn::Postgres(c) => floor_run!(
                c,
                &mut self.first,
                self.steps,
                "INSERT INTO raw_migrations (version) VALUES ($1)"
            ),
            Conn::MySql(c) => floor_run!(
                c,
                &mut self.first,
                self.steps,
                "INSERT INTO raw_migrations (version) VALUES (?)"
            ),
        }
    }
}
