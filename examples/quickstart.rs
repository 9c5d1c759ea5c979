//! The quickstart: three tables on SQLite, up to the latest versions, a status table, down to
//! 2.0.0 and up again. Run it with `cargo run --example quickstart`; it creates `quickstart.db`
//! in the working directory.

use migrate::{Conn, MigrationManager, Result};

// The crate's anchor. `heads` makes "added a migration but forgot to move the head" a compile
// error; every table with migrations must be listed.
migrate::migrations! { heads { session = "2.3.0", memory = "2.3.0", metrics = "2.1.0" } }

// --- session: 2.0.0 -> 2.1.0 -> 2.3.0 -----------------------------------------------------

#[migrate::migration(table = "session", version = "2.0.0", down = drop_session)]
async fn create_session(db: &mut Conn<'_>) -> Result<()> {
    db.execute("CREATE TABLE {{tables.session}} (session_id TEXT PRIMARY KEY, data TEXT)")
        .await?;
    Ok(())
}
async fn drop_session(db: &mut Conn<'_>) -> Result<()> {
    db.execute("DROP TABLE {{tables.session}}").await?;
    Ok(())
}

#[migrate::migration(table = "session", version = "2.1.0", parent = "2.0.0", down = drop_created_at)]
async fn session_created_at(db: &mut Conn<'_>) -> Result<()> {
    db.execute("ALTER TABLE session ADD COLUMN created_at BIGINT NOT NULL DEFAULT 0")
        .await?;
    Ok(())
}
async fn drop_created_at(db: &mut Conn<'_>) -> Result<()> {
    db.execute("ALTER TABLE session DROP COLUMN created_at")
        .await?;
    Ok(())
}

// Index creation outside a transaction (on PostgreSQL this would be CONCURRENTLY): the step is
// journalled, so a crash half-way leaves a dirty mark instead of a silent half-state.
#[migrate::migration(
    table = "session",
    version = "2.3.0",
    parent = "2.1.0",
    down = drop_created_at_index,
    transaction = false
)]
async fn session_created_at_index(db: &mut Conn<'_>) -> Result<()> {
    db.execute("CREATE INDEX IF NOT EXISTS idx_session_created_at ON session (created_at)")
        .await?;
    Ok(())
}
async fn drop_created_at_index(db: &mut Conn<'_>) -> Result<()> {
    db.execute("DROP INDEX IF EXISTS idx_session_created_at")
        .await?;
    Ok(())
}

// --- memory: 2.0.0 -> 2.3.0 ---------------------------------------------------------------

#[migrate::migration(table = "memory", version = "2.0.0", down = drop_memory)]
async fn create_memory(db: &mut Conn<'_>) -> Result<()> {
    db.execute("CREATE TABLE memory (memory_id TEXT PRIMARY KEY, session_id TEXT, memory TEXT)")
        .await?;
    Ok(())
}
async fn drop_memory(db: &mut Conn<'_>) -> Result<()> {
    db.execute("DROP TABLE memory").await?;
    Ok(())
}

// A data migration that needs session 2.1.0's column: `after` orders it behind that step.
#[migrate::migration(
    table = "memory",
    version = "2.3.0",
    parent = "2.0.0",
    down = drop_memory_created_at,
    after = "session@2.1.0"
)]
async fn memory_created_at(db: &mut Conn<'_>) -> Result<()> {
    db.execute("ALTER TABLE memory ADD COLUMN created_at BIGINT")
        .await?;
    db.execute(
        "UPDATE memory SET created_at = (SELECT s.created_at FROM session s \
         WHERE s.session_id = memory.session_id)",
    )
    .await?;
    Ok(())
}
async fn drop_memory_created_at(db: &mut Conn<'_>) -> Result<()> {
    db.execute("ALTER TABLE memory DROP COLUMN created_at")
        .await?;
    Ok(())
}

// --- metrics: 2.0.0 -> 2.1.0 --------------------------------------------------------------

#[migrate::migration(table = "metrics", version = "2.0.0", down = drop_metrics)]
async fn create_metrics(db: &mut Conn<'_>) -> Result<()> {
    db.execute("CREATE TABLE metrics (id INTEGER PRIMARY KEY, date TEXT NOT NULL)")
        .await?;
    Ok(())
}
async fn drop_metrics(db: &mut Conn<'_>) -> Result<()> {
    db.execute("DROP TABLE metrics").await?;
    Ok(())
}

#[migrate::migration(table = "metrics", version = "2.1.0", parent = "2.0.0", down = drop_tokens)]
async fn metrics_tokens(db: &mut Conn<'_>) -> Result<()> {
    db.execute("ALTER TABLE metrics ADD COLUMN token_metrics TEXT NOT NULL DEFAULT '{}'")
        .await?;
    Ok(())
}
async fn drop_tokens(db: &mut Conn<'_>) -> Result<()> {
    db.execute("ALTER TABLE metrics DROP COLUMN token_metrics")
        .await?;
    Ok(())
}

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

fn print_report(what: &str, report: &migrate::Report) {
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
