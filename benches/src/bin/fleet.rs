//! The fleet benchmark: the quickstart's seven migrations over 1,000 PostgreSQL schemas
//! (directly, and through a PgBouncer in transaction mode) and over 100 SQLite files, with
//! `migrate::fleet`, against a loop over sqlx's `Migrator` for the same schemas.
//!
//! ```text
//! cargo run --release --manifest-path benches/Cargo.toml --bin fleet -- [--schemas 1000] [--files 100]
//! ```
//!
//! Prints one line per measurement: wall time, targets per second, the connections the fleet's
//! pools may hold, and the process's peak resident memory so far.

include!("../../../examples/quickstart/migrations.rs");

use migrate::fleet::{Fleet, FleetOutcome, Target};
use migrate::testing::{PgBouncer, PostgresServer};
use migrate::ConnectOptions;
use sqlx::{AssertSqlSafe, Connection};
use std::time::{Duration, Instant};

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

fn line(what: &str, targets: usize, took: Duration, connections: Option<u32>) {
    println!(
        "FLEET {what:<44} targets={targets:>5} seconds={:>7.2} targets_per_second={:>7.0} connections={} peak_rss_mib={:.1}",
        took.as_secs_f64(),
        targets as f64 / took.as_secs_f64(),
        connections.map_or_else(|| "-".to_string(), |c| c.to_string()),
        peak_rss_kib() as f64 / 1024.0
    );
}

/// A fresh database on the server with `schemas` empty tenant schemas; its URL.
async fn tenants(admin: &str, name: &str, schemas: usize) -> String {
    let mut conn = sqlx::PgConnection::connect(admin).await.expect("admin");
    sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .expect("create database");
    let url = admin
        .rsplit_once('/')
        .map(|(server, _)| format!("{server}/{name}"))
        .expect("url");
    let mut conn = sqlx::PgConnection::connect(&url).await.expect("connect");
    let create: String = (0..schemas)
        .map(|i| format!("CREATE SCHEMA tenant_{i:04};"))
        .collect();
    sqlx::raw_sql(AssertSqlSafe(create))
        .execute(&mut conn)
        .await
        .expect("schemas");
    url
}

async fn fleet_up(what: &str, fleet: &Fleet) {
    let targets = fleet.target_list().len();
    let started = Instant::now();
    let report = fleet.up().await;
    assert_eq!(
        report.outcome,
        FleetOutcome::AllSucceeded,
        "{what}: {:?}",
        report.failures().next()
    );
    line(
        &format!("{what}: up from empty"),
        targets,
        started.elapsed(),
        Some(report.max_connections),
    );
    let started = Instant::now();
    let report = fleet.up().await;
    assert_eq!(report.outcome, FleetOutcome::AllSucceeded);
    line(
        &format!("{what}: all up to date"),
        targets,
        started.elapsed(),
        Some(report.max_connections),
    );
}

/// The quickstart as sqlx migration files (the same SQL, unqualified: sqlx's `Migrator` runs
/// in the connection's search_path).
fn sqlx_files(dir: &std::path::Path) {
    let files = [
        ("1_session.sql", "CREATE TABLE session (session_id VARCHAR(64) PRIMARY KEY, data TEXT)"),
        ("2_session_created_at.sql", "ALTER TABLE session ADD COLUMN created_at BIGINT NOT NULL DEFAULT 0"),
        ("3_memory.sql", "CREATE TABLE memory (memory_id VARCHAR(64) PRIMARY KEY, session_id VARCHAR(64), memory TEXT)"),
        ("4_metrics.sql", "CREATE TABLE metrics (id INTEGER PRIMARY KEY, day VARCHAR(10) NOT NULL)"),
        ("5_metrics_tokens.sql", "ALTER TABLE metrics ADD COLUMN token_count BIGINT NOT NULL DEFAULT 0"),
        ("6_memory_created_at.sql", "ALTER TABLE memory ADD COLUMN created_at BIGINT; UPDATE memory SET created_at = (SELECT s.created_at FROM session s WHERE s.session_id = memory.session_id)"),
        ("7_session_index.sql", "CREATE INDEX idx_session_created_at ON session (created_at)"),
    ];
    for (name, sql) in files {
        std::fs::write(dir.join(name), sql).expect("write");
    }
}

async fn sqlx_loop(url: &str, schemas: usize) {
    let dir = std::env::temp_dir().join(format!("migrate-fleet-sqlx-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    sqlx_files(&dir);
    let migrator = sqlx::migrate::Migrator::new(dir.as_path())
        .await
        .expect("migrator");
    for pass in ["up from empty", "all up to date"] {
        let started = Instant::now();
        for i in 0..schemas {
            let mut conn = sqlx::PgConnection::connect(url).await.expect("connect");
            sqlx::raw_sql(AssertSqlSafe(format!("SET search_path TO tenant_{i:04}")))
                .execute(&mut conn)
                .await
                .expect("search_path");
            migrator.run(&mut conn).await.expect("sqlx migrator");
            conn.close().await.expect("close");
        }
        line(
            &format!("postgres, a loop over sqlx's Migrator: {pass}"),
            schemas,
            started.elapsed(),
            Some(1),
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let schemas = arg("--schemas", 1_000);
    let files = arg("--files", 100);
    let concurrency = arg("--concurrency", 8);
    let server = PostgresServer::start()
        .expect("postgres")
        .expect("a throwaway PostgreSQL (initdb, pg_ctl)");
    let admin = server.url().to_string();
    println!("FLEET schemas={schemas} files={files} concurrency={concurrency}");

    let direct = tenants(&admin, "fleet_direct", schemas).await;
    let fleet = Fleet::new([&MIGRATIONS])
        .all_schemas(&direct, Some("tenant\\_%"))
        .await
        .expect("schemas")
        .concurrency(concurrency);
    fleet_up("postgres schemas, migrate::fleet", &fleet).await;

    let bounced = tenants(&admin, "fleet_bouncer", schemas).await;
    match PgBouncer::start(&bounced, &["postgres"]).expect("pgbouncer") {
        Some(pgbouncer) => {
            let url = pgbouncer.url(&bounced);
            let fleet = Fleet::new([&MIGRATIONS])
                .connect_options(ConnectOptions::new().transaction_pooling(true))
                .all_schemas(&url, Some("tenant\\_%"))
                .await
                .expect("schemas through pgbouncer")
                .concurrency(concurrency);
            fleet_up("postgres schemas through pgbouncer, fleet", &fleet).await;
        }
        None => println!("FLEET pgbouncer not installed: skipped"),
    }

    let dir = std::env::temp_dir().join(format!("migrate-fleet-sqlite-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let targets: Vec<Target> = (0..files)
        .map(|i| {
            Target::database(format!(
                "sqlite://{}?mode=rwc",
                dir.join(format!("t{i}.db")).display()
            ))
        })
        .collect();
    let fleet = Fleet::new([&MIGRATIONS])
        .targets(targets)
        .concurrency(concurrency);
    fleet_up("sqlite files, migrate::fleet", &fleet).await;
    let _ = std::fs::remove_dir_all(&dir);

    let plain = tenants(&admin, "fleet_sqlx", schemas).await;
    sqlx_loop(&plain, schemas).await;
}
