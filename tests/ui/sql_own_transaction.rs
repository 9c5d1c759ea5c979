migrate::migrations! {}

migrate::sql_dir!(table = "t", dir = "../ui-sql/own_transaction");

fn main() {}
