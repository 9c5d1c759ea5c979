// A syntax error in a migration's body is rustc's to report, once, at the body's tokens: the
// attribute reads only the signature, and writes the body into the function it registers.
migrate::migrations! {}

#[migrate::migration(table = "session", version = "1.0.0", irreversible)]
async fn create(db: &mut migrate::Conn<'_>) -> migrate::Result<()> {
    db.execute("CREATE TABLE session (id INTEGER PRIMARY KEY)").await?;
    let half = 1 +;
    Ok(())
}

fn main() {}
