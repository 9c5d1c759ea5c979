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
use crate::sqlx_db::micros;
use crate::statements::{
    compile, Statements, TrackingNames, HISTORY_COLUMNS, HISTORY_VALUES, STATE_COLUMNS,
};
use crate::SqlxDb;
use migrate_core::backend::RunLock;
use migrate_core::conn::Value;
use migrate_core::dialect::Dialect;
use migrate_core::error::{Error, Result};
use migrate_core::future::BoxFuture;
use migrate_core::time::Timestamp;
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgQueryResult, PgRow};
use sqlx::{AssertSqlSafe, PgPool, Postgres};
use std::time::{Duration, Instant};

/// A PostgreSQL database that migrations run on.
///
/// ```no_run
/// # async fn demo() -> migrate_core::error::Result<()> {
/// use migrate_backends::postgres::PgDb;
/// let db = PgDb::connect("postgres://app@localhost/app").await?.with_schema("app")?;
/// # Ok(()) }
/// ```
pub type PgDb = SqlxDb<Postgres>;

/// How PostgreSQL runners serialize.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LockMode {
    /// A session advisory lock on a dedicated connection (the default).
    Advisory,
    /// A row in `<tracking table>_lock`, for databases or poolers without session advisory
    /// locks (CockroachDB, PgBouncer in transaction mode). A crashed runner's row is taken over
    /// once it is older than `stale_after`.
    Table {
        /// How old a lock row must be before another runner may take it over.
        stale_after: Duration,
    },
}

/// How often a waiting runner retries the lock.
const LOCK_POLL: Duration = Duration::from_millis(50);

impl Sealed for Postgres {}

impl Driver for Postgres {
    const DIALECT: Dialect = Dialect::Postgres;
    const BEGIN: Option<&'static str> = Some("BEGIN");

    fn placeholder(index: usize) -> String {
        format!("${index}")
    }

    fn statements(n: &TrackingNames) -> Statements {
        let (state, history) = (&n.state, &n.history);
        let s = compile::<Postgres>;
        let insert_history = format!("INSERT INTO {history} ({HISTORY_COLUMNS})");
        let history_row = s(&format!("{insert_history} VALUES ({HISTORY_VALUES})"));
        let clear =
            "dirty_version = NULL, dirty_name = NULL, dirty_direction = NULL, dirty_since = NULL";
        let cas = "WHERE s.version IS NOT DISTINCT FROM $(expected) AND s.dirty_version IS NULL";
        let moved = format!(
            "INSERT INTO {state} AS s ({STATE_COLUMNS}) VALUES ($(module), $(table), \
             $(new_version), $(new_checksum), NULL, NULL, NULL, NULL, $(now)) \
             ON CONFLICT (module, table_name) DO UPDATE SET version = excluded.version, \
             checksum = excluded.checksum, {clear}, updated_at = excluded.updated_at {cas}"
        );
        let marked = format!(
            "INSERT INTO {state} AS s ({STATE_COLUMNS}) VALUES ($(module), $(table), NULL, NULL, \
             $(step_version), $(name), $(direction), $(dirty_since), $(now)) \
             ON CONFLICT (module, table_name) DO UPDATE SET dirty_version = excluded.dirty_version, \
             dirty_name = excluded.dirty_name, dirty_direction = excluded.dirty_direction, \
             dirty_since = excluded.dirty_since, updated_at = excluded.updated_at {cas}"
        );
        // One round trip: the history row is inserted only if the state row moved.
        let with_history = |upsert: &str| {
            s(&format!(
                "WITH moved AS ({upsert} RETURNING 1) {insert_history} SELECT {HISTORY_VALUES} FROM moved"
            ))
        };
        let history_finish = s(&format!(
            "UPDATE {history} SET outcome = $(outcome), finished_at = $(finished_at), \
             execution_us = $(execution_us), error = $(error) WHERE module = $(module) \
             AND table_name = $(table) AND version = $(step_version) AND direction = $(direction) \
             AND outcome = 'started' AND started_at = $(started_at)"
        ));
        let mut create = Vec::new();
        if let Some(schema) = &n.schema {
            create.push(format!("CREATE SCHEMA IF NOT EXISTS {schema}"));
        }
        create.extend([
            format!(
                "CREATE TABLE IF NOT EXISTS {state} (module TEXT NOT NULL, table_name TEXT NOT NULL, \
                 version TEXT, checksum TEXT, dirty_version TEXT, dirty_name TEXT, \
                 dirty_direction TEXT, dirty_since BIGINT, updated_at BIGINT NOT NULL, \
                 PRIMARY KEY (module, table_name))"
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS {history} (\
                 id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, module TEXT NOT NULL, \
                 table_name TEXT NOT NULL, version TEXT NOT NULL, name TEXT NOT NULL, \
                 checksum TEXT NOT NULL, direction TEXT NOT NULL, outcome TEXT NOT NULL, \
                 started_at BIGINT NOT NULL, started_at_utc TEXT, finished_at BIGINT, \
                 execution_us BIGINT, error TEXT)"
            ),
            format!(
                "CREATE INDEX IF NOT EXISTS {} ON {history} (module, table_name, version)",
                n.history_index
            ),
        ]);
        Statements {
            read_state: format!(
                "SELECT module, table_name, version, checksum, dirty_version, dirty_name, \
                 dirty_direction, dirty_since FROM {state}"
            )
            .into(),
            create,
            upgrade: vec![format!(
                "ALTER TABLE {history} ADD COLUMN IF NOT EXISTS started_at_utc TEXT"
            )],
            record: vec![with_history(&moved)],
            record_cas: 0,
            start: vec![with_history(&marked)],
            start_cas: 0,
            finish: vec![
                s(&format!(
                    "UPDATE {state} SET version = $(new_version), checksum = $(new_checksum), \
                     {clear}, updated_at = $(now) WHERE module = $(module) AND table_name = $(table)"
                )),
                history_finish.clone(),
            ],
            history: history_row,
            history_finish,
            state_set: vec![s(&format!(
                "INSERT INTO {state} AS s ({STATE_COLUMNS}) VALUES ($(module), $(table), \
                 $(new_version), $(new_checksum), NULL, NULL, NULL, NULL, $(now)) \
                 ON CONFLICT (module, table_name) DO UPDATE SET version = excluded.version, \
                 checksum = excluded.checksum, {clear}, updated_at = excluded.updated_at"
            ))],
            set_step_checksum: s(&format!(
                "UPDATE {history} SET checksum = $(step_checksum) WHERE module = $(module) \
                 AND table_name = $(table) AND version = $(step_version) AND direction = 'up' \
                 AND outcome = 'succeeded'"
            )),
            history_select: format!(
                "SELECT id, module, table_name, version, name, checksum, direction, outcome, \
                 started_at, finished_at, execution_us, error FROM {history} \
                 WHERE module IN ({{modules}}) ORDER BY id DESC{{limit}}"
            ),
            table_exists: s(
                "SELECT 1 FROM information_schema.tables \
                 WHERE table_schema = COALESCE($(schema), current_schema()) AND table_name = $(table)",
            ),
            column_exists: s(
                "SELECT 1 FROM information_schema.columns \
                 WHERE table_schema = COALESCE($(schema), current_schema()) \
                 AND table_name = $(table) AND column_name = $(column)",
            ),
        }
    }

    fn is_already_done(err: &sqlx::Error) -> bool {
        // duplicate_column
        err.as_database_error()
            .and_then(|d| d.code())
            .is_some_and(|c| c == "42701")
    }

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
        SqlxDb::connect_server(url, crate::sqlx_db::DEFAULT_CONNECT_TIMEOUT).await
    }

    /// Like [`connect`](Self::connect), giving up after `timeout` (instead of
    /// [`DEFAULT_CONNECT_TIMEOUT`](crate::sqlx_db::DEFAULT_CONNECT_TIMEOUT)) with
    /// [`Error::Unreachable`](migrate_core::error::Error::Unreachable) when the server does not
    /// answer.
    pub async fn connect_with_timeout(url: &str, timeout: std::time::Duration) -> Result<Self> {
        SqlxDb::connect_server(url, timeout).await
    }

    /// Runs migrations on an existing pool. It needs at least two connections: the advisory
    /// lock holds one for the whole run.
    pub fn from_pool(pool: PgPool) -> Self {
        SqlxDb::with_pool(pool)
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
#[derive(Debug)]
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
    let table = db.names.lock_table.clone();
    let holder = format!("pid {} at {}", std::process::id(), Timestamp::now());
    let mut conn = db.pool.acquire().await?;
    if let Some(schema) = &db.names.schema {
        let create = format!("CREATE SCHEMA IF NOT EXISTS {schema}");
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
#[derive(Debug)]
struct TableLock {
    pool: Option<PgPool>,
    table: String,
    holder: String,
}

impl TableLock {
    fn delete_sql(&self) -> String {
        format!("DELETE FROM {} WHERE id = 1 AND holder = $1", self.table)
    }
}

impl RunLock for TableLock {
    fn release(mut self: Box<Self>) -> BoxFuture<'static, Result<()>> {
        let sql = self.delete_sql();
        let pool = self.pool.take();
        let holder = self.holder.clone();
        Box::pin(async move {
            if let Some(pool) = pool {
                sqlx::query(AssertSqlSafe(sql))
                    .bind(holder)
                    .execute(&pool)
                    .await?;
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
        let holder = self.holder.clone();
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move {
                let _ = sqlx::query(AssertSqlSafe(sql))
                    .bind(holder)
                    .execute(&pool)
                    .await;
            });
        }
    }
}
