//! The contenders. Each opens its connection (untimed) and exposes `run`, which applies what is
//! pending: on an empty database that is the apply, on an up-to-date one the no-op check.

pub mod floor;
pub mod ours;
mod refinery_runner;
mod sea_orm_runner;
mod sqlx_migrator;

use crate::target::Target;
use crate::workload::Step;
use migrate::testing::Backend;
use std::sync::Arc;

pub use ours::planning_time;

/// Who is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Floor,
    Ours,
    SqlxMigrator,
    Refinery,
    SeaOrm,
}

impl Kind {
    pub const ALL: [Kind; 5] = [
        Kind::Floor,
        Kind::Ours,
        Kind::SqlxMigrator,
        Kind::Refinery,
        Kind::SeaOrm,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Floor => "raw floor (sqlx: tx + version row)",
            Kind::Ours => "migrate (Rust-function migrations)",
            Kind::SqlxMigrator => "sqlx::migrate::Migrator",
            Kind::Refinery => "refinery",
            Kind::SeaOrm => "sea-orm-migration",
        }
    }

    /// The short name `--only` takes.
    pub fn key(self) -> &'static str {
        match self {
            Kind::Floor => "floor",
            Kind::Ours => "migrate",
            Kind::SqlxMigrator => "sqlx",
            Kind::Refinery => "refinery",
            Kind::SeaOrm => "sea-orm",
        }
    }

    pub fn supports(self, backend: Backend) -> bool {
        match self {
            // refinery reaches MySQL only through mysql/mysql_async, and sea-orm-migration was
            // built without sqlx-mysql to keep the build small.
            Kind::Refinery | Kind::SeaOrm => backend != Backend::MySql,
            _ => true,
        }
    }

    /// The table whose row count must equal N after an apply.
    pub fn version_table(self) -> &'static str {
        match self {
            Kind::Floor => "raw_migrations",
            Kind::Ours => "migrate_schema_versions_history",
            Kind::SqlxMigrator => "_sqlx_migrations",
            Kind::Refinery => "refinery_schema_history",
            Kind::SeaOrm => "seaql_migrations",
        }
    }
}

/// An opened contender.
pub enum Runner {
    Floor(floor::Floor),
    Ours(ours::Ours),
    SqlxMigrator(sqlx_migrator::SqlxMigrator),
    Refinery(refinery_runner::RefineryRunner),
    SeaOrm(sea_orm_runner::SeaOrmRunner),
}

impl Runner {
    /// Connects and loads (untimed). `headline` runs the project's generated `#[migration]`
    /// functions instead of its run-time set.
    pub async fn open(
        kind: Kind,
        target: &Target,
        steps: &Arc<Vec<Step>>,
        headline: bool,
    ) -> Runner {
        match kind {
            Kind::Floor => Runner::Floor(floor::Floor::open(target, steps.clone()).await),
            Kind::Ours => Runner::Ours(ours::Ours::open(target, steps.clone(), headline).await),
            Kind::SqlxMigrator => {
                Runner::SqlxMigrator(sqlx_migrator::SqlxMigrator::open(target, steps).await)
            }
            Kind::Refinery => {
                Runner::Refinery(refinery_runner::RefineryRunner::open(target, steps).await)
            }
            Kind::SeaOrm => {
                Runner::SeaOrm(sea_orm_runner::SeaOrmRunner::open(target, steps.clone()).await)
            }
        }
    }

    /// Applies what is pending; the timed call.
    pub async fn run(&mut self) {
        match self {
            Runner::Floor(r) => r.run().await,
            Runner::Ours(r) => r.run().await,
            Runner::SqlxMigrator(r) => r.run().await,
            Runner::Refinery(r) => r.run().await,
            Runner::SeaOrm(r) => r.run().await,
        }
    }
}
