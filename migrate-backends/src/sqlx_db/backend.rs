//! [`MigrationBackend`] for [`SqlxDb`]: what the manager asks of every sqlx database.

use super::SqlxDb;
use crate::driver::Driver;
use crate::rows;
use crate::statements::{Bind, Values};
use migrate_core::backend::{
    MigrationBackend, RunLock, StateRow, StepAfterPending, StepOutcome, StepRecord, StepRun,
};
use migrate_core::dialect::Dialect;
use migrate_core::error::{Error, Result};
use migrate_core::future::BoxFuture;
use migrate_core::status::HistoryEntry;
use migrate_core::step::Outcome;
use migrate_core::time::Timestamp;
use sqlx::{AssertSqlSafe, ColumnIndex, Decode, Encode, IntoArguments, Type};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// The history column that `Statements::upgrade` adds to tracking tables made before it.
const UPGRADE_COLUMN: &str = "started_at_utc";

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

    fn read_state(&self) -> BoxFuture<'_, Result<Arc<[StateRow]>>> {
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
            self.add_missing_fingerprint(&mut conn).await;
            // The last state read found no state table, so the tables need creating: no
            // catalog reads first (on a new session they cost PostgreSQL and MariaDB more than
            // the creation). A table there after all (made since by another runner, or a
            // history left without its state table) fails its plain `CREATE TABLE`, and the
            // checked way below follows.
            if self.tracking_missing.swap(false, Ordering::Relaxed)
                && self.create_new_tables(&mut conn).await?
            {
                conn.keep();
                return Ok(());
            }
            let history = migrate_core::table_names::history_table(&self.tracking_table);
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
            self.create_missing_tables(&mut conn).await?;
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
            let ended = if self.sql.journal_finish.is_some() || self.held.begun_ahead() {
                self.conn().await.map(|conn| conn.keep())
            } else {
                Ok(())
            };
            // A step lost here is this call's error; the next run starts without it.
            self.pending_lost.store(false, Ordering::Relaxed);
            ended
        })
    }

    fn run_step<'a>(&'a self, step: &'a StepRun<'a>) -> BoxFuture<'a, Result<StepOutcome>> {
        Box::pin(async move {
            match self.step_after_pending(step, false).await? {
                StepAfterPending::Ran(outcome) => Ok(outcome),
                // Only after `run_step_commit_with_next`, which this call does not answer for.
                StepAfterPending::PreviousRolledBack => Err(Error::msg(
                    "the step run before this one, whose commit was left pending, did not commit; \
                     read the state and plan again",
                )),
            }
        })
    }

    fn run_step_commit_with_next<'a>(
        &'a self,
        step: &'a StepRun<'a>,
    ) -> BoxFuture<'a, Result<StepAfterPending>> {
        Box::pin(self.step_after_pending(step, true))
    }

    fn commit_pending(&self) -> BoxFuture<'_, Result<bool>> {
        Box::pin(self.commit_pending_step())
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
                // As every statement through a pooler writes its text: alike under every
                // setting (PostgreSQL's `standard_conforming_strings`, MySQL's `sql_mode`).
                modules
                    .iter()
                    .map(|m| DB::DIALECT.exact_literal(m))
                    .collect()
            };
            // `{limit}` first: the module names written in for `{modules}` (as literals
            // through a transaction pooler) may hold any text, `{limit}` included.
            let sql = self
                .sql
                .history_select
                .replace(
                    "{limit}",
                    // A limit past what a database's LIMIT takes (a signed 64-bit integer) is
                    // no limit: every row.
                    &limit
                        .filter(|&n| i64::try_from(n).is_ok())
                        .map_or_else(String::new, |n| format!(" LIMIT {n}")),
                )
                .replace("{modules}", &placeholders.join(", "));
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
