//! The runtime a pool's connection was taken on, entered again where the value holding it is
//! dropped.
//!
//! sqlx gives a dropped `PoolConnection` back to its pool (or closes it) through a task it
//! spawns, and spawning outside a Tokio runtime panics. A connection kept by the executor, or
//! held by a run lock, may be dropped on a thread outside any runtime: the blocking API's
//! `with_baseline` and `with_table_baseline` take the manager by value and drop it there when
//! they fail (and its `open` drops the backend when the graph does not build), and so may a
//! host that connects inside `block_on` and builds or drops its manager outside it.

use tokio::runtime::{EnterGuard, Handle};

/// The runtime current where the value was made, if any.
#[derive(Debug)]
pub(crate) struct HomeRuntime(Option<Handle>);

impl HomeRuntime {
    /// The runtime of the calling thread (none outside a runtime).
    pub(crate) fn current() -> Self {
        HomeRuntime(Handle::try_current().ok())
    }

    /// Enters the runtime for as long as the guard lives, unless the thread already runs one
    /// (or none was known). A runtime shut down since makes spawned tasks fail quietly: the
    /// connection is then closed rather than given back, which is all that can be done.
    pub(crate) fn enter(&self) -> Option<EnterGuard<'_>> {
        match &self.0 {
            Some(handle) if Handle::try_current().is_err() => Some(handle.enter()),
            _ => None,
        }
    }
}

#[cfg(all(test, feature = "sqlite", feature = "testing"))]
mod tests {
    use crate::sqlite::SqliteDb;
    use crate::testing::{Backend, TestDatabase};

    /// An executor opened on a runtime (its state read started, its connection kept), then
    /// dropped on a thread that runs none while the runtime lives on: its connection goes back
    /// through a task on that runtime, where sqlx would have panicked without one.
    #[test]
    fn an_executor_opened_on_a_runtime_drops_on_a_plain_thread() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let (database, db) = runtime.block_on(async {
            let database = TestDatabase::create(Backend::Sqlite)
                .await
                .expect("a SQLite file")
                .expect("SQLite is never skipped");
            let path = database.sqlite_path().expect("a SQLite path");
            let db = SqliteDb::open(&path).await.expect("open");
            (database, db)
        });
        assert!(tokio::runtime::Handle::try_current().is_err());
        drop(db);
        // The connection's way back ran on the runtime: a new executor on the same file opens.
        runtime.block_on(async {
            let path = database.sqlite_path().expect("a SQLite path");
            SqliteDb::open(&path).await.expect("open again");
        });
    }
}
