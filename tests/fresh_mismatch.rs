//! The fresh-install comparison catches a `fresh` function that does not build what the steps
//! build (agno#7156: a schema change shipped without its migration), on every backend.

use migrate::testing::{fresh_against_upgrade, Backend};
use migrate::{Conn, Result};

migrate::migrations! {}

#[migrate::migration(table = "approvals", version = "2.0.0", down = drop_approvals)]
async fn create_approvals(db: &mut Conn<'_>) -> Result<()> {
    db.execute(
        "CREATE TABLE {{tables.approvals}} (id VARCHAR(64) PRIMARY KEY, status VARCHAR(20))",
    )
    .await?;
    Ok(())
}
async fn drop_approvals(db: &mut Conn<'_>) -> Result<()> {
    db.execute("DROP TABLE {{tables.approvals}}").await?;
    Ok(())
}

#[migrate::migration(
    table = "approvals",
    version = "2.5.6",
    parent = "2.0.0",
    down = drop_run_status,
    fresh = approvals_fresh_without_run_status
)]
async fn add_run_status(db: &mut Conn<'_>) -> Result<()> {
    db.execute("ALTER TABLE {{tables.approvals}} ADD COLUMN run_status VARCHAR(32)")
        .await?;
    Ok(())
}
async fn drop_run_status(db: &mut Conn<'_>) -> Result<()> {
    db.execute("ALTER TABLE {{tables.approvals}} DROP COLUMN run_status")
        .await?;
    Ok(())
}
/// Wrong on purpose: the head's column is missing, as in a release that changed the fresh
/// schema and forgot the step (or the other way round).
async fn approvals_fresh_without_run_status(db: &mut Conn<'_>) -> Result<()> {
    db.execute(
        "CREATE TABLE {{tables.approvals}} (id VARCHAR(64) PRIMARY KEY, status VARCHAR(20))",
    )
    .await?;
    Ok(())
}

#[tokio::test]
async fn a_fresh_function_that_forgets_a_column_is_caught_on_every_backend() {
    for backend in [Backend::Sqlite, Backend::Postgres, Backend::MySql] {
        let Some(diff) = fresh_against_upgrade(backend, &[&MIGRATIONS])
            .await
            .expect("both databases built")
        else {
            continue;
        };
        assert!(
            !diff.is_empty_ignoring_moves(),
            "{}: not caught",
            backend.name()
        );
        let text = diff.to_string();
        assert!(
            text.contains("run_status"),
            "{}: the diff names the column:\n{text}",
            backend.name()
        );
    }
}
