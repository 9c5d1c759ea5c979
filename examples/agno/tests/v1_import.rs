//! The v1 → v2 import of `examples/agno` at volume: 100,000 v1 sessions, the example binary
//! killed with SIGKILL in the middle of the copy, run again, and the counts exact: every row
//! moved once, the newer v2 rows skipped, the broken ones refused, the v1 table untouched.
//!
//! Prints `AGNO_V1 <backend> sessions_after_kill=... runs_moved=... seconds=... rows_per_second=...
//! peak_rss_kib=...` (the resumed run: the rest of the import, then the 3.0.0 copy of the runs) for
//! BENCHMARKS.md (measured, never asserted: speed belongs to benchmarks).

use migrate::testing::{Backend, TestDatabase};
use sqlx::{AssertSqlSafe, Connection};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const ROWS: usize = 100_000;
/// Every this many rows, a session whose `memory` is not JSON (refused).
const BROKEN_EVERY: usize = 1_000;
/// Sessions rewritten in v2 after the export: newer there, skipped by the import.
const NEWER: usize = 50;

fn example(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("test binary");
    let dir = exe
        .parent()
        .and_then(|d| d.parent())
        .expect("target dir")
        .join("examples");
    let path = dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.exists(),
        "{} is not built (cargo test --all-features builds it)",
        path.display()
    );
    path
}

async fn query(db: &TestDatabase, sql: &str) -> Vec<Vec<String>> {
    try_query(db, sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

async fn try_query(db: &TestDatabase, sql: &str) -> Result<Vec<Vec<String>>, sqlx::Error> {
    let q = || sqlx::raw_sql(AssertSqlSafe(sql.to_string()));
    macro_rules! run {
        ($conn:ty) => {{
            let mut conn = <$conn>::connect(db.url()).await?;
            let rows = q().fetch_all(&mut conn).await?;
            Ok(rows
                .iter()
                .map(|row| {
                    use sqlx::Row;
                    (0..row.len())
                        .map(|i| {
                            row.try_get::<i64, _>(i)
                                .map(|v| v.to_string())
                                .or_else(|_| row.try_get::<i32, _>(i).map(|v| v.to_string()))
                                .or_else(|_| row.try_get::<String, _>(i))
                                .unwrap_or_else(|_| "NULL".into())
                        })
                        .collect()
                })
                .collect())
        }};
    }
    match db.backend() {
        Backend::Sqlite => run!(sqlx::SqliteConnection),
        Backend::Postgres => run!(sqlx::PgConnection),
        Backend::MySql => run!(sqlx::MySqlConnection),
    }
}

async fn one(db: &TestDatabase, sql: &str) -> String {
    query(db, sql)
        .await
        .first()
        .and_then(|r| r.first())
        .cloned()
        .unwrap_or_default()
}

fn agno(url: &str, args: &[&str]) -> Command {
    let mut command = Command::new(example("agno"));
    command
        .arg("--database-url")
        .arg(url)
        .args(args)
        .env("AGNO_V1_BATCH", "500")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    command
}

/// The v1 agent sessions: a memory with runs whose metrics use v1 keys.
async fn seed(db: &TestDatabase) {
    query(
        db,
        "CREATE TABLE agent_sessions (session_id VARCHAR(64) PRIMARY KEY, agent_id VARCHAR(64), \
         user_id VARCHAR(64), memory TEXT, session_data TEXT, extra_data TEXT, agent_data TEXT, \
         created_at BIGINT, updated_at BIGINT)",
    )
    .await;
    let mut values = Vec::with_capacity(1_000);
    for i in 1..=ROWS {
        let memory = if i % BROKEN_EVERY == 0 {
            "not json".to_string()
        } else {
            format!(
                r#"{{"runs": [{{"run_id": "r{i}", "metrics": {{"time": [0.5], "prompt_tokens": [3], "cached_tokens": [1]}}}}]}}"#
            )
        };
        values.push(format!(
            "('s{i:06}', 'agent-{}', 'user-{}', '{memory}', '{{\"session_metrics\": {{\"time\": 1.5, \"input_tokens\": 2}}}}', NULL, '{{}}', {i}, {})",
            i % 7,
            i % 101,
            1_000 + i
        ));
        if values.len() == 1_000 {
            query(
                db,
                &format!("INSERT INTO agent_sessions VALUES {}", values.join(", ")),
            )
            .await;
            values.clear();
        }
    }
}

/// Peak resident memory of `pid` so far, from /proc (KiB); 0 where it cannot be read.
fn peak_rss(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

async fn killed_and_resumed(backend: Backend) {
    let Some(db) = TestDatabase::create(backend).await.expect("database") else {
        return;
    };
    let url = db.url().to_string();
    seed(&db).await;
    let v1_before = query(
        &db,
        "SELECT COUNT(*), SUM(LENGTH(memory)), MAX(updated_at) FROM agent_sessions",
    )
    .await;

    // The sessions table first, and a few sessions rewritten in v2 after the export.
    let status = agno(&url, &["up", "--table", "session", "--to", "2.0.0"])
        .status()
        .expect("agno");
    assert!(status.success());
    for i in 1..=NEWER {
        let sql = format!(
            "INSERT INTO agno_sessions (session_id, session_type, created_at, updated_at, session_data) \
             VALUES ('s{:06}', 'agent', 1, 9999999999, '{{\"kept\": true}}')",
            i * 3
        );
        query(&db, &sql).await;
    }

    // Killed with SIGKILL half-way through the copy.
    let started = Instant::now();
    let mut child = agno(&url, &["up"]).spawn().expect("agno up");
    let mut peak = 0;
    let checkpoint =
        "SELECT last_key, done FROM migrate_data_checkpoints WHERE job = 'agno_v1_agent_sessions'";
    loop {
        peak = peak.max(peak_rss(child.id()));
        // The checkpoint table appears with the job; until then the query fails.
        let moved = try_query(
            &db,
            &format!(
                "SELECT COUNT(*) FROM ({checkpoint}) c WHERE last_key >= 's050000' AND done = 0"
            ),
        )
        .await
        .ok()
        .and_then(|rows| rows.first().map(|r| r[0] == "1"))
        .unwrap_or(false);
        if moved || child.try_wait().expect("wait").is_some() {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "the import never started"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().expect("SIGKILL");
    child.wait().expect("reaped");
    let at_kill = query(&db, checkpoint).await;
    assert_eq!(
        at_kill[0][1], "0",
        "killed in the middle of the job: {at_kill:?}"
    );
    let cut = at_kill[0][0].clone();

    // The next run resumes after the last checkpoint on its own (the step is resumable).
    let resumed = Instant::now();
    let child = agno(&url, &["up"]).spawn().expect("agno up again");
    let pid = child.id();
    let watcher = std::thread::spawn(move || {
        let mut peak = 0;
        while std::path::Path::new(&format!("/proc/{pid}")).exists() {
            peak = peak.max(peak_rss(pid));
            std::thread::sleep(Duration::from_millis(20));
        }
        peak
    });
    let output = child.wait_with_output().expect("resumed run");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let seconds = resumed.elapsed().as_secs_f64();
    peak = peak.max(watcher.join().unwrap_or(0));

    let tally = one(
        &db,
        "SELECT tally FROM migrate_data_checkpoints WHERE job = 'agno_v1_agent_sessions'",
    )
    .await;
    let broken = ROWS / BROKEN_EVERY;
    let skipped = (1..=NEWER).filter(|i| (i * 3) % BROKEN_EVERY != 0).count();
    let expected = format!(
        "moved\t{}\t\nskipped\t{skipped}\ta newer v2 session exists\nrefused\t{broken}\tmemory is not JSON\n",
        ROWS - broken - skipped
    );
    assert_eq!(
        tally, expected,
        "exact counts across the kill (cut after {cut})"
    );
    let sessions = one(&db, "SELECT COUNT(*) FROM agno_sessions").await;
    assert_eq!(sessions, (ROWS - broken).to_string());
    let kept = one(
        &db,
        "SELECT CAST(session_data AS TEXT) FROM agno_sessions WHERE session_id = 's000003'",
    )
    .await;
    assert!(
        kept.contains("kept"),
        "a newer v2 row is never overwritten: {kept}"
    );
    let moved = one(
        &db,
        "SELECT CAST(session_data AS TEXT) FROM agno_sessions WHERE session_id = 's000001'",
    )
    .await;
    assert!(
        moved.contains("duration") && !moved.contains("\"time\""),
        "metrics renamed: {moved}"
    );
    let runs = one(&db, "SELECT COUNT(*) FROM agno_runs").await;
    assert_eq!(
        runs,
        (ROWS - broken - skipped).to_string(),
        "3.0.0 moved every imported run into agno_runs"
    );
    let v1_after = query(
        &db,
        "SELECT COUNT(*), SUM(LENGTH(memory)), MAX(updated_at) FROM agent_sessions",
    )
    .await;
    assert_eq!(v1_before, v1_after, "the v1 table is untouched");
    // The resumed run copied the sessions after the cut, then 3.0.0 moved every run.
    let after_cut = ROWS - cut.trim_start_matches('s').parse::<usize>().unwrap_or(0);
    let runs: usize = runs.parse().unwrap_or(0);
    println!(
        "AGNO_V1 {} sessions_after_kill={after_cut} runs_moved={runs} seconds={seconds:.2} rows_per_second={:.0} peak_rss_kib={peak}",
        backend.name(),
        (after_cut + runs) as f64 / seconds
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v1_import_killed_and_resumed_on_sqlite() {
    killed_and_resumed(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v1_import_killed_and_resumed_on_postgres() {
    killed_and_resumed(Backend::Postgres).await;
}
