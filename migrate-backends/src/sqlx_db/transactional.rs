//! Transactional steps: the action and its tracking writes in one transaction. The state row
//! is moved by a compare-and-set in the same round trip as the history insert, so a runner that
//! planned from a stale state applies nothing and re-plans.

use super::deferred::{self, Cause, Fate, PendingRecord, Riding};
use super::{bound, end_step, micros, SqlxDb};
use crate::driver::{has_sqlstate, Driver};
use crate::raw::SqlxRaw;
use crate::statements::{Stmt, Values};
use migrate_core::backend::{StepAfterPending, StepOutcome, StepRun};
use migrate_core::conn::Conn;
use migrate_core::error::{Error, Result};
use migrate_core::future::catch_unwind;
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
    /// A step after whatever the step before it left pending: that step's commit is settled
    /// first where this step cannot carry it. `commit_with_next`: this step's commit may be
    /// left to ride on the next statement (see `deferred`).
    pub(super) async fn step_after_pending(
        &self,
        step: &StepRun<'_>,
        commit_with_next: bool,
    ) -> Result<StepAfterPending> {
        // The step before did not commit where nobody could be told (see `plain_conn`).
        if self.pending_lost.swap(false, Ordering::Relaxed) {
            return Ok(StepAfterPending::PreviousRolledBack);
        }
        if step.transactional && DB::BEGIN.is_some() {
            return self.run_transactional(step, commit_with_next).await;
        }
        // A journalled step runs outside a transaction: the step before it commits first, on
        // its own.
        match self.commit_pending_step().await {
            Ok(true) => {}
            Ok(false) => return Ok(StepAfterPending::PreviousRolledBack),
            Err(err) => {
                tracing::warn!(error = %err, "the step before did not commit; re-planning");
                return Ok(StepAfterPending::PreviousRolledBack);
            }
        }
        self.run_journalled(step).await.map(StepAfterPending::Ran)
    }

    /// A transactional step: its action in a transaction (the one the previous step's commit
    /// began, or one begun now), then its tracking writes and the commit, either as one
    /// statement list ([`Statements::record_and_commit`]) or as prepared statements.
    /// `commit_with_next`: the step's commit may be left to ride on the next statement (see
    /// `deferred`).
    pub(super) async fn run_transactional(
        &self,
        step: &StepRun<'_>,
        commit_with_next: bool,
    ) -> Result<StepAfterPending> {
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
                (None, None) => {
                    return self
                        .record_with_prepared(step, acted)
                        .await
                        .map(StepAfterPending::Ran)
                }
            };
            if commit_with_next && self.defers_commits() {
                return Ok(StepAfterPending::Ran(Self::leave_pending(
                    step, acted, list,
                )));
            }
            match self.record_with_list(step, acted, list, literal).await? {
                Some(outcome) => return Ok(StepAfterPending::Ran(outcome)),
                None => continue,
            }
        }
    }

    /// Commits the step whose commit waits on the kept connection, alone (after the run's
    /// last step). `Ok(false)`: it was rolled back and is to be planned again (another runner
    /// moved its table first, its session lost the record statement, or it was lost where
    /// nobody could be told: `pending_lost`).
    pub(super) async fn commit_pending_step(&self) -> Result<bool> {
        if self.pending_lost.swap(false, Ordering::Relaxed) {
            return Ok(false);
        }
        if !self.held.has_pending() {
            return Ok(true);
        }
        let mut conn = self.held.take(&self.pool).await?;
        let Some(pending) = conn.take_pending() else {
            conn.keep();
            return Ok(true);
        };
        let sent = deferred::send::<DB>(&mut conn, &pending, None).await;
        match sent.fate {
            // Its BEGIN opened a transaction ahead, which the run's end closes; if the BEGIN
            // failed, the connection is closed (sqlx counts a transaction that is not there).
            Fate::Committed => {
                if !sent.begin_failed {
                    conn.keep();
                }
                Ok(true)
            }
            Fate::RolledBack(cause) => {
                end_step(conn).await;
                match (self.after_lost_commit(cause, &sent.result), sent.result) {
                    (false, Err(err)) => Err(err.into()),
                    _ => Ok(false),
                }
            }
            Fate::Unknown => {
                drop(conn);
                let stored = self.stored_version(&pending.module, &pending.table).await;
                match sent.result {
                    _ if stored.is_some_and(|v| v == pending.new_version) => Ok(true),
                    Err(err) => Err(err.into()),
                    Ok(_) => Ok(true),
                }
            }
        }
    }

    /// What a pending step that did not commit for `cause` changes for the steps after it.
    /// `true`: it simply runs again (planned anew); `false`: the database refused its commit,
    /// and from now on every step commits on its own, so a lasting error is the step's own.
    fn after_lost_commit<E: std::fmt::Display>(
        &self,
        cause: Cause,
        error: &std::result::Result<u64, E>,
    ) -> bool {
        let error = error
            .as_ref()
            .err()
            .map(ToString::to_string)
            .unwrap_or_default();
        match cause {
            Cause::Race => true,
            Cause::LostStatement => {
                tracing::warn!(error = %error, "the session lost its prepared record statement; the step runs again without it");
                self.session_record_off.store(true, Ordering::Relaxed);
                true
            }
            Cause::Refused => {
                tracing::warn!(error = %error, "a step's commit failed; it runs again, committed on its own");
                self.commits_alone.store(true, Ordering::Relaxed);
                false
            }
            Cause::NextUnparsed => {
                tracing::info!(error = %error, "the next step's SQL did not parse, which PostgreSQL finds before running the step before's commit sent with it; both run again, each committed on its own");
                self.commits_alone.store(true, Ordering::Relaxed);
                false
            }
        }
    }

    /// Whether a step's commit may ride on the next statement: no clone shares the kept
    /// connection (its next user must be this executor's next step), the slot is free for the
    /// step's connection to go back to (another task using the executor meanwhile may have
    /// filled it, and a connection that finds it full is closed, which would roll the step
    /// back), and no step of this executor has found that it may not (see `act`).
    fn defers_commits(&self) -> bool {
        !self.commits_alone.load(Ordering::Relaxed)
            && self.owns_kept_connection()
            && self.held.is_vacant()
    }

    /// Leaves the step's tracking writes and commit (`list`, values written in) in its open
    /// transaction, for the connection's next statement to carry (see `deferred`).
    fn leave_pending(step: &StepRun<'_>, acted: Acted<'_, DB>, list: &Stmt) -> StepOutcome {
        let Acted {
            mut conn,
            values,
            done,
        } = acted;
        let r = &step.record;
        conn.set_pending(PendingRecord {
            text: super::bound::literal_sql::<DB>(list, &values),
            statements: list.statements,
            module: r.module.to_string(),
            table: r.table.to_string(),
            new_version: r.new_version.map(str::to_string),
        });
        conn.keep();
        done
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
        let stored = self.stored_version(r.module, r.table).await;
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

    /// The first half of a transactional step: its transaction open, its action run in it,
    /// carrying the previous step's pending commit on its first statement (see `deferred`).
    /// `Err` is the step's end: the action failed (rolled back, and recorded unless another
    /// runner moved the table), the transaction could not begin, or the step before it did not
    /// commit (`PreviousRolledBack`).
    async fn act(
        &self,
        step: &StepRun<'_>,
    ) -> std::result::Result<Acted<'_, DB>, Result<StepAfterPending>> {
        let mut conn = self.step_conn().await.map_err(Err)?;
        let riding = conn.take_pending().map_or(Riding::Nothing, Riding::Waiting);
        let started_at = Timestamp::now();
        let clock = Instant::now();
        let (result, riding) = {
            let mut raw = SqlxRaw::<DB>::new(&mut conn, &self.sql).with_riding(riding);
            let result = {
                let mut db = Conn::new(&mut raw, self.schema.as_deref())
                    .with_table_names(step.table_names)
                    .with_transaction(true);
                catch_unwind((step.action)(&mut db)).await
            };
            // The action sent nothing, or panicked before its first statement: the previous
            // step's commit goes alone now (what it says is in `riding`; this step's own
            // statements, if any, go with the connection after a panic).
            let _ = raw.settle().await;
            (result, raw.into_riding())
        };
        let elapsed = clock.elapsed();
        let result = result.unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        if !riding.is_settled() {
            return Err(self.unsettled(step, conn, riding, result).await);
        }
        if let Err(err) = result {
            end_step(conn).await;
            let failed = self.after_failure(step, started_at, elapsed, err).await;
            return Err(failed.map(StepAfterPending::Ran));
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

    /// The end of a step whose transaction went with the previous step's pending commit:
    /// that step did not commit (or the connection was lost before saying so), the typed
    /// connection was handed out ahead of it, or its commit began no transaction for this
    /// step. `result` is the step's action's.
    async fn unsettled(
        &self,
        step: &StepRun<'_>,
        conn: crate::held::Held<'_, DB>,
        riding: Riding,
        result: Result<()>,
    ) -> Result<StepAfterPending> {
        let reason = result.err().map(|err| err.to_string()).unwrap_or_default();
        match riding {
            Riding::BeginFailed(err) => {
                // The step before committed; this one never began. The connection is closed
                // (sqlx still counts the transaction the BEGIN would have opened).
                drop(conn);
                Err(DB::lock_error(err, self.lock.timeout))
            }
            Riding::Sent {
                pending,
                fate: Fate::Unknown,
            } => {
                drop(conn);
                let stored = self.stored_version(&pending.module, &pending.table).await;
                if stored.is_some_and(|v| v == pending.new_version) {
                    // It committed: the connection went during this step.
                    let err = Error::msg(format!("the connection was lost: {reason}"));
                    let started_at = Timestamp::now();
                    let failed = self.after_failure(step, started_at, Duration::ZERO, err);
                    return failed.await.map(StepAfterPending::Ran);
                }
                tracing::warn!(error = %reason, "the connection was lost before the step before this one committed; re-planning");
                Ok(StepAfterPending::PreviousRolledBack)
            }
            Riding::Sent {
                fate: Fate::RolledBack(cause),
                ..
            } => {
                end_step(conn).await;
                self.after_lost_commit(cause, &Err::<u64, _>(reason));
                Ok(StepAfterPending::PreviousRolledBack)
            }
            _ => {
                // `Mixed`: the step used the typed connection before the previous step's
                // commit was sent, so its statements may share that step's transaction.
                end_step(conn).await;
                self.commits_alone.store(true, Ordering::Relaxed);
                tracing::info!("a step used the typed connection while the step before it waited for its commit; both run again, each committed on its own from now on");
                Ok(StepAfterPending::PreviousRolledBack)
            }
        }
    }

    /// The version the state row of `module`'s `table` holds now (`Some(None)`: none, or no row);
    /// `None` when it cannot be read.
    async fn stored_version(&self, module: &str, table: &str) -> Option<Option<String>> {
        let rows = self.read_state_rows().await.ok()?;
        Some(
            rows.iter()
                .find(|row| row.module == module && row.table == table)
                .and_then(|row| row.version.clone()),
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
        let stored = self.stored_version(r.module, r.table).await;
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
