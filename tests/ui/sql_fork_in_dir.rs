migrate::migrations! {}

// The directory holds 1.0.0, 2.0.0 and 3.0.0, each file upgrading from the one before.
migrate::sql_dir!(table = "t", dir = "../ui-sql/fork_in_dir");

// A second step upgrading from the middle file's version: a fork.
#[migrate::migration(table = "t", version = "4.0.0", parent = "2.0.0", irreversible)]
async fn branch(db: &mut migrate::Conn<'_>) -> migrate::Result<()> {
    db.execute("ALTER TABLE t ADD COLUMN c INT").await?;
    Ok(())
}

fn main() {}
