//! The manager for hosts without an async runtime: the methods of
//! [`crate::MigrationManager`], each one blocking the calling thread on a private
//! current-thread runtime, [`ensure`](MigrationManager::ensure) for start-up, and
//! [`block_on`](MigrationManager::block_on) and [`configure`](MigrationManager::configure)
//! for anything else of the async manager.
//!
//! ```
//! migrate::migrations! {}
//! # #[migrate::migration(table = "session", version = "1.0.0", down = drop_session)]
//! # async fn create_session(db: &mut migrate::Conn<'_>) -> migrate::Result<()> {
//! #     db.execute("CREATE TABLE session (id TEXT)").await?;
//! #     Ok(())
//! # }
//! # async fn drop_session(db: &mut migrate::Conn<'_>) -> migrate::Result<()> {
//! #     db.execute("DROP TABLE session").await?;
//! #     Ok(())
//! # }
//!
//! fn main() -> migrate::Result<()> {
//!     let manager = migrate::blocking::MigrationManager::connect("sqlite::memory:", [&MIGRATIONS])?;
//!     let report = manager.up().run()?;
//!     assert_eq!(report.applied.len(), 1);
//!     manager.down().to_base().run()?;
//!     Ok(())
//! }
//! ```
//!
//! Called on a thread inside a Tokio runtime's context, every method that waits on the
//! database returns [`Error::InsideRuntime`] instead of blocking that runtime (or panicking,
//! as a nested `block_on` would); the settings and the graph's listings do not wait, and work
//! anywhere. Another executor's threads (async-std, smol) cannot be told apart: do not call it
//! from their tasks.

use crate::manager::Resolution;
use crate::registry::MigrationSet;
use crate::report::{HistoryEntry, MigrationInfo, Progress, Report, TableStatus};
use crate::{ConnectOptions, Error, Result, Version};
use migrate_core::backend::MigrationBackend;
use std::future::Future;
use std::time::Duration;
use tokio::runtime::Runtime;

/// A [`crate::MigrationManager`] driven from plain threads.
pub struct MigrationManager {
    // The manager (and its pool) drop before the runtime its connections belong to.
    inner: Option<crate::MigrationManager>,
    runtime: Option<Runtime>,
}

impl std::fmt::Debug for MigrationManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("blocking::MigrationManager")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

/// Refuses to block a thread that runs an async runtime.
pub(crate) fn outside_runtime(method: &'static str) -> Result<()> {
    if tokio::runtime::Handle::try_current().is_ok() {
        return Err(Error::InsideRuntime { method });
    }
    Ok(())
}

/// The private current-thread runtime the blocking API (and the CLI) run on.
pub(crate) fn new_runtime() -> Result<Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| Error::Io {
            operation: "start the private runtime of",
            path: "migrate::blocking".into(),
            source,
        })
}

impl MigrationManager {
    /// Connects to the database a URL names (see [`crate::connect`]) and builds a manager over
    /// `sets`.
    pub fn connect(
        url: &str,
        sets: impl IntoIterator<Item = &'static MigrationSet>,
    ) -> Result<Self> {
        Self::opened(
            "migrate::blocking::MigrationManager::connect",
            || crate::connect(url),
            sets,
        )
    }

    /// [`connect`](Self::connect) with a schema, a tracking table and timeouts.
    pub fn connect_with(
        url: &str,
        options: &ConnectOptions,
        sets: impl IntoIterator<Item = &'static MigrationSet>,
    ) -> Result<Self> {
        Self::opened(
            "migrate::blocking::MigrationManager::connect_with",
            || crate::connect_with(url, options),
            sets,
        )
    }

    /// Builds a manager over the backend that `open` makes. `open` runs on the private
    /// runtime, where a backend's connections must be made:
    /// `MigrationManager::open(|| migrate::sqlite::SqliteDb::open("app.db"), [&MIGRATIONS])`.
    pub fn open<B, F>(
        open: impl FnOnce() -> F,
        sets: impl IntoIterator<Item = &'static MigrationSet>,
    ) -> Result<Self>
    where
        B: MigrationBackend + 'static,
        F: Future<Output = Result<B>>,
    {
        Self::opened("migrate::blocking::MigrationManager::open", open, sets)
    }

    /// [`open`](Self::open), called as `method` (what an error inside a runtime names).
    fn opened<B, F>(
        method: &'static str,
        open: impl FnOnce() -> F,
        sets: impl IntoIterator<Item = &'static MigrationSet>,
    ) -> Result<Self>
    where
        B: MigrationBackend + 'static,
        F: Future<Output = Result<B>>,
    {
        outside_runtime(method)?;
        let runtime = new_runtime()?;
        let db = runtime.block_on(open())?;
        // Entered while the backend may be dropped (a graph that fails to build drops it):
        // a pool's connection goes back through a task on it.
        let inner = {
            let _entered = runtime.enter();
            crate::MigrationManager::new(db, sets)?
        };
        Ok(MigrationManager {
            inner: Some(inner),
            runtime: Some(runtime),
        })
    }

    /// See [`crate::MigrationManager::with_baseline`].
    pub fn with_baseline(self, version: &str) -> Result<Self> {
        self.configure(|m| m.with_baseline(version))
    }

    /// See [`crate::MigrationManager::with_table_baseline`].
    pub fn with_table_baseline(self, table: &str, version: &str) -> Result<Self> {
        self.configure(|m| m.with_table_baseline(table, version))
    }

    /// See [`crate::MigrationManager::with_baseline_for_existing_tables`].
    pub fn with_baseline_for_existing_tables(self, version: &str) -> Result<Self> {
        self.configure(|m| m.with_baseline_for_existing_tables(version))
    }

    /// See [`crate::MigrationManager::with_table_name`].
    pub fn with_table_name(self, table: &str, physical: &str) -> Result<Self> {
        self.configure(|m| m.with_table_name(table, physical))
    }

    /// See [`crate::MigrationManager::with_adopted_versions`].
    pub fn with_adopted_versions(self, table: &str) -> Result<Self> {
        self.configure(|m| m.with_adopted_versions(table))
    }

    /// Applies any setting of the async manager (`|m| m.with_baseline("2.0.0")`), on this
    /// manager's runtime.
    pub fn configure(
        mut self,
        configure: impl FnOnce(crate::MigrationManager) -> Result<crate::MigrationManager>,
    ) -> Result<Self> {
        let _entered = self.runtime.as_ref().map(Runtime::enter);
        if let Some(inner) = self.inner.take() {
            self.inner = Some(configure(inner)?);
        }
        Ok(self)
    }

    /// The async manager inside, for what does not wait on the database (its graph, its
    /// migrations). Its async methods must run on this manager's runtime, where its
    /// connections belong: through [`block_on`](Self::block_on), not another runtime.
    pub fn manager(&self) -> Result<&crate::MigrationManager> {
        self.inner
            .as_ref()
            .ok_or_else(|| Error::Config("the blocking manager was taken apart".to_string()))
    }

    /// Runs any async call of the manager inside on this manager's runtime, blocking the
    /// calling thread (refused inside another runtime, as every method is):
    /// `manager.block_on(|m| m.install_fresh())`.
    pub fn block_on<'a, T, F>(
        &'a self,
        call: impl FnOnce(&'a crate::MigrationManager) -> F,
    ) -> Result<T>
    where
        F: Future<Output = Result<T>> + 'a,
    {
        self.block("migrate::blocking::MigrationManager::block_on", call)
    }

    /// See [`crate::MigrationManager::install_fresh`].
    pub fn install_fresh(&self) -> Result<Report> {
        self.block("migrate::blocking::MigrationManager::install_fresh", |m| {
            m.install_fresh()
        })
    }

    /// See [`crate::startup::ensure`]: migrating (or checking) before a host without an async
    /// runtime serves.
    #[allow(clippy::result_large_err)] // the error of `startup::ensure`, which it returns
    pub fn ensure(
        &self,
        policy: crate::startup::Policy,
    ) -> std::result::Result<crate::startup::Ready, crate::startup::StartupError> {
        // What waits on nothing answers anywhere, as the async `ensure` does.
        if let Some(manager) = self.inner.as_ref() {
            if let Some(settled) = crate::startup::settled_without_the_database(manager, &policy) {
                return settled;
            }
        }
        // On this manager's runtime, as every call; what keeps it from running there (a
        // runtime's context, a closed manager) is said as itself: nothing was read.
        self.block(
            "migrate::blocking::MigrationManager::ensure",
            |m| async move { Ok(crate::startup::ensure(m, policy).await) },
        )
        .unwrap_or_else(|cannot| Err(crate::startup::StartupError::CannotRun(cannot)))
    }

    /// See [`crate::MigrationManager::latest_version`].
    pub fn latest_version(&self) -> Result<Option<Version>> {
        Ok(self.manager()?.latest_version())
    }

    /// See [`crate::MigrationManager::available_versions`].
    pub fn available_versions(&self) -> Result<Vec<Version>> {
        Ok(self.manager()?.available_versions())
    }

    /// See [`crate::MigrationManager::migrations`].
    pub fn migrations(&self) -> Result<Vec<MigrationInfo>> {
        Ok(self.manager()?.migrations())
    }

    /// Runs `f` on the private runtime, refusing inside another runtime.
    fn block<'a, T, F>(
        &'a self,
        method: &'static str,
        f: impl FnOnce(&'a crate::MigrationManager) -> F,
    ) -> Result<T>
    where
        F: Future<Output = Result<T>> + 'a,
    {
        outside_runtime(method)?;
        let inner = self.manager()?;
        let runtime = self
            .runtime
            .as_ref()
            .ok_or_else(|| Error::Config("the blocking manager has no runtime".to_string()))?;
        runtime.block_on(f(inner))
    }

    /// Starts an `up` request; [`run`](UpRequest::run) it.
    pub fn up(&self) -> UpRequest<'_> {
        UpRequest::new(self)
    }

    /// Starts a `down` request; it needs [`target`](DownRequest::target) or
    /// [`to_base`](DownRequest::to_base).
    pub fn down(&self) -> DownRequest<'_> {
        DownRequest::new(self)
    }

    /// See [`crate::MigrationManager::status`].
    pub fn status(&self) -> Result<Vec<TableStatus>> {
        self.block("migrate::blocking::MigrationManager::status", |m| {
            m.status()
        })
    }

    /// See [`crate::MigrationManager::history`].
    pub fn history(&self, limit: usize) -> Result<Vec<HistoryEntry>> {
        self.block("migrate::blocking::MigrationManager::history", move |m| {
            m.history(limit)
        })
    }

    /// See [`crate::MigrationManager::current_version`].
    pub fn current_version(&self, table: &str) -> Result<Option<Version>> {
        self.block(
            "migrate::blocking::MigrationManager::current_version",
            move |m| m.current_version(table),
        )
    }

    /// See [`crate::MigrationManager::latest_version_of`].
    pub fn latest_version_of(&self, table: &str) -> Result<Version> {
        self.manager()?.latest_version_of(table)
    }

    /// See [`crate::MigrationManager::pending`].
    pub fn pending(&self) -> Result<Vec<MigrationInfo>> {
        self.block("migrate::blocking::MigrationManager::pending", |m| {
            m.pending()
        })
    }

    /// See [`crate::MigrationManager::applied`].
    pub fn applied(&self) -> Result<Vec<MigrationInfo>> {
        self.block("migrate::blocking::MigrationManager::applied", |m| {
            m.applied()
        })
    }

    /// See [`crate::MigrationManager::stamp`].
    pub fn stamp(&self, table: &str, version: &str) -> Result<()> {
        self.block("migrate::blocking::MigrationManager::stamp", move |m| {
            m.stamp(table, version)
        })
    }

    /// See [`crate::MigrationManager::unstamp`].
    pub fn unstamp(&self, table: &str) -> Result<()> {
        self.block("migrate::blocking::MigrationManager::unstamp", move |m| {
            m.unstamp(table)
        })
    }

    /// See [`crate::MigrationManager::resolve_dirty`].
    pub fn resolve_dirty(&self, table: &str, resolution: Resolution) -> Result<()> {
        self.block(
            "migrate::blocking::MigrationManager::resolve_dirty",
            move |m| m.resolve_dirty(table, resolution),
        )
    }

    /// See [`crate::MigrationManager::accept_checksums`].
    pub fn accept_checksums(&self, table: &str) -> Result<()> {
        self.block(
            "migrate::blocking::MigrationManager::accept_checksums",
            move |m| m.accept_checksums(table),
        )
    }
}

impl Drop for MigrationManager {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            // A pool hands its connections back on the runtime it belongs to.
            {
                let _entered = runtime.enter();
                drop(self.inner.take());
            }
            // Dropping a runtime blocks, which a thread running another runtime must not do.
            if tokio::runtime::Handle::try_current().is_ok() {
                runtime.shutdown_background();
            }
        }
    }
}

macro_rules! blocking_request {
    ($name:ident, $start:ident, $doc:literal) => {
        #[doc = $doc]
        #[must_use = "a request does nothing until it is run"]
        #[derive(Debug)]
        pub struct $name<'m> {
            owner: &'m MigrationManager,
            /// The async request it configures and runs (an error when the manager is gone).
            inner: Result<crate::manager::$name<'m>>,
        }

        impl<'m> $name<'m> {
            fn new(owner: &'m MigrationManager) -> Self {
                $name {
                    owner,
                    inner: owner.manager().map(|m| m.$start()),
                }
            }

            fn with(
                mut self,
                f: impl FnOnce(crate::manager::$name<'m>) -> crate::manager::$name<'m>,
            ) -> Self {
                self.inner = self.inner.map(f);
                self
            }

            /// See [`crate::manager::UpRequest::target`].
            pub fn target(self, version: impl Into<String>) -> Self {
                self.with(|r| r.target(version))
            }

            /// See [`crate::manager::UpRequest::table`].
            pub fn table(self, table: impl Into<String>) -> Self {
                self.with(|r| r.table(table))
            }

            /// See [`crate::manager::UpRequest::force`].
            pub fn force(self, force: bool) -> Self {
                self.with(|r| r.force(force))
            }

            /// See [`crate::manager::UpRequest::dry_run`].
            pub fn dry_run(self, dry_run: bool) -> Self {
                self.with(|r| r.dry_run(dry_run))
            }

            /// See [`crate::manager::UpRequest::lock_timeout`].
            pub fn lock_timeout(self, wait: Duration) -> Self {
                self.with(|r| r.lock_timeout(wait))
            }

            /// See [`crate::manager::UpRequest::on_progress`].
            pub fn on_progress(self, progress: impl Fn(&Progress) + Send + Sync + 'static) -> Self {
                self.with(|r| r.on_progress(progress))
            }

            /// Runs the request, blocking until it ends.
            pub fn run(self) -> Result<Report> {
                let request = self.inner?;
                self.owner.block(
                    concat!("migrate::blocking::", stringify!($name), "::run"),
                    |_| request.run(),
                )
            }
        }
    };
}

blocking_request!(UpRequest, up, "A blocking `up` request.");
blocking_request!(DownRequest, down, "A blocking `down` request.");

impl DownRequest<'_> {
    /// See [`crate::manager::DownRequest::to_base`].
    pub fn to_base(self) -> Self {
        self.with(|r| r.to_base())
    }

    /// See [`crate::manager::DownRequest::steps`].
    pub fn steps(self, steps: usize) -> Self {
        self.with(|r| r.steps(steps))
    }
}
