migrate::migrations! {}

#[migrate::migration(table = "session", version = "1.0.0", down = drop_sesion)]
async fn create(_db: &mut migrate::Conn<'_>) -> migrate::Result<()> {
    Ok(())
}

async fn drop_session(_db: &mut migrate::Conn<'_>) -> migrate::Result<()> {
    Ok(())
}

fn main() {}
