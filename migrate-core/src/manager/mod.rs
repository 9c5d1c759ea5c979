//! [`MigrationManager`]: `up`/`down` requests, listings and repairs over a linked migration
//! graph and one [`MigrationBackend`](crate::backend::MigrationBackend).

mod fresh;
mod listings;
mod repair;
mod request;
mod run;
mod setup;
mod shared_graphs;
mod sql_steps;
mod state;
mod up_to_date;

pub use repair::Resolution;
pub use request::{DownRequest, UpRequest};
pub use setup::MigrationManager;

/// What a host does to every manager it builds (a baseline, table names): the CLI, a fleet
/// and the drift check apply it to each manager they make.
pub type Configure = std::sync::Arc<
    dyn Fn(MigrationManager) -> crate::error::Result<MigrationManager> + Send + Sync,
>;
