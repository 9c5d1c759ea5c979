//! The migration endpoints over the quickstart's migrations, on a real server:
//!
//! ```text
//! MIGRATE_HTTP_TOKEN=secret cargo run --example http --features http -- --addr 127.0.0.1:8080
//! curl -s localhost:8080/migrations/status
//! curl -s -X POST -H 'Authorization: Bearer secret' localhost:8080/migrations/up
//! ```
//!
//! Options: `--addr HOST:PORT` (port 0 picks a free one; default 127.0.0.1:8080),
//! `--database-url URL` (or `DATABASE_URL`; default `sqlite://http-example.db?mode=rwc`),
//! `--token TOKEN` (or `MIGRATE_HTTP_TOKEN`), `--insecure-no-auth`. It prints
//! `listening on <addr>` once it accepts connections.

use migrate::http::{router, HttpConfig};
use std::process::ExitCode;

include!("../quickstart/migrations.rs");

struct Options {
    addr: String,
    database_url: String,
    token: Option<String>,
    insecure: bool,
}

fn options() -> Result<Options, String> {
    let mut options = Options {
        addr: "127.0.0.1:8080".to_string(),
        database_url: std::env::var("DATABASE_URL")
            .unwrap_or_else(|_| "sqlite://http-example.db?mode=rwc".to_string()),
        token: std::env::var("MIGRATE_HTTP_TOKEN").ok(),
        insecure: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--addr" => options.addr = value("--addr")?,
            "--database-url" => options.database_url = value("--database-url")?,
            "--token" => options.token = Some(value("--token")?),
            "--insecure-no-auth" => options.insecure = true,
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    Ok(options)
}

#[tokio::main]
async fn main() -> ExitCode {
    let options = match options() {
        Ok(options) => options,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(2);
        }
    };
    match serve(options).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(options: Options) -> Result<(), Box<dyn std::error::Error>> {
    let db = migrate::connect(&options.database_url).await?;
    let manager = migrate::MigrationManager::new(db, [&MIGRATIONS])?;
    let config = if options.insecure {
        HttpConfig::insecure_no_auth()
    } else {
        HttpConfig {
            token: options.token,
            ..Default::default()
        }
    };
    let app = router(manager, config)?;
    let listener = tokio::net::TcpListener::bind(&options.addr).await?;
    println!("listening on {}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
