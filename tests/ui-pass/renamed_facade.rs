// A host that re-exports the facade under its own path, and tells the macros where it is with
// `crate = "..."`. (tests/renamed-dependency proves the same for a renamed dependency, where
// `::migrate` does not resolve at all.)
mod db {
    pub use migrate::*;
}

db::migrations! { crate = "crate::db", heads { session = "1.1.0" } }

#[db::migration(crate = "crate::db", table = "session", version = "1.0.0", irreversible)]
async fn create(conn: &mut db::Conn<'_>) -> db::Result<()> {
    conn.execute("CREATE TABLE session (id TEXT PRIMARY KEY)").await?;
    Ok(())
}

#[db::migration(crate = "crate::db", table = "session", version = "1.1.0", parent = "1.0.0", down = drop_state)]
async fn add_state(conn: &mut db::Conn<'_>) -> db::Result<()> {
    conn.execute("ALTER TABLE session ADD COLUMN state TEXT").await?;
    Ok(())
}

async fn drop_state(conn: &mut db::Conn<'_>) -> db::Result<()> {
    conn.execute("ALTER TABLE session DROP COLUMN state").await?;
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let backend = db::connect("sqlite::memory:").await.expect("sqlite");
    let manager = db::MigrationManager::new(backend, [&MIGRATIONS]).expect("graph");
    manager.up().await.expect("up");
    assert_eq!(
        manager.current_version("session").await.expect("version"),
        Some(db::Version::new(1, 1, 0))
    );
    manager.down().target("1.0.0").await.expect("down");
}
