migrate::migrations! { heads { session = "1.2.0", memory = "1.0.0" } }

// The head names 1.2.0, which no migration declares; and `metrics` is not listed at all.
#[migrate::migration(table = "session", version = "1.0.0", irreversible)]
async fn create(_db: &mut migrate::Conn<'_>) -> migrate::Result<()> {
    Ok(())
}

#[migrate::migration(table = "memory", version = "1.0.0", irreversible)]
async fn create_memory(_db: &mut migrate::Conn<'_>) -> migrate::Result<()> {
    Ok(())
}

#[migrate::migration(table = "metrics", version = "1.0.0", irreversible)]
async fn create_metrics(_db: &mut migrate::Conn<'_>) -> migrate::Result<()> {
    Ok(())
}

fn main() {}
