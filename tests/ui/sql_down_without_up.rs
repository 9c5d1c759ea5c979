migrate::migrations! {}

migrate::sql_dir!(table = "t", dir = "../ui-sql/down_without_up");

fn main() {}
