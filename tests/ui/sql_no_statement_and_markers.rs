migrate::migrations! {}

// A file of comments only (what `migrate new --sql` writes, not filled in yet), a template
// inside a template, a marker that is not the marker, and a marker on a fresh install.
migrate::sql_dir!(table = "t", dir = "../ui-sql/no_statement_and_markers");

fn main() {}
