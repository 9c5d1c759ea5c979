//! Agno's migration history on `migrate`, with every command of `migrate::cli`:
//!
//! ```sh
//! cargo run --example agno -- --database-url URL up
//! cargo run --example agno -- --database-url 'sqlite://agno.db?mode=rwc' status
//! ```
//!
//! Agno's table names are the defaults; `--table-name session=my_sessions` (and
//! `--table-name runs=my_sessions_runs`, as Agno derives it) follows a renamed table. An
//! existing Agno database is upgraded from what `agno_schema_versions` says (read only), a
//! new one is created (`install-fresh` creates each table at its head in one step; sessions at
//! 2.5.0, which 3.0.0 then leaves as it is).

fn main() -> std::process::ExitCode {
    migrate::cli::Cli::new([&agno_migrations::MIGRATIONS])
        .configure(agno_migrations::configure)
        .run()
}
