migrate::migrations! {}

mod first {
    #[migrate::migration(table = "session", version = "1.0.0", irreversible)]
    async fn create(_db: &mut migrate::Conn<'_>) -> migrate::Result<()> {
        Ok(())
    }
}

mod second {
    // The same (table, version) in another module of the same crate.
    #[migrate::migration(table = "session", version = "1.0.0", irreversible)]
    async fn create_again(_db: &mut migrate::Conn<'_>) -> migrate::Result<()> {
        Ok(())
    }
}

fn main() {}
