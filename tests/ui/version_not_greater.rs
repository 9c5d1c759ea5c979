migrate::migrations! {}

#[migrate::migration(table = "session", version = "2.0.0", irreversible)]
async fn create(_db: &mut migrate::Conn<'_>) -> migrate::Result<()> {
    Ok(())
}

#[migrate::migration(table = "session", version = "1.9.0", parent = "2.0.0", irreversible)]
async fn older(_db: &mut migrate::Conn<'_>) -> migrate::Result<()> {
    Ok(())
}

fn main() {}
