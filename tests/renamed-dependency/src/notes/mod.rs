//! SQL files found relative to this file (`sql/`, beside it), not to the crate root: cargo
//! gives rustc a workspace member's paths relative to the workspace root, and the
//! `include_str!` that `sql_dir!` writes must still find them.

db::sql_dir!(crate = "db", table = "notes", dir = "sql");
