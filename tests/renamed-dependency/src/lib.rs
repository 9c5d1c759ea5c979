//! Migrations written against the `migrate` crate renamed to `db`.

db::migrations! { crate = "db", module = "renamed", heads { session = "1.1.0", notes = "1.0.0" } }

mod notes;

/// The first version of `session`.
#[db::migration(crate = "db", table = "session", version = "1.0.0", down = drop_session)]
pub async fn create_session(conn: &mut db::Conn<'_>) -> db::Result<()> {
    conn.execute("CREATE TABLE {{tables.session}} (id TEXT PRIMARY KEY)")
        .await?;
    Ok(())
}

async fn drop_session(conn: &mut db::Conn<'_>) -> db::Result<()> {
    conn.execute("DROP TABLE {{tables.session}}").await?;
    Ok(())
}

/// Adds a state column.
#[db::migration(crate = "db", table = "session", version = "1.1.0", parent = "1.0.0", down = drop_state)]
pub async fn add_state(conn: &mut db::Conn<'_>) -> db::Result<()> {
    conn.execute("ALTER TABLE {{tables.session}} ADD COLUMN state TEXT")
        .await?;
    Ok(())
}

async fn drop_state(conn: &mut db::Conn<'_>) -> db::Result<()> {
    conn.execute("ALTER TABLE {{tables.session}} DROP COLUMN state")
        .await?;
    Ok(())
}
