migrate::migrations! {}

#[migrate::migration(table = "session", version = "1.0.0", irreversible)]
async fn create(_db: &mut migrate::Conn<'_>) -> migrate::Result<()> {
    Ok(())
}

#[migrate::migration(table = "session", version = "1.1.0", parent = "1.0.0", irreversible)]
async fn branch_a(_db: &mut migrate::Conn<'_>) -> migrate::Result<()> {
    Ok(())
}

// Two branches upgrade from 1.0.0.
#[migrate::migration(table = "session", version = "1.2.0", parent = "1.0.0", irreversible)]
async fn branch_b(_db: &mut migrate::Conn<'_>) -> migrate::Result<()> {
    Ok(())
}

fn main() {}
