migrate::migrations! {}

#[migrate::migration(table = "session", version = "1.0.0", irreversible, fresh = create_fresh)]
async fn create(_db: &mut migrate::Conn<'_>) -> migrate::Result<()> {
    Ok(())
}

async fn create_session_fresh(_db: &mut migrate::Conn<'_>) -> migrate::Result<()> {
    Ok(())
}

fn main() {}
