//! The example of DESIGN.md, as a user writes it: one arm per database in `match db.dialect()`.
migrate::migrations! { heads { session = "2.3.0", memory = "2.3.0" } }

#[migrate::migration(table = "session", version = "2.0.0", down = drop_session)]
async fn create_session(db: &mut migrate::Conn<'_>) -> migrate::Result<()> {
    db.execute("CREATE TABLE session (id TEXT PRIMARY KEY, data TEXT)").await?;
    Ok(())
}
async fn drop_session(db: &mut migrate::Conn<'_>) -> migrate::Result<()> {
    db.execute("DROP TABLE session").await?;
    Ok(())
}

#[migrate::migration(table = "session", version = "2.3.0", parent = "2.0.0", down = revert_2_3_0)]
async fn session_2_3_0(db: &mut migrate::Conn<'_>) -> migrate::Result<()> {
    let sql = match db.dialect() {
        migrate::Dialect::Sqlite => "ALTER TABLE session ADD COLUMN state TEXT",
        migrate::Dialect::Postgres => "ALTER TABLE session ADD COLUMN state JSONB",
        migrate::Dialect::MySql => "ALTER TABLE session ADD COLUMN state JSON",
    };
    db.execute(sql).await?;
    Ok(())
}
async fn revert_2_3_0(db: &mut migrate::Conn<'_>) -> migrate::Result<()> {
    db.execute("ALTER TABLE session DROP COLUMN state").await?;
    Ok(())
}

#[migrate::migration(table = "memory", version = "2.3.0", down = drop_memory, after = "session@2.3.0")]
async fn create_memory(db: &mut migrate::Conn<'_>) -> migrate::Result<()> {
    db.execute("CREATE TABLE memory (id TEXT PRIMARY KEY)").await?;
    Ok(())
}
async fn drop_memory(db: &mut migrate::Conn<'_>) -> migrate::Result<()> {
    db.execute("DROP TABLE memory").await?;
    Ok(())
}

fn main() {
    support::with_sqlite_manager("design", &MIGRATIONS, |manager| async move {
        manager.up().await.unwrap();
        assert_eq!(manager.current_version("session").await.unwrap(), Some("2.3.0".parse().unwrap()));
        assert_eq!(manager.current_version("memory").await.unwrap(), Some("2.3.0".parse().unwrap()));
        manager.down().target("2.0.0").table("memory").table("session").await.unwrap();
        assert_eq!(manager.current_version("session").await.unwrap(), Some("2.0.0".parse().unwrap()));
    });
}

#[path = "support/sqlite.rs"]
mod support;
