migrate::migrations! {}

migrate::sql_dir!(table = "t", dir = "");

fn main() {}
