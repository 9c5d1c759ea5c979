//! Migrating at start-up, as a service would: `MIGRATE_ON_STARTUP=apply|check|off` chooses what
//! happens before it serves (unset means `check`). The database is `DATABASE_URL`, or
//! `startup-example.db` in the working directory.
//!
//! ```text
//! MIGRATE_ON_STARTUP=check cargo run --example startup    # refuses: the database is behind
//! MIGRATE_ON_STARTUP=apply cargo run --example startup    # applies, then serves
//! MIGRATE_ON_STARTUP=check cargo run --example startup    # serves
//! ```

use migrate::startup::{ensure, Policy};
use std::process::ExitCode;

include!("../quickstart/migrations.rs");

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "sqlite://startup-example.db?mode=rwc".to_string());
    let manager = match migrate::connect(&url).await {
        Ok(db) => match migrate::MigrationManager::new(db, [&MIGRATIONS]) {
            Ok(manager) => manager,
            Err(err) => return fail(&err),
        },
        Err(err) => return fail(&err),
    };
    match ensure(&manager, Policy::from_env()).await {
        Ok(ready) => {
            let applied = ready.report.map_or(0, |r| r.applied.len());
            println!(
                "serving: {:?} against {} ({applied} step(s) applied at start-up)",
                ready.policy, ready.target
            );
            ExitCode::SUCCESS
        }
        Err(err) => fail(&err),
    }
}

fn fail(err: &dyn std::error::Error) -> ExitCode {
    eprintln!("not starting: {err}");
    let mut source = err.source();
    while let Some(cause) = source {
        eprintln!("  caused by: {cause}");
        source = cause.source();
    }
    ExitCode::FAILURE
}
