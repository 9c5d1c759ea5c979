//! `migrate::blocking` from plain threads, and its refusal inside a runtime.

use crate::harness::{example, TestDb};
use migrate::testing::Backend;

#[test]
fn the_blocking_manager_runs_from_a_plain_thread() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("blocking.db").display()
    );
    let m =
        migrate::blocking::MigrationManager::connect(&url, [&crate::MIGRATIONS]).expect("connect");
    assert_eq!(m.pending().expect("pending").len(), 10);
    let report = m.up().table("session").target("2.1.0").run().expect("up");
    assert_eq!(report.applied.len(), 2);
    assert_eq!(
        m.current_version("session").expect("current"),
        Some(crate::harness::v("2.1.0"))
    );
    let report = m.up().run().expect("up");
    assert_eq!(report.applied.len(), 8);
    assert_eq!(m.history(3).expect("history").len(), 3);
    let statuses = m.status().expect("status");
    assert_eq!(statuses.len(), 4);
    assert!(statuses.iter().all(|s| s.pending == 0));
    m.down()
        .table("metrics")
        .target("2.1.0")
        .run()
        .expect("down");
    assert_eq!(
        m.current_version("metrics").expect("current"),
        Some(crate::harness::v("2.1.0"))
    );
    let err = m.down().run().expect_err("no target");
    assert!(matches!(err, migrate::Error::MissingDownTarget), "{err}");
    // One step back, as `down -1` does.
    let report = m.down().table("metrics").steps(1).run().expect("one step");
    assert_eq!(report.applied.len(), 1);
    assert_eq!(
        m.current_version("metrics").expect("current"),
        Some(crate::harness::v("2.0.0"))
    );
    m.down()
        .table("metrics")
        .to_base()
        .run()
        .expect("down to base");
    assert_eq!(m.current_version("metrics").expect("current"), None);
}

/// A builder that fails on a plain thread drops there the manager it took by value, with the
/// connection kept from connect: the error comes back, not a panic about a missing runtime.
#[test]
fn a_builder_failing_on_a_plain_thread_returns_its_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("builders.db").display()
    );
    let connect = || {
        migrate::blocking::MigrationManager::connect(&url, [&crate::MIGRATIONS]).expect("connect")
    };
    type Manager = migrate::blocking::MigrationManager;
    type Builder = fn(Manager) -> migrate::Result<Manager>;
    let builders: [(&str, Builder, &str); 3] = [
        (
            "a version that does not parse",
            |m| m.with_baseline("not-a-version"),
            "InvalidVersion",
        ),
        (
            "a version no table has",
            |m| m.with_baseline("9.9.9"),
            "UnknownVersion",
        ),
        (
            "a table no migration declares",
            |m| m.with_table_baseline("no_such_table", "1.0.0"),
            "UnknownTable",
        ),
    ];
    for (what, build, kind) in builders {
        let err = build(connect()).expect_err(what);
        assert_eq!(err.kind(), kind, "{what}: {err}");
    }
    // Nothing was written: a manager built afterwards finds every migration pending.
    assert_eq!(connect().pending().expect("pending").len(), 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inside_a_runtime_it_errors_instead_of_blocking_or_panicking() {
    let Some(db) = TestDb::new(Backend::Sqlite).await else {
        return;
    };
    let err = migrate::blocking::MigrationManager::connect(db.url(), [&crate::MIGRATIONS])
        .expect_err("inside a runtime");
    assert!(
        matches!(
            err,
            migrate::Error::InsideRuntime {
                method: "migrate::blocking::MigrationManager::connect"
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("inside an async runtime"), "{err}");

    // Built on a plain thread, then used (and dropped) on a runtime's thread.
    let url = db.url().to_string();
    let m = std::thread::spawn(move || {
        migrate::blocking::MigrationManager::connect(&url, [&crate::MIGRATIONS])
    })
    .join()
    .expect("thread")
    .expect("connect");
    let err = m.status().expect_err("inside a runtime");
    assert!(
        matches!(
            err,
            migrate::Error::InsideRuntime {
                method: "migrate::blocking::MigrationManager::status"
            }
        ),
        "{err}"
    );
    let err = m.up().run().expect_err("inside a runtime");
    assert!(
        matches!(
            err,
            migrate::Error::InsideRuntime {
                method: "migrate::blocking::UpRequest::run"
            }
        ),
        "{err}"
    );
    // Start-up policies that wait on nothing answer here too, as the async ensure does.
    let ready = m.ensure(migrate::startup::Policy::Off).expect("off");
    assert_eq!(ready.policy, migrate::startup::Policy::Off);
    let err = m
        .ensure(migrate::startup::Policy::parse("sometimes"))
        .expect_err("invalid");
    assert!(
        matches!(err, migrate::startup::StartupError::InvalidPolicy(_)),
        "{err}"
    );
    // A policy that reads the database cannot run here: said as such, not as a failed read.
    let err = m
        .ensure(migrate::startup::Policy::Check)
        .expect_err("inside a runtime");
    assert!(
        matches!(
            &err,
            migrate::startup::StartupError::CannotRun(migrate::Error::InsideRuntime {
                method: "migrate::blocking::MigrationManager::ensure"
            })
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("inside an async runtime"), "{err}");
    drop(m);
}

/// The example is a plain `fn main` with no runtime of its own.
#[test]
fn the_example_runs_from_a_plain_main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = std::process::Command::new(example("blocking"))
        .current_dir(dir.path())
        .output()
        .expect("run the example");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("up: Success, 7 step(s)") && text.contains("session    2.3.0"),
        "{text}"
    );
    assert!(dir.path().join("blocking-example.db").exists());
}

/// What a host without a runtime needs beyond runs: renamed tables, a fresh install, the
/// start-up check, and any other async call through `block_on`.
#[test]
fn the_blocking_manager_configures_installs_and_checks_at_start_up() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("blocking.db").display()
    );
    let m = migrate::blocking::MigrationManager::connect(&url, [&crate::MIGRATIONS])
        .expect("connect")
        .with_table_name("session", "app_sessions")
        .expect("rename");
    let err = m
        .ensure(migrate::startup::Policy::Check)
        .expect_err("behind");
    assert!(err.to_string().contains("is behind"), "{err}");
    let report = m.install_fresh().expect("install fresh");
    assert!(
        report
            .applied
            .iter()
            .any(|a| a.step.name == "session_fresh"),
        "session installed by its fresh function: {report:?}"
    );
    let ready = m.ensure(migrate::startup::Policy::Check).expect("ready");
    assert_eq!(ready.report, None);
    let tables = m
        .block_on(|inner| inner.status())
        .expect("an async call through block_on");
    assert!(tables.iter().all(|t| t.pending == 0), "{tables:?}");
    assert!(m.latest_version().expect("latest").is_some());
    assert!(!m.migrations().expect("migrations").is_empty());
    let on_disk = sqlx_tables(&url);
    assert!(on_disk.contains(&"app_sessions".to_string()), "{on_disk:?}");
}

/// The tables of a SQLite database, read on a runtime of this test's own.
fn sqlx_tables(url: &str) -> Vec<String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(async {
            use sqlx::Connection;
            let mut conn = sqlx::SqliteConnection::connect(url).await.expect("connect");
            sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table'")
                .fetch_all(&mut conn)
                .await
                .expect("tables")
        })
}
