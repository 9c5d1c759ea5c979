migrate::migrations! {}

migrate::sql_dir!(table = "t", dir = "../ui-sql/duplicate");

fn main() {}
