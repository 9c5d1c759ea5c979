//! The CLI's backend, which connects on first use. The manager is built and a command's tables
//! and versions are checked before anything is opened: a misspelt table name opens no
//! connection and creates no SQLite file (`mode=rwc` creates the file it opens). What
//! `connect_with` checks before connecting (the scheme, the tracking table, the schema) is
//! checked when the backend is made.

use crate::backend::{
    BoxFuture, MigrationBackend, RunLock, StateRow, StepAfterPending, StepOutcome, StepRecord,
    StepRun, DEFAULT_TRACKING_TABLE,
};
use crate::report::{HistoryEntry, Outcome};
use crate::{ConnectOptions, Dialect, Result};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// A backend for `url` that connects the first time it is asked for anything a database holds.
pub(super) struct LazyBackend {
    url: String,
    options: ConnectOptions,
    dialect: Dialect,
    opened: OnceLock<Box<dyn MigrationBackend>>,
}

impl LazyBackend {
    /// Checks `url` and `options` as [`crate::connect_with`] does before connecting, and
    /// connects nothing.
    pub(super) fn new(url: &str, options: &ConnectOptions) -> Result<Self> {
        Ok(LazyBackend {
            dialect: migrate_backends::checked_dialect(url, options)?,
            url: url.to_string(),
            options: options.clone(),
            opened: OnceLock::new(),
        })
    }

    /// The backend, connected now if it was not yet.
    async fn open(&self) -> Result<&dyn MigrationBackend> {
        if let Some(opened) = self.opened.get() {
            return Ok(opened.as_ref());
        }
        let opened = crate::connect_with(&self.url, &self.options).await?;
        tracing::info!(target = %opened.describe(), "migrate cli connected");
        // The CLI asks one thing at a time; a second connection made meanwhile is dropped.
        Ok(self.opened.get_or_init(|| opened).as_ref())
    }
}

/// Every method is forwarded, the defaulted ones included: a method added to the trait needs
/// adding here.
impl MigrationBackend for LazyBackend {
    fn dialect(&self) -> Dialect {
        self.dialect
    }

    fn schema(&self) -> Option<&str> {
        match self.opened.get() {
            Some(opened) => opened.schema(),
            None => self.options.schema.as_deref(),
        }
    }

    fn describe(&self) -> String {
        match self.opened.get() {
            Some(opened) => opened.describe(),
            // Not the URL: its user name and query string may hold what the connected
            // description (the server and database only) leaves out.
            None => format!("a {} database, not connected yet", self.dialect),
        }
    }

    fn tracking_table(&self) -> &str {
        match (self.opened.get(), &self.options.tracking_table) {
            (Some(opened), _) => opened.tracking_table(),
            (None, Some(table)) => table,
            (None, None) => DEFAULT_TRACKING_TABLE,
        }
    }

    fn read_adopted<'a>(&'a self, table: &'a str) -> BoxFuture<'a, Result<Vec<(String, String)>>> {
        Box::pin(async move { self.open().await?.read_adopted(table).await })
    }

    fn table_exists<'a>(&'a self, table: &'a str) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move { self.open().await?.table_exists(table).await })
    }

    fn read_state(&self) -> BoxFuture<'_, Result<Arc<[StateRow]>>> {
        Box::pin(async move { self.open().await?.read_state().await })
    }

    fn prepare(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move { self.open().await?.prepare().await })
    }

    fn lock(&self, wait: Option<Duration>) -> BoxFuture<'_, Result<Box<dyn RunLock>>> {
        Box::pin(async move { self.open().await?.lock(wait).await })
    }

    fn run_step<'a>(&'a self, step: &'a StepRun<'a>) -> BoxFuture<'a, Result<StepOutcome>> {
        Box::pin(async move { self.open().await?.run_step(step).await })
    }

    fn run_step_commit_with_next<'a>(
        &'a self,
        step: &'a StepRun<'a>,
    ) -> BoxFuture<'a, Result<StepAfterPending>> {
        Box::pin(async move { self.open().await?.run_step_commit_with_next(step).await })
    }

    fn history<'a>(
        &'a self,
        modules: &'a [&'a str],
        limit: Option<usize>,
    ) -> BoxFuture<'a, Result<Vec<HistoryEntry>>> {
        Box::pin(async move { self.open().await?.history(modules, limit).await })
    }

    fn set_state<'a>(
        &'a self,
        module: &'a str,
        table: &'a str,
        version: Option<&'a str>,
        checksum: Option<&'a str>,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let opened = self.open().await?;
            opened.set_state(module, table, version, checksum).await
        })
    }

    fn record_without_running<'a>(
        &'a self,
        record: &'a StepRecord<'a>,
        outcome: Outcome,
    ) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move {
            let opened = self.open().await?;
            opened.record_without_running(record, outcome).await
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
            let opened = self.open().await?;
            opened
                .set_step_checksum(module, table, version, checksum)
                .await
        })
    }

    /// Nothing is pending on a backend that never connected.
    fn commit_pending(&self) -> BoxFuture<'_, Result<bool>> {
        Box::pin(async move {
            match self.opened.get() {
                Some(opened) => opened.commit_pending().await,
                None => Ok(true),
            }
        })
    }

    /// Nothing is pending on a backend that never connected.
    fn end_run(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            match self.opened.get() {
                Some(opened) => opened.end_run().await,
                None => Ok(()),
            }
        })
    }
}
