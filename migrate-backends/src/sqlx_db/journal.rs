//! Journalled steps (`transaction = false`, and every step on MySQL): a "started" history row
//! and a dirty mark are committed first, the step runs in autocommit, then "finished" is
//! committed. A crash or a failure in between leaves the mark, which blocks the table until it
//! is resolved.

use super::{affected_per_statement, literal_sql, micros, SqlxDb};
use crate::driver::Driver;
use crate::raw::SqlxRaw;
use crate::statements::Values;
use migrate_core::backend::{StepOutcome, StepRun};
use migrate_core::conn::Conn;
use migrate_core::error::{Error, Result};
use migrate_core::step::Outcome;
use migrate_core::time::Timestamp;
use sqlx::{ColumnIndex, Decode, Encode, IntoArguments, Type};
use std::time::Instant;

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
    /// Lets go of the connection a journalled step failed or refused on: closed, since the
    /// step may have left its session changed (`LOCK TABLES`, `USE`, `SET`, a pragma, a
    /// temporary table) for whoever takes it next; given back to the pool when closing it could
    /// end the database: an in-memory SQLite database lives as long as its connections (it has
    /// no file, so no lock file either), and a pool of one connection.
    fn retire(&self, conn: crate::held::Held<'_, DB>) {
        #[cfg(feature = "sqlite")]
        let in_memory =
            DB::DIALECT == migrate_core::dialect::Dialect::Sqlite && self.lock.file.is_none();
        #[cfg(not(feature = "sqlite"))]
        let in_memory = false;
        if in_memory || self.pool.options().get_max_connections() <= 1 {
            drop(conn);
        } else {
            conn.close();
        }
    }

    /// The values of the pending finish, taken.
    pub(super) fn take_pending(&self) -> Option<Values> {
        self.pending_finish
            .lock()
            .ok()
            .and_then(|mut slot| slot.take())
    }

    /// Sets a journalled step's dirty mark and "started" row (with the previous step's
    /// pending finish, in one transaction); `false` when another runner moved the table first.
    /// A `resumable` step run again (`resumes`) first takes away the mark it left when it was
    /// cut off, in the same transaction: the start's compare-and-set (no mark) then passes only
    /// if that mark was still there.
    async fn start_journal(
        &self,
        conn: &mut DB::Connection,
        values: &Values,
        row_exists: bool,
        resumes: bool,
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
            if resumes {
                text.push_str(&literal_sql::<DB>(&sql.clear_resumed, values));
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
        if resumes {
            let clear = std::slice::from_ref(&sql.clear_resumed);
            Self::run_prepared(&mut tx, clear, values, sql.persistent).await?;
        }
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
    /// comes next), else committed now. A step that `may_hold_a_transaction` (see
    /// `SqlxRaw::may_leave_a_transaction_open`) has its `journal_finish` committed now, on its
    /// own session, never sent on another.
    async fn finish_journal(
        &self,
        conn: &mut DB::Connection,
        values: Values,
        may_hold_a_transaction: bool,
    ) -> Result<()> {
        let sql = &self.sql;
        if let Some(finish) = &sql.journal_finish {
            if may_hold_a_transaction {
                return Self::send_journal_finish(conn, finish, &values).await;
            }
            if let Ok(mut slot) = self.pending_finish.lock() {
                *slot = Some(values);
                return Ok(());
            }
        }
        // Not sent again when it loses a deadlock, unlike MySQL's finish in `conn()`: a step
        // that returns with a transaction of its own still open has its writes committed by
        // this finish, and rolled back with it, so a finish sent again could record a step
        // whose writes are gone. The error leaves the step's mark, which names it.
        let mut tx = self.begin(conn).await?;
        Self::run_prepared(&mut tx, &sql.finish, &values, sql.persistent).await?;
        tx.commit().await?;
        Ok(())
    }

    pub(super) async fn run_journalled(&self, step: &StepRun<'_>) -> Result<StepOutcome> {
        let r = &step.record;
        let sql = &self.sql;
        let mut conn = self.plain_conn().await?;
        let started_at = Timestamp::now();
        let values = Values::step(r, Outcome::Started, started_at, None, None);
        // A recorded version means the state row exists: the compare-and-set checks it.
        let row_exists = r.expected.is_some();
        let resumes = r.resumes.is_some();
        if !self
            .start_journal(&mut conn, &values, row_exists, resumes)
            .await?
        {
            conn.keep();
            return Ok(StepOutcome::Raced);
        }
        let clock = Instant::now();
        // The step's own statements may open a transaction: dropped while it runs (a panic, a
        // cancelled run), the connection is closed, which rolls that back, instead of going
        // back to the pool with it open for the next user to commit.
        conn.set_open_transaction(true);
        let (result, may_hold_a_transaction) = {
            let mut raw = SqlxRaw::<DB>::new(&mut conn, &self.sql);
            let mut db =
                Conn::new(&mut raw, self.schema.as_deref()).with_table_names(step.table_names);
            let result = (step.action)(&mut db).await;
            (result, raw.may_leave_a_transaction_open())
        };
        let elapsed = clock.elapsed();
        let us = micros(elapsed);
        match result {
            Ok(()) => {
                let values = Values::step(r, Outcome::Succeeded, started_at, Some(us), None);
                // Still marked open: a finish that fails (a step that left a transaction of its
                // own open, where SQLite's `BEGIN` refuses to nest) drops the connection closed,
                // rolling that back, instead of giving it to the pool holding the write lock.
                self.finish_journal(&mut conn, values, may_hold_a_transaction)
                    .await
                    .map_err(|err| match err {
                        // The step ran: its finish waiting too long for the write lock is a
                        // failure of this step (its mark names it), not a run that never began.
                        Error::LockTimeout { .. } => {
                            Error::msg(format!("the step ran, but recording its end failed: {err}"))
                        }
                        err => err,
                    })?;
                conn.set_open_transaction(false);
                conn.keep();
                Ok(StepOutcome::Done {
                    started_at,
                    execution_time: elapsed,
                })
            }
            Err(err @ Error::Blocked { .. }) => {
                // A refusal comes before any change: the mark goes, the version stays.
                conn.set_open_transaction(false);
                Self::end_open_transaction(&mut conn).await;
                self.retire(conn);
                let message = err.to_string();
                let values =
                    Values::step(r, Outcome::Blocked, started_at, Some(us), Some(&message));
                if let Err(clear_err) = self.run_in_transaction(&sql.refuse, &values).await {
                    tracing::warn!(error = %clear_err, "could not clear the dirty mark of a step that refused");
                    // Not a clean refusal: the mark stays, and the next run will call the table
                    // dirty. Say so, and how to settle it (nothing of the step ran).
                    return Err(Error::msg(format!(
                        "{err}; its dirty mark could not be cleared ({clear_err}): nothing of the \
                         step ran, so resolve it as rolled back (`repair TABLE --rolled-back`, \
                         or resolve_dirty with Resolution::RolledBack), then run again"
                    )));
                }
                Err(err)
            }
            Err(err) => {
                // The dirty mark stays: what the step changed before failing is unknown.
                conn.set_open_transaction(false);
                Self::end_open_transaction(&mut conn).await;
                self.retire(conn);
                let message = err.to_string();
                let values = Values::step(r, Outcome::Failed, started_at, Some(us), Some(&message));
                self.record_best_effort(&sql.history_finish, &values).await;
                Err(err)
            }
        }
    }
}
