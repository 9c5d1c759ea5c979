//! Connecting with bad input: malformed URLs, a port nobody listens on (which must fail within
//! the connect timeout, never hang), and a file that is not a SQLite database (which must be
//! left byte for byte as it was).

use crate::harness::each_backend;
use migrate::testing::Backend;
use migrate::Error;
use std::time::{Duration, Instant};

each_backend! {
    async fn a_connect_timeout_of_duration_max_connects(db) {
        // "Wait for ever" is `Duration::MAX`, which sqlx would add to an `Instant`.
        let options = migrate::ConnectOptions::new().connect_timeout(Duration::MAX);
        let executor = migrate::connect_with(db.url(), &options).await.expect("connects");
        let manager = migrate::MigrationManager::new(executor, [&crate::MIGRATIONS]).expect("graph");
        let report = manager.up().await.expect("applies");
        assert_eq!(crate::harness::steps(&report), crate::harness::all_up());
    }

    async fn malformed_urls_are_typed_errors(db) {
        let scheme = match db.backend() {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
            Backend::MySql => "mysql",
        };
        let urls = [
            format!("{scheme}://u@127.0.0.1:notaport/app"),
            format!("{scheme}://u@[::1/app"),
            format!("{scheme}:/"),
            format!("{scheme}://u@127.0.0.1:99999/app"),
        ];
        for url in urls.iter().map(String::as_str).chain(["", "nope://x", "://", "sqlite"]) {
            let started = Instant::now();
            let err = match migrate::connect(url).await {
                Ok(_) => panic!("`{url}` connected"),
                Err(err) => err,
            };
            assert!(
                matches!(err, Error::Config(_) | Error::Database(_) | Error::Io { .. } | Error::Unreachable { .. }),
                "{url}: {err:?}"
            );
            assert!(!err.to_string().trim().is_empty());
            assert!(started.elapsed() < Duration::from_secs(15), "{url} took {:?}", started.elapsed());
        }
    }

    async fn a_url_without_a_scheme_or_in_capitals_says_so(db) {
        if db.backend() != Backend::Sqlite {
            return;
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let bare = dir.path().join("app.db");
        let bare = bare.to_str().expect("a UTF-8 temp path");
        for (url, says) in [
            (bare, "has no scheme"),
            ("sqlite", "has no scheme"),
            ("C:\\data\\app.db", "has no scheme"),
            ("SQLITE://app.db", "write `sqlite:`"),
            ("Postgres://u@h/db", "write `postgres:`"),
        ] {
            let err = match migrate::connect(url).await {
                Ok(_) => panic!("`{url}` connected"),
                Err(err) => err,
            };
            assert!(matches!(err, Error::Config(_)) && err.to_string().contains(says), "{url}: {err}");
        }
        assert!(!std::path::Path::new(bare).exists(), "no file made");
        assert!(!std::path::Path::new("sqlite").exists(), "no file named `sqlite` made");
    }

    async fn a_failed_connect_names_the_server_or_file(db) {
        let dir = tempfile::tempdir().expect("temp dir");
        let (url, named) = match db.backend() {
            // No such directory: SQLite cannot create the file.
            Backend::Sqlite => {
                let file = dir.path().join("missing").join("app.db");
                let file = file.to_str().expect("a UTF-8 temp path").to_string();
                (format!("sqlite://{file}?mode=rwc"), file)
            }
            Backend::Postgres => (
                "postgres://app:s3cret@no-such-host.invalid:5432/app".to_string(),
                "postgres://no-such-host.invalid:5432/app".to_string(),
            ),
            Backend::MySql => (
                "mysql://app:s3cret@no-such-host.invalid:3306/app".to_string(),
                "mysql://no-such-host.invalid:3306/app".to_string(),
            ),
        };
        let options = migrate::ConnectOptions::new().connect_timeout(Duration::from_secs(5));
        let err = match migrate::connect_with(&url, &options).await {
            Ok(_) => panic!("`{url}` connected"),
            Err(err) => err,
        };
        let text = err.to_string();
        assert!(text.contains(&named), "the error names `{named}`: {text}");
        assert!(!text.contains("s3cret") && !format!("{err:?}").contains("s3cret"), "{err:?}");
    }

    async fn an_unreachable_port_fails_within_the_connect_timeout(db) {
        let timeout = Duration::from_secs(2);
        let started = Instant::now();
        let err = match db.backend() {
            Backend::Sqlite => return,
            Backend::Postgres => migrate::postgres::PgDb::connect_with_timeout("postgres://postgres:pw@127.0.0.1:1/app", timeout)
                .await
                .map(|_| ())
                .expect_err("nobody listens on port 1"),
            Backend::MySql => migrate::mysql::MySqlDb::connect_with_timeout("mysql://root:pw@127.0.0.1:1/app", timeout)
                .await
                .map(|_| ())
                .expect_err("nobody listens on port 1"),
        };
        let waited = started.elapsed();
        let Error::Unreachable { ref target, .. } = err else {
            panic!("expected Unreachable, got {err:?}");
        };
        assert!(target.ends_with("://127.0.0.1:1/app"), "{target}");
        assert!(!err.to_string().contains("pw"), "{err}");
        assert!(waited >= timeout && waited < timeout + Duration::from_secs(3), "took {waited:?}");
        println!("RELIABILITY unreachable backend={} timeout_ms={} failed_after_ms={}", db.backend().name(), timeout.as_millis(), waited.as_millis());
    }
}

#[tokio::test]
async fn a_file_that_is_not_a_sqlite_database_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("notes.db");
    let content = "these are my notes, not a database\n".repeat(200);
    std::fs::write(&path, &content).expect("write");
    let outcome = async {
        let db = migrate::sqlite::SqliteDb::open(&path).await?;
        let manager = migrate::MigrationManager::new(db, [&crate::MIGRATIONS])?;
        manager.up().await
    }
    .await;
    let err = outcome.expect_err("not a database");
    assert!(matches!(err, Error::Database(_)), "{err:?}");
    assert!(err.to_string().contains("not a database"), "{err}");
    assert_eq!(std::fs::read_to_string(&path).expect("read"), content);
}
