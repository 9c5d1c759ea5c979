//! `cargo run -p pgdbm-style -- [URL]`: with a PostgreSQL URL, migrates three tenant schemas;
//! without one, a SQLite file `pgdbm_style.db` in the working directory.

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    let url = std::env::args().nth(1);
    let outcome = match url.as_deref() {
        Some(url) if url.starts_with("postgres") => {
            let schemas = ["tenant_a", "tenant_b", "tenant_c"];
            pgdbm_style::migrate_tenants(url, &schemas)
                .await
                .map(|applied| {
                    for (schema, n) in schemas.iter().zip(applied) {
                        println!("{schema}: {n} step(s) applied");
                    }
                })
        }
        Some(url) => match migrate::connect(url).await {
            Ok(db) => pgdbm_style::migrate_up(db)
                .await
                .map(|r| println!("{} step(s) applied", r.applied.len())),
            Err(err) => Err(err),
        },
        None => match migrate::sqlite::SqliteDb::open("pgdbm_style.db").await {
            Ok(db) => pgdbm_style::migrate_up(db)
                .await
                .map(|r| println!("pgdbm_style.db: {} step(s) applied", r.applied.len())),
            Err(err) => Err(err),
        },
    };
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            let mut source = std::error::Error::source(&err);
            while let Some(cause) = source {
                eprintln!("  caused by: {cause}");
                source = cause.source();
            }
            std::process::ExitCode::FAILURE
        }
    }
}
