// No migrations!{} in this crate.
#[migrate::migration(table = "session", version = "1.0.0", irreversible)]
async fn create(_db: &mut migrate::Conn<'_>) -> migrate::Result<()> {
    Ok(())
}

fn main() {}
