migrate::migrations! { heads { session = "1.0.0" } }

#[migrate::migration(table = "session", version = "1.0.0", irreversible)]
async fn create(_db: &mut migrate::Conn<'_>) -> migrate::Result<()> {
    Ok(())
}

// Added without moving the head in migrations!{} above.
#[migrate::migration(table = "session", version = "1.1.0", parent = "1.0.0", irreversible)]
async fn add_state(_db: &mut migrate::Conn<'_>) -> migrate::Result<()> {
    Ok(())
}

fn main() {}
