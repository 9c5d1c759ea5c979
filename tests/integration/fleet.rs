//! `migrate::fleet`: many PostgreSQL schemas and SQLite files in one run, each with its own
//! lock and report, the broken ones named, and a re-run that touches only what is left.

use crate::harness::TestDb;
use crate::MIGRATIONS;
use migrate::fleet::{Fleet, FleetOutcome, Target, TargetOutcome};
use migrate::report::ReportStatus;
use migrate::testing::Backend;
use migrate::{ConnectOptions, Error, MigrationManager};

/// The test database's URL as `role`.
pub(crate) fn as_role(url: &str, role: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("a server URL");
    let host = rest.split_once('@').map_or(rest, |(_, host)| host);
    format!("{scheme}://{role}@{host}")
}

/// The database a server URL names (its path, without the query).
fn database_name(url: &str) -> &str {
    url.rsplit('/')
        .next()
        .unwrap_or_default()
        .split('?')
        .next()
        .unwrap_or_default()
}

/// Twelve tenant schemas owned by an ordinary role, three of them broken on purpose: a
/// conflicting object (tenant_03), a dirty mark (tenant_06), a schema the role cannot write
/// (tenant_09). Returns the role's URL.
pub(crate) async fn tenants(db: &TestDb) -> String {
    // One role per test database: tests run side by side on one server, and roles are the
    // server's.
    let database = database_name(db.url());
    let role = format!("fleet_{database}");
    db.exec(&format!("CREATE ROLE {role} LOGIN")).await;
    for i in 0..12 {
        let owner = if i == 9 {
            String::new()
        } else {
            format!(" AUTHORIZATION {role}")
        };
        db.exec(&format!("CREATE SCHEMA tenant_{i:02}{owner}"))
            .await;
    }
    db.exec(&format!("GRANT USAGE ON SCHEMA tenant_09 TO {role}"))
        .await;
    db.exec(&format!("CREATE TABLE tenant_03.metrics (id INTEGER PRIMARY KEY); ALTER TABLE tenant_03.metrics OWNER TO {role}")).await;
    let url = as_role(db.url(), &role);
    let dirty = MigrationManager::new(
        migrate::connect_with(&url, &ConnectOptions::new().schema("tenant_06"))
            .await
            .expect("connect"),
        [&MIGRATIONS],
    )
    .expect("graph");
    dirty
        .up()
        .table("eval")
        .target("2.0.0")
        .await
        .expect("eval in tenant_06");
    db.exec(
        "UPDATE tenant_06.migrate_schema_versions SET dirty_version = '2.1.0', dirty_name = 'eval_scores_to_percent', \
         dirty_direction = 'up', dirty_since = 1 WHERE table_name = 'eval'",
    )
    .await;
    url
}

fn failed(report: &migrate::fleet::FleetReport) -> Vec<String> {
    report
        .failures()
        .map(|(target, _)| match target {
            Target::Schema { schema, .. } => schema.clone(),
            Target::Database { url } => url.clone(),
        })
        .collect()
}

/// The schemas listed for a fleet, on a database whose sessions read a backslash in a plain
/// string literal as an escape (`standard_conforming_strings` off): `pg_` stays PostgreSQL's
/// prefix, not `pg` and any character, and `tenant\_%` matches an underscore only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemas_are_listed_alike_with_standard_conforming_strings_off() {
    let Some(db) = TestDb::new(Backend::Postgres).await else {
        return;
    };
    db.exec(
        "CREATE SCHEMA pgx_1; CREATE SCHEMA tenant_a; CREATE SCHEMA tenant1; \
         DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET standard_conforming_strings = off', \
         current_database()); END $$",
    )
    .await;
    let schemas = |fleet: Fleet| -> Vec<String> {
        fleet
            .target_list()
            .iter()
            .filter_map(|t| match t {
                Target::Schema { schema, .. } => Some(schema.clone()),
                Target::Database { .. } => None,
            })
            .collect()
    };
    let tenants = Fleet::new([&MIGRATIONS])
        .all_schemas(db.url(), Some("tenant\\_%"))
        .await
        .expect("schemas listed");
    assert_eq!(schemas(tenants), ["tenant_a"]);
    let all = Fleet::new([&MIGRATIONS])
        .all_schemas(db.url(), None)
        .await
        .expect("schemas listed");
    assert_eq!(schemas(all), ["pgx_1", "tenant1", "tenant_a"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_of_schemas_names_exactly_the_broken_ones_and_a_rerun_touches_only_them() {
    let Some(db) = TestDb::new(Backend::Postgres).await else {
        return;
    };
    let url = tenants(&db).await;
    let fleet = Fleet::new([&MIGRATIONS])
        .all_schemas(&url, Some("tenant\\_%"))
        .await
        .expect("schemas listed")
        .concurrency(4);
    assert_eq!(fleet.target_list().len(), 12);

    let report = fleet.up().await;
    assert_eq!(report.outcome, FleetOutcome::PartlyFailed);
    assert_eq!(failed(&report), ["tenant_03", "tenant_06", "tenant_09"]);
    let errors: Vec<&Error> = report.failures().map(|(_, e)| e).collect();
    assert!(
        matches!(errors[0], Error::StepFailed { step, .. } if step.table == "metrics" && step.version.to_string() == "2.5.0"),
        "{}",
        errors[0]
    );
    assert!(
        matches!(errors[1], Error::Dirty { table, .. } if table == "eval"),
        "{}",
        errors[1]
    );
    assert!(
        errors[2].to_string().contains("permission denied"),
        "{}",
        errors[2]
    );
    assert_eq!(report.succeeded(), 9);
    assert_eq!(
        report.max_connections, 9,
        "one pool of 2 x 4 + 1 for all twelve schemas"
    );
    for target in &report.targets {
        if let TargetOutcome::Ran(run) = &target.outcome {
            assert_eq!(run.status, ReportStatus::Success, "{}", target.target);
            assert_eq!(run.applied.len(), 10);
        }
    }
    let at_head = db
        .rows("SELECT COUNT(*) FROM tenant_00.migrate_schema_versions WHERE version IS NOT NULL")
        .await;
    assert_eq!(at_head, ["4"]);

    // Again: the nine at head only read their state; the three still fail, the same way.
    let again = fleet.up().await;
    assert_eq!(failed(&again), ["tenant_03", "tenant_06", "tenant_09"]);
    for target in &again.targets {
        if let TargetOutcome::Ran(run) = &target.outcome {
            assert_eq!(run.status, ReportStatus::UpToDate, "{}", target.target);
        }
    }

    // Status and verify over the fleet: verify names what is pending and dirty.
    let verify = fleet.verify().await;
    assert_eq!(failed(&verify), ["tenant_03", "tenant_06", "tenant_09"]);
    let status = fleet.status().await;
    assert_eq!(
        status.outcome,
        FleetOutcome::AllSucceeded,
        "status reads every schema, tenant_09 as all pending"
    );

    // fail_fast: no new target starts after the first failure.
    let fast = fleet.clone().concurrency(1).fail_fast(true).up().await;
    let not_run = fast
        .targets
        .iter()
        .filter(|t| matches!(t.outcome, TargetOutcome::NotRun))
        .count();
    assert_eq!(
        not_run,
        12 - 4,
        "tenant_00..02 and the failing tenant_03 ran, nothing after"
    );
}

/// A target given twice through the API (a targets file refuses it already) would race itself
/// for its own lock and be counted twice: `check` refuses it, and a run fails its second
/// mention without running it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_named_twice_is_refused_and_runs_once() {
    let dir = tempfile::tempdir().expect("dir");
    let url = |name: &str| format!("sqlite://{}?mode=rwc", dir.path().join(name).display());
    let fleet = Fleet::new([&MIGRATIONS]).concurrency(4).targets([
        Target::database(url("a.db")),
        Target::database(url("b.db")),
        Target::database(url("a.db")),
    ]);
    let err = fleet.check().expect_err("named twice");
    assert!(
        matches!(&err, Error::Config(why) if why.contains("named twice (targets 1 and 3)")),
        "{err}"
    );
    let report = fleet.up().await;
    assert_eq!(report.outcome, FleetOutcome::PartlyFailed, "{report:?}");
    let outcomes: Vec<bool> = report.targets.iter().map(|t| t.failed()).collect();
    assert_eq!(outcomes, [false, false, true], "{report:?}");
    let (_, err) = report.failures().next().expect("the second mention");
    assert!(err.to_string().contains("the second is not run"), "{err}");
    assert!(matches!(report.targets[0].outcome, TargetOutcome::Ran(_)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_of_sqlite_files_fails_only_the_file_that_is_not_a_database() {
    let dir = tempfile::tempdir().expect("dir");
    let mut targets: Vec<Target> = (0..3)
        .map(|i| {
            Target::database(format!(
                "sqlite://{}?mode=rwc",
                dir.path().join(format!("t{i}.db")).display()
            ))
        })
        .collect();
    let garbage = dir.path().join("garbage.db");
    std::fs::write(
        &garbage,
        b"this is not a SQLite database, not even close to one....",
    )
    .expect("write");
    targets.insert(
        1,
        Target::database(format!("sqlite://{}", garbage.display())),
    );
    let report = Fleet::new([&MIGRATIONS]).targets(targets).up().await;
    assert_eq!(report.outcome, FleetOutcome::PartlyFailed);
    assert_eq!(report.succeeded(), 3);
    let (target, _) = report.failures().next().expect("one failure");
    assert!(target.url().contains("garbage.db"));
    let all_bad = Fleet::new([&MIGRATIONS])
        .targets([Target::database(format!("sqlite://{}", garbage.display()))])
        .up()
        .await;
    assert_eq!(all_bad.outcome, FleetOutcome::AllFailed);
    assert_eq!(
        Fleet::new([&MIGRATIONS]).up().await.outcome,
        FleetOutcome::AllSucceeded,
        "no target, nothing failed"
    );
}

/// A target whose run panics (here its `configure` callback) fails with the panic's message;
/// the others run.
#[tokio::test]
async fn a_target_whose_run_panics_is_reported_failed_with_the_message() {
    let dir = tempfile::tempdir().expect("dir");
    let targets: Vec<Target> = (0..3)
        .map(|i| {
            Target::database(format!(
                "sqlite://{}?mode=rwc",
                dir.path().join(format!("p{i}.db")).display()
            ))
        })
        .collect();
    let calls = std::sync::atomic::AtomicUsize::new(0);
    let report = Fleet::new([&MIGRATIONS])
        .targets(targets)
        .concurrency(1)
        .configure(move |manager| {
            if calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 1 {
                panic!("the second target's configure panics");
            }
            Ok(manager)
        })
        .up()
        .await;
    assert_eq!(report.outcome, FleetOutcome::PartlyFailed);
    assert_eq!(report.succeeded(), 2);
    let failures: Vec<_> = report.failures().collect();
    assert_eq!(failures.len(), 1, "{failures:?}");
    let (target, err) = failures[0];
    assert!(target.url().contains("p1.db"), "{target}");
    assert!(
        err.to_string()
            .contains("the second target's configure panics"),
        "{err}"
    );
}

#[test]
fn a_targets_file_is_read_line_by_line_and_a_bad_line_is_named() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("targets");
    std::fs::write(
        &path,
        "# tenants\npostgres://u@h/db tenant_1\n\nsqlite://a.db\n",
    )
    .expect("write");
    let fleet = Fleet::new([&MIGRATIONS]).targets_file(&path).expect("read");
    assert_eq!(
        fleet.target_list(),
        [
            Target::schema("postgres://u@h/db", "tenant_1"),
            Target::database("sqlite://a.db")
        ]
    );
    std::fs::write(&path, "sqlite://a.db\nnonsense here too\n").expect("write");
    let err = Fleet::new([&MIGRATIONS])
        .targets_file(&path)
        .expect_err("bad line");
    assert!(err.to_string().contains("line 2"), "{err}");
}

/// A schema in the fleet's connect options applies to a PostgreSQL database target (it was
/// dropped, and the run migrated the default schema instead, reporting success).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schema_in_the_connect_options_applies_to_database_targets() {
    let Some(db) = TestDb::new(Backend::Postgres).await else {
        return;
    };
    let report = Fleet::new([&MIGRATIONS])
        .connect_options(ConnectOptions::new().schema("fleet_app"))
        .targets([Target::database(db.url())])
        .up()
        .await;
    assert_eq!(report.outcome, FleetOutcome::AllSucceeded, "{report:?}");
    let in_schema = db
        .rows(
            "SELECT table_schema FROM information_schema.tables \
             WHERE table_name = 'session' ORDER BY table_schema",
        )
        .await;
    assert_eq!(in_schema, ["fleet_app"]);
}

/// A fleet kept for many runs (the HTTP route's) lists its schemas again at each run: a
/// tenant made since is migrated, and one dropped since is not made again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kept_fleet_lists_its_schemas_again_at_each_run() {
    let Some(db) = TestDb::new(Backend::Postgres).await else {
        return;
    };
    db.exec("CREATE SCHEMA relist_a; CREATE SCHEMA relist_b; CREATE SCHEMA other_a")
        .await;
    // Two listings of one server: each run replaces each one's schemas, not the other's.
    let fleet = Fleet::new([&MIGRATIONS])
        .all_schemas(db.url(), Some("relist\\_%"))
        .await
        .expect("schemas listed")
        .all_schemas(db.url(), Some("other\\_%"))
        .await
        .expect("schemas listed");
    assert_eq!(fleet.target_list().len(), 3);
    db.exec("DROP SCHEMA relist_a; CREATE SCHEMA relist_c")
        .await;
    let report = fleet.up().await;
    assert_eq!(report.outcome, FleetOutcome::AllSucceeded, "{report:?}");
    let mut ran: Vec<String> = report
        .targets
        .iter()
        .map(|t| t.target.to_string())
        .collect();
    ran.sort();
    let schemas: Vec<&str> = ran.iter().filter_map(|t| t.rsplit(' ').next()).collect();
    assert_eq!(schemas, ["other_a", "relist_b", "relist_c"], "{ran:?}");
    let schemas = db
        .rows("SELECT schema_name FROM information_schema.schemata WHERE schema_name LIKE 'relist%' ORDER BY 1")
        .await;
    assert_eq!(
        schemas,
        ["relist_b", "relist_c"],
        "the dropped tenant stays dropped"
    );
}

/// A kept fleet whose server listed no schema when it was built, and cannot be listed at a
/// run, has no schema target to fail: the server fails as a target of its own, so that the
/// run does not read as all succeeded (it did: `AllSucceeded` over no target, HTTP's 200).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_cannot_be_listed_fails_though_it_had_no_schema() {
    let Some(db) = TestDb::new(Backend::Postgres).await else {
        return;
    };
    let database = database_name(db.url());
    let role = format!("unlisted_{database}");
    db.exec(&format!("CREATE ROLE {role} LOGIN")).await;
    let url = as_role(db.url(), &role);
    let fleet = Fleet::new([&MIGRATIONS])
        .all_schemas(&url, Some("nobody\\_%"))
        .await
        .expect("listed: no schema yet");
    assert!(fleet.target_list().is_empty());
    // The role may no longer log in: the listing at the run fails.
    db.exec(&format!("ALTER ROLE {role} NOLOGIN")).await;
    let report = fleet.up().await;
    assert_eq!(report.outcome, FleetOutcome::AllFailed, "{report:?}");
    let failures: Vec<(String, String)> = report
        .failures()
        .map(|(target, err)| (target.to_string(), err.to_string()))
        .collect();
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert!(
        failures[0].1.contains("could not be listed")
            && failures[0].1.contains("none were when the fleet was built"),
        "{failures:?}"
    );
    assert!(failures[0].0.contains(database), "{failures:?}");
    db.exec(&format!("ALTER ROLE {role} LOGIN")).await;
}

/// A schema given as a target of its own and also matched by a listing (the first run made
/// it) runs once at later runs, not twice and not as "named twice".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listed_schema_also_given_as_a_target_runs_once() {
    let Some(db) = TestDb::new(Backend::Postgres).await else {
        return;
    };
    let fleet = Fleet::new([&MIGRATIONS])
        .targets([Target::schema(db.url(), "twice_new")])
        .all_schemas(db.url(), Some("twice\\_%"))
        .await
        .expect("listed: none yet");
    assert_eq!(fleet.target_list().len(), 1);
    for run in 0..2 {
        let report = fleet.up().await;
        assert_eq!(
            report.outcome,
            FleetOutcome::AllSucceeded,
            "run {run}: {report:?}"
        );
        assert_eq!(report.targets.len(), 1, "run {run}: {report:?}");
    }
}

/// Schema targets on a server that cannot be reached each fail as `Unreachable` (category
/// `unreachable`), as a database target there does, not as an untyped message; the pools
/// that never connected are not counted in `max_connections`; and `Fleet::check` refuses,
/// connecting to nothing, settings a target cannot take.
#[tokio::test]
async fn an_unreachable_server_of_schema_targets_keeps_its_error_kind() {
    // A port nothing listens on: the connect is refused at once.
    let url = "postgres://nobody@127.0.0.1:9/nowhere";
    let fleet = Fleet::new([&MIGRATIONS])
        .connect_options(ConnectOptions::new().connect_timeout(std::time::Duration::from_secs(2)))
        .targets([Target::schema(url, "t1"), Target::schema(url, "t2")]);
    fleet.check().expect("nothing wrong with the settings");
    let report = fleet.up().await;
    assert_eq!(report.outcome, FleetOutcome::AllFailed);
    for (target, err) in report.failures() {
        assert!(
            matches!(err, Error::Unreachable { .. }),
            "{target}: {err:?}"
        );
        assert_eq!(err.category(), migrate::error::ErrorCategory::Unreachable);
    }
    assert_eq!(report.max_connections, 0, "no pool connected");

    let dir = tempfile::tempdir().expect("dir");
    let file = format!("sqlite://{}?mode=rwc", dir.path().join("a.db").display());
    let pooled = Fleet::new([&MIGRATIONS])
        .connect_options(ConnectOptions::new().transaction_pooling(true))
        .targets([Target::database(file.as_str())]);
    let err = pooled
        .check()
        .expect_err("transaction pooling is PostgreSQL's");
    assert!(matches!(err, Error::Config(_)), "{err}");
    let badly_named = Fleet::new([&MIGRATIONS])
        .connect_options(ConnectOptions::new().tracking_table("x{y"))
        .targets([Target::database(file.as_str())]);
    assert!(matches!(badly_named.check(), Err(Error::Config(_))));
    assert!(!dir.path().join("a.db").exists(), "nothing connected");
}

/// Schema targets on servers that accept a connection and never answer (each waits the whole
/// connect timeout) are waited for side by side, as many as run at once: four such servers take
/// about one timeout, not four one after another. Each target fails as `Unreachable`.
#[tokio::test]
async fn silent_servers_are_waited_for_side_by_side() {
    let mut urls = Vec::new();
    let mut listeners = Vec::new();
    for _ in 0..4 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = listener.local_addr().expect("address");
        urls.push(format!("postgres://nobody@{address}/silent"));
        listeners.push(tokio::spawn(async move {
            // Accepted and held, never answered.
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                held.push(socket);
            }
        }));
    }
    let timeout = std::time::Duration::from_secs(2);
    let fleet = Fleet::new([&MIGRATIONS])
        .concurrency(4)
        .connect_options(ConnectOptions::new().connect_timeout(timeout))
        .targets(urls.iter().map(|url| Target::schema(url, "tenant")));
    let started = std::time::Instant::now();
    let report = fleet.up().await;
    let took = started.elapsed();
    for listener in listeners {
        listener.abort();
    }
    assert_eq!(report.outcome, FleetOutcome::AllFailed, "{report:?}");
    assert_eq!(report.failures().count(), 4);
    for (target, err) in report.failures() {
        assert!(
            matches!(err, Error::Unreachable { .. }),
            "{target}: {err:?}"
        );
    }
    assert!(
        took < timeout * 3,
        "four silent servers took {took:?}: waited one after another ({timeout:?} each)"
    );
}

/// A server's shared pool is closed after its last schema target, not held while the targets
/// of the next server run: at the second server's target, the first database has no session
/// of the fleet's left.
#[tokio::test]
async fn a_servers_pool_is_closed_after_its_last_target() {
    let (Some(first), Some(second)) = (
        TestDb::new(Backend::Postgres).await,
        TestDb::new(Backend::Postgres).await,
    ) else {
        return;
    };
    // The fleet connects as a role of its own, whose sessions are the ones counted (the test's
    // own pools hold sessions on both databases).
    let first_database = database_name(first.url()).to_string();
    let role = format!("pools_{first_database}");
    first.exec(&format!("CREATE ROLE {role} LOGIN")).await;
    first
        .exec(&format!("CREATE SCHEMA tenant_a AUTHORIZATION {role}"))
        .await;
    second
        .exec(&format!("CREATE SCHEMA tenant_b AUTHORIZATION {role}"))
        .await;
    let observer = second.url().to_string();
    let (first_url, second_url) = (as_role(first.url(), &role), as_role(second.url(), &role));
    let managers = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen: std::sync::Arc<std::sync::Mutex<Option<i64>>> = Default::default();
    let (counted, seen_by_configure) = (managers.clone(), seen.clone());
    let fleet = Fleet::new([&MIGRATIONS])
        .concurrency(1)
        .targets([
            Target::schema(&first_url, "tenant_a"),
            Target::schema(&second_url, "tenant_b"),
        ])
        .configure(move |manager| {
            // The second target's manager (one target at a time): how many sessions the first
            // database still has, waiting up to five seconds for them to end.
            if counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 1 {
                let (url, database, role) =
                    (observer.clone(), first_database.clone(), role.clone());
                let sessions = std::thread::spawn(move || {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .expect("runtime");
                    runtime.block_on(sessions_left(&url, &database, &role))
                })
                .join()
                .expect("observer thread");
                *seen_by_configure.lock().expect("seen") = Some(sessions);
            }
            Ok(manager)
        });
    let report = fleet.up().await;
    assert_eq!(report.outcome, FleetOutcome::AllSucceeded, "{report:?}");
    assert_eq!(
        *seen.lock().expect("seen"),
        Some(0),
        "the first server's pool was still open during the second server's target"
    );
}

/// The sessions of `role` on `database`, once they are gone or after five seconds.
async fn sessions_left(url: &str, database: &str, role: &str) -> i64 {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(url).await.expect("observer");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let sessions: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND usename = $2",
        )
        .bind(database)
        .bind(role)
        .fetch_one(&mut conn)
        .await
        .expect("pg_stat_activity");
        if sessions == 0 || std::time::Instant::now() > deadline {
            return sessions;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
