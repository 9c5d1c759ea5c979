migrate::migrations! {}

#[migrate::migration(table = "session", version = "1.0.0", irreversible, resumable)]
async fn copy_sessions(_db: &mut migrate::Conn<'_>) -> migrate::Result<()> {
    Ok(())
}

fn main() {}
