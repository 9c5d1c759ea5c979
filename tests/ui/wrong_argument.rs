migrate::migrations! {}

#[migrate::migration(table = "session", version = "1.0.0", irreversible)]
async fn create(_db: &mut String) -> migrate::Result<()> {
    Ok(())
}

#[migrate::migration(table = "memory", version = "1.0.0", irreversible)]
async fn create_memory(_db: migrate::Conn<'_>, _extra: u8) -> migrate::Result<()> {
    Ok(())
}

fn main() {}
