migrate::migrations! {}

// A down and a fresh install marked no-transaction beside an up that is not.
migrate::sql_dir!(table = "t", dir = "../ui-sql/mixed_modes");

fn main() {}
