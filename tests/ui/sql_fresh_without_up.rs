migrate::migrations! {}

migrate::sql_dir!(table = "t", dir = "../ui-sql/fresh_without_up");

fn main() {}
