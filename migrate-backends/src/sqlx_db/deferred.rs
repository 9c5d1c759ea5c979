//! A transactional step's commit riding on the next statement
//! ([`MigrationBackend::run_step_commit_with_next`](migrate_core::backend::MigrationBackend::run_step_commit_with_next)).
//!
//! A step's tracking writes, its `COMMIT` and the next step's `BEGIN` are one list (SQLite's
//! `record_and_commit`, PostgreSQL's session record). Sent alone once the step's action is done,
//! the list costs a round trip of its own (on SQLite, a hand-off to the driver's thread). Left
//! with the connection instead, still inside the step's transaction, it is sent in front of the
//! next step's first statement: one round trip per step where there were two.
//!
//! The database answers each statement of the exchange in order, and the first error ends it.
//! An answer for the list's `COMMIT` means the step committed; an error before it means it did
//! not, and the transaction (the step, and nothing of the next one) is rolled back. When the
//! connection is lost before an answer says which, the state row tells.

use crate::driver::{has_sqlstate, Driver};
use sqlx::AssertSqlSafe;

/// A step that ran, its tracking writes and commit not yet sent.
#[derive(Debug, Clone)]
pub(crate) struct PendingRecord {
    /// The list, values written in: the tracking writes, `COMMIT`, then the next `BEGIN`.
    pub(crate) text: String,
    /// How many statements the list holds (its `COMMIT` is the one before the last).
    pub(crate) statements: usize,
    /// The step's table and the version it moves to, for the state row to tell.
    pub(crate) module: String,
    pub(crate) table: String,
    pub(crate) new_version: Option<String>,
}

/// What became of a pending step once its list was sent.
#[derive(Debug)]
pub(crate) enum Fate {
    /// Its `COMMIT` ran.
    Committed,
    /// It did not commit, and its transaction is to be rolled back.
    RolledBack(Cause),
    /// The connection was lost before an answer said which.
    Unknown,
}

/// Why a pending step did not commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cause {
    /// Its compare-and-set found that another runner moved the table first.
    Race,
    /// The session no longer holds the prepared record statement (PostgreSQL, SQLSTATE
    /// 26000: a step deallocated it, or an unannounced transaction-pooling proxy moved the
    /// session).
    LostStatement,
    /// The statement sent after the list did not parse (PostgreSQL, SQLSTATE 42601): the
    /// server parses a whole message before running any of it, so the list did not run.
    NextUnparsed,
    /// Anything else the database refused.
    Refused,
}

/// What sending a pending step's list (and the statement after it) gave.
pub(crate) struct Sent {
    pub(crate) fate: Fate,
    /// The rows the statement after the list affected, or the exchange's error.
    pub(crate) result: sqlx::Result<u64>,
    /// The error came from the list's own `BEGIN`, after its `COMMIT`: no transaction is open,
    /// and the statement after it did not run.
    pub(crate) begin_failed: bool,
}

/// Sends `pending`'s list, then `then` (the next statement's SQL, if any), in one exchange.
pub(crate) async fn send<DB: Driver>(
    conn: &mut DB::Connection,
    pending: &PendingRecord,
    then: Option<&str>,
) -> Sent
where
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
{
    let text = match then {
        Some(sql) => format!("{}; {sql}", pending.text),
        None => pending.text.clone(),
    };
    let mut results = sqlx::raw_sql(AssertSqlSafe(text)).execute_many(conn);
    let (mut answered, mut affected) = (0usize, 0u64);
    while let Some(result) =
        std::future::poll_fn(|cx| futures_core::Stream::poll_next(results.as_mut(), cx)).await
    {
        match result {
            Ok(done) => {
                answered += 1;
                if answered > pending.statements {
                    affected += DB::rows_affected(&done);
                }
            }
            Err(err) => {
                let committed = answered + 1 >= pending.statements;
                let fate = if committed {
                    Fate::Committed
                } else if DB::is_lost_session(&err) {
                    // The session ended (57P01 while COMMIT waited for a synchronous replica
                    // says "already committed locally"): the server may have committed or
                    // not; the state row decides.
                    Fate::Unknown
                } else if err.as_database_error().is_some() {
                    Fate::RolledBack(if DB::is_lost_race(&err) {
                        Cause::Race
                    } else if has_sqlstate(&err, "26000") {
                        Cause::LostStatement
                    } else if answered == 0 && has_sqlstate(&err, "42601") {
                        Cause::NextUnparsed
                    } else {
                        Cause::Refused
                    })
                } else {
                    Fate::Unknown
                };
                return Sent {
                    fate,
                    begin_failed: committed && answered < pending.statements,
                    result: Err(err),
                };
            }
        }
    }
    Sent {
        fate: Fate::Committed,
        result: Ok(affected),
        begin_failed: false,
    }
}

/// The previous step's pending commit, as the next step's connection carries it.
#[derive(Debug)]
pub(crate) enum Riding {
    /// Nothing waits: the step before committed on its own, or there was none.
    Nothing,
    /// The previous step's list waits for this step's first statement.
    Waiting(PendingRecord),
    /// The typed connection was handed out while the list waited: this step's statements may
    /// have run in the previous step's transaction, ahead of its commit, so both are rolled
    /// back and planned again.
    Mixed,
    /// The list was sent.
    Sent { pending: PendingRecord, fate: Fate },
    /// The list committed, but its `BEGIN` failed: no transaction is open for this step.
    BeginFailed(sqlx::Error),
}

impl Riding {
    /// Whether the step's statements may run: nothing waits, or the previous step committed
    /// and this step's transaction is open.
    pub(crate) fn is_settled(&self) -> bool {
        matches!(
            self,
            Riding::Nothing
                | Riding::Sent {
                    fate: Fate::Committed,
                    ..
                }
        )
    }
}
