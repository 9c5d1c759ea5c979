migrate::migrations! {}

#[migrate::migration(table = "session", version = "1.0.0", irreversible)]
async fn create(_db: &mut migrate::Conn<'_>) -> migrate::Result<u32> {
    Ok(1)
}

#[migrate::migration(table = "memory", version = "1.0.0", irreversible)]
async fn create_memory(_db: &mut migrate::Conn<'_>) {}

fn main() {}
