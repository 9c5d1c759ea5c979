//! Agno's migration history on `migrate`, with every command of `migrate::cli`:
//!
//! ```sh
//! cargo run --example agno --features cli,postgres,mysql -- --database-url URL up
//! cargo run --example agno --features cli -- --database-url 'sqlite://agno.db' status
//! ```
//!
//! Agno's table names are the defaults; `--table-name session=my_sessions` (and
//! `--table-name runs=my_sessions_runs`, as Agno derives it) follows a renamed table. An
//! existing Agno database is upgraded from what `agno_schema_versions` says (read only), a
//! new one is created (`install-fresh` creates each table at its head in one step).

mod history;

migrate::migrations! {
    heads {
        session = "3.0.0", memory = "2.3.0", metrics = "3.0.0", eval = "3.0.0", knowledge = "3.0.0",
        approvals = "2.5.6", runs = "3.0.0", v1_sessions = "2.0.0", v1_memories = "2.0.0",
    }
}

fn main() -> std::process::ExitCode {
    migrate::cli::Cli::new([&MIGRATIONS])
        .configure(history::configure)
        .run()
}
