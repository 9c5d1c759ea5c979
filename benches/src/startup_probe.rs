//! `--probe-startup`: the start-up timed whole, split into its phases, for the floor and
//! the project, alternating, on the workload's applied databases. Not part of the published
//! tables: it says where the start-up's time goes (connect; build the manager; the first check).

use crate::contenders::floor::Floor;
use crate::target::Target;
use crate::workload::Step;
use migrate::testing::Backend;
use migrate::MigrationManager;
use std::sync::Arc;
use std::time::{Duration, Instant};

thread_local! {
    static GRAPH: std::cell::RefCell<Vec<Duration>> = const { std::cell::RefCell::new(Vec::new()) };
}

fn median(mut samples: Vec<Duration>) -> f64 {
    samples.sort();
    samples[samples.len() / 2].as_secs_f64() * 1e6
}

/// Prints the median of each phase over `rounds` alternating rounds.
pub async fn probe(backend: Backend, steps: &Arc<Vec<Step>>, rounds: usize) {
    let (Some(floor_target), Some(ours_target)) =
        (Target::fresh(backend).await, Target::fresh(backend).await)
    else {
        println!("{}: SKIPPED (server unavailable)", backend.name());
        return;
    };
    Floor::open(&floor_target, steps.clone()).await.run().await;
    {
        let executor = migrate::connect(&ours_target.url).await.expect("connect");
        let manager = MigrationManager::new(executor, [&crate::MIGRATIONS]).expect("graph");
        manager.up().await.expect("apply");
    }
    let mut floor = [Vec::new(), Vec::new(), Vec::new()];
    let mut ours = [Vec::new(), Vec::new(), Vec::new(), Vec::new()];
    for round in 0..rounds {
        for turn in 0..2 {
            if (round + turn) % 2 == 0 {
                let start = Instant::now();
                let mut runner = Floor::open(&floor_target, steps.clone()).await;
                let connected = Instant::now();
                runner.run().await;
                let checked = Instant::now();
                floor[0].push(connected - start);
                floor[1].push(checked - connected);
                floor[2].push(checked - start);
                drop(runner);
            } else {
                let start = Instant::now();
                let executor = migrate::connect(&ours_target.url).await.expect("connect");
                let connected = Instant::now();
                if std::env::var_os("PROBE_GRAPH_FIRST").is_some() {
                    let graph = migrate::__private::Graph::build([&crate::MIGRATIONS]);
                    std::hint::black_box(graph.expect("graph"));
                    let graph_built = Instant::now();
                    GRAPH.with(|g| g.borrow_mut().push(graph_built - connected));
                }
                let connected = Instant::now();
                let manager =
                    MigrationManager::new(executor, [&crate::MIGRATIONS]).expect("graph");
                let built = Instant::now();
                manager.up().await.expect("up");
                let checked = Instant::now();
                ours[0].push(connected - start);
                ours[1].push(built - connected);
                ours[2].push(checked - built);
                ours[3].push(checked - start);
                drop(manager);
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    let graph_first = GRAPH.with(|g| std::mem::take(&mut *g.borrow_mut()));
    if !graph_first.is_empty() {
        println!("graph built first: {:.0} µs", median(graph_first));
    }
    let [f_connect, f_check, f_whole] = floor;
    let [o_connect, o_new, o_check, o_whole] = ours;
    let (fw, ow) = (median(f_whole), median(o_whole));
    println!(
        "{}: floor connect {:.0} check {:.0} whole {fw:.0} µs | ours connect {:.0} new {:.0} check {:.0} whole {ow:.0} µs | {:.2}× (median of {rounds})",
        backend.name(),
        median(f_connect),
        median(f_check),
        median(o_connect),
        median(o_new),
        median(o_check),
        ow / fw
    );
}

/// `--probe-new N`: builds the graph of the compiled migrations `n` times (for `perf record`).
pub fn build_graph_repeatedly(n: usize) {
    let clock = Instant::now();
    for _ in 0..n {
        let graph = migrate::__private::Graph::build([&crate::MIGRATIONS]).expect("graph");
        std::hint::black_box(graph);
    }
    println!(
        "graph of the compiled migrations: {:.1} µs each ({n} builds)",
        clock.elapsed().as_secs_f64() * 1e6 / n as f64
    );
}

/// `--probe-prepare-sqlite FILE`: applies the workload to a SQLite file, the floor's table and
/// ours, for `--probe-first-startup`.
pub async fn prepare_sqlite(path: &str, steps: &Arc<Vec<Step>>) {
    let floor_url = format!("sqlite://{path}.floor?mode=rwc");
    let mut floor = Floor::open_url(Backend::Sqlite, &floor_url, steps.clone()).await;
    floor.run().await;
    let url = format!("sqlite://{path}?mode=rwc");
    let executor = migrate::connect(&url).await.expect("connect");
    let manager = MigrationManager::new(executor, [&crate::MIGRATIONS]).expect("graph");
    manager.up().await.expect("apply");
}

/// `--probe-first-startup FILE floor|ours`: one start-up timed whole, the first of this
/// process (cold: nothing built or cached yet, as a service's start-up is), on a SQLite file
/// `--probe-prepare-sqlite` made (ours in FILE, the floor's in FILE.floor); prints the microseconds.
pub async fn first_startup(path: &str, which: &str, steps: &Arc<Vec<Step>>) {
    let url = format!("sqlite://{path}?mode=rwc");
    let floor_url = format!("sqlite://{path}.floor?mode=rwc");
    let start = Instant::now();
    if which == "floor" {
        let mut floor = Floor::open_url(Backend::Sqlite, &floor_url, steps.clone()).await;
        floor.run().await;
    } else {
        let executor = migrate::connect(&url).await.expect("connect");
        let manager = MigrationManager::new(executor, [&crate::MIGRATIONS]).expect("graph");
        manager.up().await.expect("up");
    }
    println!("{which} {}", start.elapsed().as_micros());
}

/// `--probe-reads`: on MariaDB, the first query on a new connection, for several shapes of the
/// state read and the floor's `MAX`, each on a connection of its own, alternating; medians.
pub async fn first_reads(steps: &Arc<Vec<Step>>, rounds: usize) {
    use sqlx::{Connection, Row};
    let (Some(floor_target), Some(ours_target)) = (
        Target::fresh(Backend::MySql).await,
        Target::fresh(Backend::MySql).await,
    ) else {
        println!("mysql: SKIPPED");
        return;
    };
    Floor::open(&floor_target, steps.clone()).await.run().await;
    {
        let executor = migrate::connect(&ours_target.url).await.expect("connect");
        let manager = MigrationManager::new(executor, [&crate::MIGRATIONS]).expect("graph");
        manager.up().await.expect("apply");
    }
    let mut conn = sqlx::MySqlConnection::connect(&ours_target.url)
        .await
        .expect("connect");
    let state: String = sqlx::raw_sql(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE() \
         AND table_name = 'migrate_schema_versions'",
    )
    .fetch_one(&mut conn)
    .await
    .expect("state table")
    .get(0);
    let shapes: Vec<(&str, String, &str)> = vec![
        ("floor MAX", "SELECT MAX(version) FROM raw_migrations".into(), "floor"),
        (
            "ours, 9 columns",
            format!("SELECT module, table_name, version, checksum, dirty_version, dirty_name, dirty_direction, dirty_since, fingerprint FROM {state}"),
            "ours",
        ),
        (
            "5 columns",
            format!("SELECT module, table_name, version, checksum, fingerprint FROM {state}"),
            "ours",
        ),
        (
            "BIT_XOR",
            format!("SELECT BIT_XOR(fingerprint) FROM {state}"),
            "ours",
        ),
        ("SELECT 1", "SELECT 1".into(), "ours"),
    ];
    let mut times: Vec<Vec<Duration>> = shapes.iter().map(|_| Vec::new()).collect();
    for round in 0..rounds {
        for k in 0..shapes.len() {
            let i = (round + k) % shapes.len();
            let (_, sql, which) = &shapes[i];
            let url = if *which == "floor" {
                &floor_target.url
            } else {
                &ours_target.url
            };
            let mut conn = sqlx::MySqlConnection::connect(url).await.expect("connect");
            let start = Instant::now();
            let rows = sqlx::raw_sql(sqlx::AssertSqlSafe(sql.clone()))
                .fetch_all(&mut conn)
                .await
                .expect("read");
            times[i].push(start.elapsed());
            std::hint::black_box(rows);
            drop(conn);
        }
    }
    for ((name, _, _), samples) in shapes.iter().zip(times) {
        println!("{name}: {:.0} µs", median(samples));
    }
}
