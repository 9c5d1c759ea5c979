//! Transactional steps: the action and its tracking writes in one transaction. The state row
//! is moved by a compare-and-set in the same round trip as the history insert, so a runner that
//! planned from a stale state applies nothing and re-plans.

use super::{bound, end_step, micros, SqlxDb};
use crate::driver::{has_sqlstate, Driver};
use crate::raw::SqlxRaw;
use crate::statements::{Stmt, Values};
use migrate_core::backend::{StepOutcome, StepRecord, StepRun};
use migrate_core::conn::Conn;
use migrate_core::error::{Error, Result};
use migrate_core::step::Outcome;
use migrate_core::time::Timestamp;
use sqlx::{AssertSqlSafe, ColumnIndex, Decode, Encode, IntoArguments, Type};
use sqlx_core::sql_str::SqlSafeStr;
use sqlx_core::transaction::TransactionManager;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

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
    /// A transactional step: its action in a transaction (the one the previous step's commit
    /// began, or one begun now), then its tracking writes and the commit, either as one
    /// statement list ([`Statements::record_and_commit`]) or as prepared statements.
    pub(super) async fn run_transactional(&self, step: &StepRun<'_>) -> Result<StepOutcome> {
        // At most twice: a session that lost its record statement turns that way off, so the
        // second pass records the other way.
        loop {
            let acted = match self.act(step).await {
                Ok(acted) => acted,
                Err(over) => return over,
            };
            let has_version = step.record.expected.is_some();
            let session = self
                .session_record()
                .filter(|session| acted.conn.record_prepared(&session.name))
                .map(|session| session.run_for(has_version));
            let (list, literal) = match (session, self.sql.record_and_commit_for(has_version)) {
                (Some(run), _) => (run, true),
                (None, Some(list)) => (list, false),
                (None, None) => return self.record_with_prepared(step, acted).await,
            };
            match self.record_with_list(step, acted, list, literal).await? {
                Some(outcome) => return Ok(outcome),
                None => continue,
            }
        }
    }

    /// Whether no clone of this executor shares its kept connection.
    fn owns_kept_connection(&self) -> bool {
        std::sync::Arc::strong_count(&self.held) == 1
    }

    /// The statements prepared on the session for this executor's steps, when they may be used:
    /// prepared statements are kept (not behind a transaction-pooling proxy), and no clone
    /// shares the kept connection (the list begins the next step's transaction ahead).
    fn session_record(&self) -> Option<&crate::statements::SessionRecord> {
        let off = self.session_record_off.load(Ordering::Relaxed);
        match (
            self.sql.persistent && self.owns_kept_connection() && !off,
            &self.sql.record_session,
        ) {
            (true, Some(session)) => Some(session),
            _ => None,
        }
    }

    /// Prepares the session record on `conn` unless the session has it, outside any
    /// transaction (a `PREPARE` that failed would end one). Asked once per connection taken
    /// from the pool; the flag stays with the kept connection.
    async fn prepare_session_record(&self, conn: &mut crate::held::Held<'_, DB>) -> Result<()> {
        let Some(session) = self.session_record() else {
            return Ok(());
        };
        if conn.record_prepared(&session.name) {
            return Ok(());
        }
        let rows = sqlx::raw_sql(AssertSqlSafe(session.exists.clone()))
            .fetch_all(&mut **conn)
            .await?;
        let held: Vec<String> = rows
            .iter()
            .map(|row| sqlx::Row::try_get(row, 0))
            .collect::<sqlx::Result<_>>()?;
        let missing: Vec<&str> = session
            .prepare
            .iter()
            .filter(|(name, _)| !held.contains(name))
            .map(|(_, prepare)| prepare.as_str())
            .collect();
        if !missing.is_empty() {
            let prepared = sqlx::raw_sql(AssertSqlSafe(missing.join("; ")))
                .execute(&mut **conn)
                .await;
            match prepared {
                Ok(_) => {}
                // 42P05: the session has it after all (a proxy answered the check from another
                // server connection); the executor stops relying on sessions.
                Err(err) if has_sqlstate(&err, "42P05") => {
                    self.session_record_off.store(true, Ordering::Relaxed);
                    return Ok(());
                }
                Err(err) => return Err(err.into()),
            }
        }
        conn.set_record_prepared(Some(session.name.clone()));
        Ok(())
    }

    /// The tracking writes, the commit and the next step's `BEGIN` in one list. sqlx counts
    /// the transaction from its first `BEGIN` on; the list's `COMMIT; BEGIN` leaves it in one,
    /// so its count stays right. `None`: the list ran the session's record statement
    /// (`literal`), which the session no longer had; the step was rolled back, the session
    /// way is off for the executor, and the step is to run again.
    async fn record_with_list(
        &self,
        step: &StepRun<'_>,
        acted: Acted<'_, DB>,
        list: &Stmt,
        literal: bool,
    ) -> Result<Option<StepOutcome>> {
        let r = &step.record;
        let Acted {
            mut conn,
            values,
            done,
        } = acted;
        let recorded = if literal {
            let text = super::bound::literal_sql::<DB>(list, &values);
            sqlx::raw_sql(AssertSqlSafe(text)).execute(&mut *conn).await
        } else {
            bound::<DB>(list, &values, self.sql.persistent)
                .execute(&mut *conn)
                .await
        };
        let err = match recorded {
            Ok(_) => {
                conn.set_begun_ahead(true);
                conn.keep();
                return Ok(Some(done));
            }
            Err(err) => err,
        };
        // The session is asked again next time: it may have lost the statement.
        conn.set_record_prepared(None);
        let lost_statement = literal && has_sqlstate(&err, "26000");
        // Nothing after the failed statement ran. A rollback that works means the transaction
        // was still open: nothing of the step was kept.
        if end_step(conn).await {
            if lost_statement {
                // SQLSTATE 26000: a step deallocated it, or an unannounced transaction-pooling
                // proxy moved the session. Run the step again, recording the other way.
                tracing::warn!(error = %err, "the session lost its prepared record statement; the step runs again without it");
                self.session_record_off.store(true, Ordering::Relaxed);
                return Ok(None);
            }
            return if DB::is_lost_race(&err) {
                Ok(Some(StepOutcome::Raced))
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
            Ok(Some(done))
        } else {
            Err(err.into())
        }
    }

    /// The tracking writes as prepared statements, then the commit.
    async fn record_with_prepared(
        &self,
        step: &StepRun<'_>,
        acted: Acted<'_, DB>,
    ) -> Result<StepOutcome> {
        let Acted {
            mut conn,
            values,
            done,
        } = acted;
        let sql = &self.sql;
        let record = sql.record_for(step.record.expected.is_some());
        let recorded = Self::run_prepared(&mut conn, record, &values, sql.persistent).await;
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
        let ahead = self.owns_kept_connection() && self.held.is_vacant();
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
        let mut conn = self.conn().await?;
        self.prepare_session_record(&mut conn).await?;
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

    pub(super) async fn record_best_effort(&self, stmt: &Stmt, values: &Values) {
        let written = self.run_kept(std::slice::from_ref(stmt), values).await;
        if let Err(record_err) = written {
            tracing::warn!(error = %record_err, "could not record the failed step in the history");
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
