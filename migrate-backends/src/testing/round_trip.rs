//! What `migrate::round_trip_tests!` runs: per backend, the stairway and "upgrade from empty to
//! head", and once, "single head per table". These are test assertions: they panic on failure.

use super::{Backend, DataCheck, Stairway, TestDatabase};
use crate::snapshot::{snapshot, SchemaDiff};
use crate::DEFAULT_TRACKING_TABLE;
use migrate_core::error::{Error, Result};
use migrate_core::graph::Graph;
use migrate_core::manager::MigrationManager;
use migrate_core::migration::{Migration, MigrationSet};
use std::future::Future;

/// Runs a future to completion on a fresh tokio runtime, for synchronous `#[test]`s.
///
/// # Panics
/// If the runtime cannot be built.
pub fn block_on<F: Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime for the test")
        .block_on(future)
}

/// Which round trip to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoundTrip {
    /// Every step up, down and up again (see [`Stairway`]).
    Stairway,
    /// A fresh database up to every table's head, then (when no step is irreversible) back
    /// down to an empty schema.
    UpgradeFromEmpty,
    /// When some migration has a `fresh` function: one database installed with
    /// `install_fresh`, another upgraded step by step from empty, and their schemas equal.
    FreshEqualsUpgrade,
}

/// Options of the round trips (what `round_trip_tests!`'s `strict_column_order = ...` and
/// `checks = { ... }` build).
#[derive(Debug, Clone, Default)]
pub struct RoundTripOptions {
    strict_column_order: bool,
    checks: Vec<(String, DataCheck)>,
}

impl RoundTripOptions {
    /// The defaults: column moves reported but allowed, no data checks.
    pub fn new() -> Self {
        RoundTripOptions::default()
    }

    /// Whether a column that a round trip moved (dropped and re-added at the end) fails it, in
    /// the stairway, the upgrade from empty and the fresh-install comparison alike.
    pub fn strict_column_order(mut self, strict: bool) -> Self {
        self.strict_column_order = strict;
        self
    }

    /// A data check around the step `table@X.Y.Z` of the stairway (see [`Stairway::check`]).
    pub fn check(mut self, step: &str, check: DataCheck) -> Self {
        self.checks.push((step.to_string(), check));
        self
    }

    fn stairway(&self, sets: &[&'static MigrationSet]) -> Stairway {
        let mut stairway =
            Stairway::new(sets.iter().copied()).strict_column_order(self.strict_column_order);
        for (step, check) in &self.checks {
            stairway = stairway.check(step, check.clone());
        }
        stairway
    }

    fn clean(&self, diff: &SchemaDiff) -> bool {
        if self.strict_column_order {
            diff.is_empty()
        } else {
            diff.is_empty_ignoring_moves()
        }
    }
}

/// Asserts that the linked graph of `sets` is valid: one chain, so one head, per table, and
/// the declared `heads` match.
///
/// # Panics
/// With the graph error.
pub fn assert_single_heads(sets: &[&'static MigrationSet]) {
    if let Err(err) = Graph::build(sets.iter().copied()) {
        panic!("the migration graph is broken: {err}");
    }
}

/// Runs `kind` on `backend` for `sets`, panicking with a precise message on failure. A backend
/// whose server is unavailable is reported as skipped (a failure under
/// `MIGRATE_TEST_REQUIRE_ALL=1`).
///
/// # Panics
/// When the round trip fails.
pub fn round_trip(backend: Backend, sets: &[&'static MigrationSet], kind: RoundTrip) {
    round_trip_with(backend, sets, kind, &RoundTripOptions::default());
}

/// [`round_trip`] with options: strict column order, data checks.
///
/// # Panics
/// When the round trip fails.
pub fn round_trip_with(
    backend: Backend,
    sets: &[&'static MigrationSet],
    kind: RoundTrip,
    options: &RoundTripOptions,
) {
    let outcome = block_on(async {
        match kind {
            RoundTrip::Stairway => options
                .stairway(sets)
                .run(backend)
                .await
                .map(|report| {
                    report.map(|r| {
                        if !r.irreversible.is_empty() || !r.column_moves.is_empty() {
                            // What passed with a note (a step passed over, a column moved)
                            // is said, not dropped with the report.
                            note(&r.to_string());
                        }
                        r.assert_ok();
                    })
                }),
            RoundTrip::UpgradeFromEmpty => upgrade_from_empty(backend, sets, options).await,
            RoundTrip::FreshEqualsUpgrade => {
                fresh_against_upgrade(backend, sets)
                    .await
                    .map(|diff| {
                        diff.map(|diff| {
                            assert!(
                                options.clean(&diff),
                                "a fresh install and a step-by-step upgrade differ on {} (the fresh function forgot what a step does, or a step is missing for what it adds):\n{diff}",
                                backend.name()
                            )
                        })
                    })
            }
        }
    });
    if let Err(err) = outcome {
        panic!(
            "{kind:?} on {}: {}",
            backend.name(),
            super::with_causes(&err)
        );
    }
}

/// Installs one new database with [`MigrationManager::install_fresh`] and upgrades another
/// step by step from empty, and returns how their schemas differ (the tracking tables left
/// out). An empty diff when no migration of `sets` has a `fresh` function; `None` when the
/// backend's server is unavailable.
///
/// # Errors
/// When a database cannot be created, or a run fails.
pub async fn fresh_against_upgrade(
    backend: Backend,
    sets: &[&'static MigrationSet],
) -> Result<Option<SchemaDiff>> {
    let Some(upgraded) = TestDatabase::create(backend).await? else {
        return Ok(None);
    };
    let Some(fresh) = TestDatabase::create(backend).await? else {
        return Ok(None);
    };
    let step_by_step = MigrationManager::new(upgraded.executor().await?, sets.iter().copied())?;
    step_by_step.up().await?;
    let installer = MigrationManager::new(fresh.executor().await?, sets.iter().copied())?;
    let report = installer.install_fresh().await?;
    let passed_over = passed_over(sets, &report);
    if !passed_over.is_empty() {
        return Err(Error::Config(format!(
            "install_fresh on a new database passed over {} (a fresh install runs before any \
             step, so a fresh function that stands for a step running `after` a step of another \
             table is never used, and nothing tests it): {}",
            if passed_over.len() == 1 {
                "a fresh function"
            } else {
                "fresh functions"
            },
            passed_over.join("; ")
        )));
    }
    tracing::info!(
        steps = report.applied.len(),
        backend = backend.name(),
        "installed fresh"
    );
    let upgraded = snapshot(upgraded.url(), None, DEFAULT_TRACKING_TABLE).await?;
    let fresh = snapshot(fresh.url(), None, DEFAULT_TRACKING_TABLE).await?;
    Ok(Some(upgraded.diff(&fresh)))
}

/// The fresh function of each table of `sets` (its chain's highest) that `report`, from
/// `install_fresh` on a new database, did not run, each with the `after` edges of the steps it
/// stands for.
fn passed_over(
    sets: &[&'static MigrationSet],
    report: &migrate_core::report::Report,
) -> Vec<String> {
    let migrations: Vec<&'static Migration> =
        sets.iter().flat_map(|set| set.migrations()).collect();
    let version = |m: &Migration| migrate_core::Version::parse(m.version_str()).ok();
    let mut out = Vec::new();
    for fresh in &migrations {
        let Some(name) = fresh.fresh_name() else {
            continue;
        };
        let same_chain = |m: &&&Migration| {
            m.set().module() == fresh.set().module() && m.table() == fresh.table()
        };
        // Only the highest fresh function of a table is for install_fresh.
        let higher = migrations
            .iter()
            .filter(same_chain)
            .any(|m| m.fresh_name().is_some() && version(m) > version(fresh));
        let used = report.applied.iter().any(|a| {
            a.step.module == fresh.set().module()
                && a.step.table == fresh.table()
                && a.step.name == name
        });
        if higher || used {
            continue;
        }
        let after: Vec<&str> = migrations
            .iter()
            .filter(same_chain)
            .filter(|m| version(m) <= version(fresh))
            .filter_map(|m| m.after())
            .collect();
        out.push(format!(
            "`{name}` of {}:{}@{} (it stands for steps that run after {})",
            fresh.set().module(),
            fresh.table(),
            fresh.version_str(),
            if after.is_empty() {
                "nothing".to_string()
            } else {
                after.join(", ")
            }
        ));
    }
    out
}

async fn upgrade_from_empty(
    backend: Backend,
    sets: &[&'static MigrationSet],
    options: &RoundTripOptions,
) -> Result<Option<()>> {
    let Some(db) = TestDatabase::create(backend).await? else {
        return Ok(None);
    };
    let empty = snapshot(db.url(), None, DEFAULT_TRACKING_TABLE).await?;
    let manager = MigrationManager::new(db.executor().await?, sets.iter().copied())?;
    manager.up().await?;
    for table in manager.status().await? {
        assert_eq!(
            table.current.as_ref(),
            Some(&table.latest),
            "{}:{} did not reach its head on {}",
            table.module,
            table.table,
            backend.name()
        );
    }
    let applied = manager.applied().await?;
    let irreversible: Vec<String> = applied
        .iter()
        .filter(|m| !m.reversible)
        .map(|m| m.step.to_string())
        .collect();
    if !irreversible.is_empty() {
        note(&format!(
            "upgrade from empty on {}: the way back down to empty is not checked: {} {} irreversible\n",
            backend.name(),
            irreversible.join(", "),
            if irreversible.len() == 1 { "is" } else { "are" }
        ));
    }
    if irreversible.is_empty() {
        manager.down().to_base().await?;
        let after = snapshot(db.url(), None, DEFAULT_TRACKING_TABLE).await?;
        let diff = empty.diff(&after);
        assert!(
            options.clean(&diff),
            "down from head to base on {} left the schema changed:\n{diff}",
            backend.name()
        );
    }
    Ok(Some(()))
}

/// A note on the process's stderr (the test harness captures `eprintln!`, and would show it
/// only for a failing test).
fn note(text: &str) {
    use std::io::Write;
    let _ = write!(std::io::stderr(), "{text}");
}
