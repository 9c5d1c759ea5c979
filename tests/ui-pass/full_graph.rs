//! Everything the attribute accepts, in one crate that must compile.
migrate::migrations! { module = "ui_pass", heads { session = "1.2.0-beta.1", memory = "1.0.0" } }

#[migrate::migration(table = "session", version = "1.0.0", down = revert, name = "create session")]
async fn create(db: &mut migrate::Conn<'_>) -> migrate::Result<()> {
    db.execute("CREATE TABLE session (id TEXT)").await?;
    Ok(())
}

async fn revert(db: &mut migrate::Conn<'_>) -> migrate::Result<()> {
    db.execute("DROP TABLE session").await?;
    Ok(())
}

mod later {
    #[migrate::migration(table = "session", version = "1.2.0-beta.1", parent = "1.0.0", irreversible, transaction = false)]
    async fn beta(_db: &mut migrate::Conn<'_>) -> migrate::Result<()> {
        Ok(())
    }
}

#[migrate::migration(table = "memory", version = "1.0.0", down = self::revert, after = "session@1.0.0")]
async fn memory(_db: &mut migrate::Conn<'_>) -> migrate::Result<()> {
    Ok(())
}

fn main() {
    let graph = MIGRATIONS.validate().expect("valid graph");
    assert_eq!(graph.len(), 3);
}
