migrate::migrations! {}

migrate::sql_dir!(table = "t", dir = "../ui-sql/not_utf8");

fn main() {}
