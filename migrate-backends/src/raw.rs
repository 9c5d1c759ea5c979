//! [`RawConn`] over any sqlx connection of a [`Driver`].

use crate::driver::Driver;
use crate::sqlx_db::bound;
use crate::sqlx_db::deferred::{self, Fate, Riding, Sent};
use crate::statements::{Bind, Statements, Stmt, Values};
use migrate_core::conn::{RawConn, Row};
use migrate_core::dialect::Dialect;
use migrate_core::error::{Error, Result};
use migrate_core::future::BoxFuture;
use sqlx::{AssertSqlSafe, Encode, IntoArguments, Row as _, Type};
use std::any::Any;

/// A connection (or the connection of an open transaction) seen as a [`RawConn`].
pub(crate) struct SqlxRaw<'c, DB: Driver> {
    conn: &'c mut DB::Connection,
    sql: &'c Statements,
    /// The previous step's commit, when it rides on this step's first statement.
    riding: Riding,
    /// What `driver()` hands out instead of the connection once the step's transaction is
    /// gone: no driver's connection, so typed access fails and sends nothing.
    no_connection: (),
    /// Whether the step may have left a transaction of its own open: it sent a statement
    /// that mentions one, or took the driver's connection (see
    /// [`may_leave_a_transaction_open`](Self::may_leave_a_transaction_open)).
    mentioned_a_transaction: bool,
}

/// Whether `sql` may open a transaction the step does not end: it holds the word
/// `TRANSACTION` (`START TRANSACTION`), `BEGIN` (also `XA BEGIN`) or `AUTOCOMMIT`, or `XA`
/// followed by `START`, in any case, anywhere (words are runs of letters, digits and `_`). A
/// word in a name or a routine's body counts too: a false alarm costs a journalled step one
/// round trip on MySQL, a miss could record writes that were rolled back.
fn mentions_a_transaction(sql: &str) -> bool {
    let mut after_xa = false;
    for word in sql
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|word| !word.is_empty())
    {
        let is = |name: &str| word.eq_ignore_ascii_case(name);
        if is("transaction") || is("begin") || is("autocommit") || (after_xa && is("start")) {
            return true;
        }
        after_xa = is("xa");
    }
    false
}

impl<'c, DB: Driver> SqlxRaw<'c, DB>
where
    for<'e> &'e mut DB::Connection: sqlx::Executor<'e, Database = DB>,
{
    pub(crate) fn new(conn: &'c mut DB::Connection, sql: &'c Statements) -> Self {
        SqlxRaw {
            conn,
            sql,
            riding: Riding::Nothing,
            no_connection: (),
            mentioned_a_transaction: false,
        }
    }

    /// Whether the step may have returned with a transaction of its own still open: it sent
    /// a statement that mentions one, or took the driver's connection, whose statements this
    /// does not see. A MySQL journalled step's finish then commits at once, on the step's
    /// session (its `START TRANSACTION` commits the step's), instead of waiting for the next
    /// step: a waiting finish is sent on another session when the step's ended meanwhile,
    /// which would record the step while the server rolled its writes back.
    pub(crate) fn may_leave_a_transaction_open(&self) -> bool {
        self.mentioned_a_transaction
    }

    /// Notes whether `sql` may open a transaction, where the answer is used: only a database
    /// whose journalled finish waits for the next step (MySQL) asks.
    fn notice(&mut self, sql: &str) {
        if self.sql.journal_finish.is_some() && !self.mentioned_a_transaction {
            self.mentioned_a_transaction = mentions_a_transaction(sql);
        }
    }

    /// Carries `riding` (the previous step's pending commit) on the first statement.
    pub(crate) fn with_riding(mut self, riding: Riding) -> Self {
        self.riding = riding;
        self
    }

    /// What became of the previous step's pending commit.
    pub(crate) fn into_riding(self) -> Riding {
        self.riding
    }

    /// Sends the previous step's waiting commit, in front of `then` if given (whose affected
    /// rows come back). `None`: nothing waited, `then` is still to run. A commit that did not
    /// happen leaves the step without a transaction: every later statement is refused.
    async fn ride(&mut self, then: Option<&str>) -> Option<Result<u64>> {
        match std::mem::replace(&mut self.riding, Riding::Nothing) {
            Riding::Waiting(pending) => {
                let Sent {
                    fate,
                    result,
                    begin_failed,
                } = deferred::send::<DB>(self.conn, &pending, then).await;
                match result {
                    Err(err) if begin_failed => {
                        let refused = refusal(&format!("its transaction could not begin: {err}"));
                        self.riding = Riding::BeginFailed(err);
                        Some(Err(refused))
                    }
                    result => {
                        let committed = matches!(fate, Fate::Committed);
                        self.riding = Riding::Sent { pending, fate };
                        match (result, then) {
                            // The list's own error, or the statement's.
                            (Err(err), _) => Some(Err(err.into())),
                            (Ok(_), _) if !committed => {
                                Some(Err(refusal("the step before it did not commit")))
                            }
                            (Ok(affected), Some(_)) => Some(Ok(affected)),
                            (Ok(_), None) => None,
                        }
                    }
                }
            }
            settled if settled.is_settled() => {
                self.riding = settled;
                None
            }
            unsettled => {
                self.riding = unsettled;
                Some(Err(refusal("the step before it did not commit")))
            }
        }
    }

    /// Sends the previous step's waiting commit alone: before a statement that cannot carry
    /// it, or once the step is over without having sent one. `Err` when the step's
    /// transaction is gone (see [`into_riding`](Self::into_riding) for why).
    pub(crate) async fn settle(&mut self) -> Result<()> {
        match self.ride(None).await {
            Some(Err(err)) => Err(err),
            _ => Ok(()),
        }
    }

    async fn any_row(&mut self, stmt: &Stmt, values: &Values) -> Result<bool>
    where
        for<'e> &'e mut DB::Connection: sqlx::Executor<'e, Database = DB>,
        DB::Arguments: IntoArguments<DB>,
        for<'e> Option<String>: Encode<'e, DB> + Type<DB>,
        for<'e> Option<i64>: Encode<'e, DB> + Type<DB>,
    {
        self.settle().await?;
        let row = bound::<DB>(stmt, values, self.sql.persistent)
            .fetch_optional(&mut *self.conn)
            .await?;
        Ok(row.is_some())
    }
}

impl<DB: Driver> RawConn for SqlxRaw<'_, DB>
where
    for<'e> &'e mut DB::Connection: sqlx::Executor<'e, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    for<'e> Option<String>: Encode<'e, DB> + Type<DB>,
    for<'e> Option<i64>: Encode<'e, DB> + Type<DB>,
{
    fn dialect(&self) -> Dialect {
        DB::DIALECT
    }

    fn table_exists<'a>(
        &'a mut self,
        schema: Option<&'a str>,
        table: &'a str,
    ) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move {
            let values = Values::new()
                .text(Bind::Schema, schema)
                .text(Bind::Table, Some(table));
            let stmt = self.sql.table_exists.clone();
            self.any_row(&stmt, &values).await
        })
    }

    fn column_exists<'a>(
        &'a mut self,
        schema: Option<&'a str>,
        table: &'a str,
        column: &'a str,
    ) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move {
            let values = Values::new()
                .text(Bind::Schema, schema)
                .text(Bind::Table, Some(table))
                .text(Bind::Column, Some(column));
            let stmt = self.sql.column_exists.clone();
            self.any_row(&stmt, &values).await
        })
    }

    fn execute<'a>(&'a mut self, sql: &'a str) -> BoxFuture<'a, Result<u64>> {
        Box::pin(async move {
            self.notice(sql);
            if let Some(carried) = self.ride(Some(sql)).await {
                return carried;
            }
            let done = sqlx::raw_sql(AssertSqlSafe(sql))
                .execute(&mut *self.conn)
                .await?;
            Ok(DB::rows_affected(&done))
        })
    }

    fn query<'a>(&'a mut self, sql: &'a str) -> BoxFuture<'a, Result<Vec<Row>>> {
        Box::pin(async move {
            self.notice(sql);
            self.settle().await?;
            let rows = sqlx::raw_sql(AssertSqlSafe(sql))
                .fetch_all(&mut *self.conn)
                .await?;
            rows.iter()
                .map(|row| {
                    (0..row.len())
                        .map(|i| DB::decode_value(row, i))
                        .collect::<Result<Vec<_>>>()
                        .map(Row::new)
                })
                .collect()
        })
    }

    fn driver(&mut self) -> &mut dyn Any {
        self.mentioned_a_transaction = true;
        // Statements sent through the typed connection would run ahead of the previous
        // step's commit, in its transaction.
        match self.riding {
            Riding::Waiting(_) => self.riding = Riding::Mixed,
            // Its statements would run outside any transaction, unrecorded.
            ref gone if !gone.is_settled() => return &mut self.no_connection,
            _ => {}
        }
        &mut *self.conn
    }
}

/// The error a step's statement gets once its transaction is gone with the step before it.
fn refusal(why: &str) -> Error {
    Error::msg(format!(
        "the statement was not sent: {why} (the run plans the steps again)"
    ))
}

#[cfg(test)]
mod tests {
    use super::mentions_a_transaction;

    #[test]
    fn statements_that_may_open_a_transaction_are_noticed_in_any_case() {
        for sql in [
            "START TRANSACTION",
            "start\n  transaction",
            "INSERT INTO t VALUES (1); Start Transaction; INSERT INTO t VALUES (2)",
            "BEGIN",
            "begin;",
            "set autocommit = 0",
            "SET @@AUTOCOMMIT=0",
            "XA START 'x'",
            "xa  start 'x'",
            "XA BEGIN 'x'",
        ] {
            assert!(mentions_a_transaction(sql), "{sql}");
        }
        for sql in [
            "INSERT INTO t VALUES (1)",
            "UPDATE jobs SET started_at = 1, beginning = 2",
            "SELECT xavier, start FROM t",
            "",
        ] {
            assert!(!mentions_a_transaction(sql), "{sql}");
        }
    }
}
