//! The PostgreSQL backend (feature `postgres`).
//!
//! - **Transactions:** PostgreSQL's DDL is transactional: a step and its tracking rows commit
//!   together; `transaction = false` steps (`CREATE INDEX CONCURRENTLY`) are journalled.
//! - **Lock:** a session advisory lock, taken with `pg_try_advisory_lock` on a dedicated
//!   connection until the lock timeout, whose error names the pid that holds it. It is released
//!   on success and on error; if the run panics, the connection is closed instead of returned to
//!   the pool, which ends the session and so frees the lock. A killed runner's session ends
//!   with its process. Where session advisory locks do not exist (CockroachDB, PgBouncer in
//!   transaction mode), [`LockMode::Table`] uses a lock row instead.
//! - **Schema:** [`PgDb::with_schema`] puts the tracking tables in a schema (created if missing)
//!   and qualifies `{{tables.x}}` with it.

use crate::driver::{Driver, Sealed};
use crate::sqlx_db::{micros, LockMode, DEFAULT_LOCK_TIMEOUT};
use crate::SqlxDb;
use migrate_core::{BoxFuture, Dialect, Error, Result, RunLock, Timestamp, Value};
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgQueryResult, PgRow};
use sqlx::{AssertSqlSafe, PgPool, Postgres};
use std::time::{Duration, Instant};

/// A PostgreSQL database that migrations run on.
///
/// ```no_run
/// # async fn demo() -> migrate_core::Result<()> {
/// use migrate_backends::postgres::PgDb;
/// let db = PgDb::connect("postgres://app@localhost/app").await?.with_schema("app")?;
/// # Ok(()) }
/// ```
pub type PgDb = SqlxDb<Postgres>;

/// How often a waiting runner retries the lock.
const LOCK_POLL: Duration = Duration::from_millis(50);

impl Sealed for Postgres {}

impl Driver for Postgres {
    const DIALECT: Dialect = Dialect::Postgres;
    const BEGIN: Option<&'static str> = Some("BEGIN");

    fn rows_affected(result: &PgQueryResult) -> u64 {
        result.rows_affected()
    }

    fn decode_value(row: &PgRow, index: usize) -> Result<Value> {
        crate::raw::decode_value::<Postgres>(row, index)
    }

    fn is_missing_table(err: &sqlx::Error) -> bool {
        // undefined_table, invalid_schema_name
        err.as_database_error()
            .and_then(|d| d.code())
            .is_some_and(|c| c == "42P01" || c == "3F000")
    }

    fn lock(db: &PgDb) -> BoxFuture<'_, Result<Box<dyn RunLock>>> {
        Box::pin(async move {
            match db.lock.mode {
                LockMode::Advisory => advisory_lock(db).await,
                LockMode::Table { stale_after } => table_lock(db, stale_after).await,
            }
        })
    }
}

impl SqlxDb<Postgres> {
    /// Connects with a PostgreSQL URL. The pool keeps one connection for the runner lock and
    /// one for the steps.
    pub async fn connect(url: &str) -> Result<Self> {
        SqlxDb::connect_server(url).await
    }

    /// Runs migrations on an existing pool. It needs at least two connections: the advisory
    /// lock holds one for the whole run.
    pub fn from_pool(pool: PgPool) -> Self {
        SqlxDb::with_pool(pool, DEFAULT_LOCK_TIMEOUT)
    }

    /// Puts the tracking tables in `schema` (created if missing) and qualifies `{{tables.x}}`
    /// and `{{schema}}` with it.
    pub fn with_schema(mut self, schema: &str) -> Result<Self> {
        self.set_schema(schema)?;
        Ok(self)
    }

    /// How runners serialize: an advisory lock (default) or a lock row.
    pub fn with_lock_mode(mut self, mode: LockMode) -> Self {
        self.lock.mode = mode;
        self
    }

    /// How long a runner waits for another runner's lock.
    pub fn with_lock_timeout(mut self, timeout: Duration) -> Self {
        self.lock.timeout = timeout;
        self
    }

    /// The advisory lock key: derived from the schema and the tracking table, so runners of
    /// different tracking tables in one database do not block each other.
    pub fn lock_key(&self) -> i64 {
        let name = format!(
            "migrate:{}:{}",
            self.schema.as_deref().unwrap_or(""),
            self.tracking_table
        );
        i64::from_ne_bytes(migrate_core::__private::stable_hash(name.as_bytes()).to_ne_bytes())
    }
}

async fn advisory_lock(db: &PgDb) -> Result<Box<dyn RunLock>> {
    let key = db.lock_key();
    let mut conn = db.pool.acquire().await?;
    let deadline = Instant::now() + db.lock.timeout;
    loop {
        let taken: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(key)
            .fetch_one(&mut *conn)
            .await?;
        if taken {
            return Ok(Box::new(AdvisoryLock {
                conn: Some(conn),
                key,
            }));
        }
        if Instant::now() >= deadline {
            let pid: Option<i32> = sqlx::query_scalar(
                "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted \
                 AND classid = ((($1::bigint) >> 32) & 4294967295)::oid \
                 AND objid = (($1::bigint) & 4294967295)::oid AND objsubid = 1 LIMIT 1",
            )
            .bind(key)
            .fetch_optional(&mut *conn)
            .await?;
            return Err(Error::LockTimeout {
                waited: db.lock.timeout,
                holder: Some(match pid {
                    Some(pid) => format!("PostgreSQL backend pid {pid} (advisory lock {key})"),
                    None => format!("another session (advisory lock {key})"),
                }),
            });
        }
        tokio::time::sleep(LOCK_POLL).await;
    }
}

/// A held session advisory lock and the connection that holds it.
struct AdvisoryLock {
    conn: Option<PoolConnection<Postgres>>,
    key: i64,
}

impl RunLock for AdvisoryLock {
    fn release(mut self: Box<Self>) -> BoxFuture<'static, Result<()>> {
        let conn = self.conn.take();
        let key = self.key;
        Box::pin(async move {
            let Some(mut conn) = conn else {
                return Ok(());
            };
            let unlocked = sqlx::query_scalar::<_, bool>("SELECT pg_advisory_unlock($1)")
                .bind(key)
                .fetch_one(&mut *conn)
                .await;
            match unlocked {
                Ok(true) => Ok(()),
                Ok(false) | Err(_) => {
                    // Not held any more, or the connection broke: end the session to be sure.
                    conn.close_on_drop();
                    unlocked.map(|_| ()).map_err(Error::from)
                }
            }
        })
    }
}

impl Drop for AdvisoryLock {
    fn drop(&mut self) {
        // Dropped unreleased (a panic unwound through the run): close the connection rather
        // than return it to the pool still holding the lock. Ending the session frees it.
        if let Some(conn) = self.conn.as_mut() {
            conn.close_on_drop();
        }
    }
}

async fn table_lock(db: &PgDb, stale_after: Duration) -> Result<Box<dyn RunLock>> {
    let table = db.sql.lock_table.clone();
    let holder = format!("pid {} at {}", std::process::id(), Timestamp::now());
    let mut conn = db.pool.acquire().await?;
    if let Some(schema) = &db.schema {
        let create = format!(
            "CREATE SCHEMA IF NOT EXISTS {}",
            Dialect::Postgres.quote_ident(schema)
        );
        sqlx::raw_sql(AssertSqlSafe(create))
            .execute(&mut *conn)
            .await?;
    }
    let create = format!(
        "CREATE TABLE IF NOT EXISTS {table} (id INTEGER PRIMARY KEY, holder TEXT NOT NULL, acquired_at BIGINT NOT NULL)"
    );
    if let Err(err) = sqlx::raw_sql(AssertSqlSafe(create.clone()))
        .execute(&mut *conn)
        .await
    {
        // Two runners creating the table at once: the loser sees a duplicate; retry once.
        tracing::debug!(error = %err, "creating the lock table raced; retrying");
        sqlx::raw_sql(AssertSqlSafe(create))
            .execute(&mut *conn)
            .await?;
    }
    let deadline = Instant::now() + db.lock.timeout;
    loop {
        let now = Timestamp::now().as_micros();
        let stale = now - micros(stale_after);
        let taken = sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO {table} AS l (id, holder, acquired_at) VALUES (1, $1, $2) \
             ON CONFLICT (id) DO UPDATE SET holder = excluded.holder, acquired_at = excluded.acquired_at \
             WHERE l.acquired_at < $3"
        )))
        .bind(&holder)
        .bind(now)
        .bind(stale)
        .execute(&mut *conn)
        .await?;
        if taken.rows_affected() == 1 {
            return Ok(Box::new(TableLock {
                pool: Some(db.pool.clone()),
                table,
                holder,
            }));
        }
        if Instant::now() >= deadline {
            let current: Option<String> = sqlx::query_scalar(AssertSqlSafe(format!(
                "SELECT holder FROM {table} WHERE id = 1"
            )))
            .fetch_optional(&mut *conn)
            .await?;
            return Err(Error::LockTimeout {
                waited: db.lock.timeout,
                holder: Some(format!(
                    "{} (lock row in {table})",
                    current.unwrap_or_else(|| "a runner that just released it".to_string())
                )),
            });
        }
        tokio::time::sleep(LOCK_POLL).await;
    }
}

/// A held lock row. `pool` is taken by `release`, so `Drop` knows it was released.
struct TableLock {
    pool: Option<PgPool>,
    table: String,
    holder: String,
}

impl TableLock {
    fn delete_sql(&self) -> String {
        format!(
            "DELETE FROM {} WHERE id = 1 AND holder = {}",
            self.table,
            Dialect::Postgres.quote_literal(&self.holder)
        )
    }
}

impl RunLock for TableLock {
    fn release(mut self: Box<Self>) -> BoxFuture<'static, Result<()>> {
        let sql = self.delete_sql();
        let pool = self.pool.take();
        Box::pin(async move {
            if let Some(pool) = pool {
                sqlx::raw_sql(AssertSqlSafe(sql)).execute(&pool).await?;
            }
            Ok(())
        })
    }
}

impl Drop for TableLock {
    fn drop(&mut self) {
        // Dropped unreleased: delete the row in the background if a runtime is still there;
        // otherwise it goes stale and the next runner takes it over after `stale_after`.
        let Some(pool) = self.pool.take() else {
            return;
        };
        let sql = self.delete_sql();
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move {
                let _ = sqlx::raw_sql(AssertSqlSafe(sql)).execute(&pool).await;
            });
        }
    }
}
