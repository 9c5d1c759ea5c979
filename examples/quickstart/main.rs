//! The quickstart: three tables on SQLite, up to the latest versions, a status table, down to
//! 2.0.0 and up again. Run it with `cargo run --example quickstart`; it creates `quickstart.db`
//! in the working directory. The migrations are in `migrations.rs`.

use migrate::{MigrationManager, Result};

include!("migrations.rs");

async fn print_status(manager: &MigrationManager) -> Result<()> {
    println!(
        "  {:<10} {:<10} {:<10} {:>7}",
        "table", "current", "latest", "pending"
    );
    for table in manager.status().await? {
        let current = table
            .current
            .map_or_else(|| "-".to_string(), |v| v.to_string());
        println!(
            "  {:<10} {:<10} {:<10} {:>7}",
            table.table, current, table.latest, table.pending
        );
    }
    Ok(())
}

fn print_report(what: &str, report: &migrate::report::Report) {
    println!(
        "{what}: {:?}, {} step(s) in {:?}",
        report.status,
        report.applied.len(),
        report.total_time
    );
    for step in &report.applied {
        println!(
            "  {} {:<40} {:>10.3?}",
            step.direction,
            step.step.to_string(),
            step.execution_time
        );
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let db = migrate::sqlite::SqliteDb::open("quickstart.db").await?;
    let manager = MigrationManager::new(db, [&MIGRATIONS])?;

    let report = manager.up().await?;
    print_report("up", &report);
    print_status(&manager).await?;

    let report = manager.down().target("2.0.0").await?;
    print_report("down to 2.0.0", &report);
    print_status(&manager).await?;

    let report = manager.up().await?;
    print_report("up again", &report);
    print_status(&manager).await?;

    let again = manager.up().await?;
    println!("and once more: {:?}", again.status);
    Ok(())
}
