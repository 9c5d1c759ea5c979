migrate::migrations! {}

#[migrate::migration(table = "session", version = "1.0.0", irreversible)]
fn create(_db: &mut migrate::Conn<'_>) -> migrate::Result<()> {
    Ok(())
}

fn main() {}
