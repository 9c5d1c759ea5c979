//! `migrate::http` against the input a careful client would not send, and the failures it
//! cannot help: a list of tables that came out empty, a query with a limit given twice, a
//! browser's request from another site to a router without a token, a body cut off, a router
//! configured so it could never work, and a database that went away under a running server.

use crate::harness::TestDb;
use crate::http::{parsed, post_with_headers, request, serve, with_token, TOKEN};
use migrate::http::{router, HttpConfig};
use migrate::testing::Backend;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn an_empty_list_of_tables_is_refused_not_read_as_every_table() {
    let Some(db) = TestDb::new(Backend::Sqlite).await else {
        return;
    };
    let addr = serve(&db, with_token()).await;
    let (code, up) = request(addr, "POST", "/migrations/up", Some(TOKEN), None).await;
    assert_eq!(code, 200, "{up}");
    let before = db.manager().await.status().await.expect("status");
    for (path, body, says) in [
        (
            "/migrations/down",
            r#"{"to_base": true, "tables": []}"#,
            "`tables` is empty",
        ),
        ("/migrations/up", r#"{"tables": []}"#, "`tables` is empty"),
        // A client's unset variable: null is not "left out" either.
        (
            "/migrations/down",
            r#"{"to_base": true, "tables": null}"#,
            "invalid type: null",
        ),
        (
            "/migrations/down",
            r#"{"to_base": true, "table": null}"#,
            "invalid type: null",
        ),
        (
            "/migrations/down",
            r#"{"target": null}"#,
            "invalid type: null",
        ),
    ] {
        let (code, answer) = request(addr, "POST", path, Some(TOKEN), Some(body)).await;
        assert_eq!(
            (code, answer["error"]["kind"].as_str()),
            (400, Some("InvalidBody")),
            "{body}: {answer}"
        );
        assert!(
            answer["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains(says)),
            "{body}: {answer}"
        );
    }
    let after = db.manager().await.status().await.expect("status");
    assert_eq!(
        before.iter().map(|t| t.current.clone()).collect::<Vec<_>>(),
        after.iter().map(|t| t.current.clone()).collect::<Vec<_>>(),
        "no table went down"
    );
}

#[tokio::test]
async fn a_history_limit_is_given_once_as_plain_digits() {
    let Some(db) = TestDb::new(Backend::Sqlite).await else {
        return;
    };
    let addr = serve(&db, with_token()).await;
    for (query, kind) in [
        ("limit=1&limit=2", "InvalidQuery"),
        ("limit=+5", "InvalidLimit"),
        ("limit=05x", "InvalidLimit"),
        ("limit", "InvalidLimit"),
        ("colour=blue", "InvalidQuery"),
    ] {
        let (code, body) = request(
            addr,
            "GET",
            &format!("/migrations/history?{query}"),
            None,
            None,
        )
        .await;
        assert_eq!(
            (code, body["error"]["kind"].as_str()),
            (400, Some(kind)),
            "{query}: {body}"
        );
    }
    let (code, body) = request(addr, "GET", "/migrations/history?limit=5", None, None).await;
    assert_eq!(code, 200, "{body}");
}

#[tokio::test]
async fn without_a_token_a_browsers_cross_site_post_is_refused() {
    let Some(db) = TestDb::new(Backend::Sqlite).await else {
        return;
    };
    let open = serve(&db, HttpConfig::insecure_no_auth()).await;
    // What a web page can send anywhere without asking: a text body, no Authorization.
    for headers in [
        "Origin: http://evil.example\r\n".to_string(),
        "Origin: null\r\n".to_string(),
        "Sec-Fetch-Site: cross-site\r\n".to_string(),
        format!("Sec-Fetch-Site: same-site\r\nOrigin: http://{open}\r\n"),
    ] {
        let (code, body) = post_with_headers(open, "/migrations/up", &headers, "").await;
        assert_eq!(
            (code, body["error"]["kind"].as_str()),
            (403, Some("CrossSite")),
            "{headers}: {body}"
        );
    }
    assert!(
        !db.has_table("session").await,
        "a refused request ran nothing"
    );
    // The same page's own requests, and tools that send no Origin, are served.
    let same = format!("Origin: http://{open}\r\nSec-Fetch-Site: same-origin\r\n");
    let (code, body) =
        post_with_headers(open, "/migrations/up", &same, r#"{"dry_run": true}"#).await;
    assert_eq!(code, 200, "{body}");
    let (code, body) = post_with_headers(open, "/migrations/up", "", r#"{"dry_run": true}"#).await;
    assert_eq!(code, 200, "{body}");
    // A browser that says same-origin is believed, though a proxy rewrote the Host.
    let proxied = "Sec-Fetch-Site: same-origin\r\nOrigin: https://ops.example:8443\r\n";
    let (code, body) =
        post_with_headers(open, "/migrations/up", proxied, r#"{"dry_run": true}"#).await;
    assert_eq!(code, 200, "{body}");
    // With a token the header a page cannot send without the server's leave protects the route.
    let guarded = serve(&db, with_token()).await;
    let headers = format!("Origin: http://evil.example\r\nAuthorization: Bearer {TOKEN}\r\n");
    let (code, body) =
        post_with_headers(guarded, "/migrations/up", &headers, r#"{"dry_run": true}"#).await;
    assert_eq!(code, 200, "{body}");
}

#[tokio::test]
async fn a_body_cut_off_is_a_bad_request_not_one_too_large() {
    let Some(db) = TestDb::new(Backend::Sqlite).await else {
        return;
    };
    let addr = serve(&db, with_token()).await;
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let head = format!(
        "POST /migrations/up HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {TOKEN}\r\n\
         Content-Length: 100\r\n\r\n{{\"dry_run\""
    );
    stream.write_all(head.as_bytes()).await.expect("send");
    // The client stops sending: 90 bytes of the 100 announced never come.
    stream.shutdown().await.expect("half-close");
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut response))
        .await
        .expect("an answer")
        .expect("read");
    let (code, body) = parsed(&response);
    assert_eq!(
        (code, body["error"]["kind"].as_str()),
        (400, Some("InvalidBody")),
        "{body}"
    );
    assert!(!db.has_table("session").await, "nothing ran");
}

#[tokio::test]
async fn a_router_that_could_never_work_refuses_to_build() {
    let Some(db) = TestDb::new(Backend::Sqlite).await else {
        return;
    };
    let no_fleet = migrate::fleet::Fleet::new([&crate::MIGRATIONS]);
    for (config, says) in [
        (
            HttpConfig {
                protect_reads: true,
                ..HttpConfig::insecure_no_auth()
            },
            "protect_reads needs a token",
        ),
        (
            HttpConfig {
                max_history: Some(0),
                ..with_token()
            },
            "max_history is 0",
        ),
        (
            HttpConfig {
                fleet: Some(std::sync::Arc::new(no_fleet)),
                ..with_token()
            },
            "has no target",
        ),
    ] {
        let err = router(db.manager().await, config).expect_err("refused");
        assert!(
            matches!(err, migrate::Error::Config(_)) && err.to_string().contains(says),
            "{says}: {err}"
        );
    }
}

/// A TCP forwarder to `to` on a loopback port, until the returned task is aborted: then its
/// port refuses connections and every forwarded connection is closed, as a server that went
/// away.
async fn forwarder(to: SocketAddr) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        // Dropped with the task: every connection is aborted with it.
        let mut connections = tokio::task::JoinSet::new();
        while let Ok((mut client, _)) = listener.accept().await {
            connections.spawn(async move {
                if let Ok(mut server) = tokio::net::TcpStream::connect(to).await {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                }
            });
        }
    });
    (addr, task)
}

#[tokio::test]
async fn a_database_gone_under_a_running_server_answers_503() {
    let Some(db) = TestDb::new(Backend::Postgres).await else {
        return;
    };
    // postgres://user@127.0.0.1:PORT/db: the server's address, reached through the forwarder.
    let url = db.url();
    let server = url
        .split_once('@')
        .and_then(|(_, rest)| rest.split_once('/'))
        .map(|(address, _)| address)
        .expect("an address in the test URL");
    let (forwarded, forwarding) = forwarder(server.parse().expect("a socket address")).await;
    let through = url.replacen(server, &forwarded.to_string(), 1);
    let options = migrate::ConnectOptions::new().connect_timeout(Duration::from_secs(2));
    let executor = migrate::connect_with(&through, &options)
        .await
        .expect("connect");
    let manager = migrate::MigrationManager::new(executor, [&crate::MIGRATIONS]).expect("graph");
    let app = router(manager, with_token()).expect("router");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    let (code, body) = request(addr, "GET", "/migrations/status", None, None).await;
    assert_eq!(code, 200, "{body}");

    forwarding.abort();
    let _ = forwarding.await;
    for (method, path) in [("GET", "/migrations/status"), ("POST", "/migrations/up")] {
        let (code, body) = request(addr, method, path, Some(TOKEN), None).await;
        assert_eq!(
            (code, body["error"]["category"].as_str()),
            (503, Some("unreachable")),
            "{method} {path}: {body}"
        );
    }
    assert!(!db.has_table("session").await, "nothing ran");
}

#[tokio::test]
async fn a_fleet_where_no_target_succeeded_answers_500_without_a_panics_text() {
    let Some(db) = TestDb::new(Backend::Sqlite).await else {
        return;
    };
    db.control("session@2.1.0", "panic").await;
    let fleet = migrate::fleet::Fleet::new([&crate::MIGRATIONS])
        .targets([migrate::fleet::Target::database(db.url())]);
    let config = HttpConfig {
        fleet: Some(std::sync::Arc::new(fleet)),
        ..with_token()
    };
    let addr = serve(&db, config).await;
    let (code, body) = request(addr, "POST", "/migrations/all/up", Some(TOKEN), None).await;
    // Every target failed: a failure `curl -f` sees, not a 207.
    assert_eq!(
        (code, body["outcome"].as_str()),
        (500, Some("all_failed")),
        "{body}"
    );
    let error = &body["targets"][0]["error"];
    assert_eq!(error["kind"], "Panicked", "{body}");
    // The migration's (or a driver's) text stays in the server's log, as for a single run.
    assert!(!body.to_string().contains("told to panic"), "{body}");
    db.clear_control().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_can_wait_for_the_runs_its_clients_left() {
    let Some(db) = TestDb::new(Backend::Sqlite).await else {
        return;
    };
    // A step that sleeps; the client leaves while it runs.
    db.control("session@2.3.0", "pause").await;
    let runs = migrate::http::Runs::new();
    let config = HttpConfig {
        runs: runs.clone(),
        ..with_token()
    };
    let addr = serve(&db, config).await;
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let head = format!(
        "POST /migrations/up HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {TOKEN}\r\n\
         Content-Length: 0\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.expect("send");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while runs.running() == 0 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(runs.running(), 1, "the run is counted");
    drop(stream);
    // What a host's shutdown awaits: it returns once the run has ended, every table at head.
    tokio::time::timeout(Duration::from_secs(30), runs.wait_idle())
        .await
        .expect("the run ends");
    assert_eq!(runs.running(), 0);
    let status = db.manager().await.status().await.expect("status");
    assert!(
        status.iter().all(|t| t.pending == 0 && t.dirty.is_none()),
        "the run had finished when wait_idle returned: {status:?}"
    );
    db.clear_control().await;
}
