//! The MySQL/MariaDB backend (feature `mysql`). Tested against MariaDB; SingleStore speaks the
//! same protocol and is expected to work, but is untested here.
//!
//! - **Transactions:** MySQL commits DDL implicitly, so a step cannot commit atomically with its
//!   tracking rows. Every step is therefore journalled: a "started" row and a dirty mark commit
//!   first, the step runs, then "finished" commits. A crash or a failure in between leaves the
//!   dirty mark (never a silently half-recorded step), and the table is blocked until
//!   `resolve_dirty`. This differs on purpose from SQLite and PostgreSQL, where a failed
//!   transactional step is rolled back and simply retried by the next run.
//! - **Lock:** `GET_LOCK` on a dedicated connection, with the lock timeout; the error names the
//!   connection id that holds it. Released on success and on error; a panicking run closes the
//!   connection, which frees the lock, and so does a killed runner's.

use crate::driver::{Driver, Sealed};
use crate::sqlx_db::DEFAULT_LOCK_TIMEOUT;
use crate::SqlxDb;
use migrate_core::{BoxFuture, Dialect, Error, Result, RunLock, Value};
use sqlx::mysql::{MySqlQueryResult, MySqlRow};
use sqlx::pool::PoolConnection;
use sqlx::{MySql, MySqlPool};
use std::time::Duration;

/// A MySQL or MariaDB database that migrations run on.
///
/// ```no_run
/// # async fn demo() -> migrate_core::Result<()> {
/// let db = migrate_backends::mysql::MySqlDb::connect("mysql://app@localhost/app").await?;
/// # Ok(()) }
/// ```
pub type MySqlDb = SqlxDb<MySql>;

impl Sealed for MySql {}

impl Driver for MySql {
    const DIALECT: Dialect = Dialect::MySql;
    const BEGIN: Option<&'static str> = None;

    fn rows_affected(result: &MySqlQueryResult) -> u64 {
        result.rows_affected()
    }

    fn decode_value(row: &MySqlRow, index: usize) -> Result<Value> {
        crate::raw::decode_value::<MySql>(row, index)
    }

    fn is_missing_table(err: &sqlx::Error) -> bool {
        // ER_NO_SUCH_TABLE, SQLSTATE 42S02
        err.as_database_error()
            .and_then(|d| d.code())
            .is_some_and(|c| c == "42S02")
    }

    fn lock(db: &MySqlDb) -> BoxFuture<'_, Result<Box<dyn RunLock>>> {
        Box::pin(get_lock(db))
    }
}

impl SqlxDb<MySql> {
    /// Connects with a MySQL URL (`mysql://user:password@host/database`). The pool keeps one
    /// connection for the runner lock and one for the steps.
    pub async fn connect(url: &str) -> Result<Self> {
        SqlxDb::connect_server(url).await
    }

    /// Runs migrations on an existing pool. It needs at least two connections: the lock holds
    /// one for the whole run.
    pub fn from_pool(pool: MySqlPool) -> Self {
        SqlxDb::with_pool(pool, DEFAULT_LOCK_TIMEOUT)
    }

    /// How long a runner waits for another runner's lock.
    pub fn with_lock_timeout(mut self, timeout: Duration) -> Self {
        self.lock.timeout = timeout;
        self
    }
}

/// `GET_LOCK` names are server-wide: the name includes the database and the tracking table, and
/// is hashed to fit MySQL's 64-character limit.
async fn lock_name(conn: &mut PoolConnection<MySql>, table: &str) -> Result<String> {
    let database: Option<String> = sqlx::query_scalar("SELECT DATABASE()")
        .fetch_one(&mut **conn)
        .await?;
    let name = format!("{}:{table}", database.unwrap_or_default());
    Ok(format!(
        "migrate:{:016x}",
        migrate_core::__private::stable_hash(name.as_bytes())
    ))
}

async fn get_lock(db: &MySqlDb) -> Result<Box<dyn RunLock>> {
    let mut conn = db.pool.acquire().await?;
    let name = lock_name(&mut conn, &db.tracking_table).await?;
    let seconds = db.lock.timeout.as_secs_f64();
    let taken: Option<i64> = sqlx::query_scalar("SELECT GET_LOCK(?, ?)")
        .bind(&name)
        .bind(seconds)
        .fetch_one(&mut *conn)
        .await?;
    if taken == Some(1) {
        return Ok(Box::new(NamedLock {
            conn: Some(conn),
            name,
        }));
    }
    let holder: Option<i64> = sqlx::query_scalar("SELECT IS_USED_LOCK(?)")
        .bind(&name)
        .fetch_one(&mut *conn)
        .await?;
    Err(Error::LockTimeout {
        waited: db.lock.timeout,
        holder: Some(match holder {
            Some(id) => format!("MySQL connection id {id} (GET_LOCK '{name}')"),
            None => format!("another connection (GET_LOCK '{name}')"),
        }),
    })
}

/// A held `GET_LOCK` and the connection that holds it.
struct NamedLock {
    conn: Option<PoolConnection<MySql>>,
    name: String,
}

impl RunLock for NamedLock {
    fn release(mut self: Box<Self>) -> BoxFuture<'static, Result<()>> {
        let conn = self.conn.take();
        let name = std::mem::take(&mut self.name);
        Box::pin(async move {
            let Some(mut conn) = conn else {
                return Ok(());
            };
            let released: std::result::Result<Option<i64>, sqlx::Error> =
                sqlx::query_scalar("SELECT RELEASE_LOCK(?)")
                    .bind(&name)
                    .fetch_one(&mut *conn)
                    .await;
            if !matches!(released, Ok(Some(1))) {
                // Not held any more, or the connection broke: end the session to be sure.
                conn.close_on_drop();
            }
            released.map(|_| ()).map_err(Error::from)
        })
    }
}

impl Drop for NamedLock {
    fn drop(&mut self) {
        // Dropped unreleased (a panic): close the connection, which frees the lock.
        if let Some(conn) = self.conn.as_mut() {
            conn.close_on_drop();
        }
    }
}
