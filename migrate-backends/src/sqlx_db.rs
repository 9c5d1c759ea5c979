//! [`SqlxDb`]: the executor for every sqlx database, written once over [`Driver`].
//!
//! - **Transactional steps** run in one transaction with their tracking writes. The state row is
//!   moved by a compare-and-set in the same round trip as the history insert, so a runner that
//!   planned from a stale state applies nothing and re-plans.
//! - **Journalled steps** (`transaction = false`, and every step on MySQL) commit a "started"
//!   history row and a dirty mark first, run in autocommit, then commit "finished". A crash or a
//!   failure in between leaves the mark, which blocks the table until it is resolved.

use crate::driver::Driver;
use crate::held::Slot;
use crate::raw::SqlxRaw;
use crate::rows;
use crate::statements::{
    Bind, Param, Statements, Stmt, TrackingNames, Values, DEFAULT_TRACKING_TABLE,
};
use migrate_core::backend::{
    MigrationBackend, RunLock, StateRow, StepOutcome, StepRecord, StepRun,
};
use migrate_core::conn::Conn;
use migrate_core::dialect::Dialect;
use migrate_core::error::{Error, Result};
use migrate_core::future::BoxFuture;
use migrate_core::status::HistoryEntry;
use migrate_core::step::Outcome;
use migrate_core::time::Timestamp;
use sqlx::{AssertSqlSafe, ColumnIndex, Connection, Decode, Encode, IntoArguments, Pool, Type};
use sqlx_core::sql_str::SqlSafeStr;
use sqlx_core::transaction::TransactionManager;
#[cfg(feature = "sqlite")]
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a runner waits for another runner's lock, on every backend, unless
/// [`SqlxDb::with_lock_timeout`] says otherwise.
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(30);

/// How long `connect` keeps trying to open the first connection to a database server before it
/// gives up with [`Error::Unreachable`](migrate_core::error::Error::Unreachable).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The runner lock's settings.
#[derive(Debug, Clone)]
pub(crate) struct LockConfig {
    pub(crate) timeout: Duration,
    #[cfg(feature = "postgres")]
    pub(crate) mode: crate::postgres::LockMode,
    /// SQLite: the file whose OS lock serializes runners (none for in-memory databases).
    #[cfg(feature = "sqlite")]
    pub(crate) file: Option<std::path::PathBuf>,
    /// SQLite: the busy timeout that connections of a pool this crate opened should have.
    #[cfg(feature = "sqlite")]
    pub(crate) busy_ms: Option<Arc<AtomicU64>>,
}

/// The longest name PostgreSQL keeps (it cuts longer ones silently); MySQL allows 64
/// characters, which is never fewer bytes.
pub(crate) const MAX_IDENTIFIER_BYTES: usize = migrate_core::dialect::MAX_IDENTIFIER_BYTES;

/// The longest tracking-table name: the history index adds `_history_step`.
pub(crate) const MAX_TRACKING_TABLE_BYTES: usize = MAX_IDENTIFIER_BYTES - "_history_step".len();

/// Checks a caller-supplied tracking-table name: every name derived from it must fit.
pub(crate) fn check_tracking_table(name: &str) -> Result<()> {
    check_identifier("tracking table", name, MAX_TRACKING_TABLE_BYTES)
}

/// Checks a caller-supplied schema name.
#[cfg(feature = "postgres")]
pub(crate) fn check_schema(name: &str) -> Result<()> {
    check_identifier("schema", name, MAX_IDENTIFIER_BYTES)
}

/// A name is quoted wherever it is used, so any text is safe in SQL; what a database cannot
/// keep exactly is refused: blank, NUL, or longer than `max` bytes (cut, or refused, there).
fn check_identifier(what: &str, name: &str, max: usize) -> Result<()> {
    if name.trim().is_empty() || name.contains('\0') || name.len() > max {
        return Err(Error::Config(format!(
            "{what} `{}` must be 1 to {max} bytes, not blank, without NUL (it has {} bytes)",
            name.escape_debug(),
            name.len()
        )));
    }
    Ok(())
}

/// A database that migrations run on, over a sqlx pool. Use the aliases
/// [`SqliteDb`](crate::sqlite::SqliteDb), [`PgDb`](crate::postgres::PgDb) and
/// [`MySqlDb`](crate::mysql::MySqlDb), which add the constructors.
pub struct SqlxDb<DB: Driver> {
    pub(crate) pool: Pool<DB>,
    pub(crate) names: TrackingNames,
    pub(crate) sql: Arc<Statements>,
    pub(crate) tracking_table: String,
    pub(crate) schema: Option<String>,
    pub(crate) lock: LockConfig,
    /// Where the pool points, for messages: the server without credentials, or the file.
    pub(crate) target: String,
    /// The connection kept between calls (shared by clones).
    pub(crate) held: std::sync::Arc<Slot<DB>>,
    /// Behind a transaction-pooling proxy: no prepared statement outlives its transaction.
    pub(crate) pooled_proxy: bool,
    /// The values of a journalled step's finish not yet committed (`journal_finish`); shared
    /// by clones, like `held`.
    pub(crate) pending_finish: std::sync::Arc<std::sync::Mutex<Option<Values>>>,
}

impl<DB: Driver> Clone for SqlxDb<DB> {
    fn clone(&self) -> Self {
        SqlxDb {
            pool: self.pool.clone(),
            names: self.names.clone(),
            sql: self.sql.clone(),
            tracking_table: self.tracking_table.clone(),
            schema: self.schema.clone(),
            lock: self.lock.clone(),
            target: self.target.clone(),
            held: self.held.clone(),
            pending_finish: self.pending_finish.clone(),
            pooled_proxy: self.pooled_proxy,
        }
    }
}

impl<DB: Driver> SqlxDb<DB>
where
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
{
    /// The executor's connection outside any transaction: a transaction the previous step
    /// began ahead for a next step (not this call) is ended first.
    pub(crate) async fn plain_conn(&self) -> Result<crate::held::Held<'_, DB>> {
        let mut conn = self.held.take(&self.pool).await?;
        if conn.begun_ahead() {
            if step_rollback::<DB>(&mut conn).await {
                conn.set_open_transaction(false);
            } else {
                // A dead session (an idle-in-transaction timeout, a restart): closed on drop,
                // and the call goes on with a connection from the pool.
                drop(conn);
                conn = self.held.take(&self.pool).await?;
            }
        }
        Ok(conn)
    }
}

impl<DB: Driver> std::fmt::Debug for SqlxDb<DB> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlxDb")
            .field("dialect", &DB::DIALECT)
            .field("tracking_table", &self.tracking_table)
            .field("schema", &self.schema)
            .field("target", &self.target)
            .field("lock", &self.lock)
            .finish_non_exhaustive()
    }
}

impl<DB: Driver> SqlxDb<DB> {
    pub(crate) fn with_pool(pool: Pool<DB>) -> Self {
        let (names, sql) = crate::statements::default_configuration::<DB>();
        SqlxDb {
            pool,
            sql,
            names,
            tracking_table: DEFAULT_TRACKING_TABLE.to_string(),
            schema: None,
            lock: LockConfig {
                timeout: DEFAULT_LOCK_TIMEOUT,
                #[cfg(feature = "postgres")]
                mode: crate::postgres::LockMode::Advisory,
                #[cfg(feature = "sqlite")]
                file: None,
                #[cfg(feature = "sqlite")]
                busy_ms: None,
            },
            target: "a pool passed in".to_string(),
            held: Default::default(),
            pooled_proxy: false,
            pending_finish: Default::default(),
        }
    }

    pub(crate) fn configure(&mut self, schema: Option<String>, table: String) {
        self.names = TrackingNames::new(DB::DIALECT, schema.as_deref(), &table);
        let mut sql = DB::statements(&self.names);
        sql.persistent = !self.pooled_proxy;
        self.sql = Arc::new(sql);
        self.schema = schema;
        self.tracking_table = table;
        // A pending finish belongs to the tracking tables it was made for.
        self.pending_finish = Default::default();
    }

    /// Connects to a database server: a small pool (the runner lock holds one connection for a
    /// run, the steps use another) whose step connection is opened now, not inside the first
    /// call, and is kept (see `held`).
    /// Gives up after `timeout` with [`Error::Unreachable`] when no connection opens (sqlx retries
    /// a refused connection until then). Errors never show the URL's password.
    #[cfg(any(feature = "postgres", feature = "mysql"))]
    pub(crate) async fn connect_server(url: &str, timeout: Duration) -> Result<Self> {
        Self::connect_server_pooled(url, timeout, 3).await
    }

    /// [`connect_server`](Self::connect_server) with a pool of `connections`.
    #[cfg(any(feature = "postgres", feature = "mysql"))]
    pub(crate) async fn connect_server_pooled(
        url: &str,
        timeout: Duration,
        connections: u32,
    ) -> Result<Self> {
        let connected = async {
            let pool = sqlx::pool::PoolOptions::<DB>::new()
                .max_connections(connections.max(2))
                .test_before_acquire(false)
                .acquire_timeout(timeout)
                .connect(url)
                .await
                .map_err(|e| match e {
                    sqlx::Error::PoolTimedOut => Error::Unreachable {
                        target: crate::url::server(url),
                        waited: timeout,
                    },
                    other => other.into(),
                })?;
            let mut db = SqlxDb::with_pool(pool);
            db.target = crate::url::server(url);
            db.held.put(db.pool.acquire().await?);
            Ok::<_, Error>(db)
        };
        connected
            .await
            .map_err(|e| crate::url::redact_password(e, url))
    }

    /// The pool, for the application's own queries.
    pub fn pool(&self) -> &Pool<DB> {
        &self.pool
    }

    /// Closes the pool. The connection the executor keeps between calls goes back first, so
    /// closing never waits for it.
    pub async fn close(&self) {
        self.held.clear();
        self.pool.close().await;
    }

    /// Uses `name` (and `name_history`) as the tracking tables instead of
    /// [`DEFAULT_TRACKING_TABLE`].
    pub fn with_tracking_table(mut self, name: &str) -> Result<Self> {
        check_tracking_table(name)?;
        let schema = self.schema.clone();
        self.configure(schema, name.to_string());
        Ok(self)
    }

    /// How long a runner waits for another runner's lock (default [`DEFAULT_LOCK_TIMEOUT`]):
    /// the advisory lock on PostgreSQL, `GET_LOCK` on MySQL, and on SQLite both the lock file
    /// and the database's write lock (the busy timeout of the connections this crate opened).
    pub fn with_lock_timeout(mut self, timeout: Duration) -> Self {
        self.lock.timeout = timeout;
        #[cfg(feature = "sqlite")]
        if let Some(busy) = &self.lock.busy_ms {
            busy.store(crate::sqlite::millis(timeout), Ordering::Relaxed);
            // The kept connection has the old timeout: the next call takes a fresh one.
            self.held.clear();
        }
        self
    }

    /// The current lock timeout.
    pub fn lock_timeout(&self) -> Duration {
        self.lock.timeout
    }

    #[cfg(feature = "postgres")]
    pub(crate) fn set_schema(&mut self, schema: &str) -> Result<()> {
        check_schema(schema)?;
        let table = self.tracking_table.clone();
        self.configure(Some(schema.to_string()), table);
        Ok(())
    }
}

impl<DB: Driver> SqlxDb<DB>
where
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    for<'r> String: Decode<'r, DB> + Type<DB>,
    for<'r> i64: Decode<'r, DB> + Type<DB>,
    for<'q> Option<String>: Encode<'q, DB> + Type<DB>,
    for<'q> Option<i64>: Encode<'q, DB> + Type<DB>,
    usize: ColumnIndex<DB::Row>,
{
    /// Whether `table` exists in this executor's schema, on the kept connection.
    pub(crate) async fn has_table(&self, table: &str) -> Result<bool> {
        let mut conn = self.conn().await?;
        let exists = self.in_catalog(&mut conn, table, None).await?;
        conn.keep();
        Ok(exists)
    }

    /// Whether `table` (and `column`) exist, asked of the catalog with bound names.
    async fn in_catalog(
        &self,
        conn: &mut DB::Connection,
        table: &str,
        column: Option<&str>,
    ) -> Result<bool> {
        let values = Values::new()
            .text(Bind::Schema, self.schema.as_deref())
            .text(Bind::Table, Some(table))
            .text(Bind::Column, column);
        let sql = if column.is_some() {
            &self.sql.column_exists
        } else {
            &self.sql.table_exists
        };
        let row = bound::<DB>(sql, &values, self.sql.persistent)
            .fetch_optional(&mut *conn)
            .await
            .map_err(|e| DB::lock_error(e, self.lock.timeout))?;
        Ok(row.is_some())
    }

    /// Runs prepared statements with their values, one round trip each; returns the rows each
    /// affected.
    async fn run_prepared(
        conn: &mut DB::Connection,
        stmts: &[Stmt],
        values: &Values,
        persistent: bool,
    ) -> Result<Vec<u64>> {
        let mut affected = Vec::with_capacity(stmts.len());
        for stmt in stmts {
            let done = bound::<DB>(stmt, values, persistent)
                .execute(&mut *conn)
                .await?;
            affected.push(DB::rows_affected(&done));
        }
        Ok(affected)
    }

    /// Runs prepared statements on the kept connection.
    async fn run_kept(&self, stmts: &[Stmt], values: &Values) -> Result<()> {
        let mut conn = self.conn().await?;
        Self::run_prepared(&mut conn, stmts, values, self.sql.persistent).await?;
        conn.keep();
        Ok(())
    }

    /// Rolls back a transaction that a failed journalled step opened itself (a batch of
    /// `data::Batches`, or its own `BEGIN`), so that the connection goes back to the pool
    /// clean. Outside a transaction this is a harmless error or warning, ignored.
    async fn end_open_transaction(conn: &mut DB::Connection) {
        if let Err(err) = sqlx::raw_sql("ROLLBACK").execute(&mut *conn).await {
            tracing::trace!(error = %err, "no transaction was left open");
        }
    }

    /// Runs `stmts` in one transaction on a held connection.
    async fn run_in_transaction(&self, stmts: &[Stmt], values: &Values) -> Result<()> {
        let mut conn = self.conn().await?;
        let mut tx = self.begin(&mut conn).await?;
        Self::run_prepared(&mut tx, stmts, values, self.sql.persistent).await?;
        tx.commit().await?;
        conn.keep();
        Ok(())
    }

    async fn begin<'c>(&self, conn: &'c mut DB::Connection) -> Result<sqlx::Transaction<'c, DB>> {
        let begin = DB::BEGIN.unwrap_or("BEGIN");
        conn.begin_with(begin)
            .await
            .map_err(|e| DB::lock_error(e, self.lock.timeout))
    }

    /// A transactional step: its action in a transaction (the one the previous step's commit
    /// began, or one begun now), then its tracking writes and the commit, either as one
    /// statement list ([`Statements::record_and_commit`]) or as prepared statements.
    async fn run_transactional(&self, step: &StepRun<'_>) -> Result<StepOutcome> {
        let acted = match self.act(step).await {
            Ok(acted) => acted,
            Err(over) => return over,
        };
        let existing = match step.record.expected {
            Some(_) => self.sql.record_and_commit_existing.as_ref(),
            None => None,
        };
        match existing.or(self.sql.record_and_commit.as_ref()) {
            Some(list) => self.record_with_list(step, acted, list).await,
            None => self.record_with_prepared(acted).await,
        }
    }

    /// The tracking writes, the commit and the next step's `BEGIN` in one list. sqlx counts
    /// the transaction from its first `BEGIN` on; the list's `COMMIT; BEGIN` leaves it in one,
    /// so its count stays right.
    async fn record_with_list(
        &self,
        step: &StepRun<'_>,
        acted: Acted<'_, DB>,
        list: &Stmt,
    ) -> Result<StepOutcome> {
        let r = &step.record;
        let Acted {
            mut conn,
            values,
            done,
        } = acted;
        let recorded = bound::<DB>(list, &values, self.sql.persistent)
            .execute(&mut *conn)
            .await;
        let err = match recorded {
            Ok(_) => {
                conn.set_begun_ahead(true);
                conn.keep();
                return Ok(done);
            }
            Err(err) => err,
        };
        // Nothing after the failed statement ran. A rollback that works means the transaction
        // was still open: nothing of the step was kept.
        if end_step(conn).await {
            return if DB::is_lost_race(&err) {
                Ok(StepOutcome::Raced)
            } else {
                Err(err.into())
            };
        }
        // No transaction is left: the COMMIT ran and only the next step's BEGIN failed, or
        // the database ended the transaction itself (a full disk). The connection was closed
        // (sqlx's count of its transactions is off), and the state row tells which.
        let stored = self.stored_version(r).await;
        if stored.is_some_and(|v| v.as_deref() == r.new_version) {
            tracing::debug!(error = %err, "the step committed; the next step begins its own transaction");
            Ok(done)
        } else {
            Err(err.into())
        }
    }

    /// The tracking writes as prepared statements, then the commit.
    async fn record_with_prepared(&self, acted: Acted<'_, DB>) -> Result<StepOutcome> {
        let Acted {
            mut conn,
            values,
            done,
        } = acted;
        let sql = &self.sql;
        let recorded = Self::run_prepared(&mut conn, &sql.record, &values, sql.persistent).await;
        let affected = match recorded {
            Ok(affected) => affected,
            Err(err) => {
                end_step(conn).await;
                return Err(err);
            }
        };
        if affected.get(sql.record_cas) != Some(&1) {
            end_step(conn).await;
            return Ok(StepOutcome::Raced);
        }
        // The commit begins the next step's transaction in the same round trip (sqlx still
        // counts one open, which is true again); whatever uses the connection next and is not
        // a transactional step ends it first. Only an executor that is not cloned does:
        // clones (a fleet's schemas) share the kept connection, so the next user is as likely
        // another clone's state read (which would roll it back) or, with the slot filled
        // meanwhile, the pool (which must not get a connection inside a transaction).
        let ahead = std::sync::Arc::strong_count(&self.held) == 1 && self.held.is_vacant();
        let committed = if ahead {
            let begin = DB::BEGIN.unwrap_or("BEGIN");
            sqlx::raw_sql(AssertSqlSafe(format!("COMMIT; {begin}")))
                .execute(&mut *conn)
                .await
                .map(|_| ())
        } else {
            <DB::TransactionManager as TransactionManager>::commit(&mut conn).await
        };
        match committed {
            Ok(()) => {
                if ahead {
                    conn.set_begun_ahead(true);
                } else {
                    conn.set_open_transaction(false);
                }
                conn.keep();
                Ok(done)
            }
            Err(err) => {
                // A failed COMMIT ends the transaction; nothing after it ran.
                end_step(conn).await;
                Err(err.into())
            }
        }
    }

    /// The first half of a transactional step: its transaction open, its action run in it.
    /// `Err` is the step's end: the action failed (rolled back, and recorded unless another
    /// runner moved the table), or the transaction could not begin.
    async fn act(
        &self,
        step: &StepRun<'_>,
    ) -> std::result::Result<Acted<'_, DB>, Result<StepOutcome>> {
        let mut conn = self.step_conn().await.map_err(Err)?;
        let started_at = Timestamp::now();
        let clock = Instant::now();
        let result = {
            let mut raw = SqlxRaw::<DB>::new(&mut conn, &self.sql);
            let mut db = Conn::new(&mut raw, self.schema.as_deref())
                .with_table_names(step.table_names)
                .with_transaction(true);
            (step.action)(&mut db).await
        };
        let elapsed = clock.elapsed();
        if let Err(err) = result {
            end_step(conn).await;
            return Err(self.after_failure(step, started_at, elapsed, err).await);
        }
        let values = Values::step(
            &step.record,
            Outcome::Succeeded,
            started_at,
            Some(micros(elapsed)),
            None,
        );
        Ok(Acted {
            conn,
            values,
            done: StepOutcome::Done {
                started_at,
                execution_time: elapsed,
            },
        })
    }

    /// The version the state row of `r`'s table holds now (`Some(None)`: none, or no row);
    /// `None` when it cannot be read.
    async fn stored_version(&self, r: &StepRecord<'_>) -> Option<Option<String>> {
        let rows = self.read_state_rows().await.ok()?;
        Some(
            rows.into_iter()
                .find(|row| row.module == r.module && row.table == r.table)
                .and_then(|row| row.version),
        )
    }

    /// The connection for a transactional step, its transaction open: the one the previous
    /// step's commit began ahead, or one begun now.
    async fn step_conn(&self) -> Result<crate::held::Held<'_, DB>> {
        let mut conn = self.held.take(&self.pool).await?;
        if conn.begun_ahead() {
            conn.set_begun_ahead(false);
            return Ok(conn);
        }
        // Back to the slot, for `conn` to settle what is pending first.
        conn.keep();
        let conn = self.conn().await?;
        self.begin_step(conn).await
    }

    /// Begins a step's transaction through sqlx's transaction manager, so that sqlx counts it:
    /// a migration that begins a transaction of its own through the driver gets a savepoint.
    async fn begin_step<'s>(
        &self,
        mut conn: crate::held::Held<'s, DB>,
    ) -> Result<crate::held::Held<'s, DB>> {
        let begin = DB::BEGIN.unwrap_or("BEGIN");
        <DB::TransactionManager as TransactionManager>::begin(
            &mut conn,
            Some(begin.into_sql_str()),
        )
        .await
        .map_err(|e| DB::lock_error(e, self.lock.timeout))?;
        conn.set_open_transaction(true);
        Ok(conn)
    }

    /// A failed transactional step: if another runner moved the table meanwhile, the failure
    /// was the race (the step found its work done), so re-plan; otherwise record it.
    async fn after_failure(
        &self,
        step: &StepRun<'_>,
        started_at: Timestamp,
        elapsed: Duration,
        err: Error,
    ) -> Result<StepOutcome> {
        let r = &step.record;
        let stored = self.stored_version(r).await;
        if stored.is_some_and(|v| v.as_deref() != r.expected) {
            return Ok(StepOutcome::Raced);
        }
        let message = err.to_string();
        let outcome = if matches!(err, Error::Blocked { .. }) {
            Outcome::Blocked
        } else {
            Outcome::Failed
        };
        let values = Values::step(
            r,
            outcome,
            started_at,
            Some(micros(elapsed)),
            Some(&message),
        );
        self.record_best_effort(&self.sql.history, &values).await;
        Err(err)
    }

    async fn record_best_effort(&self, stmt: &Stmt, values: &Values) {
        let written = self.run_kept(std::slice::from_ref(stmt), values).await;
        if let Err(record_err) = written {
            tracing::warn!(error = %record_err, "could not record the failed step in the history");
        }
    }

    /// The values of the pending finish, taken.
    fn take_pending(&self) -> Option<Values> {
        self.pending_finish
            .lock()
            .ok()
            .and_then(|mut slot| slot.take())
    }

    /// The executor's connection, after committing a journalled step's pending finish, so
    /// that nothing reads or writes the tracking tables with that step still marked dirty.
    ///
    /// The pending values are taken first: if the finish cannot be committed now, it is dropped,
    /// and the step stays marked dirty (settled with `repair`) rather than being committed
    /// later, outside the run lock.
    pub(crate) async fn conn(&self) -> Result<crate::held::Held<'_, DB>> {
        let pending = self.take_pending();
        let mut conn = self.plain_conn().await?;
        if let (Some(finish), Some(values)) = (&self.sql.journal_finish, pending) {
            let text = format!(
                "START TRANSACTION; {}; COMMIT",
                literal_sql::<DB>(finish, &values)
            );
            // A write through this connection: a state read kept with it is out of date.
            drop(conn.take_state_cache());
            if let Err(err) = sqlx::raw_sql(AssertSqlSafe(text)).execute(&mut *conn).await {
                Self::end_open_transaction(&mut conn).await;
                return Err(err.into());
            }
        }
        Ok(conn)
    }

    /// Sets a journalled step's dirty mark and "started" row (with the previous step's
    /// pending finish, in one transaction); `false` when another runner moved the table first.
    async fn start_journal(
        &self,
        conn: &mut DB::Connection,
        values: &Values,
        row_exists: bool,
    ) -> Result<bool> {
        let sql = &self.sql;
        let start = match (row_exists, &sql.journal_start_existing) {
            (true, Some(existing)) => Some(existing),
            _ => sql.journal_start.as_ref(),
        };
        if let Some(start) = start {
            let mut text = String::from("START TRANSACTION; ");
            let pending = self.take_pending();
            if let (Some(finish), Some(pending)) = (&sql.journal_finish, &pending) {
                text.push_str(&literal_sql::<DB>(finish, pending));
                text.push_str("; ");
            }
            text.push_str(&literal_sql::<DB>(start, values));
            text.push_str("; COMMIT");
            let sent = affected_per_statement::<DB>(conn, text).await;
            let affected = match sent {
                Ok(affected) => affected,
                Err(err) => {
                    Self::end_open_transaction(conn).await;
                    // The previous step's finish was rolled back with this start: it goes
                    // back to wait for the next use of the tracking tables or the run's end
                    // (guarded by its mark, so committing it twice changes nothing).
                    if let (Some(pending), Ok(mut slot)) = (pending, self.pending_finish.lock()) {
                        slot.get_or_insert(pending);
                    }
                    // A deadlock's victim: rolled back whole, before the step ran.
                    if DB::is_lost_race(&err) {
                        tracing::debug!(error = %err, "the step's start lost a deadlock; re-planning");
                        return Ok(false);
                    }
                    return Err(err.into());
                }
            };
            // The start's last statement, before the COMMIT, inserts the "started" row.
            let inserted = affected.iter().rev().nth(1);
            return Ok(inserted == Some(&1));
        }
        let mut tx = self.begin(conn).await?;
        let affected = Self::run_prepared(&mut tx, &sql.start, values, sql.persistent).await?;
        if affected.get(sql.start_cas) != Some(&1) {
            tx.rollback().await?;
            return Ok(false);
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Records a journalled step that succeeded: its state row moved, its mark cleared, its
    /// history row finished; left pending where `journal_finish` is (committed with what
    /// comes next), else committed now.
    async fn finish_journal(&self, conn: &mut DB::Connection, values: Values) -> Result<()> {
        let sql = &self.sql;
        if sql.journal_finish.is_some() {
            if let Ok(mut slot) = self.pending_finish.lock() {
                *slot = Some(values);
                return Ok(());
            }
        }
        let mut tx = self.begin(conn).await?;
        Self::run_prepared(&mut tx, &sql.finish, &values, sql.persistent).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn run_journalled(&self, step: &StepRun<'_>) -> Result<StepOutcome> {
        let r = &step.record;
        let sql = &self.sql;
        let mut conn = self.plain_conn().await?;
        let started_at = Timestamp::now();
        let values = Values::step(r, Outcome::Started, started_at, None, None);
        // A recorded version means the state row exists: the compare-and-set checks it.
        let row_exists = r.expected.is_some();
        if !self.start_journal(&mut conn, &values, row_exists).await? {
            conn.keep();
            return Ok(StepOutcome::Raced);
        }
        let clock = Instant::now();
        // The step's own statements may open a transaction: dropped while it runs (a panic, a
        // cancelled run), the connection is closed, which rolls that back, instead of going
        // back to the pool with it open for the next user to commit.
        conn.set_open_transaction(true);
        let result = {
            let mut raw = SqlxRaw::<DB>::new(&mut conn, &self.sql);
            let mut db =
                Conn::new(&mut raw, self.schema.as_deref()).with_table_names(step.table_names);
            (step.action)(&mut db).await
        };
        conn.set_open_transaction(false);
        let elapsed = clock.elapsed();
        let us = micros(elapsed);
        match result {
            Ok(()) => {
                let values = Values::step(r, Outcome::Succeeded, started_at, Some(us), None);
                self.finish_journal(&mut conn, values).await?;
                conn.keep();
                Ok(StepOutcome::Done {
                    started_at,
                    execution_time: elapsed,
                })
            }
            Err(err @ Error::Blocked { .. }) => {
                // A refusal comes before any change: the mark goes, the version stays.
                Self::end_open_transaction(&mut conn).await;
                drop(conn);
                let message = err.to_string();
                let values =
                    Values::step(r, Outcome::Blocked, started_at, Some(us), Some(&message));
                if let Err(clear_err) = self.run_in_transaction(&sql.refuse, &values).await {
                    tracing::warn!(error = %clear_err, "could not clear the dirty mark of a step that refused");
                }
                Err(err)
            }
            Err(err) => {
                // The dirty mark stays: what the step changed before failing is unknown.
                Self::end_open_transaction(&mut conn).await;
                drop(conn);
                let message = err.to_string();
                let values = Values::step(r, Outcome::Failed, started_at, Some(us), Some(&message));
                self.record_best_effort(&sql.history_finish, &values).await;
                Err(err)
            }
        }
    }
}

/// A statement with its values: prepared (the usual way), or, behind a transaction-pooling
/// proxy, written out with literals and sent on the simple protocol in one exchange (the
/// proxy may give each exchange outside a transaction another server connection, so a
/// prepared statement would not be found where it was parsed).
pub(crate) enum Bound<'q, DB: sqlx::Database> {
    Prepared(sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments>),
    Literal(sqlx::RawSql),
}

impl<DB: Driver> Bound<'_, DB>
where
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
{
    pub(crate) async fn execute(self, conn: &mut DB::Connection) -> sqlx::Result<DB::QueryResult> {
        match self {
            Bound::Prepared(query) => query.execute(conn).await,
            Bound::Literal(sql) => sql.execute(conn).await,
        }
    }

    pub(crate) async fn fetch_optional(
        self,
        conn: &mut DB::Connection,
    ) -> sqlx::Result<Option<DB::Row>> {
        match self {
            Bound::Prepared(query) => query.fetch_optional(conn).await,
            Bound::Literal(sql) => sql.fetch_optional(conn).await,
        }
    }
}

/// A transactional step whose action succeeded: its connection, still in the step's
/// transaction, the values its tracking writes record, and the outcome once they commit.
struct Acted<'s, DB: Driver> {
    conn: crate::held::Held<'s, DB>,
    values: Values,
    done: StepOutcome,
}

/// Rolls back a step's transaction through sqlx's transaction manager (which counts it);
/// `false` when that failed, and the connection's count of open transactions is unknown.
async fn step_rollback<DB: Driver>(conn: &mut DB::Connection) -> bool {
    match <DB::TransactionManager as TransactionManager>::rollback(conn).await {
        Ok(()) => true,
        Err(err) => {
            tracing::debug!(error = %err, "the step's transaction could not be rolled back");
            false
        }
    }
}

/// Ends a step that will not commit: rolled back and kept (`true`), or, when the rollback
/// fails, closed on drop (`false`).
async fn end_step<DB: Driver>(mut conn: crate::held::Held<'_, DB>) -> bool {
    let rolled_back = step_rollback::<DB>(&mut conn).await;
    if rolled_back {
        conn.set_open_transaction(false);
        conn.keep();
    }
    rolled_back
}

/// A statement with its values bound: prepared when `persistent`, else written with literals
/// (see [`Bound`]).
pub(crate) fn bound<'q, DB>(stmt: &Stmt, values: &Values, persistent: bool) -> Bound<'q, DB>
where
    DB: Driver,
    for<'e> Option<String>: Encode<'e, DB> + Type<DB>,
    for<'e> Option<i64>: Encode<'e, DB> + Type<DB>,
{
    if !persistent {
        return Bound::Literal(sqlx::raw_sql(AssertSqlSafe(literal_sql::<DB>(
            stmt, values,
        ))));
    }
    let mut query = sqlx::query(AssertSqlSafe(stmt.sql.clone()));
    for &i in &stmt.params {
        query = match values.get(i) {
            Some(Param::Text(v)) => query.bind(v.clone()),
            Some(Param::Int(v)) => query.bind(*v),
            None => query.bind(None::<i64>),
        };
    }
    Bound::Prepared(query)
}

/// Sends `text` (statements with their values written in) in one exchange and returns the
/// rows each statement affected, in order; the first error ends it.
async fn affected_per_statement<DB: Driver>(
    conn: &mut DB::Connection,
    text: String,
) -> sqlx::Result<Vec<u64>>
where
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
{
    let mut results = sqlx::raw_sql(AssertSqlSafe(text)).execute_many(conn);
    let mut affected = Vec::new();
    while let Some(result) =
        std::future::poll_fn(|cx| futures_core::Stream::poll_next(results.as_mut(), cx)).await
    {
        affected.push(DB::rows_affected(&result?));
    }
    Ok(affected)
}

/// `stmt` with each placeholder replaced by its value as a literal. One pass over the
/// statement's own text, placeholders in the order `compile` wrote them: a value that holds
/// placeholder-like text (an error message quoting `$1`) is never read again.
pub(crate) fn literal_sql<DB: Driver>(stmt: &Stmt, values: &Values) -> String {
    let mut out = String::with_capacity(stmt.sql.len() + 64);
    let mut from = 0;
    // The placeholders' own offsets, as `compile` wrote them: a `?` or `$1` inside a quoted
    // name, or in a value, is never taken for one.
    for (&i, &(at, len)) in stmt.params.iter().zip(&stmt.placeholders) {
        let (Some(before), Some(_)) = (stmt.sql.get(from..at), stmt.sql.get(at..at + len)) else {
            break;
        };
        out.push_str(before);
        match values.get(i) {
            Some(Param::Text(Some(v))) => out.push_str(&DB::text_literal(v)),
            Some(Param::Int(Some(v))) => out.push_str(&v.to_string()),
            _ => out.push_str("NULL"),
        }
        from = at + len;
    }
    out.push_str(stmt.sql.get(from..).unwrap_or_default());
    out
}

/// The history column that `Statements::upgrade` adds to tracking tables made before it.
const UPGRADE_COLUMN: &str = "started_at_utc";

pub(crate) fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

impl<DB: Driver> MigrationBackend for SqlxDb<DB>
where
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    for<'r> String: Decode<'r, DB> + Type<DB>,
    for<'r> i64: Decode<'r, DB> + Type<DB>,
    for<'q> Option<String>: Encode<'q, DB> + Type<DB>,
    for<'q> Option<i64>: Encode<'q, DB> + Type<DB>,
    usize: ColumnIndex<DB::Row>,
{
    fn dialect(&self) -> Dialect {
        DB::DIALECT
    }

    fn schema(&self) -> Option<&str> {
        self.schema.as_deref()
    }

    fn record_without_running<'a>(
        &'a self,
        record: &'a StepRecord<'a>,
        outcome: Outcome,
    ) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move {
            let mut conn = self.conn().await?;
            let mut tx = self.begin(&mut conn).await?;
            let values = Values::step(record, outcome, Timestamp::now(), Some(0), None);
            let affected =
                Self::run_prepared(&mut tx, &self.sql.record, &values, self.sql.persistent).await?;
            let moved = affected.get(self.sql.record_cas) == Some(&1);
            if moved {
                tx.commit().await?;
            } else {
                tx.rollback().await?;
            }
            conn.keep();
            Ok(moved)
        })
    }

    fn read_state(&self) -> BoxFuture<'_, Result<Vec<StateRow>>> {
        Box::pin(self.read_state_rows())
    }

    fn tracking_table(&self) -> &str {
        &self.tracking_table
    }

    fn read_adopted<'a>(&'a self, table: &'a str) -> BoxFuture<'a, Result<Vec<(String, String)>>> {
        Box::pin(self.read_adopted_rows(table))
    }

    fn table_exists<'a>(&'a self, table: &'a str) -> BoxFuture<'a, Result<bool>> {
        Box::pin(self.has_table(table))
    }

    fn prepare(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            let mut conn = self.conn().await?;
            let history = format!("{}_history", self.tracking_table);
            // The upgrade adds a column that older tracking tables lack; with it in place and
            // the state table there, nothing needs creating. Asking first costs two catalog
            // reads and no CREATE right, so a role that may only write the tracking tables can
            // run; and on PostgreSQL even `ADD COLUMN IF NOT EXISTS` takes an exclusive lock.
            if self
                .in_catalog(&mut conn, &history, Some(UPGRADE_COLUMN))
                .await?
                && self
                    .in_catalog(&mut conn, &self.tracking_table, None)
                    .await?
            {
                conn.keep();
                return Ok(());
            }
            if let (Some(create), Some(exists)) = (&self.sql.create_schema, &self.sql.schema_exists)
            {
                let values = Values::new().text(Bind::Schema, self.schema.as_deref());
                let found = bound::<DB>(exists, &values, self.sql.persistent)
                    .fetch_optional(&mut *conn)
                    .await?;
                if found.is_none() {
                    sqlx::raw_sql(AssertSqlSafe(create.clone()))
                        .execute(&mut *conn)
                        .await?;
                }
            }
            for statement in &self.sql.create {
                sqlx::raw_sql(AssertSqlSafe(statement.clone()))
                    .execute(&mut *conn)
                    .await
                    .map_err(|e| match DB::lock_error(e, self.lock.timeout) {
                        // The driver's message (`permission denied for schema public`) does
                        // not say which tables were being created, or where.
                        Error::Database(db) => Error::Database(db.context(format_args!(
                            "creating the tracking tables on {}",
                            self.describe()
                        ))),
                        other => other,
                    })?;
            }
            // Tables just created have the column; only an older history lacks it.
            let upgraded = self
                .in_catalog(&mut conn, &history, Some(UPGRADE_COLUMN))
                .await?;
            for statement in self.sql.upgrade.iter().filter(|_| !upgraded) {
                match sqlx::raw_sql(AssertSqlSafe(statement.clone()))
                    .execute(&mut *conn)
                    .await
                {
                    Ok(_) => {}
                    Err(err) if DB::is_already_done(&err) => {}
                    Err(err) => return Err(DB::lock_error(err, self.lock.timeout)),
                }
            }
            conn.keep();
            Ok(())
        })
    }

    fn describe(&self) -> String {
        let mut text = format!("{} {}", DB::DIALECT, self.target);
        if let Some(schema) = &self.schema {
            text.push_str(&format!(", schema {schema}"));
        }
        text.push_str(&format!(", tracking table {}", self.tracking_table));
        text
    }

    fn lock(&self, wait: Option<Duration>) -> BoxFuture<'_, Result<Box<dyn RunLock>>> {
        DB::lock(self, wait.unwrap_or(self.lock.timeout))
    }

    fn end_run(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            // The last step's pending finish (MariaDB) commits, or the transaction the last
            // step began ahead (PostgreSQL, SQLite) ends, before the run lock is released.
            if self.sql.journal_finish.is_some() || self.held.begun_ahead() {
                self.conn().await?.keep();
            }
            Ok(())
        })
    }

    fn run_step<'a>(&'a self, step: &'a StepRun<'a>) -> BoxFuture<'a, Result<StepOutcome>> {
        Box::pin(async move {
            if step.transactional && DB::BEGIN.is_some() {
                self.run_transactional(step).await
            } else {
                self.run_journalled(step).await
            }
        })
    }

    fn history<'a>(
        &'a self,
        modules: &'a [&'a str],
        limit: Option<usize>,
    ) -> BoxFuture<'a, Result<Vec<HistoryEntry>>> {
        Box::pin(async move {
            if modules.is_empty() {
                return Ok(Vec::new());
            }
            let placeholders: Vec<String> = if self.sql.persistent {
                (1..=modules.len()).map(DB::placeholder).collect()
            } else {
                modules
                    .iter()
                    .map(|m| DB::DIALECT.quote_literal(m))
                    .collect()
            };
            let sql = self
                .sql
                .history_select
                .replace("{modules}", &placeholders.join(", "))
                .replace(
                    "{limit}",
                    &limit.map_or_else(String::new, |n| format!(" LIMIT {n}")),
                );
            let sql_text = sql.clone();
            let mut query = sqlx::query(AssertSqlSafe(sql));
            for module in modules {
                query = query.bind(Some(module.to_string()));
            }
            let mut conn = self.conn().await?;
            let fetched = if self.sql.persistent {
                query.fetch_all(&mut *conn).await
            } else {
                sqlx::raw_sql(AssertSqlSafe(sql_text))
                    .fetch_all(&mut *conn)
                    .await
            };
            let rows = match fetched {
                Ok(rows) => rows.iter().map(rows::history_row).collect(),
                Err(err) if DB::is_missing_table(&err) => Ok(Vec::new()),
                Err(err) => return Err(err.into()),
            };
            conn.keep();
            rows
        })
    }

    fn set_state<'a>(
        &'a self,
        module: &'a str,
        table: &'a str,
        version: Option<&'a str>,
        checksum: Option<&'a str>,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let values = Values::new()
                .text(Bind::Module, Some(module))
                .text(Bind::Table, Some(table))
                .text(Bind::NewVersion, version)
                .text(Bind::NewChecksum, checksum)
                .int(Bind::Now, Some(Timestamp::now().as_micros()));
            self.run_kept(&self.sql.state_set, &values).await
        })
    }

    fn set_step_checksum<'a>(
        &'a self,
        module: &'a str,
        table: &'a str,
        version: &'a str,
        checksum: &'a str,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let values = Values::new()
                .text(Bind::Module, Some(module))
                .text(Bind::Table, Some(table))
                .text(Bind::StepVersion, Some(version))
                .text(Bind::StepChecksum, Some(checksum));
            self.run_kept(std::slice::from_ref(&self.sql.set_step_checksum), &values)
                .await
        })
    }
}

#[cfg(all(test, feature = "postgres"))]
mod tests {
    use super::literal_sql;
    use crate::statements::{compile, Bind, Values};

    #[test]
    fn literals_never_reread_a_value_that_looks_like_a_placeholder() {
        let stmt = compile::<sqlx::Postgres>(
            "INSERT INTO h (module, error, started_at) VALUES ($(module), $(error), $(started_at))",
        );
        let values = Values::new()
            .text(Bind::Module, Some("it's"))
            .text(
                Bind::Error,
                Some("could not determine data type of parameter $1 or $3"),
            )
            .int(Bind::StartedAt, Some(7));
        assert_eq!(
            literal_sql::<sqlx::Postgres>(&stmt, &values),
            "INSERT INTO h (module, error, started_at) VALUES ('it''s', \
             'could not determine data type of parameter $1 or $3', 7)"
        );
    }
}
