migrate::migrations! {}

// A byte-order mark, the `mysql` client's DELIMITER, and a `.SQL` file that would be left out.
migrate::sql_dir!(table = "t", dir = "../ui-sql/unreadable_text");

fn main() {}
