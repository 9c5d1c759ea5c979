migrate::migrations! {}

#[migrate::migration(table = "session", version = "2.3", irreversible)]
async fn create(_db: &mut migrate::Conn<'_>) -> migrate::Result<()> {
    Ok(())
}

#[migrate::migration(table = "memory", version = "1.0.0", parent = "v0", irreversible)]
async fn create_memory(_db: &mut migrate::Conn<'_>) -> migrate::Result<()> {
    Ok(())
}

fn main() {}
