//! The SQLite executor.
//!
//! - **Lock:** every step runs in `BEGIN IMMEDIATE`, which takes SQLite's write lock; the busy
//!   timeout bounds the wait. The state row is moved with a compare-and-set inside that
//!   transaction, so of two runners that planned the same step, one applies it and the other
//!   re-plans: every step is applied exactly once, and no lock can be left behind by a crash.
//! - **Transactions:** a step, its state row and its history row commit together.
//!   `transaction = false` steps are journalled: "started" (and a dirty mark) commits first, the
//!   step runs in autocommit, then "finished" commits. A crash in between leaves the mark.

mod raw;

use crate::rows;
use crate::tracking::{check_identifier, TrackingSql, DEFAULT_TRACKING_TABLE};
use migrate_core::{
    BoxFuture, Conn, Dialect, Error, Executor, HistoryEntry, NoLock, Outcome, Result, RunLock,
    StateRow, StepOutcome, StepRun, Timestamp,
};
use raw::SqliteRaw;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{AssertSqlSafe, Connection, SqliteConnection, SqlitePool};
use std::path::Path;
use std::str::FromStr;
use std::time::{Duration, Instant};

/// How long a runner waits for SQLite's write lock by default.
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(5);

/// A SQLite database that migrations run on.
///
/// ```no_run
/// # async fn demo() -> migrate_core::Result<()> {
/// let db = migrate_backends::sqlite::SqliteDb::open("app.db").await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct SqliteDb {
    pool: SqlitePool,
    sql: TrackingSql,
    lock_timeout: Duration,
}

impl SqliteDb {
    /// Opens (creating if missing) the database file at `path`, in WAL mode with
    /// `synchronous = NORMAL` and a busy timeout of [`DEFAULT_LOCK_TIMEOUT`].
    pub async fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_with_timeout(path, DEFAULT_LOCK_TIMEOUT).await
    }

    /// Like [`open`](Self::open), waiting at most `lock_timeout` for another runner's write lock.
    pub async fn open_with_timeout(path: impl AsRef<Path>, lock_timeout: Duration) -> Result<Self> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(lock_timeout);
        Self::connect_with(options, lock_timeout).await
    }

    /// Connects with a sqlx SQLite URL, such as `sqlite://app.db?mode=rwc`.
    pub async fn connect(url: &str) -> Result<Self> {
        let options = SqliteConnectOptions::from_str(url)?.busy_timeout(DEFAULT_LOCK_TIMEOUT);
        Self::connect_with(options, DEFAULT_LOCK_TIMEOUT).await
    }

    async fn connect_with(options: SqliteConnectOptions, lock_timeout: Duration) -> Result<Self> {
        let pool = SqlitePoolOptions::new()
            .max_connections(2)
            .test_before_acquire(false)
            .connect_with(options)
            .await?;
        Ok(SqliteDb {
            pool,
            sql: TrackingSql::new(Dialect::Sqlite, None, DEFAULT_TRACKING_TABLE),
            lock_timeout,
        })
    }

    /// Runs migrations on an existing pool. Its busy timeout bounds the wait for the write lock.
    pub fn from_pool(pool: SqlitePool) -> Self {
        SqliteDb {
            pool,
            sql: TrackingSql::new(Dialect::Sqlite, None, DEFAULT_TRACKING_TABLE),
            lock_timeout: DEFAULT_LOCK_TIMEOUT,
        }
    }

    /// Uses `name` (and `name_history`) as the tracking tables instead of
    /// [`DEFAULT_TRACKING_TABLE`].
    pub fn with_tracking_table(mut self, name: &str) -> Result<Self> {
        check_identifier("tracking table", name)?;
        self.sql = TrackingSql::new(Dialect::Sqlite, None, name);
        Ok(self)
    }

    /// The pool, for the application's own queries.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Closes the pool.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    async fn begin_immediate<'c>(
        &self,
        conn: &'c mut SqliteConnection,
    ) -> Result<sqlx::Transaction<'c, sqlx::Sqlite>> {
        conn.begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(|e| self.lock_error(e))
    }

    fn lock_error(&self, err: sqlx::Error) -> Error {
        // SQLITE_BUSY (5) and SQLITE_LOCKED (6), in their extended forms too.
        let busy = err
            .as_database_error()
            .and_then(|d| d.code())
            .and_then(|c| c.parse::<i32>().ok())
            .is_some_and(|c| matches!(c & 0xff, 5 | 6));
        if busy {
            Error::LockTimeout {
                waited: self.lock_timeout,
                holder: Some("another connection holding the SQLite write lock".to_string()),
            }
        } else {
            err.into()
        }
    }

    async fn run_transactional(&self, step: &StepRun<'_>) -> Result<StepOutcome> {
        let r = &step.record;
        let mut conn = self.pool.acquire().await?;
        let started_at = Timestamp::now();
        let mut tx = self.begin_immediate(&mut conn).await?;
        let clock = Instant::now();
        let result = {
            let mut raw = SqliteRaw(&mut tx);
            let mut db = Conn::new(&mut raw, None);
            (step.action)(&mut db).await
        };
        let elapsed = clock.elapsed();
        match result {
            Ok(()) => {
                let us = micros(elapsed);
                let sql = format!(
                    "{};\n{}",
                    self.sql
                        .state_cas(r, r.new_version, r.new_checksum, None, Timestamp::now()),
                    self.sql
                        .history_insert(r, Outcome::Succeeded, started_at, Some(us), None)
                );
                let written = sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut *tx).await?;
                if written.rows_affected() < 2 {
                    tx.rollback().await?;
                    return Ok(StepOutcome::Raced);
                }
                tx.commit().await?;
                Ok(StepOutcome::Done {
                    started_at,
                    execution_time: elapsed,
                })
            }
            Err(err) => {
                tx.rollback().await?;
                drop(conn);
                self.after_failure(step, started_at, elapsed, err).await
            }
        }
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
        let moved = self.read_state_rows().await.is_ok_and(|rows| {
            rows.iter()
                .find(|row| row.module == r.module && row.table == r.table)
                .map(|row| row.version.as_deref())
                .unwrap_or(None)
                != r.expected
        });
        if moved {
            return Ok(StepOutcome::Raced);
        }
        let sql = self.sql.history_insert(
            r,
            Outcome::Failed,
            started_at,
            Some(micros(elapsed)),
            Some(&err.to_string()),
        );
        if let Err(record_err) = sqlx::raw_sql(AssertSqlSafe(sql)).execute(&self.pool).await {
            tracing::warn!(error = %record_err, "could not record the failed step in the history");
        }
        Err(err)
    }

    async fn run_journalled(&self, step: &StepRun<'_>) -> Result<StepOutcome> {
        let r = &step.record;
        let mut conn = self.pool.acquire().await?;
        let started_at = Timestamp::now();
        {
            let mut tx = self.begin_immediate(&mut conn).await?;
            let sql = format!(
                "{};\n{}",
                self.sql
                    .state_cas(r, r.expected, None, Some(started_at), started_at),
                self.sql
                    .history_insert(r, Outcome::Started, started_at, None, None)
            );
            let written = sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut *tx).await?;
            if written.rows_affected() < 2 {
                tx.rollback().await?;
                return Ok(StepOutcome::Raced);
            }
            tx.commit().await?;
        }
        let clock = Instant::now();
        let result = {
            let mut raw = SqliteRaw(&mut conn);
            let mut db = Conn::new(&mut raw, None);
            (step.action)(&mut db).await
        };
        let elapsed = clock.elapsed();
        let us = micros(elapsed);
        match result {
            Ok(()) => {
                let mut tx = self.begin_immediate(&mut conn).await?;
                let sql = format!(
                    "{};\n{}",
                    self.sql.state_finish(r, Timestamp::now()),
                    self.sql
                        .history_finish(r, Outcome::Succeeded, started_at, us, None)
                );
                sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut *tx).await?;
                tx.commit().await?;
                Ok(StepOutcome::Done {
                    started_at,
                    execution_time: elapsed,
                })
            }
            Err(err) => {
                // The dirty mark stays: what the step changed before failing is unknown.
                let sql = self.sql.history_finish(
                    r,
                    Outcome::Failed,
                    started_at,
                    us,
                    Some(&err.to_string()),
                );
                if let Err(record_err) = sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut *conn).await
                {
                    tracing::warn!(error = %record_err, "could not record the failed step in the history");
                }
                Err(err)
            }
        }
    }

    async fn read_state_rows(&self) -> Result<Vec<StateRow>> {
        match sqlx::query(AssertSqlSafe(self.sql.read_state.clone()))
            .fetch_all(&self.pool)
            .await
        {
            Ok(rows) => rows.iter().map(rows::state_row).collect(),
            Err(err) if is_missing_table(&err) => Ok(Vec::new()),
            Err(err) => Err(err.into()),
        }
    }
}

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

fn is_missing_table(err: &sqlx::Error) -> bool {
    err.as_database_error()
        .is_some_and(|d| d.message().contains("no such table"))
}

impl Executor for SqliteDb {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    fn read_state(&self) -> BoxFuture<'_, Result<Vec<StateRow>>> {
        Box::pin(self.read_state_rows())
    }

    fn prepare(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            sqlx::raw_sql(AssertSqlSafe(self.sql.create.clone()))
                .execute(&self.pool)
                .await
                .map_err(|e| self.lock_error(e))?;
            Ok(())
        })
    }

    fn lock(&self) -> BoxFuture<'_, Result<Box<dyn RunLock>>> {
        // Each step takes the write lock with BEGIN IMMEDIATE; see the module docs.
        Box::pin(async { Ok(Box::new(NoLock) as Box<dyn RunLock>) })
    }

    fn run_step<'a>(&'a self, step: &'a StepRun<'a>) -> BoxFuture<'a, Result<StepOutcome>> {
        Box::pin(async move {
            if step.transactional {
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
            let sql = self.sql.history_select(modules, limit);
            match sqlx::raw_sql(AssertSqlSafe(sql))
                .fetch_all(&self.pool)
                .await
            {
                Ok(rows) => rows.iter().map(rows::history_row).collect(),
                Err(err) if is_missing_table(&err) => Ok(Vec::new()),
                Err(err) => Err(err.into()),
            }
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
            let sql = self
                .sql
                .state_set(module, table, version, checksum, Timestamp::now());
            sqlx::raw_sql(AssertSqlSafe(sql))
                .execute(&self.pool)
                .await?;
            Ok(())
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
            let sql = self.sql.set_step_checksum(module, table, version, checksum);
            sqlx::raw_sql(AssertSqlSafe(sql))
                .execute(&self.pool)
                .await?;
            Ok(())
        })
    }
}
