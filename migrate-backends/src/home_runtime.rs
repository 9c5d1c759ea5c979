//! The runtime a pool's connection was taken on, entered again where the value holding it is
//! dropped.
//!
//! sqlx gives a dropped `PoolConnection` back to its pool (or closes it) through a task it
//! spawns, and spawning outside a Tokio runtime panics. A connection kept by the executor, or
//! held by a run lock, may be dropped on a thread outside any runtime: the blocking API's
//! builders (`with_baseline`, `MigrationManager::new`) take the manager by value and drop it
//! there when they fail, and so may a host that connects inside `block_on` and builds its
//! manager outside it.

use tokio::runtime::{EnterGuard, Handle};

/// The runtime current where the value was made, if any.
#[derive(Debug, Default)]
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
