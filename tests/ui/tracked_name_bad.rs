migrate::migrations! { module = "app\0two" }

#[migrate::migration(table = "a\0b", version = "1.0.0", irreversible)]
async fn create(_db: &mut migrate::Conn<'_>) -> migrate::Result<()> {
    Ok(())
}

fn main() {}
