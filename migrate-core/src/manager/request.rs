//! The `up()` and `down()` request builders. Both are futures once configured:
//! `manager.up().table("session").target("2.3.0").await`.

use super::setup::{parse_version, MigrationManager};
use crate::error::{Error, Result};
use crate::future::BoxFuture;
use crate::plan::{Request, Target};
use crate::report::{Progress, Report};
use crate::step::Direction;
use std::future::IntoFuture;
use std::sync::Arc;
use std::time::Duration;

/// A callback told of every step as it starts and as it ends.
pub(super) type ProgressFn = Arc<dyn Fn(&Progress) + Send + Sync>;

/// How a validated request runs: for real or dry, how long it waits for the lock, and who is
/// told of its progress.
#[derive(Default)]
pub(super) struct RunOptions {
    pub(super) dry_run: bool,
    pub(super) lock_wait: Option<Duration>,
    pub(super) progress: Option<ProgressFn>,
    /// Planned by `install_fresh`: a re-plan (after another runner moved a table) ignores the
    /// baselines, as the first plan did.
    pub(super) fresh: bool,
}

/// The options shared by both directions.
#[derive(Default)]
struct Options {
    target: Option<String>,
    to_base: bool,
    back: Option<usize>,
    tables: Vec<String>,
    force: bool,
    run: RunOptions,
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("target", &self.target)
            .field("to_base", &self.to_base)
            .field("back", &self.back)
            .field("tables", &self.tables)
            .field("force", &self.force)
            .field("dry_run", &self.run.dry_run)
            .field("lock_wait", &self.run.lock_wait)
            .field("progress", &self.run.progress.is_some())
            .finish()
    }
}

impl Options {
    /// Turns the caller's options into a request, rejecting bad input (a target that none of
    /// its tables declares included) before any query.
    fn validate(
        self,
        manager: &MigrationManager,
        direction: Direction,
    ) -> Result<(Request, RunOptions)> {
        let targets = usize::from(self.target.is_some())
            + usize::from(self.to_base)
            + usize::from(self.back.is_some());
        if targets > 1 {
            return Err(Error::Config(
                "down got more than one of a target, to_base and steps: give one".to_string(),
            ));
        }
        if self.back.is_some() && self.force {
            // Forced, a down reverts every step above its target, applied or not: counted
            // from the recorded version, which force ignores, `steps(1)` reverted more.
            return Err(Error::Config(
                "down by steps counts from the recorded version, which force ignores: give a \
                 target version with force"
                    .to_string(),
            ));
        }
        let target = match (&self.target, self.to_base, self.back, direction) {
            (Some(v), _, _, _) => Target::Version(parse_version(v)?),
            (None, _, Some(steps), Direction::Down) => Target::Back(steps),
            (None, true, _, Direction::Down) => Target::Base,
            (None, _, _, Direction::Up) => Target::Latest,
            (None, _, _, Direction::Down) => return Err(Error::MissingDownTarget),
        };
        let chains = if self.tables.is_empty() {
            None
        } else {
            Some(manager.resolve_tables(&self.tables)?)
        };
        let request = Request {
            direction,
            target,
            chains,
            force: self.force,
            resumes: Vec::new(),
        };
        crate::plan::check_target(&manager.graph, &request)?;
        Ok((request, self.run))
    }
}

macro_rules! request_builder {
    ($name:ident, $direction:expr, $doc:literal) => {
        #[doc = $doc]
        #[must_use = "a request does nothing until it is awaited"]
        #[derive(Debug)]
        pub struct $name<'m> {
            manager: &'m MigrationManager,
            options: Options,
        }

        impl<'m> $name<'m> {
            pub(super) fn new(manager: &'m MigrationManager) -> Self {
                $name {
                    manager,
                    options: Options::default(),
                }
            }

            /// The version to go to (`"2.3.0"`; a leading `v` is accepted): a release. Each
            /// table goes to its highest version at or below it. On `up` over every table, a
            /// table already above it is left where it is and listed in
            /// [`Report::skipped`](crate::report::Report::skipped) with
            /// [`SkipReason::AboveTarget`](crate::report::SkipReason::AboveTarget); a table
            /// named with [`table`](Self::table) that is above it is
            /// [`Error::TargetBelowCurrent`](crate::error::Error::TargetBelowCurrent).
            pub fn target(mut self, version: impl Into<String>) -> Self {
                self.options.target = Some(version.into());
                self
            }

            /// Restricts the request to `table` (`"session"`, or `"module:session"` for one
            /// module's). Call it again to add tables.
            pub fn table(mut self, table: impl Into<String>) -> Self {
                self.options.tables.push(table.into());
                self
            }

            /// Re-runs steps whatever the stored version says: the recovery for a version
            /// record that does not match the real schema. Checksum drift is not checked.
            pub fn force(mut self, force: bool) -> Self {
                self.options.force = force;
                self
            }

            /// Plans and returns the plan in [`Report::planned`] without changing anything.
            pub fn dry_run(mut self, dry_run: bool) -> Self {
                self.options.run.dry_run = dry_run;
                self
            }

            /// How long to wait for another runner's lock, instead of the backend's lock
            /// timeout. `Duration::ZERO` tries once: a request that must not queue behind
            /// another run (an HTTP endpoint) fails at once with
            /// [`Error::LockTimeout`](crate::error::Error::LockTimeout) naming the holder.
            pub fn lock_timeout(mut self, wait: Duration) -> Self {
                self.options.run.lock_wait = Some(wait);
                self
            }

            /// Calls `progress` as each step starts and as it ends (see [`Progress`]): for a
            /// progress bar, or `k/n` lines. It runs on the runner's task: keep it short.
            pub fn on_progress(
                mut self,
                progress: impl Fn(&Progress) + Send + Sync + 'static,
            ) -> Self {
                self.options.run.progress = Some(Arc::new(progress));
                self
            }

            /// Runs the request (the same as awaiting it).
            pub async fn run(self) -> Result<Report> {
                let (request, run) = self.options.validate(self.manager, $direction)?;
                self.manager.execute(request, run).await
            }
        }

        impl<'m> IntoFuture for $name<'m> {
            type Output = Result<Report>;
            type IntoFuture = BoxFuture<'m, Result<Report>>;

            fn into_future(self) -> Self::IntoFuture {
                Box::pin(self.run())
            }
        }
    };
}

request_builder!(
    UpRequest,
    Direction::Up,
    "An `up` request: applies pending steps. Without a target, every selected table goes to its \
     latest version. With `force(true)`, the steps above the baseline up to the target run again \
     even if recorded as applied."
);
request_builder!(
    DownRequest,
    Direction::Down,
    "A `down` request: reverts applied steps, newest first, down to the target. With \
     `force(true)`, every step above the target is reverted, even ones not recorded as applied."
);

impl DownRequest<'_> {
    /// Reverts every step of the selected tables, root included.
    pub fn to_base(mut self) -> Self {
        self.options.to_base = true;
        self
    }

    /// Reverts `steps` steps of each selected table, counted from where it stands when the
    /// run plans under the lock (`down -1` on the CLI): a step another runner applied while
    /// this one waited for the lock is one of them, where a version target read before would
    /// have reverted it too. A table with fewer steps applied goes to nothing (or keeps its
    /// first step under a baseline, as [`to_base`](Self::to_base) does). Not with
    /// [`force`](Self::force) (`Error::Config`): force ignores the recorded version the steps
    /// count from.
    pub fn steps(mut self, steps: usize) -> Self {
        self.options.back = Some(steps);
        self
    }
}

impl MigrationManager {
    /// Starts an `up` request: every table to its latest version unless narrowed with
    /// [`target`](UpRequest::target) and [`table`](UpRequest::table). Await it to run it.
    pub fn up(&self) -> UpRequest<'_> {
        UpRequest::new(self)
    }

    /// Starts a `down` request. It needs [`target`](DownRequest::target) (or
    /// [`to_base`](DownRequest::to_base)); awaiting it without one is
    /// [`Error::MissingDownTarget`].
    pub fn down(&self) -> DownRequest<'_> {
        DownRequest::new(self)
    }
}
