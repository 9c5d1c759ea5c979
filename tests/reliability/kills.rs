//! A runner cycling up and down over the fixture is killed with SIGKILL at a random moment,
//! again and again. After every kill the next run finishes, or stops at a dirty mark that names
//! exactly the step in doubt; the test settles it from the ledger (the step's own last row
//! says whether it finished) with `resolve_dirty`. Then the ledger must show no step applied
//! twice, no step recorded that did not happen, and the lock must be free.

use crate::concurrency::env_count;
use crate::harness::{catalog_query, each_backend, TestDb};
use crate::ledger::{self, Violations};
use crate::runner::{self, Plan};
use crate::{change_statements, kind, Kind};
use migrate::manager::Resolution;
use migrate::report::Direction;
use migrate::testing::Backend;
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
/// finish, given whether the step's table (k = 0) or column exists now: the step's own change
/// in the other direction, where there is something to undo. A data step is undone whole.
fn undo_statements(table: &str, k: u64, direction: Direction, exists: bool) -> Vec<String> {
    let up = direction == Direction::Up;
    match kind(table, k) {
        Kind::Data if up => change_statements(table, table, k, false),
        Kind::Data => [false, true]
            .into_iter()
            .flat_map(|up| change_statements(table, table, k, up))
            .collect(),
        _ if up == exists => change_statements(table, table, k, !up),
        _ => Vec::new(),
    }
}

/// Undoes a step in doubt that did not finish. On SQLite the check and the undo run on a new
/// connection inside `BEGIN IMMEDIATE`, so that both read the newest state of the file (a
/// pooled connection once saw an older schema there).
async fn undo_partial(db: &TestDb, table: &str, k: u64, direction: Direction) {
    let column = format!("c{k}");
    let column = (kind(table, k) != Kind::Create).then_some(column.as_str());
    if db.backend() != Backend::Sqlite {
        let exists = match column {
            None => db.has_table(table).await,
            Some(column) => db.has_column(table, column).await,
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
    let catalog = catalog_query(Backend::Sqlite, table, column);
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

/// A server goes on running the statement a killed client sent: it notices the client is gone
/// only when it answers. Recovery must judge the schema that statement leaves (a DROP COLUMN
/// still running would be seen as not done, then finish), so it waits until no other session
/// of the test database is busy.
async fn wait_for_the_server(db: &TestDb) {
    let busy = match db.backend() {
        Backend::Sqlite => return,
        Backend::Postgres => {
            "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() \
             AND pid <> pg_backend_pid() AND state <> 'idle'"
        }
        Backend::MySql => {
            "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE DB = DATABASE() \
             AND ID <> CONNECTION_ID() AND COMMAND <> 'Sleep'"
        }
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while db.rows(busy).await != ["0"] && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Runs the database forward after a kill, settling the one step in doubt if there is one.
/// A lock the killed runner left taken is counted and ends the test (after its figures are
/// printed), as does any other failure to recover.
async fn recover(
    db: &TestDb,
    manager: &MigrationManager,
    figures: &mut Figures,
) -> Result<(), String> {
    let mut settled = false;
    for _ in 0..3 {
        match manager.up().await {
            Ok(_) => {
                if !settled {
                    figures.clean += 1;
                }
                return Ok(());
            }
            Err(Error::Dirty {
                table,
                version,
                direction,
                ..
            }) => {
                if settled {
                    return Err(format!(
                        "a second dirty mark after settling {table}@{version}"
                    ));
                }
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
                    .map_err(|e| format!("resolving {step}: {e}"))?;
                settled = true;
            }
            Err(Error::LockTimeout { holder, .. }) => {
                figures.stuck_locks += 1;
                return Err(format!(
                    "the killed runner's lock stayed taken (held by {holder:?})"
                ));
            }
            Err(err) => return Err(format!("recovery failed: {err}")),
        }
    }
    Err("recovery did not finish".into())
}

each_backend! {
    async fn runners_killed_at_random_moments_leave_nothing_half_done(db) {
        ledger::create(&db).await;
        let kills = env_count("MIGRATE_RELIABILITY_KILLS", 70);
        let seed = seed();
        let mut rng = Rng(seed);
        eprintln!("kills on {}: MIGRATE_RELIABILITY_SEED={seed} replays them", db.backend().name());
        let mut figures = Figures::default();
        let mut failure = None;
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
            wait_for_the_server(&db).await;
            figures.kills += 1;
            if let Err(why) = recover(&db, &manager, &mut figures).await {
                failure = Some(why);
                break;
            }
            let violations = ledger::check(&db, &manager).await;
            if violations != Violations::default() {
                figures.violations += 1;
                failure = Some(format!("after kill {}: {violations:?}", figures.kills));
                break;
            }
        }
        let downs: usize = ledger::effects(&db)
            .await
            .values()
            .map(|e| e.iter().filter(|d| *d == "down").count())
            .sum();
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
        assert_eq!(failure, None, "seed {seed}");
        // The killed runners did work: their downs are in the ledger (a child failing at its
        // start-up, or every down failing, would make each kill a kill of nothing). Asked of
        // ten kills or more: a few early ones may all land before a first down.
        assert!(
            figures.kills < 10 || downs > 0,
            "{} kills, and no runner ever reverted a step: the children did nothing",
            figures.kills
        );
    }
}
