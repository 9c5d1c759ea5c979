migrate::migrations! {}

// The directory continues 5.0.0, but its first file is 1.0.0.
migrate::sql_dir!(table = "t", dir = "../ui-sql/below_parent", parent = "5.0.0");

fn main() {}
