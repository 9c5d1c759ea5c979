//! The side-by-side benchmark: the project against a raw sqlx floor, sqlx's `Migrator`,
//! refinery and sea-orm-migration, on one deterministic workload, interleaved in one process.
//!
//! ```text
//! cargo run --release --manifest-path benches/Cargo.toml -- [--quick] [--backends sqlite,postgres,mysql] [--growth 100,1000,10000]
//!     [--only floor,migrate,sqlx,refinery,sea-orm] [--runs N] [--noop-calls N] [--fresh-calls N]
//!     [--from-pool] [--multi-thread]
//! ```
//!
//! The harness runs on a current-thread Tokio runtime; `--multi-thread` runs it on a
//! multi-thread one (two workers), as `#[tokio::main]` gives a service.
//!
//! `--only` and `--runs` are for profiling one contender (`perf record` on a long run); the
//! published tables always run every contender, interleaved.
//!
//! Figures are medians with min–max, and ratios to the floor measured in the same run. See
//! BENCHMARKS.md for the latest results and their caveats.

mod compile_crates;
mod contenders;
mod startup_probe;
mod target;
mod workload;

use contenders::{Kind, Runner};
use migrate::testing::Backend;
use std::sync::Arc;
use std::time::{Duration, Instant};
use target::Target;

/// The headline workload size; keep it equal to `APPLY_N` in `build.rs`.
pub const APPLY_N: usize = 300;

/// The largest workload MySQL accepts (64 indexes per table).
const MYSQL_MAX_N: usize = 1_000;

migrate::migrations! {}
include!(concat!(env!("OUT_DIR"), "/workload_fns.rs"));

/// A temporary directory removed on drop.
pub struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new(kind: &str) -> TempDir {
        static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("migrate-bench-{kind}-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temporary directory");
        TempDir(dir)
    }

    fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Every contender's SQLite settings: WAL, synchronous = NORMAL.
pub fn sqlite_options(url: &str) -> sqlx::sqlite::SqliteConnectOptions {
    use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
    use std::str::FromStr;
    SqliteConnectOptions::from_str(url)
        .expect("sqlite url")
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
}

/// A sqlx SQLite connection with every contender's settings.
pub async fn sqlite_connection(url: &str) -> sqlx::SqliteConnection {
    use sqlx::ConnectOptions;
    sqlite_options(url).connect().await.expect("connect")
}

struct Config {
    backends: Vec<Backend>,
    only: Option<Vec<String>>,
    n: usize,
    runs: usize,
    noop_calls: usize,
    fresh_calls: usize,
    growth: Vec<usize>,
    quick: bool,
}

fn config() -> Config {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    let backends = args
        .iter()
        .position(|a| a == "--backends")
        .and_then(|i| args.get(i + 1))
        .map(|list| {
            list.split(',')
                .map(|b| match b {
                    "sqlite" => Backend::Sqlite,
                    "postgres" => Backend::Postgres,
                    "mysql" => Backend::MySql,
                    other => panic!("unknown backend {other}"),
                })
                .collect()
        })
        .unwrap_or_else(|| Backend::ALL.to_vec());
    let growth_arg = args
        .iter()
        .position(|a| a == "--growth")
        .and_then(|i| args.get(i + 1))
        .map(|list| {
            list.split(',')
                .filter_map(|n| n.parse().ok())
                .collect::<Vec<usize>>()
        });
    let value = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let only = value("--only").map(|list| list.split(',').map(str::to_string).collect());
    let runs = value("--runs").and_then(|n| n.parse().ok());
    Config {
        backends,
        only,
        n: APPLY_N,
        runs: runs.unwrap_or(if quick { 1 } else { 5 }),
        noop_calls: value("--noop-calls")
            .and_then(|n| n.parse().ok())
            .unwrap_or(if quick { 5 } else { 50 }),
        fresh_calls: value("--fresh-calls")
            .and_then(|n| n.parse().ok())
            .unwrap_or(if quick { 3 } else { 20 }),
        growth: growth_arg.unwrap_or_else(|| {
            if quick {
                vec![100]
            } else {
                vec![100, 1_000, 10_000]
            }
        }),
        quick,
    }
}

#[derive(Default, Clone)]
struct Samples(Vec<Duration>);

impl Samples {
    fn median(&self) -> Duration {
        let mut v = self.0.clone();
        v.sort();
        v.get(v.len() / 2).copied().unwrap_or_default()
    }
    fn min(&self) -> Duration {
        self.0.iter().min().copied().unwrap_or_default()
    }
    fn max(&self) -> Duration {
        self.0.iter().max().copied().unwrap_or_default()
    }
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1e3)
}

fn us(d: Duration) -> String {
    format!("{:.0}", d.as_secs_f64() * 1e6)
}

/// Adds a sample to a contender's series.
fn record(series: &mut [(Kind, Samples)], kind: impl std::borrow::Borrow<Kind>, elapsed: Duration) {
    let kind = *kind.borrow();
    if let Some((_, samples)) = series.iter_mut().find(|(k, _)| *k == kind) {
        samples.0.push(elapsed);
    }
}

async fn timed(runner: &mut Runner) -> Duration {
    let clock = Instant::now();
    runner.run().await;
    clock.elapsed()
}

/// Checks what an apply left: N version rows, and the seeded rows.
async fn verify(kind: Kind, target: &Target, n: usize) {
    let rows = target
        .scalar(&format!("SELECT COUNT(*) FROM {}", kind.version_table()))
        .await;
    assert_eq!(
        rows,
        n as i64,
        "{} recorded {rows} of {n} migrations",
        kind.name()
    );
    if n >= 12 {
        assert_eq!(
            target.scalar("SELECT COUNT(*) FROM culture").await,
            64,
            "{}",
            kind.name()
        );
    }
}

struct BackendResult {
    backend: Backend,
    apply: Vec<(Kind, Samples)>,
    noop_warm: Vec<(Kind, Samples)>,
    noop_fresh: Vec<(Kind, Samples)>,
    startup: Vec<(Kind, Samples)>,
}

/// The contenders whose start-up (connect, build, check) is timed whole.
const STARTUP_KINDS: [Kind; 2] = [Kind::Floor, Kind::Ours];

impl Config {
    fn kinds(&self, backend: Backend) -> Vec<Kind> {
        Kind::ALL
            .into_iter()
            .filter(|k| k.supports(backend))
            .filter(|k| {
                self.only
                    .as_ref()
                    .is_none_or(|only| only.iter().any(|o| o == k.key()))
            })
            .collect()
    }
}

async fn measure_backend(cfg: &Config, backend: Backend) -> Option<BackendResult> {
    let kinds = cfg.kinds(backend);
    let steps = Arc::new(workload::workload(cfg.n));
    let mut apply: Vec<(Kind, Samples)> = kinds.iter().map(|k| (*k, Samples::default())).collect();
    let mut last: Vec<(Kind, Runner, Target)> = Vec::new();
    // One untimed warm-up round, then `runs` timed rounds; the order rotates every round.
    for round in 0..=cfg.runs {
        last.clear();
        for offset in 0..kinds.len() {
            let kind = kinds[(round + offset) % kinds.len()];
            let target = Target::fresh(backend).await?;
            let mut runner = Runner::open(kind, &target, &steps, true).await;
            let elapsed = timed(&mut runner).await;
            verify(kind, &target, cfg.n).await;
            if round > 0 {
                record(&mut apply, kind, elapsed);
            }
            last.push((kind, runner, target));
        }
    }
    let mut noop_warm: Vec<(Kind, Samples)> =
        kinds.iter().map(|k| (*k, Samples::default())).collect();
    for call in 0..cfg.noop_calls {
        for offset in 0..last.len() {
            let (kind, runner, _) = &mut last[(call + offset) % kinds.len()];
            let elapsed = timed(runner).await;
            record(&mut noop_warm, kind, elapsed);
        }
    }
    let mut noop_fresh: Vec<(Kind, Samples)> =
        kinds.iter().map(|k| (*k, Samples::default())).collect();
    for _ in 0..cfg.fresh_calls {
        for (kind, _, target) in &last {
            let mut runner = Runner::open(*kind, target, &steps, true).await;
            let elapsed = timed(&mut runner).await;
            record(&mut noop_fresh, kind, elapsed);
            settle(runner).await;
        }
    }
    // A service's start-up, timed whole: connect, build the runner (ours: the manager over the
    // 300 compiled migrations), check. The floor and ours only: the peers' runners are built
    // here from the workload at run time, where a service would embed them at compile time.
    // The process is warm by now: what is built once per process (our shared statements, the
    // registry of compiled migrations) is not in these figures (a service pays it once, at
    // its first start-up). The two alternate which goes first, and each runner is dropped and
    // its connections' return to the pool run before the next clock starts.
    let mut startup: Vec<(Kind, Samples)> = Vec::new();
    let pair: Vec<&(Kind, Runner, Target)> = last
        .iter()
        .filter(|(k, _, _)| STARTUP_KINDS.contains(k))
        .collect();
    for round in 0..cfg.fresh_calls {
        for offset in 0..pair.len() {
            let (kind, _, target) = pair[(round + offset) % pair.len()];
            let clock = Instant::now();
            let mut runner = Runner::open(*kind, target, &steps, true).await;
            runner.run().await;
            let elapsed = clock.elapsed();
            if !startup.iter().any(|(k, _)| k == kind) {
                startup.push((*kind, Samples::default()));
            }
            record(&mut startup, kind, elapsed);
            settle(runner).await;
        }
    }
    for (kind, _, target) in &last {
        verify(*kind, target, cfg.n).await;
    }
    Some(BackendResult {
        backend,
        apply,
        noop_warm,
        noop_fresh,
        startup,
    })
}

async fn measure_growth(cfg: &Config, backend: Backend) -> Option<Vec<(Kind, Vec<Duration>)>> {
    let kinds = cfg.kinds(backend);
    let mut out: Vec<(Kind, Vec<Duration>)> = kinds.iter().map(|k| (*k, Vec::new())).collect();
    for &n in &cfg.growth {
        let steps = Arc::new(workload::workload(n));
        for (kind, medians) in out.iter_mut() {
            if backend == Backend::MySql && n > MYSQL_MAX_N {
                // The workload adds an index every fourth step per table; MySQL allows 64.
                medians.push(Duration::ZERO);
                continue;
            }
            let target = Target::fresh(backend).await?;
            let mut runner = Runner::open(*kind, &target, &steps, false).await;
            runner.run().await;
            verify(*kind, &target, n).await;
            let mut samples = Samples::default();
            for _ in 0..cfg.fresh_calls {
                samples.0.push(timed(&mut runner).await);
            }
            medians.push(samples.median());
        }
    }
    Some(out)
}

fn print_backend(cfg: &Config, r: &BackendResult) {
    let floor_apply = r
        .apply
        .iter()
        .find(|(k, _)| *k == Kind::Floor)
        .map(|(_, s)| s.median())
        .unwrap_or_default();
    let floor_warm = r
        .noop_warm
        .iter()
        .find(|(k, _)| *k == Kind::Floor)
        .map(|(_, s)| s.median())
        .unwrap_or_default();
    let floor_fresh = r
        .noop_fresh
        .iter()
        .find(|(k, _)| *k == Kind::Floor)
        .map(|(_, s)| s.median())
        .unwrap_or_default();
    println!(
        "\n### {} (N = {}, {} apply runs)\n",
        r.backend.name(),
        cfg.n,
        cfg.runs
    );
    println!("| contender | apply, ms (min–max) | × floor | overhead µs/migration | no-op warm, µs (min–max) | × floor | no-op fresh conn, µs | × floor |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for (kind, apply) in &r.apply {
        let warm = &r
            .noop_warm
            .iter()
            .find(|(k, _)| k == kind)
            .map(|(_, s)| s.clone())
            .unwrap_or_default();
        let fresh = &r
            .noop_fresh
            .iter()
            .find(|(k, _)| k == kind)
            .map(|(_, s)| s.clone())
            .unwrap_or_default();
        let overhead =
            (apply.median().as_secs_f64() - floor_apply.as_secs_f64()) * 1e6 / cfg.n as f64;
        println!(
            "| {} | {} ({}–{}) | {:.2} | {:+.1} | {} ({}–{}) | {:.2} | {} | {:.2} |",
            kind.name(),
            ms(apply.median()),
            ms(apply.min()),
            ms(apply.max()),
            apply.median().as_secs_f64() / floor_apply.as_secs_f64(),
            overhead,
            us(warm.median()),
            us(warm.min()),
            us(warm.max()),
            warm.median().as_secs_f64() / floor_warm.as_secs_f64(),
            us(fresh.median()),
            fresh.median().as_secs_f64() / floor_fresh.as_secs_f64(),
        );
    }
    let startup_of = |kind: Kind| {
        r.startup
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, s)| s.median())
    };
    if let (Some(floor), Some(ours)) = (startup_of(Kind::Floor), startup_of(Kind::Ours)) {
        println!(
            "\nStart-up, timed whole (connect, build the runner, check; median of {}): raw floor {} µs, migrate {} µs, {:.2}× the floor.",
            cfg.fresh_calls,
            us(floor),
            us(ours),
            ours.as_secs_f64() / floor.as_secs_f64()
        );
    }
}

fn print_growth(cfg: &Config, backend: Backend, rows: &[(Kind, Vec<Duration>)]) {
    let header: Vec<String> = cfg.growth.iter().map(|n| format!("N={n}")).collect();
    println!(
        "\n### no-op (warm) growth on {}, µs (median of {} calls)\n",
        backend.name(),
        cfg.fresh_calls
    );
    println!(
        "| contender | {} | × floor at N={} |",
        header.join(" | "),
        cfg.growth.last().copied().unwrap_or(0)
    );
    println!("|---|{}---:|", "---:|".repeat(cfg.growth.len()));
    let floor = rows
        .iter()
        .find(|(k, _)| *k == Kind::Floor)
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    for (kind, medians) in rows {
        let cells: Vec<String> = medians
            .iter()
            .map(|d| {
                if d.is_zero() {
                    "—".to_string()
                } else {
                    us(*d)
                }
            })
            .collect();
        let last = |v: &[Duration]| v.iter().rev().find(|d| !d.is_zero()).copied();
        let ratio = match (last(medians), last(&floor)) {
            (Some(m), Some(f)) => m.as_secs_f64() / f.as_secs_f64(),
            _ => 0.0,
        };
        println!("| {} | {} | {ratio:.2} |", kind.name(), cells.join(" | "));
    }
}

fn main() {
    let multi_thread = std::env::args().any(|a| a == "--multi-thread");
    let mut runtime = if multi_thread {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        builder.worker_threads(2);
        builder
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    let runtime = runtime.enable_all().build().expect("a Tokio runtime");
    runtime.block_on(run(multi_thread));
}

/// Drops a runner and lets what its drop starts (a pooled connection's return, which sqlx
/// spawns and which pings) finish before the next clock starts, so that it is not timed as the
/// next contender's.
async fn settle(runner: Runner) {
    drop(runner);
    tokio::time::sleep(std::time::Duration::from_millis(2)).await;
}

async fn run(multi_thread: bool) {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--emit-compile-crates") {
        let dir = args.get(i + 1).expect("--emit-compile-crates DIR N");
        let n = args
            .get(i + 2)
            .and_then(|n| n.parse().ok())
            .unwrap_or(1_000);
        compile_crates::emit(std::path::Path::new(dir), n);
        return;
    }
    let cfg = config();
    if let Some(i) = args.iter().position(|a| a == "--probe-prepare-sqlite") {
        let steps = Arc::new(workload::workload(APPLY_N));
        startup_probe::prepare_sqlite(&args[i + 1], &steps).await;
        return;
    }
    if let Some(i) = args.iter().position(|a| a == "--probe-first-startup") {
        let steps = Arc::new(workload::workload(APPLY_N));
        startup_probe::first_startup(&args[i + 1], &args[i + 2], &steps).await;
        return;
    }
    if let Some(i) = args.iter().position(|a| a == "--probe-reads") {
        let rounds = args.get(i + 1).and_then(|n| n.parse().ok()).unwrap_or(200);
        let steps = Arc::new(workload::workload(APPLY_N));
        startup_probe::first_reads(&steps, rounds).await;
        return;
    }
    if let Some(i) = args.iter().position(|a| a == "--probe-new") {
        let n = args.get(i + 1).and_then(|n| n.parse().ok()).unwrap_or(10_000);
        startup_probe::build_graph_repeatedly(n);
        return;
    }
    if let Some(i) = args.iter().position(|a| a == "--probe-startup") {
        let rounds = args.get(i + 1).and_then(|n| n.parse().ok()).unwrap_or(200);
        let steps = Arc::new(workload::workload(APPLY_N));
        for &backend in &cfg.backends {
            startup_probe::probe(backend, &steps, rounds).await;
        }
        return;
    }
    let from_pool = args.iter().any(|a| a == "--from-pool");
    contenders::ours::FROM_POOL.store(from_pool, std::sync::atomic::Ordering::Relaxed);
    println!(
        "# migrate benchmark{}{}{}",
        if cfg.quick { " (quick)" } else { "" },
        if from_pool {
            " (migrate on a sqlx pool passed in: `from_pool`)"
        } else {
            ""
        },
        if multi_thread {
            " (on a multi-thread runtime)"
        } else {
            ""
        }
    );
    println!(
        "\nrustc release build; SQLite WAL + synchronous=NORMAL; PostgreSQL and MariaDB are throwaway local servers (fsync off)."
    );
    for &backend in &cfg.backends {
        match measure_backend(&cfg, backend).await {
            Some(result) => print_backend(&cfg, &result),
            None => println!("\n### {}: SKIPPED (server unavailable)", backend.name()),
        }
    }
    for &backend in &cfg.backends {
        if let Some(rows) = measure_growth(&cfg, backend).await {
            print_growth(&cfg, backend, &rows);
        }
    }
    let samples = if cfg.quick { 3 } else { 21 };
    println!("\n### planning\n");
    for n in [1_000, 10_000] {
        println!(
            "- build and validate the graph of {n} migrations: {:.2} ms (median of {samples})",
            contenders::planning_time(n, samples).as_secs_f64() * 1e3
        );
    }
}
