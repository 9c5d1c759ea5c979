//! The database-independent core of `migrate`. Use it through the `migrate` facade, which
//! re-exports what a migration author and a host application need.
//!
//! The modules form layers, each using only those above it in this list:
//! 1. [`future`], [`time`], [`dialect`], [`step`] (shared types) and `checksum`;
//! 2. [`error`];
//! 3. [`table_names`], `template` and [`conn`] (the connection a migration receives);
//! 4. [`migration`] (descriptors and the per-crate registry);
//! 5. [`graph`] (the validated version graph);
//! 6. `plan` (pure planning over the graph) and [`report`], [`status`];
//! 7. [`backend`] (what a database backend implements);
//! 8. [`manager`] (the engine that drives a plan through a backend).
//!
//! It knows no SQL of its own: every statement lives in a backend.

#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub, missing_debug_implementations)]

pub mod backend;
mod checksum;
pub mod conn;
pub mod dialect;
pub mod error;
pub mod future;
pub mod graph;
pub mod manager;
pub mod migration;
mod plan;
pub mod report;
pub mod status;
pub mod step;
pub mod table_names;
mod template;
pub mod time;

#[doc(hidden)]
pub mod __private;

pub use semver::Version;
