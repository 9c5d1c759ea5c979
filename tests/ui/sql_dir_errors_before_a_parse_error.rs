migrate::migrations! {}

// The blank table is reported together with the value that does not parse.
migrate::sql_dir!(table = "", dir = 5);

fn main() {}
