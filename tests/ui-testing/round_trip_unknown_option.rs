migrate::migrations! {}

#[migrate::migration(table = "t", version = "1.0.0", irreversible)]
async fn create_t(_db: &mut migrate::Conn<'_>) -> migrate::Result<()> {
    Ok(())
}

migrate::round_trip_tests!(MIGRATIONS; backends = [sqlite], strict_column_orders = true);

fn main() {}
