//! [`SqlxDb`]: the executor for every sqlx database, written once over [`Driver`].
//!
//! - [`transactional`]: steps that run in one transaction with their tracking writes;
//! - [`journal`]: steps that run outside a transaction, between a committed start and finish;
//! - [`mod@bound`]: statements with their values, prepared or written out;
//! - [`backend`]: the [`MigrationBackend`](migrate_core::backend::MigrationBackend) impl.
//!
//! This file holds the executor itself: its settings, its kept connection and the helpers
//! every kind of step uses.

mod backend;
mod bound;
pub(crate) mod deferred;
mod journal;
mod transactional;

pub(crate) use bound::{affected_per_statement, bound, literal_sql};

use crate::driver::{lost_session, Driver};
use crate::held::Slot;
use crate::statements::{Bind, Statements, Stmt, TrackingNames, Values, DEFAULT_TRACKING_TABLE};
use migrate_core::error::Error;
use migrate_core::error::Result;
use sqlx::{AssertSqlSafe, ColumnIndex, Connection, Decode, Encode, IntoArguments, Pool, Type};
use sqlx_core::transaction::TransactionManager;
#[cfg(feature = "sqlite")]
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How long a runner waits for another runner's lock, on every backend, unless
/// [`SqlxDb::with_lock_timeout`] says otherwise.
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(30);

/// How long `connect` keeps trying to open the first connection to a database server before it
/// gives up with [`Error::Unreachable`](migrate_core::error::Error::Unreachable).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The longest wait for a connection handed to sqlx, which adds it to an `Instant` (a
/// `Duration::MAX` there would overflow).
#[cfg(any(feature = "postgres", feature = "mysql"))]
const LONGEST_CONNECT_WAIT: Duration = Duration::from_secs(100 * 365 * 24 * 60 * 60);

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
    check_statement_identifier("tracking table", name, MAX_TRACKING_TABLE_BYTES)
}

/// Checks a caller-supplied schema name.
#[cfg(feature = "postgres")]
pub(crate) fn check_schema(name: &str) -> Result<()> {
    check_statement_identifier("schema", name, MAX_IDENTIFIER_BYTES)
}

pub(crate) use migrate_core::table_names::check_statement_identifier;

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
    /// A session lost the record statement prepared on it (PostgreSQL): an unannounced
    /// transaction-pooling proxy, or a step that deallocates. Steps record the other way from
    /// then on; shared by clones.
    pub(crate) session_record_off: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// This executor's last state read found no state table: `prepare` creates the tracking
    /// tables without asking the catalog first. Not shared: a clone may name other tables.
    pub(crate) tracking_missing: std::sync::atomic::AtomicBool,
    /// What this executor knows of its state table's fingerprint column (MySQL; see
    /// `fingerprint`). Not shared, like `tracking_missing`.
    pub(crate) fingerprint: crate::fingerprint::ColumnState,
    /// A step found that its commit may not ride on the next statement (see
    /// `deferred`): every later step commits on its own.
    pub(crate) commits_alone: std::sync::atomic::AtomicBool,
    /// A step whose commit was pending was rolled back where the manager could not be told
    /// (something else took the connection first, and the commit failed): the next answer
    /// says so.
    pub(crate) pending_lost: std::sync::atomic::AtomicBool,
    /// SQLite's wal-index, which tells whether the database changed without asking the
    /// connection (`wal_index`); `None` elsewhere, and where it could not be trusted. Shared
    /// by clones.
    #[cfg(feature = "sqlite")]
    pub(crate) wal_index: Option<Arc<crate::wal_index::WalIndex>>,
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
            session_record_off: self.session_record_off.clone(),
            tracking_missing: Default::default(),
            fingerprint: Default::default(),
            commits_alone: Default::default(),
            pending_lost: Default::default(),
            #[cfg(feature = "sqlite")]
            wal_index: self.wal_index.clone(),
        }
    }
}

impl<DB: Driver> SqlxDb<DB>
where
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
{
    /// The executor's connection outside any transaction: a transaction the previous step
    /// began ahead for a next step (not this call) is ended first, after committing the step
    /// whose commit waits in it (a caller of `run_step_commit_with_next` that did not
    /// call `commit_pending`, or a run that panicked).
    pub(crate) async fn plain_conn(&self) -> Result<crate::held::Held<'_, DB>> {
        let mut conn = self.held.take(&self.pool).await?;
        if let Some(pending) = conn.take_pending() {
            // Boxed, as every path a call seldom takes (see `conn`).
            let sent = Box::pin(deferred::send::<DB>(&mut conn, &pending, None)).await;
            if let (false, Err(err)) = (matches!(sent.fate, deferred::Fate::Committed), sent.result)
            {
                // Rolled back: the connection is closed with its transaction.
                self.pending_lost
                    .store(true, std::sync::atomic::Ordering::Relaxed);
                return Err(Error::msg(format!(
                    "the step of table {} that ran last did not commit: {err}",
                    pending.table
                )));
            }
        }
        if conn.begun_ahead() {
            if Box::pin(step_rollback::<DB>(&mut conn)).await {
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
            session_record_off: Default::default(),
            tracking_missing: Default::default(),
            fingerprint: Default::default(),
            commits_alone: Default::default(),
            pending_lost: Default::default(),
            #[cfg(feature = "sqlite")]
            wal_index: None,
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
        self.fingerprint = Default::default();
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
            // The pool tests an idle connection before handing it out (sqlx's default): a
            // session the server ended while it sat idle (a restart, an idle timeout, `KILL`)
            // is closed and replaced, not handed to a run lock. The kept connection (see
            // `held`) skips the pool, and with it the test, on every call.
            let pool = sqlx::pool::PoolOptions::<DB>::new()
                .max_connections(connections.max(2))
                // sqlx adds the timeout to an `Instant`: "for ever" is a century.
                .acquire_timeout(timeout.min(LONGEST_CONNECT_WAIT))
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
            // The connection `connect` just opened and tested, taken without a second test.
            let opened = match db.pool.try_acquire() {
                Some(conn) => conn,
                None => db.pool.acquire().await?,
            };
            db.held.put(opened);
            Ok::<_, Error>(db)
        };
        connected
            .await
            .map_err(|e| crate::url::redact_password(e, url))
    }

    /// `from_pool` on a server: the check-out of the connection the first call uses begun
    /// (the pool's test, a ping, sent), where the pool allows it
    /// ([`Slot::put_check_out`](crate::held::Slot::put_check_out)). The first call takes the
    /// answer instead of waiting a round trip for it.
    #[cfg(any(feature = "postgres", feature = "mysql"))]
    pub(crate) fn begin_check_out(self) -> Self {
        self.held.put_check_out(&self.pool, || {
            let pool = self.pool.clone();
            Box::pin(async move { Ok((pool.acquire().await?, None)) })
        });
        self
    }

    /// The pool, for the application's own queries.
    pub fn pool(&self) -> &Pool<DB> {
        &self.pool
    }

    /// Closes the pool. The connection the executor keeps between calls goes back first, so
    /// closing never waits for it (on SQLite, a state read started when the executor
    /// connected and still running ends first: microseconds, unless SQLite waits for a lock).
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
        #[cfg(feature = "sqlite")]
        if let Some(busy) = &self.lock.busy_ms {
            let ms = crate::sqlite::millis(timeout);
            let had = busy.load(Ordering::Relaxed);
            // The connections have it already: they opened with it and none was told another
            // since (every change goes through here), or it is the one they were told last
            // (by this executor or a clone sharing `busy_ms`).
            let unchanged = timeout == self.lock.timeout;
            if !((unchanged && had == crate::sqlite::BUSY_AS_OPENED) || had == ms) {
                busy.store(ms, Ordering::Relaxed);
                // The kept connection has the old timeout: the next call takes a fresh one. A
                // state read started at connect keeps it, and sets the new timeout when it
                // ends.
                self.held.clear_unless_reading();
            }
        }
        self.lock.timeout = timeout;
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

    /// Creates the tracking tables' schema if missing (PostgreSQL): `CREATE SCHEMA IF NOT
    /// EXISTS` needs the database's CREATE right even when the schema exists, which a tenant's
    /// role often lacks, so the catalog is asked first, in one simple query (no statement to
    /// prepare, which a transaction-pooling proxy could lose between its two exchanges).
    pub(crate) async fn ensure_schema(&self, conn: &mut DB::Connection) -> Result<()> {
        let (Some(create), Some(exists)) = (&self.sql.create_schema, &self.sql.schema_exists)
        else {
            return Ok(());
        };
        let values = Values::new().text(Bind::Schema, self.schema.as_deref());
        let exists = literal_sql::<DB>(exists, &values);
        let found = sqlx::raw_sql(AssertSqlSafe(exists.clone()))
            .fetch_optional(&mut *conn)
            .await?;
        if found.is_some() {
            return Ok(());
        }
        let created = sqlx::raw_sql(AssertSqlSafe(create.clone()))
            .execute(&mut *conn)
            .await;
        if let Err(err) = created {
            // `IF NOT EXISTS` is not race-free: a runner that created the schema between the
            // two statements makes this one fail on the catalog's unique index. The schema
            // being there is all that was asked.
            let found = sqlx::raw_sql(AssertSqlSafe(exists))
                .fetch_optional(&mut *conn)
                .await?;
            if found.is_none() {
                return Err(err.into());
            }
            tracing::debug!(error = %err, "another runner created the schema first");
        }
        Ok(())
    }

    /// Creates the tracking tables known to be missing (the last state read found no state
    /// table), after their schema, each with a plain `CREATE TABLE`
    /// ([`Statements::create_new`]). `false` as soon as one fails: it exists after all, or the
    /// role may not create tables there (which PostgreSQL and MySQL check first), and the
    /// caller asks the catalog.
    pub(crate) async fn create_new_tables(&self, conn: &mut DB::Connection) -> Result<bool> {
        self.ensure_schema(conn).await?;
        for statement in self.sql.create_new() {
            if let Err(err) = sqlx::raw_sql(AssertSqlSafe(statement))
                .execute(&mut *conn)
                .await
            {
                tracing::debug!(error = %err, "a tracking table thought missing was not created; asking the catalog");
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Creates the tracking tables that are missing, after their schema; an error names the
    /// tracking tables and where they were being created.
    pub(crate) async fn create_missing_tables(&self, conn: &mut DB::Connection) -> Result<()> {
        self.ensure_schema(conn).await?;
        for statement in &self.sql.create {
            sqlx::raw_sql(AssertSqlSafe(statement.clone()))
                .execute(&mut *conn)
                .await
                .map_err(|err| match DB::lock_error(err, self.lock.timeout) {
                    // The driver's message (`permission denied for schema public`) does not
                    // say which tables were being created, or where.
                    Error::Database(db) => Error::Database(db.context(format_args!(
                        "creating the tracking tables on {}",
                        migrate_core::backend::MigrationBackend::describe(self)
                    ))),
                    other => other,
                })?;
        }
        Ok(())
    }

    /// Whether `table` (and `column`) exist, asked of the catalog with bound names.
    async fn in_catalog(
        &self,
        conn: &mut DB::Connection,
        table: &str,
        column: Option<&str>,
    ) -> Result<bool> {
        let sql = if column.is_some() {
            &self.sql.column_exists
        } else {
            &self.sql.table_exists
        };
        self.catalog_has(conn, sql, table, column).await
    }

    /// Whether the catalog query `sql` (binding the schema, `table` and `column`) finds a row.
    pub(crate) async fn catalog_has(
        &self,
        conn: &mut DB::Connection,
        sql: &Stmt,
        table: &str,
        column: Option<&str>,
    ) -> Result<bool> {
        let values = Values::new()
            .text(Bind::Schema, self.schema.as_deref())
            .text(Bind::Table, Some(table))
            .text(Bind::Column, column);
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

    /// Refuses, before waiting for it, a run lock that needs a connection of its own from a
    /// pool of one (a pool passed in with `from_pool`): the executor keeps the pool's only
    /// connection after its state read, and the lock would wait the pool's acquire timeout for
    /// a second, then fail with a pool error that names neither.
    #[cfg_attr(not(any(feature = "postgres", feature = "mysql")), allow(dead_code))]
    pub(crate) fn lock_has_a_connection(&self) -> Result<()> {
        let max = self.pool.options().get_max_connections();
        if max < 2 {
            return Err(Error::Config(format!(
                "the pool passed in holds at most {max} connection: the run lock keeps one for \
                 the whole run and the steps need another; give the pool max_connections(2) or \
                 more"
            )));
        }
        Ok(())
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

    /// The executor's connection, after committing a journalled step's pending finish, so
    /// that nothing reads or writes the tracking tables with that step still marked dirty.
    ///
    /// The pending values are taken first: if the finish cannot be committed now, it is dropped,
    /// and the step stays marked dirty (settled with `repair`) rather than being committed
    /// later, outside the run lock. "Now" includes one more connection: when the finish fails
    /// because the session of a connection handed out untested had ended (the kept one, after
    /// the server restarted or timed it out while the executor was idle), that connection is
    /// closed and the finish is sent once more on another (the executor's pools test the ones
    /// they hand out). The state move matches only its own step's mark (version, direction and
    /// time) and the history row only its own "started" row, so if the first send committed
    /// and only its answer was lost, the second changes nothing. If the second fails too, the
    /// finish is dropped as above.
    pub(crate) async fn conn(&self) -> Result<crate::held::Held<'_, DB>> {
        let pending = self.take_pending();
        let mut conn = self.plain_conn().await?;
        if let (Some(finish), Some(values)) = (&self.sql.journal_finish, pending) {
            // A write through this connection: a state read kept with it is out of date.
            drop(conn.take_state_cache());
            // Boxed, as every path a call seldom takes: the future of `conn` is part of every
            // call's future, which is allocated and moved whole on every call.
            if let Err(err) = Box::pin(Self::send_journal_finish(&mut conn, finish, &values)).await
            {
                if !(conn.untested() && lost_session::<DB>(&err)) {
                    return Err(unrecorded_finish(err, &values));
                }
                tracing::debug!(error = %err, "a journalled step's finish met an ended session; sending it again on another connection");
                conn.close();
                conn = self
                    .plain_conn()
                    .await
                    .map_err(|err| unrecorded_finish(err, &values))?;
                drop(conn.take_state_cache());
                Box::pin(Self::send_journal_finish(&mut conn, finish, &values))
                    .await
                    .map_err(|err| unrecorded_finish(err, &values))?;
            }
        }
        Ok(conn)
    }

    /// Commits a journalled step's finish (`finish` with `values`) on `conn`, sent again (at
    /// most [`FINISH_ATTEMPTS`] times in all) while the database picks it as a deadlock's
    /// victim; any other error is returned at once.
    async fn send_journal_finish(
        conn: &mut DB::Connection,
        finish: &Stmt,
        values: &Values,
    ) -> Result<()> {
        let text = format!(
            "START TRANSACTION; {}; COMMIT",
            literal_sql::<DB>(finish, values)
        );
        let mut attempt = 1;
        while let Err(err) = sqlx::raw_sql(AssertSqlSafe(text.clone()))
            .execute(&mut *conn)
            .await
        {
            Self::end_open_transaction(conn).await;
            // A deadlock's victim was rolled back whole: the finish is sent again (its mark
            // guards it), rather than leaving a step that succeeded marked dirty. The step's
            // own writes are not in it: `START TRANSACTION` committed any transaction the
            // step left open, and the step returned before its finish was left pending.
            if !DB::is_lost_race(&err) || attempt == FINISH_ATTEMPTS {
                return Err(err.into());
            }
            tracing::debug!(error = %err, attempt, "a journalled step's finish lost a deadlock; sending it again");
            attempt += 1;
        }
        Ok(())
    }
}

/// How many times a journalled step's pending finish is sent when the database keeps picking
/// it as a deadlock's victim.
const FINISH_ATTEMPTS: u32 = 3;

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

pub(crate) fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

/// `err`, from a journalled step's finish (its `values`) that could not be committed, saying so
/// and naming the step: the call that sent it first fails with it (any call, a state read or a
/// listing), and the step stays marked until `repair` settles it.
fn unrecorded_finish(err: Error, values: &Values) -> Error {
    use crate::statements::Bind;
    let step = format!(
        "{}:{}@{}",
        values.text_of(Bind::Module).unwrap_or("?"),
        values.text_of(Bind::Table).unwrap_or("?"),
        values.text_of(Bind::StepVersion).unwrap_or("?"),
    );
    match err {
        Error::Database(driver) => Error::Database(driver.context(format!(
            "the finish of the last journalled step, {step}, could not be recorded (the step \
             stays marked dirty; `repair` settles it)"
        ))),
        other => other,
    }
}
