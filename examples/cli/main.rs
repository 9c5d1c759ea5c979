//! The host binary's migration commands over the quickstart's migrations, built with one call.
//!
//! ```text
//! export DATABASE_URL=sqlite://cli-example.db?mode=rwc
//! cargo run --example cli --features cli -- status
//! cargo run --example cli --features cli -- up
//! cargo run --example cli --features cli -- down -1 --table session
//! cargo run --example cli --features cli -- --help
//! ```

include!("../quickstart/migrations.rs");

fn main() -> std::process::ExitCode {
    migrate::cli::run([&MIGRATIONS])
}
