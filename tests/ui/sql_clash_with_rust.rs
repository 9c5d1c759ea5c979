migrate::migrations! {}

migrate::sql_dir!(table = "t", dir = "../ui-sql/clash_with_rust");

#[migrate::migration(table = "t", version = "1.0.0", irreversible)]
async fn create(db: &mut migrate::Conn<'_>) -> migrate::Result<()> {
    db.execute("CREATE TABLE t (id INT)").await?;
    Ok(())
}

fn main() {}
