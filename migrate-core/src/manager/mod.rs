//! [`MigrationManager`]: `up`/`down` requests, listings and repairs over a linked migration
//! graph and one [`MigrationBackend`](crate::backend::MigrationBackend).

mod fresh;
mod listings;
mod repair;
mod request;
mod run;
mod setup;
mod state;

pub use repair::Resolution;
pub use request::{DownRequest, UpRequest};
pub use setup::MigrationManager;
