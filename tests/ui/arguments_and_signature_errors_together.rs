migrate::migrations! {}

// A bad version and a function that is not async: both reported by one build.
#[migrate::migration(table = "session", version = "1.0", irreversible)]
fn create(_db: &mut migrate::Conn<'_>) -> migrate::Result<()> {
    Ok(())
}

fn main() {}
