migrate::migrations! {}

#[migrate::migration(table = "session", version = "1.0.0", irreversible)]
async fn create(_db: &mut migrate::Conn<'_>) -> migrate::Result<()> {
    Ok(())
}

// 1.1.0 was deleted: its child now names a parent that no migration declares.
#[migrate::migration(table = "session", version = "1.2.0", parent = "1.1.0", irreversible)]
async fn add_state(_db: &mut migrate::Conn<'_>) -> migrate::Result<()> {
    Ok(())
}

fn main() {}
