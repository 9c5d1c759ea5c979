//! sea-orm-migration: one `MigrationTrait` value per migration, whose `up` runs the SQL
//! unprepared; a one-connection pool, as sea-orm's own options build it.

use crate::target::Target;
use crate::workload::Step;
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection};
use std::sync::{Arc, Mutex};

/// The workload `migrations()` returns (it is an associated function without `self`).
static CURRENT: Mutex<Option<Arc<Vec<Step>>>> = Mutex::new(None);

struct SqlMigration {
    name: String,
    sql: String,
}

impl MigrationName for SqlMigration {
    fn name(&self) -> &str {
        &self.name
    }
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for SqlMigration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(&self.sql)
            .await?;
        Ok(())
    }
}

struct BenchMigrator;

impl MigratorTrait for BenchMigrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        let steps = CURRENT
            .lock()
            .expect("workload")
            .clone()
            .unwrap_or_default();
        steps
            .iter()
            .map(|s| {
                Box::new(SqlMigration {
                    name: format!("m{:05}", s.index),
                    sql: s.sql.clone(),
                }) as Box<dyn MigrationTrait>
            })
            .collect()
    }
}

pub struct SeaOrmRunner {
    db: DatabaseConnection,
    steps: Arc<Vec<Step>>,
}

impl SeaOrmRunner {
    pub async fn open(target: &Target, steps: Arc<Vec<Step>>) -> SeaOrmRunner {
        let mut options = ConnectOptions::new(target.url.clone());
        options
            .max_connections(1)
            .min_connections(1)
            .sqlx_logging(false);
        let db = Database::connect(options).await.expect("connect");
        if target.backend == migrate::testing::Backend::Sqlite {
            db.execute_unprepared("PRAGMA synchronous = NORMAL")
                .await
                .expect("synchronous");
        }
        SeaOrmRunner { db, steps }
    }

    pub async fn run(&mut self) {
        *CURRENT.lock().expect("workload") = Some(self.steps.clone());
        BenchMigrator::up(&self.db, None)
            .await
            .expect("sea-orm migrate");
    }
}
