//! A runner cycling up and down over the fixture is killed with SIGKILL at a random moment,
//! again and again. After every kill the next run finishes, or stops at a dirty mark that names
//! exactly the step in doubt; the test settles it from the ledger (the step's own last row
//! says whether it finished) with `resolve_dirty`. Then the ledger must show no step applied
//! twice, no step recorded that did not happen, and the lock must be free.

use crate::concurrency::env_count;
use crate::harness::{each_backend, TestDb};
use crate::ledger::{self, Violations};
use crate::runner::{self, Plan};
use crate::{kind, Kind, DATA_ROWS};
use migrate::manager::Resolution;
use migrate::report::Direction;
use migrate::{Error, MigrationManager};
use std::time::{Duration, Instant};

/// A small deterministic generator (xorshift64*), so a failing seed can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn seed() -> u64 {
    std::env::var("MIGRATE_RELIABILITY_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64);
            nanos | 1
        })
}

/// The statements that put the schema back to how it was before a step in doubt that did not
/// finish, given whether the step's table (k = 0) or column exists now.
fn undo_statements(table: &str, k: u64, direction: Direction, exists: bool) -> Vec<String> {
    let column = format!("c{k}");
    match (kind(table, k), direction) {
        (Kind::Create, Direction::Up) if exists => vec![format!("DROP TABLE {table}")],
        (Kind::Create, Direction::Down) if !exists => vec![format!(
            "CREATE TABLE {table} (id INTEGER PRIMARY KEY, note VARCHAR(64))"
        )],
        (Kind::Column, Direction::Up) if exists => {
            vec![format!("ALTER TABLE {table} DROP COLUMN {column}")]
        }
        (Kind::Column, Direction::Down) if !exists => {
            vec![format!("ALTER TABLE {table} ADD COLUMN {column} INTEGER")]
        }
        (Kind::Data, direction) => {
            let mut statements = vec![format!("DELETE FROM {table} WHERE id >= 1000")];
            if direction == Direction::Down {
                statements.extend((0..DATA_ROWS).map(|i| {
                    format!(
                        "INSERT INTO {table} (id, note) VALUES ({}, 'data')",
                        1000 + i
                    )
                }));
            }
            statements
        }
        _ => Vec::new(),
    }
}

/// Undoes a step in doubt that did not finish. On SQLite the check and the undo run on a new
/// connection inside `BEGIN IMMEDIATE`, so that both read the newest state of the file (a
/// pooled connection once saw an older schema there).
async fn undo_partial(db: &TestDb, table: &str, k: u64, direction: Direction) {
    let column = format!("c{k}");
    if db.backend() != migrate::testing::Backend::Sqlite {
        let exists = match kind(table, k) {
            Kind::Create => db.has_table(table).await,
            _ => db.has_column(table, &column).await,
        };
        for statement in undo_statements(table, k, direction, exists) {
            db.exec(&statement).await;
        }
        return;
    }
    use sqlx::{Connection, Executor};
    let mut conn = sqlx::SqliteConnection::connect(db.url())
        .await
        .expect("sqlite");
    conn.execute("BEGIN IMMEDIATE").await.expect("begin");
    let catalog = match kind(table, k) {
        Kind::Create => {
            format!("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '{table}'")
        }
        _ => format!("SELECT 1 FROM pragma_table_info('{table}') WHERE name = '{column}'"),
    };
    let exists = sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(catalog))
        .fetch_optional(&mut conn)
        .await
        .expect("catalog")
        .is_some();
    for statement in undo_statements(table, k, direction, exists) {
        conn.execute(sqlx::AssertSqlSafe(statement))
            .await
            .expect("undo");
    }
    conn.execute("COMMIT").await.expect("commit");
    conn.close().await.expect("close");
}

#[derive(Debug, Default)]
struct Figures {
    kills: usize,
    clean: usize,
    completed: usize,
    rolled_back: usize,
    violations: usize,
    stuck_locks: usize,
}

/// Runs the database forward after a kill, settling the one step in doubt if there is one.
async fn recover(db: &TestDb, manager: &MigrationManager, figures: &mut Figures) {
    let mut settled = false;
    for _ in 0..3 {
        match manager.up().await {
            Ok(_) => {
                if !settled {
                    figures.clean += 1;
                }
                return;
            }
            Err(Error::Dirty {
                table,
                version,
                direction,
                ..
            }) => {
                assert!(
                    !settled,
                    "a second dirty mark after settling {table}@{version}"
                );
                let k = migrate::Version::parse(&version)
                    .expect("fixture version")
                    .minor;
                let step = format!("{table}@{k}");
                let effects = ledger::effects(db).await;
                let wanted = match direction {
                    Direction::Up => "up",
                    _ => "down",
                };
                let finished = effects
                    .get(&step)
                    .and_then(|e| e.last())
                    .is_some_and(|d| d == wanted);
                let resolution = if finished {
                    figures.completed += 1;
                    Resolution::Completed
                } else {
                    undo_partial(db, &table, k, direction).await;
                    figures.rolled_back += 1;
                    Resolution::RolledBack
                };
                manager
                    .resolve_dirty(&table, resolution)
                    .await
                    .expect("resolve the dirty mark");
                settled = true;
            }
            Err(Error::LockTimeout { holder, .. }) => {
                figures.stuck_locks += 1;
                panic!("the killed runner's lock stayed taken (held by {holder:?})");
            }
            Err(err) => panic!("recovery failed: {err}"),
        }
    }
    panic!("recovery did not finish");
}

each_backend! {
    async fn runners_killed_at_random_moments_leave_nothing_half_done(db) {
        ledger::create(&db).await;
        let kills = env_count("MIGRATE_RELIABILITY_KILLS", 70);
        let seed = seed();
        let mut rng = Rng(seed);
        eprintln!("kills on {}: MIGRATE_RELIABILITY_SEED={seed} replays them", db.backend().name());
        let mut figures = Figures::default();
        let started = Instant::now();
        let manager = MigrationManager::new(
            crate::harness::executor_with_lock_timeout(db.url(), Duration::from_secs(10)).await,
            [&crate::MIGRATIONS],
        )
        .expect("graph");
        for _ in 0..kills {
            let mut child = runner::spawn(db.url(), &Plan::Cycle, None, false);
            // Past the child's start-up (about 50 ms) and across a few up and down cycles.
            let delay = 30 + rng.below(1200);
            tokio::time::sleep(Duration::from_millis(delay)).await;
            child.kill().expect("SIGKILL");
            child.wait().expect("reap");
            figures.kills += 1;
            recover(&db, &manager, &mut figures).await;
            let violations = ledger::check(&db, &manager).await;
            if violations != Violations::default() {
                figures.violations += 1;
            }
            assert_eq!(violations, Violations::default(), "seed {seed}");
        }
        println!(
            "RELIABILITY kill backend={} seed={seed} kills={} recovered_clean={} dirty_completed={} dirty_rolled_back={} duplicated_or_phantom={} stuck_locks={} seconds={}",
            db.backend().name(),
            figures.kills,
            figures.clean,
            figures.completed,
            figures.rolled_back,
            figures.violations,
            figures.stuck_locks,
            started.elapsed().as_secs()
        );
    }
}
