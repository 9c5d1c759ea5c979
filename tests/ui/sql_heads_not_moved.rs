// The directory holds 1.0.0 and 2.0.0: its last file was added without moving the head.
migrate::migrations! { heads { t = "1.0.0" } }

migrate::sql_dir!(table = "t", dir = "../ui-sql/heads_in_dir");

fn main() {}
