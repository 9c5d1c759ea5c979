//! `migrate::cli` on every backend, in-process through `Cli::run_from` with captured output,
//! and the built `examples/cli` binary as a newcomer runs it. Every database URL carries a
//! password, and no byte of output may show it.

use crate::harness::{each_backend, run_cli_example, Captured, TestDb};
use migrate::cli::{exit, Cli};
use migrate::testing::Backend;
use serde_json::Value;

const PASSWORD: &str = "Cli-pw-7f3a9";

/// One CLI run's exit code, stdout and stderr.
pub(crate) struct Run {
    pub(crate) code: u8,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl Run {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not one JSON document ({e}):\n{}", self.stdout))
    }
}

/// The test database's URL with a password in it. PostgreSQL's throwaway cluster trusts its
/// users whatever they give; MariaDB checks, so there the URL names a user made with it.
pub(crate) async fn url_with_password(db: &TestDb) -> String {
    if db.backend() != Backend::MySql {
        return with_password(db.url());
    }
    let user = "cli_pw_user";
    db.exec(&format!(
        "CREATE USER IF NOT EXISTS '{user}'@'127.0.0.1' IDENTIFIED BY '{PASSWORD}'"
    ))
    .await;
    db.exec(&format!(
        "GRANT ALL PRIVILEGES ON *.* TO '{user}'@'127.0.0.1'"
    ))
    .await;
    let (scheme, rest) = db.url().split_once("://").expect("a server URL");
    let host = rest.split_once('@').map_or(rest, |(_, host)| host);
    format!("{scheme}://{user}:{PASSWORD}@{host}")
}

/// The URL with a password in it (for URLs that never reach a server that checks it).
fn with_password(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) if scheme != "sqlite" => match rest.split_once('@') {
            Some((user, host)) => format!("{scheme}://{user}:{PASSWORD}@{host}"),
            None => url.to_string(),
        },
        _ => url.to_string(),
    }
}

/// Runs the CLI over the fixture's migrations on a thread of its own (it refuses to block a
/// runtime's thread), and checks that the password shows nowhere.
pub(crate) async fn cli(url: &str, args: &[&str]) -> Run {
    let mut argv = vec![
        "migrate".to_string(),
        "--database-url".to_string(),
        url.to_string(),
    ];
    argv.extend(args.iter().map(|a| a.to_string()));
    let (stdout, stderr) = (Captured::default(), Captured::default());
    let (out, err) = (stdout.clone(), stderr.clone());
    let code = tokio::task::spawn_blocking(move || {
        std::thread::spawn(move || {
            Cli::new([&crate::MIGRATIONS]).run_from(argv, Box::new(out), Box::new(err))
        })
        .join()
        .expect("the CLI thread")
    })
    .await
    .expect("join");
    let run = Run {
        code,
        stdout: stdout.text(),
        stderr: stderr.text(),
    };
    for text in [&run.stdout, &run.stderr] {
        assert!(
            !text.contains(PASSWORD),
            "{args:?}: the password shows in\n{text}"
        );
    }
    run
}

fn table<'a>(doc: &'a Value, name: &str) -> &'a Value {
    doc["tables"]
        .as_array()
        .expect("tables")
        .iter()
        .find(|t| t["table"] == name)
        .unwrap_or_else(|| panic!("no table {name} in {doc}"))
}

/// Runs the CLI (see [`cli`]) and checks its exit code.
pub(crate) async fn expect(url: &str, args: &[&str], code: u8) -> Run {
    let run = cli(url, args).await;
    assert_eq!(
        run.code, code,
        "{args:?}\nstdout:\n{}\nstderr:\n{}",
        run.stdout, run.stderr
    );
    run
}

each_backend! {
    async fn a_release_target_names_the_tables_it_leaves_above_it(db) {
        let url = url_with_password(&db).await;
        expect(&url, &["up", "--table", "metrics"], exit::OK).await;
        let run = expect(&url, &["up", "--to", "v2.1.0"], exit::OK).await;
        assert!(
            run.stdout.contains("skipped integration:metrics: at 2.5.0, above the target 2.1.0: left as it is"),
            "{}",
            run.stdout
        );
        let json = expect(&url, &["--json", "up", "--to", "2.1.0"], exit::OK).await.json();
        let skipped = json["report"]["skipped"].as_array().expect("skipped").clone();
        let metrics = skipped.iter().find(|s| s["table"] == "metrics").expect("metrics skipped");
        assert_eq!(metrics["reason"]["kind"], "above_target", "{json}");
        assert_eq!(metrics["reason"]["current"], "2.5.0", "{json}");
    }

    async fn table_name_renames_a_table_for_every_command(db) {
        let url = url_with_password(&db).await;
        let rename = ["--table-name", "session=my_sessions"];
        expect(&url, &[&rename[..], &["up", "--table", "session"]].concat(), exit::OK).await;
        assert!(db.has_table("my_sessions").await && !db.has_table("session").await);
        let status = expect(&url, &[&rename[..], &["--json", "status"]].concat(), exit::OK).await.json();
        assert_eq!(table(&status, "session")["current"], "2.3.0", "{status}");
        let recorded = db.rows("SELECT table_name FROM migrate_schema_versions").await;
        assert_eq!(recorded, ["my_sessions"]);
        let down = [&rename[..], &["down", "--table", "session", "--to", "2.0.0"]].concat();
        expect(&url, &down, exit::OK).await;
        assert!(!db.has_column("my_sessions", "state").await);
        // A fresh install from the command line: the renamed session table, fresh at 2.3.0.
        let fresh_db = crate::harness::TestDb::new(db.backend()).await.expect("a second database");
        let fresh_url = url_with_password(&fresh_db).await;
        let installed = expect(&fresh_url, &[&rename[..], &["--json", "install-fresh"]].concat(), exit::OK).await.json();
        assert_eq!(installed["report"]["applied"][0]["step"]["name"], "session_fresh", "{installed}");
        assert!(fresh_db.has_column("my_sessions", "state").await);
        // Adopting a version table from the command line: Agno's row moves memory's start.
        db.exec("CREATE TABLE agno_schema_versions (table_name VARCHAR(64) PRIMARY KEY, version VARCHAR(20) NOT NULL)").await;
        db.exec("INSERT INTO agno_schema_versions VALUES ('memory', '2.0.0')").await;
        db.exec("CREATE TABLE memory (memory_id VARCHAR(64) PRIMARY KEY, session_id VARCHAR(64))").await;
        let adopt = ["--adopt-versions", "agno_schema_versions", "--json", "up"];
        let adopted = expect(&url, &[&rename[..], &adopt[..]].concat(), exit::OK).await.json();
        let applied = adopted["report"]["applied"].as_array().expect("applied").clone();
        let memory: Vec<_> = applied.iter().filter(|a| a["step"]["table"] == "memory").map(|a| a["step"]["version"].clone()).collect();
        assert_eq!(memory, ["2.3.0"], "memory@2.0.0 was adopted, not run: {adopted}");
        // The other tool moves past ours: the status table says so, beside its exit code.
        db.exec("UPDATE agno_schema_versions SET version = '9.0.0' WHERE table_name = 'memory'").await;
        let adopt_status = ["--adopt-versions", "agno_schema_versions", "status", "--check"];
        let conflict = expect(&url, &[&rename[..], &adopt_status[..]].concat(), exit::DRIFT).await;
        assert!(
            conflict.stdout.contains("adopted: `agno_schema_versions` records 9.0.0, `migrate_schema_versions` 2.3.0"),
            "{}",
            conflict.stdout
        );
        let bad = expect(&url, &["--table-name", "session", "status"], exit::USAGE).await;
        assert!(bad.stderr.contains("LOGICAL=PHYSICAL"), "{}", bad.stderr);
        let unknown = expect(&url, &["--table-name", "sessions=x", "status"], exit::USAGE).await;
        assert!(unknown.stderr.contains("sessions"), "{}", unknown.stderr);
    }

    async fn every_command_runs_and_prints_what_it_says(db) {
        let url = url_with_password(&db).await;
        let status = expect(&url, &["--json", "status"], exit::OK).await.json();
        let session = table(&status, "session");
        for field in ["module", "table", "current", "latest", "pending", "dirty"] {
            assert!(session.get(field).is_some(), "status lacks {field}: {session}");
        }
        assert_eq!((session["current"].clone(), session["latest"].as_str(), session["pending"].as_u64()), (Value::Null, Some("2.3.0"), Some(3)));
        let human = expect(&url, &["status"], exit::OK).await.stdout;
        for word in ["module", "table", "current", "latest", "pending", "dirty", "session", "2.3.0"] {
            assert!(human.contains(word), "{word} missing from\n{human}");
        }
        expect(&url, &["status", "--check"], exit::PENDING).await;
        expect(&url, &["verify"], exit::PENDING).await;
        expect(&url, &["--json", "verify"], exit::PENDING).await;

        let plan = expect(&url, &["--json", "plan"], exit::OK).await.json();
        assert_eq!(plan["planned"].as_array().map(Vec::len), Some(10));
        let up = expect(&url, &["--json", "up"], exit::OK).await;
        let report = &up.json()["report"];
        assert_eq!(report["status"], "success");
        assert_eq!(report["applied"].as_array().map(Vec::len), Some(10));
        assert!(report["total_time_ms"].as_f64().is_some(), "{report}");
        assert!(up.stderr.contains("[10/10]"), "progress lines:\n{}", up.stderr);
        expect(&url, &["status", "--check"], exit::OK).await;
        let verified = expect(&url, &["verify"], exit::OK).await.stdout;
        assert!(verified.starts_with("ok:"), "{verified}");
        let again = expect(&url, &["--json", "up"], exit::OK).await.json();
        assert_eq!(again["report"]["status"], "up_to_date");

        let down = expect(&url, &["--json", "down", "-1", "--table", "session"], exit::OK).await.json();
        assert_eq!(down["report"]["applied"][0]["step"]["version"], "2.3.0");
        let current = expect(&url, &["--json", "current"], exit::OK).await.json();
        assert_eq!(table(&current, "session")["current"], "2.1.0");
        assert_eq!(table(&current, "memory")["current"], "2.3.0");
        expect(&url, &["verify"], exit::PENDING).await;
        let history = expect(&url, &["--json", "history", "--limit", "2"], exit::OK).await.json();
        let rows = history["history"].as_array().expect("history");
        assert_eq!(rows.len(), 2);
        assert_eq!((rows[0]["direction"].as_str(), rows[0]["table"].as_str(), rows[0]["outcome"].as_str()), (Some("down"), Some("session"), Some("succeeded")));

        // A dry run changes nothing and shows its plan.
        let dry = expect(&url, &["down", "--to", "2.1.0", "--table", "metrics", "--dry-run"], exit::OK).await.stdout;
        assert!(dry.contains("metrics@2.5.0") && dry.contains("dry run"), "{dry}");
        let current = expect(&url, &["--json", "current"], exit::OK).await.json();
        assert_eq!(table(&current, "session")["current"], "2.1.0");

        // stamp and unstamp move the record only.
        expect(&url, &["stamp", "session", "2.3.0"], exit::OK).await;
        let current = expect(&url, &["--json", "current"], exit::OK).await.json();
        assert_eq!(table(&current, "session")["current"], "2.3.0");
        expect(&url, &["unstamp", "session"], exit::OK).await;
        let current = expect(&url, &["--json", "current"], exit::OK).await.json();
        assert_eq!(table(&current, "session")["current"], "2.1.0");

        expect(&url, &["down", "--base", "--table", "metrics"], exit::OK).await;
        let again = expect(&url, &["--json", "down", "--base", "--table", "metrics"], exit::OK).await.json();
        assert_eq!(again["report"]["status"], "up_to_date");
        assert!(!db.has_table("metrics").await);
        // eval@2.1.0 is irreversible: refused (exit 1), nothing reverted.
        let refused = expect(&url, &["--json", "down", "--base", "--table", "eval"], exit::FAILED).await.json();
        assert_eq!(refused["error"]["kind"], "Irreversible");
        assert!(db.has_table("eval").await);
    }

    async fn wrong_input_is_a_usage_error_that_changes_nothing(db) {
        let url = url_with_password(&db).await;
        expect(&url, &["up", "--table", "session", "--to", "2.1.0"], exit::OK).await;
        let before = db.fingerprint().await;
        for args in [
            &["down"][..],
            &["down", "-1"],
            &["down", "--to", "2.0.0", "--base"],
            // One step counts from the recorded version, which --force ignores: it reverted
            // every step above that one, never applied ones included.
            &["down", "-1", "--force", "--table", "session"],
            &["up", "--to", "banana"],
            // No row would read as "no history yet".
            &["history", "--limit", "0"],
            &["up", "--table", "nope"],
            &["stamp", "session", "x.y"],
            &["stamp", "session", "9.9.9"],
            &["repair", "session"],
            &["--schema", "tenant", "status"],
            &["--tracking-table", "", "status"],
            // An empty variable: refused, never taken for the bare `--schema` of a schema
            // comparison (which creates a scratch database on a server).
            &["--schema", "", "verify"],
            &["--schema", "", "up"],
            &["no-such-command"],
        ] {
            let run = cli(&url, args).await;
            if *args == ["--schema", "tenant", "status"] && db.backend() == Backend::Postgres {
                assert_eq!(run.code, exit::OK, "{args:?}: {}", run.stderr);
                continue;
            }
            assert_eq!(run.code, exit::USAGE, "{args:?}\n{}\n{}", run.stdout, run.stderr);
            assert!(run.stderr.contains("error"), "{args:?}: {}", run.stderr);
        }
        if db.backend() == Backend::Postgres {
            let tenant = db.rows("SELECT schema_name FROM information_schema.schemata WHERE schema_name = 'tenant'").await;
            assert!(tenant.is_empty(), "status under --schema created it: {tenant:?}");
        }
        let json = cli(&url, &["--json", "up", "--table", "nope"]).await.json();
        assert_eq!((json["ok"].as_bool(), json["error"]["kind"].as_str()), (Some(false), Some("UnknownTable")));
        // `down -1` names the unknown table as every other command does (it was a Config error).
        let json = cli(&url, &["--json", "down", "-1", "--table", "nope"]).await.json();
        assert_eq!(json["error"]["kind"].as_str(), Some("UnknownTable"), "{json}");
        // `--scratch-url` without the schema comparison it is for is refused, not ignored.
        let run = cli(&url, &["verify", "--scratch-url", "sqlite::memory:"]).await;
        assert_eq!(run.code, exit::USAGE, "{}{}", run.stdout, run.stderr);
        assert!(run.stderr.contains("--schema-drift"), "{}", run.stderr);
        // A fleet's options without a fleet: refused, not a single-database run that exits 0.
        for args in [&["up", "--fail-fast"][..], &["status", "--concurrency", "4"]] {
            let run = cli(&url, args).await;
            assert_eq!(run.code, exit::USAGE, "{args:?}: {}{}", run.stdout, run.stderr);
            assert!(run.stderr.contains("is for a fleet"), "{args:?}: {}", run.stderr);
        }
        // Usage errors the CLI finds itself or clap finds are one JSON document too.
        for args in [&["--json", "down"][..], &["--json", "--schema", "", "status"], &["--json", "up", "--to"]] {
            let run = cli(&url, args).await;
            assert_eq!(run.code, exit::USAGE, "{args:?}");
            let json = run.json();
            assert_eq!(json["ok"].as_bool(), Some(false), "{args:?}: {json}");
            assert!(json["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{args:?}: {json}");
        }
        // The whole message: what is missing, not only that something is.
        let json = cli(&url, &["--json", "down"]).await.json();
        assert!(json["error"]["message"].as_str().is_some_and(|m| m.contains("--to")), "{json}");
        assert_eq!(db.fingerprint().await, before);
    }

    async fn exit_codes_name_locked_dirty_and_drift(db) {
        let url = url_with_password(&db).await;
        expect(&url, &["up", "--to", "2.1.0"], exit::OK).await;

        // Locked: another runner holds the lock while there is work to do.
        let holder = db.executor().await;
        let held = holder.lock(None).await.expect("hold the run lock");
        let locked = expect(&url, &["--lock-timeout", "0.3", "--json", "up"], exit::LOCKED).await;
        assert_eq!(locked.json()["error"]["kind"], "LockTimeout");
        assert!(locked.json()["error"]["holder"].is_string(), "{}", locked.stdout);
        assert!(locked.stderr.contains("held by"), "{}", locked.stderr);
        held.release().await.expect("release");

        // Dirty: a journalled step fails and leaves its mark.
        db.control("metrics@2.5.0", "fail").await;
        let failed = expect(&url, &["--json", "up"], exit::FAILED).await.json();
        assert_eq!(failed["error"]["kind"], "StepFailed");
        assert_eq!(failed["error"]["step"]["version"], "2.5.0");
        db.clear_control().await;
        expect(&url, &["up"], exit::DIRTY).await;
        expect(&url, &["status", "--check"], exit::DIRTY).await;
        let verify = expect(&url, &["verify"], exit::DIRTY).await.stdout;
        assert!(verify.contains("dirty") && verify.contains("repair integration:metrics"), "{verify}");
        let repair = expect(&url, &["repair", "metrics", "--rolled-back"], exit::OK).await.stdout;
        assert!(repair.contains("is dirty: up step 2.5.0") && repair.contains("outside a transaction"), "{repair}");
        expect(&url, &["up"], exit::OK).await;
        expect(&url, &["verify"], exit::OK).await;

        // Drift: an applied step's recorded checksum no longer matches.
        db.exec("UPDATE migrate_schema_versions_history SET checksum = 'sha256:00000000000000000000000000000000000000000000000000000000000000ee' WHERE table_name = 'session' AND version = '2.0.0'").await;
        db.exec("UPDATE migrate_schema_versions SET checksum = 'sha256-64:0000000000000000' WHERE table_name = 'session'").await;
        expect(&url, &["verify"], exit::DRIFT).await;
        expect(&url, &["down", "-1", "--table", "session"], exit::DRIFT).await;
        expect(&url, &["accept-checksums", "session"], exit::OK).await;
        expect(&url, &["verify"], exit::OK).await;

        // Ahead: the database records a version this binary does not know.
        db.exec("UPDATE migrate_schema_versions SET version = '2.9.0' WHERE table_name = 'session'").await;
        let ahead = expect(&url, &["verify"], exit::DRIFT).await.stdout;
        assert!(ahead.contains("is ahead"), "{ahead}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_errors_never_show_the_password() {
    let Some(db) = TestDb::new(Backend::Postgres).await else {
        return;
    };
    let url = with_password(db.url());
    let (scheme, rest) = url.split_once("://").expect("url");
    let (userinfo, _) = rest.split_once('@').expect("userinfo");
    for bad in [
        format!("{scheme}://{userinfo}@127.0.0.1:1/app"),
        format!("{scheme}://{userinfo}@127.0.0.1:notaport/app"),
        format!("oracle://{userinfo}@localhost/app"),
    ] {
        let run = cli(&bad, &["--json", "status"]).await;
        assert_ne!(run.code, exit::OK, "{bad}");
        assert_eq!(run.json()["ok"], false);
    }
}

/// The CLI run with `args` (no database URL), on this thread: for commands that need none.
fn offline(args: &[&str]) -> Run {
    let (out, err) = (Captured::default(), Captured::default());
    let code = Cli::new([&crate::MIGRATIONS]).run_from(
        args.iter().copied(),
        Box::new(out.clone()),
        Box::new(err.clone()),
    );
    Run {
        code,
        stdout: out.text(),
        stderr: err.text(),
    }
}

#[test]
fn scaffolding_needs_no_database() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("001_create.sql"),
        "CREATE TABLE t (id INT);",
    )
    .expect("write");
    let sql_dir = dir.path().to_string_lossy().into_owned();
    let run = offline(&["migrate", "new", "t", "add email", "--sql", &sql_dir]);
    assert_eq!(run.code, exit::OK, "{}", run.stderr);
    assert!(
        dir.path().join("002_add_email.sql").exists()
            && dir.path().join("002_add_email.down.sql").exists()
    );
    // The table is checked with --sql too: one with whitespace around it is refused, and no
    // file is written.
    let run = offline(&["migrate", "new", " t ", "add phone", "--sql", &sql_dir]);
    assert_ne!(run.code, exit::OK, "{}", run.stdout);
    assert!(run.stderr.contains("table name"), "{}", run.stderr);
    assert!(!dir.path().join("003_add_phone.sql").exists());
    let run = offline(&["migrate", "new", "session", "add state"]);
    assert_eq!(run.code, exit::OK, "{}", run.stderr);
    assert!(
        run.stdout
            .contains("table = \"session\", version = \"2.4.0\", parent = \"2.3.0\""),
        "{}",
        run.stdout
    );
    // A table that differs only in case from a declared one would start a second chain that
    // the graph then refuses: refused here, with the declared name, as bad input.
    let run = offline(&["migrate", "new", "Session", "add state"]);
    assert_eq!(run.code, exit::USAGE, "{}", run.stdout);
    assert!(run.stderr.contains("`session`"), "{}", run.stderr);
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    // With --sql the same refusals hold (a case-only twin, `module:table`), and no file is
    // written.
    for table in ["Session", "agno:session"] {
        let run = offline(&["migrate", "new", table, "add phone", "--sql", &sql_dir]);
        assert_eq!(run.code, exit::USAGE, "{table}: {}", run.stdout);
        assert!(run.stderr.contains("session"), "{table}: {}", run.stderr);
        assert!(!dir.path().join("003_add_phone.sql").exists(), "{table}");
    }
}

#[test]
fn help_lists_the_exit_codes() {
    let (out, err) = (Captured::default(), Captured::default());
    let code = Cli::new([&crate::MIGRATIONS]).run_from(
        ["migrate", "--help"],
        Box::new(out.clone()),
        Box::new(err),
    );
    assert_eq!(code, exit::OK);
    for line in [
        "3  migrations are pending",
        "5  locked",
        "6  dirty",
        "DATABASE_URL",
    ] {
        assert!(
            out.text().contains(line),
            "{line} missing from\n{}",
            out.text()
        );
    }
}

/// The built example, as a newcomer runs it from the README: `DATABASE_URL` from the
/// environment, real exit codes.
#[test]
fn the_example_binary_runs_the_quickstart_migrations() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("cli.db").display());
    let run = |args: &[&str]| {
        let out = run_cli_example(&url, args);
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    assert_eq!(run(&["status", "--check"]).0, Some(3));
    assert_eq!(run(&["up"]).0, Some(0));
    let (code, json) = run(&["--json", "status"]);
    assert_eq!(code, Some(0));
    let doc: Value = serde_json::from_str(&json).expect("json");
    assert_eq!(table(&doc, "session")["current"], "2.3.0");
    assert_eq!(
        run(&["down", "-1"]).0,
        Some(2),
        "three tables: -1 needs --table"
    );
    assert_eq!(run(&["down", "-1", "--table", "session"]).0, Some(0));
    assert_eq!(run(&["verify"]).0, Some(3));
    assert_eq!(run(&["up"]).0, Some(0));
    assert_eq!(run(&["verify"]).0, Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_renamed_twice_is_refused_before_the_database_is_opened() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("new.db");
    let url = format!("sqlite://{}?mode=rwc", path.display());
    let args = [
        "--table-name",
        "session=a",
        "--table-name",
        "session=b",
        "up",
    ];
    let run = expect(&url, &args, exit::USAGE).await;
    assert!(
        run.stderr
            .contains("--table-name renames `session` twice: to `a` and to `b`"),
        "{}",
        run.stderr
    );
    assert!(!path.exists(), "the database file was created");
    let run = expect(&url, &["--table-name", "nosuch=x", "up"], exit::USAGE).await;
    assert!(
        run.stderr.contains("nosuch"),
        "the unknown table is named: {}",
        run.stderr
    );
    assert!(
        !path.exists(),
        "the database file was created for an unknown table"
    );
}

/// A command's wrong table or version is refused before the database is opened: no SQLite
/// file is created (`mode=rwc` would create it), and no server is asked (the servers' URLs here
/// name a port nothing listens on: asking would be a connection error, not a usage error that
/// names the wrong input).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commands_wrong_table_or_version_opens_no_database() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("new.db");
    let urls = [
        format!("sqlite://{}?mode=rwc", path.display()),
        format!("postgres://app:{PASSWORD}@127.0.0.1:1/app"),
        format!("mysql://app:{PASSWORD}@127.0.0.1:1/app"),
    ];
    let wrong: [(&[&str], &str); 11] = [
        (&["up", "--table", "nope"], "unknown table `nope`"),
        (&["up", "--to", "banana"], "banana"),
        (&["up", "--to", "9.9.9"], "9.9.9"),
        (&["down", "--table", "session", "--to", "9.9.9"], "9.9.9"),
        (&["plan", "--table", "nope"], "unknown table `nope`"),
        (
            &["down", "--table", "nope", "--to", "2.0.0"],
            "unknown table `nope`",
        ),
        (&["stamp", "session", "9.9.9"], "9.9.9"),
        (&["stamp", "nope", "2.0.0"], "unknown table `nope`"),
        (&["unstamp", "nope"], "unknown table `nope`"),
        (&["accept-checksums", "nope"], "unknown table `nope`"),
        (&["repair", "nope", "--completed"], "unknown table `nope`"),
    ];
    for url in &urls {
        for (args, named) in wrong {
            let run = expect(url, args, exit::USAGE).await;
            assert!(run.stderr.contains(named), "{url} {args:?}: {}", run.stderr);
            let left: Vec<_> = std::fs::read_dir(dir.path()).expect("dir").collect();
            assert!(left.is_empty(), "{args:?} left {left:?}");
        }
    }
    // A command that needs the database still opens it.
    expect(&urls[0], &["status"], exit::OK).await;
    assert!(path.exists(), "status made no database file");
}

#[test]
fn a_url_given_without_its_flag_never_shows_its_password() {
    // clap's usage error quotes the argument it could not place.
    for args in [
        &["migrate", "postgres://app:Typo-pw-5150@db/app", "status"][..],
        &["migrate", "up", "postgres://app:Typo-pw-5150@db/app"][..],
        &["migrate", "--json", "up", "mysql://app:Typo-pw-5150@db/app"][..],
    ] {
        let (out, err) = (Captured::default(), Captured::default());
        let code = Cli::new([&crate::MIGRATIONS]).run_from(
            args,
            Box::new(out.clone()),
            Box::new(err.clone()),
        );
        let text = format!("{}{}", out.text(), err.text());
        assert_eq!(code, exit::USAGE, "{args:?}: {text}");
        assert!(
            text.contains("app:***@db"),
            "the argument is still named: {text}"
        );
        assert!(
            !text.contains("Typo-pw-5150"),
            "{args:?}: the password shows in\n{text}"
        );
    }
}

/// `-vv` prints this library's events, redacted, and not sqlx's (which quote every statement).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verbose_logging_shows_only_this_librarys_events_without_the_password() {
    let Some(db) = TestDb::new(Backend::Postgres).await else {
        return;
    };
    let url = with_password(db.url());
    let out = tokio::task::spawn_blocking(move || run_cli_example(&url, &["-vv", "up"]))
        .await
        .expect("join");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("migration run ended"), "{stderr}");
    assert!(
        !stderr.contains(PASSWORD),
        "the password shows in\n{stderr}"
    );
    assert!(
        !stderr.contains("db.statement") && !stderr.contains("rows_affected"),
        "sqlx's statement log is not the CLI's: {stderr}"
    );
}

each_backend! {
    async fn a_panicking_migration_fails_the_command_with_one_json_document(db) {
        // Before, the panic ended the CLI's thread (a process: exit 101, nothing on stdout).
        let url = url_with_password(&db).await;
        db.control("session@2.1.0", "panic").await;
        let run = cli(&url, &["--json", "up"]).await;
        assert_eq!(run.code, exit::FAILED, "{}{}", run.stdout, run.stderr);
        let json = run.json();
        assert_eq!(json["ok"], false);
        assert!(
            json["error"]["message"].as_str().is_some_and(|m| m.contains("panicked")),
            "{json}"
        );
        db.clear_control().await;
        // The lock was released: the next run completes, or, on MariaDB, where every step is
        // journalled outside a transaction, names the step the panic cut off.
        let next = if db.backend() == Backend::MySql { exit::DIRTY } else { exit::OK };
        expect(&url, &["up"], next).await;
    }
}
