migrate::migrations! {}

migrate::sql_dir!(table = "t", dir = "../ui-sql/down_required", down = "required");

fn main() {}
