//! Passwords in database URLs never appear in an error's message, its `Debug` output or any
//! error in its source chain, whatever went wrong: a malformed URL, a port nobody listens on,
//! a database that does not exist, an unknown scheme, and a wrong password.

use crate::harness::{each_backend, error_chain};
use migrate::testing::Backend;

const PASSWORD: &str = "Sup3r-s3cret-pw";
/// The same password written percent-encoded in the URL: `!` is `%21`.
const ENCODED: &str = "Sup3r%21s3cret";
const DECODED: &str = "Sup3r!s3cret";

/// Every text an error shows: its message, its `Debug`, and each source's message and `Debug`.
fn every_text(err: &migrate::Error) -> String {
    error_chain(err).map(|e| format!("{e}\n{e:?}\n")).collect()
}

async fn assert_hidden(url: &str) {
    let err = match migrate::connect(url).await {
        Ok(_) => panic!("{url} connected"),
        Err(err) => err,
    };
    let text = every_text(&err);
    for secret in [PASSWORD, ENCODED, DECODED] {
        assert!(
            !text.contains(secret),
            "{url}: the password shows in\n{text}"
        );
    }
    assert!(!text.trim().is_empty());
}

/// `scheme://host:port` of a server URL (`scheme://user@host:port/db`).
fn server(url: &str) -> (String, String) {
    let (scheme, rest) = url.split_once("://").expect("a server URL");
    let host = rest.split('/').next().unwrap_or_default();
    let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
    (scheme.to_string(), host.to_string())
}

/// The database a server URL names (`scheme://user@host:port/db?options`).
fn database_of(url: &str) -> &str {
    let path = url.rsplit('/').next().unwrap_or_default();
    path.split('?').next().unwrap_or_default()
}

each_backend! {
    async fn bad_urls_never_show_the_password(db) {
        if db.backend() == Backend::Sqlite {
            for url in [
                format!("sqlite://u:{PASSWORD}@/nonexistent-dir/x/y.db"),
                // A password in the query, which sqlx refuses as an unknown parameter before
                // any file is opened (the file itself is named by connect's errors, tested in
                // connect_errors.rs): the refusal quotes no password.
                format!("sqlite:///nonexistent-dir/db.sqlite?mode=ro&password={PASSWORD}"),
            ] {
                assert_hidden(&url).await;
            }
            return;
        }
        let (scheme, host) = server(db.url());
        let user = if scheme == "mysql" { "root" } else { "postgres" };
        for url in [
            // A database that does not exist on a real server.
            format!("{scheme}://{user}:{PASSWORD}@{host}/no_such_database"),
            format!("{scheme}://{user}:{ENCODED}@{host}/no_such_database"),
            // A port nobody listens on.
            format!("{scheme}://{user}:{PASSWORD}@127.0.0.1:1/app"),
            // Malformed URLs.
            format!("{scheme}://{user}:{PASSWORD}@127.0.0.1:notaport/app"),
            format!("{scheme}://{user}:{PASSWORD}@[::1/app"),
            format!("{scheme}://{user}:{PASSWORD}@{host}/app?sslmode=bogus&ssl-mode=bogus"),
            // A scheme no backend serves.
            format!("oracle://{user}:{PASSWORD}@{host}/app"),
        ] {
            assert_hidden(&url).await;
        }
        // A wrong password, on the throwaway servers, which check it (a server of your own
        // may trust everyone): PostgreSQL's `password_login` members must give one, and
        // MariaDB checks every user's.
        // This backend's own server only (an empty variable is unset, as for the harness),
        // and said loudly: the case cannot be made there.
        let var = if db.backend() == Backend::Postgres {
            "MIGRATE_TEST_POSTGRES_URL"
        } else {
            "MIGRATE_TEST_MYSQL_URL"
        };
        if std::env::var(var).is_ok_and(|url| !url.is_empty()) {
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "\nSKIPPED: the wrong-password case on {var}'s server (a server of your own may trust every password)\n"
            );
            return;
        }
        let role = format!("pw_{}", std::process::id());
        let refusal = if db.backend() == Backend::Postgres {
            db.exec("DO $$ BEGIN CREATE ROLE password_login NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$").await;
            db.exec(&format!("CREATE ROLE {role} LOGIN PASSWORD 'right-pw' IN ROLE password_login")).await;
            "password authentication failed"
        } else {
            db.exec(&format!("CREATE USER '{role}'@'127.0.0.1' IDENTIFIED BY 'right-pw'")).await;
            db.exec(&format!("GRANT ALL ON `{}`.* TO '{role}'@'127.0.0.1'", database_of(db.url()))).await;
            "Access denied"
        };
        let database = match db.backend() {
            Backend::Postgres => "postgres",
            _ => database_of(db.url()),
        };
        let wrong = format!("{scheme}://{role}:{PASSWORD}@{host}/{database}");
        assert_hidden(&wrong).await;
        let err = migrate::connect(&wrong).await.map(|_| ()).expect_err("wrong password");
        assert!(matches!(err, migrate::Error::Database(_)), "{err:?}");
        assert!(err.to_string().contains(refusal), "{err}");
        migrate::connect(&format!("{scheme}://{role}:right-pw@{host}/{database}"))
            .await
            .expect("the right password connects");
    }
}
