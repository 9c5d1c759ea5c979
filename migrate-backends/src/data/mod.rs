//! Data migrations over many rows: [`Batches`] reads a table in keyset-paginated batches and
//! checkpoints its progress, so that a killed run resumes where it stopped; [`Tally`] counts
//! what each row became; [`literal`] and [`Upsert`] write idempotent SQL for any dialect.
//!
//! ```no_run
//! # async fn step(db: &mut migrate_core::conn::Conn<'_>) -> migrate_core::error::Result<()> {
//! use migrate_backends::data::{Batches, Upsert};
//! let mut job = Batches::new("copy_sessions", "old_sessions", "session_id")
//!     .columns(&["session_id", "payload", "updated_at"])
//!     .batch_size(1_000)
//!     .start(db)
//!     .await?;
//! while let Some(rows) = job.next(db).await? {
//!     let mut upsert = Upsert::new("sessions", &["session_id"], &["payload", "updated_at"])
//!         .newer_wins("updated_at");
//!     for row in &rows {
//!         upsert.row(row.values().to_vec());
//!     }
//!     upsert.execute(db).await?; // under MAX_STATEMENT_BYTES a statement
//!     job.tally().moved(rows.len() as u64);
//! }
//! let tally = job.finish(db).await?; // moved, skipped and refused, each with its reasons
//! # let _ = tally; Ok(()) }
//! ```

mod batches;
mod sql;
mod tally;

pub use batches::{Batches, Job, DEFAULT_CHECKPOINT_TABLE};
pub use sql::{literal, Upsert, MAX_STATEMENT_BYTES};
pub use tally::Tally;
