//! Runner processes: this test binary, started again as a child that performs one request on a
//! database (or cycles until it is killed) and prints each outcome as a `RESULT` line.

use migrate::report::ReportStatus;
use migrate::{Error, MigrationManager};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const URL: &str = "MIGRATE_RELIABILITY_CHILD_URL";
const PLAN: &str = "MIGRATE_RELIABILITY_CHILD_PLAN";
const GO: &str = "MIGRATE_RELIABILITY_CHILD_GO";

/// How long a runner waits for another runner's lock: long enough for 16 runners that each
/// do the whole plan one after another.
pub const RUNNER_LOCK_TIMEOUT: Duration = Duration::from_secs(120);

/// What a child runner does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// `up()`, every table to its latest version.
    Up,
    /// `up().table(t)`.
    UpTable(&'static str),
    /// `down().to_base()`.
    DownBase,
    /// `down().to_base().table(t)`.
    DownBaseTable(&'static str),
    /// Up, then down to base, again and again until killed.
    Cycle,
}

impl Plan {
    fn encode(&self) -> String {
        match self {
            Plan::Up => "up".into(),
            Plan::UpTable(t) => format!("up:{t}"),
            Plan::DownBase => "down".into(),
            Plan::DownBaseTable(t) => format!("down:{t}"),
            Plan::Cycle => "cycle".into(),
        }
    }
}

/// Starts a child runner on `url`. With `go`, it connects, writes `<go>.<pid>.ready`, then
/// waits until `go` exists before it runs, so that many children start their requests at the
/// same moment. `capture` pipes its stdout for [`outcomes`]; a child that is going to be
/// killed prints nowhere.
pub fn spawn(url: &str, plan: &Plan, go: Option<&Path>, capture: bool) -> Child {
    let mut command = Command::new(std::env::current_exe().expect("test binary"));
    command
        .args(["--exact", "runner::child", "--ignored", "--nocapture"])
        .env(URL, url)
        .env(PLAN, plan.encode())
        .stdout(if capture {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stderr(Stdio::null());
    if let Some(go) = go {
        command.env(GO, go);
    }
    command.spawn().expect("spawn a child runner")
}

/// What one child printed: `Ok(status)` for a run that ended, or the error's kind and message.
pub type Outcome = Result<String, (String, String)>;

/// Waits for a child and returns the outcomes it printed.
pub fn outcomes(child: Child) -> Vec<Outcome> {
    let output = child.wait_with_output().expect("wait for a child runner");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let results: Vec<Outcome> = stdout
        .lines()
        .filter_map(|line| line.strip_prefix("RESULT "))
        .map(|rest| match rest.split_once(' ') {
            Some(("ok", status)) => Ok(status.to_string()),
            Some(("err", error)) => {
                let (kind, message) = error.split_once(' ').unwrap_or((error, ""));
                Err((kind.to_string(), message.to_string()))
            }
            _ => Err(("unparsed".into(), rest.to_string())),
        })
        .collect();
    assert!(
        !results.is_empty(),
        "a child runner printed no result (exit {:?}): {stdout}",
        output.status
    );
    results
}

/// Starts one child per plan, waits until every one has connected, lets them all go at once,
/// and returns every outcome they printed.
pub async fn race(url: &str, plans: &[Plan]) -> Vec<Outcome> {
    let dir = tempfile::tempdir().expect("barrier directory");
    let go = dir.path().join("go");
    let children: Vec<Child> = plans
        .iter()
        .map(|plan| spawn(url, plan, Some(&go), true))
        .collect();
    let started = Instant::now();
    loop {
        let ready = std::fs::read_dir(dir.path())
            .expect("barrier directory")
            .filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".ready"))
            })
            .count();
        if ready == plans.len() {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "only {ready} of {} runners connected",
            plans.len()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    std::fs::write(&go, b"").expect("go signal");
    tokio::task::spawn_blocking(move || children.into_iter().flat_map(outcomes).collect())
        .await
        .expect("collect the runners")
}

fn kind(err: &Error) -> &'static str {
    match err {
        Error::LockTimeout { .. } => "LockTimeout",
        Error::Dirty { .. } => "Dirty",
        Error::ConcurrentRunners { .. } => "ConcurrentRunners",
        Error::StepFailed { .. } => "StepFailed",
        Error::Database(_) => "Database",
        _ => "Other",
    }
}

fn print(result: migrate::Result<migrate::report::Report>) {
    match result {
        Ok(report) => {
            let status = match report.status {
                ReportStatus::UpToDate => "up-to-date",
                _ => "success",
            };
            println!("RESULT ok {status}");
        }
        Err(err) => println!(
            "RESULT err {} {}",
            kind(&err),
            err.to_string().replace('\n', " ")
        ),
    }
}

/// Not a test of its own: the child runner the suites start (with `--ignored`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run as a child process by the reliability suites"]
async fn child() {
    let url = std::env::var(URL).expect("the parent sets the URL");
    let plan = std::env::var(PLAN).expect("the parent sets the plan");
    let backend = crate::harness::executor_with_lock_timeout(&url, RUNNER_LOCK_TIMEOUT).await;
    let manager = MigrationManager::new(backend, [&crate::MIGRATIONS]).expect("graph");
    if let Ok(go) = std::env::var(GO) {
        std::fs::write(format!("{go}.{}.ready", std::process::id()), b"").expect("ready file");
        let started = Instant::now();
        while !Path::new(&go).exists() {
            assert!(started.elapsed() < Duration::from_secs(120), "no go signal");
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    let table = |t: &str| {
        crate::TABLES
            .iter()
            .copied()
            .find(|x| *x == t)
            .expect("table")
    };
    match plan.split_once(':') {
        None if plan == "up" => print(manager.up().await),
        None if plan == "down" => print(manager.down().to_base().await),
        Some(("up", t)) => print(manager.up().table(table(t)).await),
        Some(("down", t)) => print(manager.down().to_base().table(table(t)).await),
        _ if plan == "cycle" => loop {
            print(manager.up().await);
            print(manager.down().to_base().await);
        },
        _ => panic!("unknown plan {plan}"),
    }
}
