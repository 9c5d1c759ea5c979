// A mistake in migrations!{} is the only error: the crate's migrations still find the anchor.
migrate::migrations! { heads { session = "1.0" } }

#[migrate::migration(table = "session", version = "1.0.0", irreversible)]
async fn create(_db: &mut migrate::Conn<'_>) -> migrate::Result<()> {
    Ok(())
}

fn main() {}
