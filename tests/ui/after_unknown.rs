migrate::migrations! {}

#[migrate::migration(table = "session", version = "1.0.0", irreversible)]
async fn create(_db: &mut migrate::Conn<'_>) -> migrate::Result<()> {
    Ok(())
}

#[migrate::migration(table = "memory", version = "1.0.0", irreversible, after = "session@1.5.0")]
async fn create_memory(_db: &mut migrate::Conn<'_>) -> migrate::Result<()> {
    Ok(())
}

#[migrate::migration(table = "metrics", version = "1.0.0", irreversible, after = "session-1.0.0")]
async fn create_metrics(_db: &mut migrate::Conn<'_>) -> migrate::Result<()> {
    Ok(())
}

fn main() {}
