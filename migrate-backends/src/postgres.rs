//! The PostgreSQL backend (feature `postgres`).
//!
//! - **Transactions:** PostgreSQL's DDL is transactional: a step and its tracking rows commit
//!   together; `transaction = false` steps (`CREATE INDEX CONCURRENTLY`) are journalled.
//! - **Lock:** a session advisory lock, taken with `pg_try_advisory_lock` on a dedicated
//!   connection until the lock timeout, whose error names the pid that holds it. It is released
//!   on success, on error, and on a panic out of a step or a progress callback (the manager
//!   catches it, releases the lock, then lets it go on); a run dropped before it ends (a
//!   cancelled future) closes the connection instead of returning it to the pool, which ends
//!   the session and so frees the lock. A killed runner's session ends with its process. Where session advisory locks do not exist (CockroachDB, PgBouncer in
//!   transaction mode), [`LockMode::Table`] uses a lock row instead.
//! - **Schema:** [`PgDb::with_schema`] puts the tracking tables in a schema (created if missing)
//!   and qualifies `{{tables.x}}` with it.

use crate::driver::{has_sqlstate, Driver, Sealed};
use crate::home_runtime::HomeRuntime;
use crate::lock_wait::{LockSession, LockWait};
use crate::portable::{self, HISTORY_COLUMNS, HISTORY_VALUES};
use crate::sqlx_db::micros;
use crate::statements::{compile, SessionRecord, Statements, TrackingNames};
use crate::SqlxDb;
use migrate_core::backend::RunLock;
use migrate_core::conn::Value;
use migrate_core::dialect::Dialect;
use migrate_core::error::{Error, Result};
use migrate_core::future::BoxFuture;
use migrate_core::time::Timestamp;
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgQueryResult, PgRow};
use sqlx::{AssertSqlSafe, PgConnection, PgPool, Postgres, Row};
use std::time::Duration;

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
    /// locks (CockroachDB, PgBouncer in transaction mode). The holder refreshes its row every
    /// quarter of `stale_after` while it runs; a crashed runner's row is taken over once it is
    /// older than `stale_after`, by the server's clock.
    Table {
        /// How old a lock row must be before another runner may take it over: at least
        /// 400 ms (a run with less fails with `Error::Config` when it takes the lock).
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
        let cas = "WHERE s.version IS NOT DISTINCT FROM $(expected) AND s.dirty_version IS NULL";
        let moved = portable::state_upsert(state, cas);
        let marked = portable::mark_upsert(state, cas);
        // One round trip: the history row is inserted only if the state row moved.
        let with_history = |upsert: &str| {
            s(&format!(
                "WITH moved AS ({upsert} RETURNING 1) {insert_history} SELECT {HISTORY_VALUES} FROM moved"
            ))
        };
        // A version is expected, so the row exists and holds no mark (else the plan would not
        // have run the step): a plain compare-and-set UPDATE, cheaper than the upsert.
        let moved_existing = format!(
            "{} AND version = $(expected) AND dirty_version IS NULL",
            portable::state_move(state)
        );
        // The session's statements: the history row takes a NULL outcome, which it refuses,
        // when the state row did not move.
        let session_record = |moved: &str| {
            format!(
                "WITH moved AS ({moved} RETURNING 1) {insert_history} VALUES ({})",
                HISTORY_VALUES.replace("$(outcome)", "(SELECT $(outcome)::text FROM moved)")
            )
        };
        let history_finish = s(&portable::history_finish(history));
        let create_schema = n
            .schema
            .as_ref()
            .map(|schema| format!("CREATE SCHEMA IF NOT EXISTS {schema}"));
        let mut create = Vec::new();
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
            // Only the rows of journalled steps still running, which their finish looks up:
            // a transactional step's row is one heap tuple and one primary-key entry, and no
            // index grows with the history. The history is read newest first by id; repinning
            // a checksum scans it. Tables made by earlier versions keep their full index of the
            // same name, which serves the same lookups.
            format!(
                "CREATE INDEX IF NOT EXISTS {} ON {history} (module, table_name, version) \
                 WHERE outcome = 'started'",
                n.history_index
            ),
        ]);
        Statements {
            schema_exists: create_schema
                .as_ref()
                .map(|_| s("SELECT 1 FROM pg_namespace WHERE nspname = $(schema)")),
            create_schema,
            read_state: portable::read_state(state).into(),
            read_state_unpacked: None,
            state_fingerprint: None,
            create,
            upgrade: vec![format!(
                "ALTER TABLE {history} ADD COLUMN IF NOT EXISTS started_at_utc TEXT"
            )],
            record: vec![with_history(&moved)],
            record_existing: Some(vec![with_history(&moved_existing)]),
            record_session: Some(SessionRecord::new::<Postgres>(
                &session_record(&moved_existing),
                &session_record(&moved),
                Self::BEGIN.unwrap_or("BEGIN"),
            )),
            record_and_commit: None,
            record_and_commit_existing: None,
            record_cas: 0,
            start: vec![with_history(&marked)],
            start_cas: 0,
            clear_resumed: s(&portable::clear_resumed_mark(state)),
            journal_start: None,
            journal_start_existing: None,
            journal_finish: None,
            finish: vec![s(&portable::state_move(state)), history_finish.clone()],
            refuse: vec![s(&portable::clear_mark(state)), history_finish.clone()],
            history: history_row,
            history_finish,
            state_set: vec![s(&portable::state_upsert(state, ""))],
            set_step_checksum: s(&portable::set_step_checksum(history)),
            history_select: portable::history_select(history),
            // The catalog itself, not `information_schema`: its views cost milliseconds to
            // plan on a new connection (11 ms of a 300-step apply's server time went to the
            // two start-up checks), and they hide what the role may not read, which still
            // exists. Tables, partitioned tables, views, materialized views, foreign tables.
            table_exists: s("SELECT 1 FROM pg_catalog.pg_class c \
                 JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
                 WHERE n.nspname = COALESCE($(schema), current_schema()) \
                 AND c.relname = $(table) AND c.relkind IN ('r', 'p', 'v', 'm', 'f')"),
            column_exists: s("SELECT 1 FROM pg_catalog.pg_attribute a \
                 JOIN pg_catalog.pg_class c ON c.oid = a.attrelid \
                 JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
                 WHERE n.nspname = COALESCE($(schema), current_schema()) \
                 AND c.relname = $(table) AND c.relkind IN ('r', 'p', 'v', 'm', 'f') \
                 AND a.attname = $(column) AND a.attnum > 0 AND NOT a.attisdropped"),
            persistent: true,
        }
    }

    fn is_already_done(err: &sqlx::Error) -> bool {
        // duplicate_column
        has_sqlstate(err, "42701")
    }

    fn is_lost_race(err: &sqlx::Error) -> bool {
        // The session record's history row took a NULL outcome: its compare-and-set found the
        // table moved (see `SessionRecord`).
        err.as_database_error()
            .and_then(|d| d.try_downcast_ref::<sqlx::postgres::PgDatabaseError>())
            .is_some_and(|d| d.code() == "23502" && d.column() == Some("outcome"))
    }

    fn is_lost_session(err: &sqlx::Error) -> bool {
        // 57P01 admin_shutdown (a restart, `pg_terminate_backend`), 57P02 crash_shutdown,
        // 57P05 idle_session_timeout.
        crate::driver::is_lost_connection(err)
            || ["57P01", "57P02", "57P05"]
                .iter()
                .any(|code| has_sqlstate(err, code))
    }

    fn rows_affected(result: &PgQueryResult) -> u64 {
        result.rows_affected()
    }

    fn decode_value(row: &PgRow, index: usize) -> Result<Value> {
        crate::decode::decode_value::<Postgres>(row, index)
    }

    fn is_missing_table(err: &sqlx::Error) -> bool {
        // undefined_table, invalid_schema_name
        has_sqlstate(err, "42P01") || has_sqlstate(err, "3F000")
    }

    fn lock(db: &PgDb, timeout: Duration) -> BoxFuture<'_, Result<Box<dyn RunLock>>> {
        Box::pin(async move {
            db.lock_has_a_connection()?;
            let wait = LockWait::new(timeout);
            match db.lock.mode {
                LockMode::Advisory if db.pooled_proxy => Err(Error::Config(
                    "advisory locks do not hold behind a transaction-pooling proxy (PgBouncer's \
                     transaction mode): runs would not exclude each other; use LockMode::Table"
                        .into(),
                )),
                LockMode::Advisory => advisory_lock(db, wait).await,
                LockMode::Table { stale_after } => table_lock(db, stale_after, wait).await,
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

    /// Like [`connect_with_timeout`](Self::connect_with_timeout), with a pool of `connections`
    /// (at least 2): one pool that many schemas share (see
    /// [`with_schema`](Self::with_schema) on clones), as a fleet does.
    pub async fn connect_shared(
        url: &str,
        timeout: std::time::Duration,
        connections: u32,
    ) -> Result<Self> {
        SqlxDb::connect_server_pooled(url, timeout, connections).await
    }

    /// The schemas of this database that are not PostgreSQL's own (`pg_*`,
    /// `information_schema`) and not `public`, sorted; with `like`, only those matching that
    /// SQL `LIKE` pattern.
    pub async fn list_schemas(&self, like: Option<&str>) -> Result<Vec<String>> {
        // Literals on the simple protocol: this also runs through a transaction-pooling proxy.
        // An escape string, and no backslash in the built-in pattern: read alike whatever
        // `standard_conforming_strings` says (with it off, `'pg\_%'` is `pg_%`).
        let like = like.map_or_else(
            || "NULL".to_string(),
            |l| Dialect::Postgres.exact_literal(l),
        );
        let rows = sqlx::raw_sql(AssertSqlSafe(format!(
            "SELECT nspname::text FROM pg_namespace WHERE nspname NOT LIKE 'pg!_%' ESCAPE '!' \
             AND nspname NOT IN ('information_schema', 'public') \
             AND ({like}::text IS NULL OR nspname LIKE {like}) ORDER BY 1"
        )))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| sqlx::Row::try_get::<String, _>(row, 0).map_err(Error::from))
            .collect()
    }

    /// Runs migrations on an existing pool. It needs at least two connections: the advisory
    /// lock holds one for the whole run.
    ///
    /// Inside a Tokio runtime, on a pool of two connections or more with one of them idle, this
    /// begins the check-out of the connection the first call uses, as the pool hands them out
    /// (its ping, under `test_before_acquire`, sent now; its hooks): the first call, typically
    /// the start-up check, takes the ping's answer instead of waiting a round trip for it.
    /// From then on the executor holds that connection, as it keeps one after every call,
    /// until it is dropped (before its first call, the check-out is finished in a task and the
    /// connection goes back to the pool) or a call fails.
    pub fn from_pool(pool: PgPool) -> Self {
        SqlxDb::with_pool(pool).begin_check_out()
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

    /// For a server reached through a transaction-pooling proxy (PgBouncer's
    /// `pool_mode = transaction`), where consecutive transactions of one client run on
    /// different server connections: no prepared statement outlives its transaction, and runs
    /// serialize on a lock row (`LockMode::Table`, stale after 10 minutes), since session
    /// advisory locks do not hold there. Choosing `LockMode::Advisory` afterwards makes every
    /// run fail, naming the reason, rather than lose mutual exclusion.
    pub fn behind_transaction_pooler(mut self) -> Self {
        self.pooled_proxy = true;
        self.lock.mode = LockMode::Table {
            stale_after: Duration::from_secs(600),
        };
        let schema = self.schema.clone();
        let table = self.tracking_table.clone();
        self.configure(schema, table);
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

async fn advisory_lock(db: &PgDb, mut wait: LockWait) -> Result<Box<dyn RunLock>> {
    let key = db.lock_key();
    let mut session = LockSession::new(db.pool.acquire().await?);
    loop {
        let taken: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(key)
            .fetch_one(session.conn())
            .await?;
        if taken {
            keep_awake(session.conn()).await;
            return Ok(Box::new(AdvisoryLock { session, key }));
        }
        if wait.expired() {
            return Err(Error::LockTimeout {
                waited: wait.timeout(),
                holder: Some(crate::lock_wait::holder_or_unknown(
                    advisory_holder(session.conn(), key).await,
                )),
            });
        }
        if wait.report_due() {
            wait.report(&crate::lock_wait::holder_or_unknown(
                advisory_holder(session.conn(), key).await,
            ));
        }
        tokio::time::sleep(LOCK_POLL).await;
    }
}

/// Keeps the lock's session from being ended for idleness while the run goes on (nothing is
/// sent on it until the release): a role's `idle_session_timeout` (PostgreSQL 14 and later)
/// would end it mid-run, freeing the lock for another runner. Best effort: a server that
/// refuses the setting leaves the session as it was, and says so.
async fn keep_awake(conn: &mut PgConnection) {
    if conn.server_version_num().is_some_and(|v| v >= 140_000) {
        if let Err(err) = sqlx::raw_sql("SET idle_session_timeout = 0")
            .execute(&mut *conn)
            .await
        {
            tracing::warn!(error = %err, "could not keep the lock's session from an idle timeout");
        }
    }
}

/// Who holds the advisory lock `key`: the backend pid, when `pg_locks` shows it. Advisory
/// locks belong to a database, and `pg_locks` lists every database's: another database on the
/// server with the same key (the same tracking table) is not the holder.
async fn advisory_holder(conn: &mut PgConnection, key: i64) -> Result<String> {
    let pid: Option<i32> = sqlx::query_scalar(
        "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted \
         AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
         AND classid = ((($1::bigint) >> 32) & 4294967295)::oid \
         AND objid = (($1::bigint) & 4294967295)::oid AND objsubid = 1 LIMIT 1",
    )
    .bind(key)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(match pid {
        Some(pid) => format!("PostgreSQL backend pid {pid} (advisory lock {key})"),
        None => format!("another session (advisory lock {key})"),
    })
}

/// Who holds the lock row of `table`, as the holder wrote itself there. On the simple
/// protocol, like every statement of the table lock: behind a transaction-pooling proxy a
/// prepared statement may not be found on the next exchange.
async fn lock_row_holder(conn: &mut PgConnection, table: &str) -> Result<String> {
    let row = sqlx::raw_sql(AssertSqlSafe(format!(
        "SELECT holder FROM {table} WHERE id = 1"
    )))
    .fetch_optional(&mut *conn)
    .await?;
    let current: Option<String> = row.map(|row| row.try_get(0)).transpose()?;
    Ok(format!(
        "{} (lock row in {table})",
        current.unwrap_or_else(|| "a runner that just released it".to_string())
    ))
}

/// A held session advisory lock and the session that holds it (closed if the lock is dropped
/// unreleased, which frees it).
#[derive(Debug)]
struct AdvisoryLock {
    session: LockSession<Postgres>,
    key: i64,
}

impl RunLock for AdvisoryLock {
    fn release(self: Box<Self>) -> BoxFuture<'static, Result<()>> {
        let AdvisoryLock { mut session, key } = *self;
        Box::pin(async move {
            let unlocked = sqlx::query_scalar::<_, bool>("SELECT pg_advisory_unlock($1)")
                .bind(key)
                .fetch_one(session.conn())
                .await;
            match unlocked {
                Ok(true) => {
                    session.into_pool();
                    Ok(())
                }
                // Not held any more, or the connection broke: the session is ended (dropped).
                Ok(false) => {
                    // The session that took it is not this one any more: a transaction-pooling
                    // proxy that hands each statement its own server connection, unless
                    // `behind_transaction_pooler` was set.
                    tracing::warn!(
                        key,
                        "the run lock was not held when the run released it: this run may not have kept other runners out (behind a transaction-pooling proxy, use PgDb::behind_transaction_pooler)"
                    );
                    Ok(())
                }
                // The lock's session ended during the run (an administrator, a restart, a
                // balancer): the lock went with it. What the run did is committed; the
                // release has nothing left to do.
                Err(err) if <Postgres as Driver>::is_lost_session(&err) => {
                    tracing::warn!(key, error = %err, "the run lock's session ended during the run, and the lock with it: this run may not have kept other runners out");
                    Ok(())
                }
                Err(err) => Err(Error::from(err)),
            }
        })
    }
}

/// The server's time now, in microseconds since the epoch, as the lock row keeps it.
const SERVER_MICROS: &str = "(extract(epoch from clock_timestamp()) * 1000000)::bigint";

/// The shortest `stale_after` a lock row takes: its heartbeat beats at most every 100 ms, a
/// quarter of this, and a shorter one would let every waiter take a live run's row over.
const SHORTEST_STALE_AFTER: Duration = Duration::from_millis(400);

async fn table_lock(
    db: &PgDb,
    stale_after: Duration,
    mut wait: LockWait,
) -> Result<Box<dyn RunLock>> {
    if stale_after < SHORTEST_STALE_AFTER {
        return Err(Error::Config(format!(
            "LockMode::Table's stale_after of {stale_after:?} is shorter than \
             {SHORTEST_STALE_AFTER:?}: another runner would take a live run's lock row over"
        )));
    }
    let table = db.names.lock_table.clone();
    let holder = format!("pid {} at {}", std::process::id(), Timestamp::now());
    let delete = format!(
        "DELETE FROM {table} WHERE id = 1 AND holder = {}",
        Dialect::Postgres.quote_literal(&holder)
    );
    let mut attempt = RowAttempt {
        conn: Some(db.pool.acquire().await?),
        delete,
        armed: false,
        runtime: HomeRuntime::current(),
    };
    db.ensure_schema(attempt.conn()).await?;
    // The catalog first, as for the tracking tables: `CREATE TABLE IF NOT EXISTS` needs the
    // schema's CREATE right even when the table is there, which a role that only uses the
    // tables (made by their owner) lacks. One simple query, for a transaction pooler.
    let exists = format!(
        "SELECT 1 WHERE to_regclass({}) IS NOT NULL",
        Dialect::Postgres.quote_literal(&table)
    );
    let found = sqlx::raw_sql(AssertSqlSafe(exists))
        .fetch_optional(attempt.conn())
        .await?;
    let create = format!(
        "CREATE TABLE IF NOT EXISTS {table} (id INTEGER PRIMARY KEY, holder TEXT NOT NULL, acquired_at BIGINT NOT NULL)"
    );
    let created = if found.is_some() {
        Ok(())
    } else {
        sqlx::raw_sql(AssertSqlSafe(create.clone()))
            .execute(attempt.conn())
            .await
            .map(|_| ())
    };
    if let Err(err) = created {
        // Two runners creating the table at once: the loser sees a duplicate; retry once.
        tracing::debug!(error = %err, "creating the lock table raced; retrying");
        sqlx::raw_sql(AssertSqlSafe(create))
            .execute(attempt.conn())
            .await?;
    }
    // Armed before the row is written: a run cancelled while its `INSERT` is on the way (which
    // commits on its own) deletes the row it may have written, on the same connection, after
    // the `INSERT`. The holder text is this attempt's alone, so the delete touches no one
    // else's row.
    attempt.armed = true;
    let stale_micros = micros(stale_after);
    loop {
        // Literals on the simple protocol: the lock row is what runs behind a transaction-pooling
        // proxy, where a prepared statement may not be found on the next exchange. The times
        // are the server's: runners whose clocks disagree still agree on what is stale.
        let taken = sqlx::raw_sql(AssertSqlSafe(format!(
            "INSERT INTO {table} AS l (id, holder, acquired_at) VALUES (1, {}, {SERVER_MICROS}) \
             ON CONFLICT (id) DO UPDATE SET holder = excluded.holder, acquired_at = excluded.acquired_at \
             WHERE l.acquired_at < {SERVER_MICROS} - {stale_micros}",
            Dialect::Postgres.quote_literal(&holder)
        )))
        .execute(attempt.conn())
        .await?;
        if taken.rows_affected() == 1 {
            attempt.armed = false; // the lock's own drop deletes the row now
            let mut lock = TableLock {
                pool: Some(db.pool.clone()),
                table,
                holder,
                runtime: HomeRuntime::current(),
                heartbeat: None,
            };
            lock.heartbeat = Some(lock.beat(stale_after));
            return Ok(Box::new(lock));
        }
        if wait.expired() {
            attempt.armed = false; // not taken: nothing to delete
            return Err(Error::LockTimeout {
                waited: wait.timeout(),
                holder: Some(crate::lock_wait::holder_or_unknown(
                    lock_row_holder(attempt.conn(), &table).await,
                )),
            });
        }
        if wait.report_due() {
            wait.report(&crate::lock_wait::holder_or_unknown(
                lock_row_holder(attempt.conn(), &table).await,
            ));
        }
        tokio::time::sleep(LOCK_POLL).await;
    }
}

/// The connection a runner writes its lock row on, until the row is its lock's. Dropped while
/// armed (the run cancelled while its `INSERT` was on the way), it deletes the row that
/// `INSERT` may have committed, on the same connection, so after it.
struct RowAttempt {
    conn: Option<PoolConnection<Postgres>>,
    delete: String,
    armed: bool,
    runtime: HomeRuntime,
}

impl RowAttempt {
    fn conn(&mut self) -> &mut PgConnection {
        // Taken only by `drop`.
        self.conn
            .as_deref_mut()
            .expect("the connection is taken only when the attempt is dropped")
    }
}

impl Drop for RowAttempt {
    fn drop(&mut self) {
        let Some(mut conn) = self.conn.take() else {
            return;
        };
        let _entered = self.runtime.enter();
        if !self.armed {
            drop(conn); // back to the pool, inside the runtime entered
            return;
        }
        let delete = std::mem::take(&mut self.delete);
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move {
                // Behind whatever the cancelled `INSERT` left on this connection.
                if let Err(err) = sqlx::raw_sql(AssertSqlSafe(delete)).execute(&mut *conn).await {
                    tracing::debug!(error = %err, "could not delete a cancelled attempt's lock row");
                    conn.close_on_drop();
                }
            });
        }
    }
}

/// A held lock row. `pool` is taken by `release`, so `Drop` knows it was released.
#[derive(Debug)]
struct TableLock {
    pool: Option<PgPool>,
    table: String,
    holder: String,
    /// Where the row is deleted when the lock is dropped unreleased, on a thread outside it.
    runtime: HomeRuntime,
    /// The task that keeps the row fresh while the lock is held.
    heartbeat: Option<tokio::task::AbortHandle>,
}

impl TableLock {
    /// Moves the row's time forward every quarter of `stale_after` while the lock is held: a
    /// run longer than `stale_after` (a large import, an index built concurrently) is alive,
    /// and another runner must not take its row over. A runner that died stops beating, and
    /// its row goes stale as before.
    fn beat(&self, stale_after: Duration) -> tokio::task::AbortHandle {
        let every = (stale_after / 4).max(Duration::from_millis(100));
        let (table, holder) = (
            self.table.clone(),
            Dialect::Postgres.quote_literal(&self.holder),
        );
        let pool = self.pool.clone();
        tokio::spawn(async move {
            let Some(pool) = pool else { return };
            loop {
                tokio::time::sleep(every).await;
                let beat = format!(
                    "UPDATE {table} SET acquired_at = {SERVER_MICROS} WHERE id = 1 AND holder = {holder}"
                );
                match sqlx::raw_sql(AssertSqlSafe(beat)).execute(&pool).await {
                    Ok(done) if done.rows_affected() == 0 => {
                        // Taken over: another runner found it stale (this process stalled, or
                        // the clocks disagree by more than `stale_after`).
                        tracing::warn!(%holder, "the lock row is not this run's any more: another runner took it over, and this run no longer keeps it out");
                        return;
                    }
                    Ok(_) => {}
                    Err(err) => {
                        tracing::warn!(error = %err, "could not refresh the lock row; it goes stale if this lasts");
                    }
                }
            }
        })
        .abort_handle()
    }

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
        if let Some(heartbeat) = self.heartbeat.take() {
            heartbeat.abort();
        }
        let sql = self.delete_sql();
        let pool = self.pool.take();
        Box::pin(async move {
            if let Some(pool) = pool {
                let done = sqlx::raw_sql(AssertSqlSafe(sql)).execute(&pool).await?;
                if done.rows_affected() == 0 {
                    tracing::warn!("the lock row was not this run's when the run released it: another runner took it over, and this run may not have kept it out");
                }
            }
            Ok(())
        })
    }
}

impl Drop for TableLock {
    fn drop(&mut self) {
        if let Some(heartbeat) = self.heartbeat.take() {
            heartbeat.abort();
        }
        // Dropped unreleased: delete the row in the background on the runtime the lock was
        // taken on (entered if this thread runs none); without one it goes stale and the next
        // runner takes it over after `stale_after`.
        let Some(pool) = self.pool.take() else {
            return;
        };
        let _entered = self.runtime.enter();
        let sql = self.delete_sql();
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move {
                let _ = sqlx::raw_sql(AssertSqlSafe(sql)).execute(&pool).await;
            });
        }
    }
}
