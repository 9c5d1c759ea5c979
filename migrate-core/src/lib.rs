//! The database-independent core of [`migrate`](https://docs.rs/migrate).
//!
//! It holds the migration descriptors that `#[migrate::migration]` registers, the registry that
//! collects them per crate, the per-table version graph, the plans walked over that graph, and
//! the [`MigrationManager`] that drives a plan through an [`Executor`]. It knows no database:
//! the executors live in `migrate-backends`.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod checksum;
mod conn;
mod error;
mod executor;
mod graph;
mod manager;
mod migration;
mod plan;
mod report;
mod request;
mod status;
mod template;
mod time;

#[doc(hidden)]
pub mod __private;

pub use conn::{Conn, Dialect, RawConn, Row, Value};
pub use error::{Error, GraphError, Result};
pub use executor::{
    Direction, Executor, NoLock, Outcome, RunLock, StateRow, StepOutcome, StepRecord, StepRun,
};
pub use graph::{Graph, StepKey};
pub use manager::{DownRequest, MigrationManager, Resolution, UpRequest};
pub use migration::{Migration, MigrationFn, MigrationFuture, MigrationSet, Reversal};
pub use plan::{Plan, PlannedStep, Skipped};
pub use report::{AppliedStep, Report, ReportStatus};
pub use semver::Version;
pub use status::{DirtyMark, HistoryEntry, MigrationInfo, TableStatus};
pub use time::Timestamp;

/// A boxed, sendable future, the return type of the object-safe async traits in this crate.
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;
