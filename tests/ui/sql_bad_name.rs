migrate::migrations! {}

migrate::sql_dir!(table = "t", dir = "../ui-sql/bad_name");

fn main() {}
