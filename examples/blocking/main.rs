//! The quickstart's migrations from a plain `fn main`, without an async runtime:
//! `cargo run --example blocking` (it creates `blocking-example.db` in the working directory).

include!("../quickstart/migrations.rs");

fn main() -> migrate::Result<()> {
    let manager = migrate::blocking::MigrationManager::connect(
        "sqlite://blocking-example.db?mode=rwc",
        [&MIGRATIONS],
    )?;
    let report = manager.up().run()?;
    println!("up: {:?}, {} step(s)", report.status, report.applied.len());
    for table in manager.status()? {
        let current = table
            .current
            .map_or_else(|| "-".to_string(), |v| v.to_string());
        println!("  {:<10} {current}", table.table);
    }
    Ok(())
}
