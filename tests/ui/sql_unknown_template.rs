migrate::migrations! {}

migrate::sql_dir!(table = "t", dir = "../ui-sql/unknown_template");

fn main() {}
