migrate::migrations! {}

// `002_b.sql` is a directory: not a step, and not left out silently.
migrate::sql_dir!(table = "t", dir = "../ui-sql/entry_not_a_file");

fn main() {}
