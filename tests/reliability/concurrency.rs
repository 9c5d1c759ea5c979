//! Sixteen runner processes start the same request at the same moment on one database, over
//! 44 steps on 4 tables (some slow, some journalled, one a Rust data step). Exactly once is
//! counted from the steps' own ledger rows. Every runner must end in success or up to date; the
//! only acceptable error is a lock timeout that names the holder.

use crate::harness::{each_backend, TestDb};
use crate::ledger::{self, all_steps, count};
use crate::runner::{race, Outcome, Plan};
use crate::TABLES;
use std::collections::BTreeMap;

/// 16 runners.
const RUNNERS: usize = 16;

/// `MIGRATE_RELIABILITY_ROUNDS`, or `default`.
pub fn env_count(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Asserts every outcome is a success, up to date, or a lock timeout naming its holder; returns
/// how many of each.
fn tally(outcomes: &[Outcome]) -> (usize, usize, usize) {
    let (mut success, mut up_to_date, mut timeouts) = (0, 0, 0);
    for outcome in outcomes {
        match outcome {
            Ok(status) if status == "success" => success += 1,
            Ok(_) => up_to_date += 1,
            Err((kind, message)) if kind == "LockTimeout" && message.contains("held by") => {
                timeouts += 1
            }
            Err((kind, message)) => panic!("a runner failed with {kind}: {message}"),
        }
    }
    (success, up_to_date, timeouts)
}

/// Per step, how many more `direction` effects `after` holds than `before`.
fn delta(
    before: &BTreeMap<String, Vec<String>>,
    after: &BTreeMap<String, Vec<String>>,
    direction: &str,
) -> BTreeMap<String, usize> {
    all_steps()
        .map(|(t, k)| {
            let step = format!("{t}@{k}");
            let d = count(after, &step, direction) - count(before, &step, direction);
            (step, d)
        })
        .collect()
}

/// The mix: up, down to base, and single-table ups and downs, interleaved.
fn mixed_plans() -> Vec<Plan> {
    (0..RUNNERS)
        .map(|i| match i % 4 {
            0 => Plan::Up,
            1 => Plan::DownBase,
            2 => Plan::UpTable(TABLES[i / 4 % TABLES.len()]),
            _ => Plan::DownBaseTable(TABLES[(i / 4 + 1) % TABLES.len()]),
        })
        .collect()
}

/// Sixteen runners all run `plan`: each step gains exactly one `direction` row in the ledger,
/// and none of the other direction.
async fn exactly_once(db: &TestDb, url: &str, plan: Plan, direction: &str, figures: &mut Figures) {
    let other = if direction == "up" { "down" } else { "up" };
    let before = ledger::effects(db).await;
    let outcomes = race(url, &vec![plan; RUNNERS]).await;
    let (success, up_to_date, timeouts) = tally(&outcomes);
    assert_eq!(success + up_to_date + timeouts, RUNNERS);
    let after = ledger::effects(db).await;
    let ran = delta(&before, &after, direction);
    figures.steps += ran.len();
    figures.duplicated += ran.values().filter(|&&n| n > 1).count();
    figures.lost += ran.values().filter(|&&n| n == 0).count();
    if !ran.values().all(|&n| n == 1) {
        figures
            .failures
            .push(format!("{direction} ran a step other than once: {ran:?}"));
    }
    let crossed = delta(&before, &after, other);
    if !crossed.values().all(|&n| n == 0) {
        figures
            .failures
            .push(format!("a {direction} run wrote {other} rows: {crossed:?}"));
    }
    figures.runs += RUNNERS;
    figures.timeouts += timeouts;
}

/// One round: the runners reach the database at `url` (the server itself, or a proxy).
async fn round(db: &TestDb, url: &str, figures: &mut Figures) {
    // Up from base, then down to base: every step exactly once each way.
    exactly_once(db, url, Plan::Up, "up", figures).await;
    exactly_once(db, url, Plan::DownBase, "down", figures).await;

    // A mix of targets: the ledger alternates and matches the tracking rows and the schema.
    let outcomes = race(url, &mixed_plans()).await;
    let (_, _, timeouts) = tally(&outcomes);
    let manager = db.manager().await;
    let violations = ledger::check(db, &manager).await;
    figures.duplicated += violations.duplicated;
    figures.lost += violations.phantom;
    if violations != ledger::Violations::default() {
        figures
            .failures
            .push(format!("after the mix: {violations:?}"));
    }
    figures.runs += RUNNERS;
    figures.timeouts += timeouts;
    // Back to base for the next round.
    manager.down().to_base().await.expect("down to base");
}

#[derive(Debug, Default)]
struct Figures {
    runs: usize,
    steps: usize,
    timeouts: usize,
    duplicated: usize,
    lost: usize,
    /// What went wrong, asserted empty once the figures are printed.
    failures: Vec<String>,
}

each_backend! {
    async fn sixteen_runner_processes_apply_each_step_exactly_once(db) {
        ledger::create(&db).await;
        ledger::assert_fixture_modes(&db.manager().await).await;
        let rounds = env_count("MIGRATE_RELIABILITY_ROUNDS", 5);
        let mut figures = Figures::default();
        for _ in 0..rounds {
            round(&db, db.url(), &mut figures).await;
        }
        println!(
            "RELIABILITY race backend={} rounds={rounds} runner_processes={} step_checks={} lock_timeouts={} duplicated={} lost={}",
            db.backend().name(),
            figures.runs,
            figures.steps,
            figures.timeouts,
            figures.duplicated,
            figures.lost
        );
        assert_eq!(figures.failures, Vec::<String>::new());
    }
}

/// The same race through a real PgBouncer in transaction mode, where session advisory locks do
/// not hold (sqlx#1762): with `behind_transaction_pooler` the runners serialize on the lock row
/// (`LockMode::Table`), and every step still runs exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixteen_runner_processes_through_pgbouncer_apply_each_step_exactly_once() {
    let Some(db) = TestDb::new(migrate::testing::Backend::Postgres).await else {
        return;
    };
    let Some(pgbouncer) = migrate::testing::PgBouncer::start(db.url(), &["postgres"])
        .unwrap_or_else(|e| panic!("pgbouncer: {e}"))
    else {
        return;
    };
    ledger::create(&db).await;
    // `pooled+`: the runners connect with `PgDb::behind_transaction_pooler` (see the harness).
    let url = format!("pooled+{}", pgbouncer.url(db.url()));
    let rounds = env_count("MIGRATE_RELIABILITY_ROUNDS", 5).min(2);
    let mut figures = Figures::default();
    for _ in 0..rounds {
        round(&db, &url, &mut figures).await;
    }
    println!(
        "RELIABILITY race backend=postgres+pgbouncer rounds={rounds} runner_processes={} step_checks={} lock_timeouts={} duplicated={} lost={}",
        figures.runs, figures.steps, figures.timeouts, figures.duplicated, figures.lost
    );
    assert_eq!(figures.failures, Vec::<String>::new());
    assert!(figures.steps > 0);
}
