migrate::migrations! {}

macro_rules! sql_path {
    () => {
        "include_unfollowed.sql"
    };
}

// A path the checksum could not follow: an edit to its file would go unseen.
#[migrate::migration(table = "session", version = "1.0.0", irreversible)]
async fn create(db: &mut migrate::Conn<'_>) -> migrate::Result<()> {
    db.execute(include_str!(sql_path!())).await?;
    Ok(())
}

// Followed: a literal, and concat! of literals (and of env!, in tests/sql_rebuild.rs).
#[migrate::migration(table = "memory", version = "1.0.0", irreversible)]
async fn create_memory(db: &mut migrate::Conn<'_>) -> migrate::Result<()> {
    db.execute(include_str!("include_unfollowed.sql")).await?;
    db.execute(include_str!(concat!("include_", "unfollowed.sql"))).await?;
    Ok(())
}

fn main() {}
