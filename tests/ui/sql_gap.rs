migrate::migrations! {}

migrate::sql_dir!(table = "t", dir = "../ui-sql/gap");

fn main() {}
