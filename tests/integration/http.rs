//! `migrate::http` on a real server over loopback, driven by a real (minimal, hand-written)
//! HTTP/1.1 client: authentication, bad input, a held lock, a failed step, and the example
//! binary.

use crate::harness::{each_backend, example, TestDb};
use migrate::http::{router, HttpConfig};
use serde_json::Value;
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub(crate) const TOKEN: &str = "test-token-5b1e";

/// One request on a fresh connection: the status code and the JSON body.
pub(crate) async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> (u16, Value) {
    tokio::time::timeout(
        std::time::Duration::from_secs(30),
        exchange(addr, method, path, token, body),
    )
    .await
    .unwrap_or_else(|_| panic!("{method} {path}: no answer within 30 s"))
}

async fn exchange(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> (u16, Value) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(token) = token {
        head.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    let body = body.unwrap_or("");
    head.push_str(&format!(
        "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    ));
    stream.write_all(head.as_bytes()).await.expect("send");
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.expect("read");
    parsed(&response)
}

/// An HTTP response's status and JSON body (`Null` when the body is not JSON).
pub(crate) fn parsed(response: &[u8]) -> (u16, Value) {
    let text = String::from_utf8_lossy(response);
    let (head, body) = text.split_once("\r\n\r\n").expect("a response");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status code");
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

/// Serves the fixture's migrations on `db` at a free loopback port.
pub(crate) async fn serve(db: &TestDb, config: HttpConfig) -> SocketAddr {
    let app = router(db.manager().await, config).expect("router");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

pub(crate) fn with_token() -> HttpConfig {
    HttpConfig {
        token: Some(TOKEN.to_string()),
        ..Default::default()
    }
}

each_backend! {
    async fn the_routes_answer_with_the_documented_statuses(db) {
        let addr = serve(&db, with_token()).await;
        let (code, status) = request(addr, "GET", "/migrations/status", None, None).await;
        assert_eq!(code, 200, "{status}");
        assert_eq!(status["tables"].as_array().map(Vec::len), Some(4));

        // Mutations need the token.
        for token in [None, Some("wrong"), Some("")] {
            let (code, body) = request(addr, "POST", "/migrations/up", token, None).await;
            assert_eq!((code, body["error"]["kind"].as_str()), (401, Some("Unauthorized")), "{token:?}");
        }
        assert!(!db.has_table("session").await, "a refused request changed nothing");

        // Bad input: 400 with the error's kind.
        for (path, body, kind) in [
            ("/migrations/up", r#"{"target": "banana"}"#, "InvalidVersion"),
            ("/migrations/up", r#"{"tables": ["nope"]}"#, "UnknownTable"),
            ("/migrations/down", "{}", "MissingDownTarget"),
            ("/migrations/down", r#"{"target": "2.0.0", "to_base": true}"#, "InvalidBody"),
            ("/migrations/up", r#"{"colour": "blue"}"#, "InvalidBody"),
            ("/migrations/up", "not json", "InvalidBody"),
            // serde would read an array into the body field by field: `[]` ran everything,
            // this one reverted every table to its base.
            ("/migrations/up", "[]", "InvalidBody"),
            ("/migrations/down", "[null, null, [], false, false, true]", "InvalidBody"),
        ] {
            let (code, json) = request(addr, "POST", path, Some(TOKEN), Some(body)).await;
            assert_eq!((code, json["error"]["kind"].as_str()), (400, Some(kind)), "{body}: {json}");
            assert!(json["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));
        }
        let (code, _) = request(addr, "GET", "/migrations/history?limit=many", None, None).await;
        assert_eq!(code, 400);
        assert!(!db.has_table("session").await, "bad input changed nothing");

        // A dry run plans and changes nothing.
        let (code, dry) = request(addr, "POST", "/migrations/up", Some(TOKEN), Some(r#"{"dry_run": true}"#)).await;
        assert_eq!((code, dry["report"]["status"].as_str()), (200, Some("dry_run")));
        assert_eq!(dry["report"]["planned"].as_array().map(Vec::len), Some(10));

        // A run while another runner holds the lock: 409 at once, naming the holder.
        let holder = db.executor().await;
        let held = holder.lock(None).await.expect("hold the lock");
        let started = std::time::Instant::now();
        let (code, locked) = request(addr, "POST", "/migrations/up", Some(TOKEN), None).await;
        assert_eq!((code, locked["error"]["kind"].as_str()), (409, Some("LockTimeout")), "{locked}");
        assert!(locked["error"]["holder"].as_str().is_some_and(|h| !h.is_empty()), "{locked}");
        assert!(started.elapsed() < std::time::Duration::from_secs(5), "it did not queue");
        held.release().await.expect("release");

        // A failed step: 500 with the step.
        db.control("session@2.3.0", "fail").await;
        let (code, failed) = request(addr, "POST", "/migrations/up", Some(TOKEN), Some(r#"{"table": "session"}"#)).await;
        assert_eq!((code, failed["error"]["kind"].as_str()), (500, Some("StepFailed")), "{failed}");
        assert_eq!(failed["error"]["step"]["version"], "2.3.0");
        assert_eq!(failed["error"]["applied"].as_array().map(Vec::len), Some(2));
        assert!(failed["error"]["cause"].as_str().is_some_and(|c| c.contains("told to fail")), "{failed}");
        db.clear_control().await;
        if db.backend() == migrate::testing::Backend::MySql {
            // MySQL commits DDL as it goes: the step ran journalled and left its mark, which a
            // run answers with 409 until an operator settles it.
            let (code, dirty) = request(addr, "POST", "/migrations/up", Some(TOKEN), None).await;
            assert_eq!((code, dirty["error"]["kind"].as_str()), (409, Some("Dirty")), "{dirty}");
            db.manager().await.resolve_dirty("session", migrate::manager::Resolution::RolledBack).await.expect("resolve");
        }

        let (code, up) = request(addr, "POST", "/migrations/up", Some(TOKEN), None).await;
        assert_eq!((code, up["report"]["status"].as_str()), (200, Some("success")), "{up}");
        let (code, down) = request(addr, "POST", "/migrations/down", Some(TOKEN), Some(r#"{"target": "2.1.0", "tables": ["session"]}"#)).await;
        assert_eq!(code, 200, "{down}");
        assert_eq!(down["report"]["applied"][0]["step"]["version"], "2.3.0");
        let (code, history) = request(addr, "GET", "/migrations/history?limit=1", None, None).await;
        assert_eq!(code, 200);
        assert_eq!(history["history"].as_array().map(Vec::len), Some(1));
        assert_eq!(history["history"][0]["direction"], "down");
        // A cap below the default of 50 holds for a request that names no limit too.
        let capped = serve(&db, HttpConfig { max_history: Some(3), ..with_token() }).await;
        let (code, history) = request(capped, "GET", "/migrations/history", None, None).await;
        assert_eq!((code, history["history"].as_array().map(Vec::len)), (200, Some(3)), "{history}");
    }
}

each_backend! {
    async fn a_panicking_run_answers_500_without_the_panics_text(db) {
        db.control("session@2.1.0", "panic").await;
        let addr = serve(&db, with_token()).await;
        let (code, body) = request(addr, "POST", "/migrations/up", Some(TOKEN), None).await;
        assert_eq!(code, 500, "{body}");
        assert_eq!(body["error"]["kind"], "Panicked", "{body}");
        // The migration's (or a driver's) text stays in the server's log.
        assert!(!body.to_string().contains("told to panic"), "{body}");
        db.clear_control().await;
    }

    async fn a_run_goes_on_when_its_client_disconnects(db) {
        // A client that gives up (a timeout, a proxy's idle limit) while a step runs: the run
        // finishes, with nothing left dirty, instead of being dropped with the handler.
        db.control("session@2.3.0", "pause").await;
        let addr = serve(&db, with_token()).await;
        let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let head = format!(
            "POST /migrations/up HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {TOKEN}\r\n\
             Content-Length: 0\r\n\r\n"
        );
        stream.write_all(head.as_bytes()).await.expect("send");
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        drop(stream);
        let manager = db.manager().await;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let status = loop {
            let status = manager.status().await.expect("status");
            let settled = status.iter().all(|t| t.pending == 0 && t.dirty.is_none());
            if settled || std::time::Instant::now() > deadline {
                break status;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        };
        for table in &status {
            assert_eq!((table.table.as_str(), table.pending, &table.dirty), (table.table.as_str(), 0, &None), "the run finished though its client left");
        }
        db.clear_control().await;
    }
}

#[tokio::test]
async fn the_bearer_scheme_is_read_without_regard_to_case() {
    let Some(db) = TestDb::new(migrate::testing::Backend::Sqlite).await else {
        return;
    };
    let addr = serve(&db, with_token()).await;
    for scheme in ["bearer", "BEARER", "Bearer"] {
        let (code, _) = request_with_authorization(addr, &format!("{scheme} {TOKEN}")).await;
        assert_eq!(code, 200, "{scheme}");
    }
    for wrong in ["Basic {TOKEN}", "Bearer{TOKEN}", TOKEN] {
        let (code, _) = request_with_authorization(addr, &wrong.replace("{TOKEN}", TOKEN)).await;
        assert_eq!(code, 401, "{wrong}");
    }
}

/// The head of a `POST /migrations/up` announcing a body of `length` bytes, and `sent` of them.
async fn post_announcing(
    addr: SocketAddr,
    token: Option<&str>,
    length: usize,
    sent: &[u8],
) -> (u16, Value) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let mut head = format!("POST /migrations/up HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(token) = token {
        head.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    head.push_str(&format!(
        "Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
    ));
    stream
        .write_all(head.as_bytes())
        .await
        .expect("send the head");
    stream.write_all(sent).await.expect("send the body");
    let mut response = Vec::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        stream.read_to_end(&mut response),
    )
    .await
    .expect("an answer without the rest of the body")
    .expect("read");
    parsed(&response)
}

#[tokio::test]
async fn the_token_is_checked_before_the_body_is_read_and_the_body_is_capped() {
    let Some(db) = TestDb::new(migrate::testing::Backend::Sqlite).await else {
        return;
    };
    let addr = serve(&db, with_token()).await;
    // Two megabytes announced, none sent: the 401 does not wait for them (it did, reading the
    // body first).
    let (code, body) = post_announcing(addr, None, 2_000_000, b"").await;
    assert_eq!(code, 401, "{body}");
    assert_eq!(body["error"]["kind"], "Unauthorized", "{body}");
    // With the token, a body over 64 KiB is refused as this library's JSON, before it runs.
    let oversized = vec![b' '; 64 * 1024 + 1];
    let (code, body) = post_announcing(addr, Some(TOKEN), oversized.len(), &oversized).await;
    assert_eq!(code, 413, "{body}");
    assert_eq!(body["error"]["kind"], "InvalidBody", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("65536 bytes")),
        "{body}"
    );
    let status = db.manager().await.status().await.expect("status");
    assert!(
        status.iter().all(|table| table.current.is_none()),
        "nothing ran: {status:?}"
    );
}

/// A dry run with this `Authorization` header.
async fn request_with_authorization(addr: SocketAddr, authorization: &str) -> (u16, Value) {
    let header = format!("Authorization: {authorization}\r\n");
    post_with_headers(addr, "/migrations/up", &header, r#"{"dry_run": true}"#).await
}

/// A `POST` with extra header lines (each ending in `\r\n`).
pub(crate) async fn post_with_headers(
    addr: SocketAddr,
    path: &str,
    headers: &str,
    body: &str,
) -> (u16, Value) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{headers}\
         Content-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.expect("send");
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.expect("read");
    parsed(&response)
}

#[tokio::test]
async fn a_router_without_a_token_refuses_to_build_unless_told() {
    let Some(db) = TestDb::new(migrate::testing::Backend::Sqlite).await else {
        return;
    };
    for config in [
        HttpConfig::default(),
        HttpConfig {
            token: Some(String::new()),
            ..Default::default()
        },
    ] {
        let err = router(db.manager().await, config).expect_err("no token");
        assert!(
            matches!(err, migrate::Error::Config(_))
                && err.to_string().contains("insecure_no_auth"),
            "{err}"
        );
    }
    // A token with whitespace at an end could never match the trimmed one a client sends.
    for (token, says) in [
        (format!("{TOKEN}\n"), "trim it"),
        (format!(" {TOKEN}"), "trim it"),
        (" ".to_string(), "trim it"),
        (format!("{TOKEN}\nmore"), "printable ASCII"),
        (format!("{TOKEN}é"), "printable ASCII"),
    ] {
        let config = HttpConfig {
            token: Some(token.clone()),
            ..Default::default()
        };
        let err = router(db.manager().await, config).expect_err("a token no request matches");
        assert!(
            matches!(err, migrate::Error::Config(_)) && err.to_string().contains(says),
            "{err}"
        );
        assert!(
            !err.to_string().contains(TOKEN),
            "the error hides the token: {err}"
        );
    }
    assert!(
        !format!("{:?}", with_token()).contains(TOKEN),
        "Debug hides the token"
    );
    let addr = serve(&db, HttpConfig::insecure_no_auth()).await;
    let (code, _) = request(addr, "POST", "/migrations/up", None, None).await;
    assert_eq!(code, 200);
    let protected = serve(
        &db,
        HttpConfig {
            protect_reads: true,
            ..with_token()
        },
    )
    .await;
    assert_eq!(
        request(protected, "GET", "/migrations/status", None, None)
            .await
            .0,
        401
    );
    assert_eq!(
        request(protected, "GET", "/migrations/status", Some(TOKEN), None)
            .await
            .0,
        200
    );
}

/// The example as the README starts it: `--addr 127.0.0.1:0`, then `listening on <addr>`.
#[tokio::test]
async fn the_example_server_prints_its_address_and_serves() {
    let http = example("http");
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("http.db").display());
    let mut child = tokio::process::Command::new(&http)
        .args(["--addr", "127.0.0.1:0", "--database-url", &url])
        .env("MIGRATE_HTTP_TOKEN", TOKEN)
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start the example");
    let mut stdout = child.stdout.take().expect("stdout");
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while !line.ends_with(b"\n") {
        let n = stdout.read(&mut byte).await.expect("read");
        assert_ne!(
            n,
            0,
            "the example exited: {}",
            String::from_utf8_lossy(&line)
        );
        line.push(byte[0]);
    }
    let line = String::from_utf8_lossy(&line);
    let addr: SocketAddr = line
        .trim()
        .strip_prefix("listening on ")
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("not `listening on <addr>`: {line}"));
    assert_eq!(
        request(addr, "POST", "/migrations/up", None, None).await.0,
        401
    );
    assert_eq!(
        request(
            addr,
            "POST",
            "/migrations/up",
            Some(TOKEN),
            Some(r#"{"target": "x"}"#)
        )
        .await
        .0,
        400
    );
    let (code, up) = request(addr, "POST", "/migrations/up", Some(TOKEN), None).await;
    assert_eq!(
        (code, up["report"]["applied"].as_array().map(Vec::len)),
        (200, Some(7))
    );
    let (code, status) = request(addr, "GET", "/migrations/status", None, None).await;
    assert_eq!(code, 200);
    assert!(
        status["tables"]
            .as_array()
            .is_some_and(|t| t.len() == 3 && t.iter().all(|t| t["pending"] == 0)),
        "{status}"
    );
    child.kill().await.expect("stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_up_answers_207_naming_the_targets_that_failed() {
    let Some(db) = TestDb::new(migrate::testing::Backend::Postgres).await else {
        return;
    };
    let url = crate::fleet::tenants(&db).await;
    let fleet = migrate::fleet::Fleet::new([&crate::MIGRATIONS])
        .all_schemas(&url, Some("tenant\\_%"))
        .await
        .expect("schemas")
        .concurrency(3);
    let without = serve(&db, with_token()).await;
    let (code, body) = request(without, "POST", "/migrations/all/up", Some(TOKEN), None).await;
    assert_eq!(
        (code, body["error"]["kind"].as_str()),
        (404, Some("NoFleet")),
        "{body}"
    );

    let config = HttpConfig {
        fleet: Some(std::sync::Arc::new(fleet)),
        ..with_token()
    };
    let addr = serve(&db, config).await;
    let (code, _) = request(addr, "POST", "/migrations/all/up", None, None).await;
    assert_eq!(code, 401, "the fleet route needs the token too");
    // A dry run (or any other option) is refused, not run as a plain up.
    let fingerprint = || async {
        db.rows(
            "SELECT table_schema, table_name FROM information_schema.tables \
             WHERE table_schema LIKE 'tenant%' ORDER BY 1, 2",
        )
        .await
    };
    let before = fingerprint().await;
    for body in [
        r#"{"dry_run": true}"#,
        r#"{"target": "2.0.0"}"#,
        r#"{"tables": ["session"]}"#,
        "not json",
    ] {
        let (code, answer) =
            request(addr, "POST", "/migrations/all/up", Some(TOKEN), Some(body)).await;
        assert_eq!(
            (code, answer["error"]["kind"].as_str()),
            (400, Some("InvalidBody")),
            "{body}: {answer}"
        );
    }
    assert_eq!(
        fingerprint().await,
        before,
        "a refused fleet request changed nothing"
    );
    let (code, body) = request(addr, "POST", "/migrations/all/up", Some(TOKEN), None).await;
    assert_eq!(code, 207, "{body}");
    assert_eq!(body["outcome"], "partly_failed");
    assert_eq!(
        (body["succeeded"].as_u64(), body["failed"].as_u64()),
        (Some(9), Some(3))
    );
    let failed: Vec<String> = body["targets"]
        .as_array()
        .expect("targets")
        .iter()
        .filter(|t| t["ok"] == false)
        .map(|t| {
            t["target"]
                .as_str()
                .unwrap_or_default()
                .rsplit(' ')
                .next()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    assert_eq!(failed, ["tenant_03", "tenant_06", "tenant_09"]);
    let step = body["targets"][3]["error"]["step"].clone();
    assert_eq!(
        (step["table"].as_str(), step["version"].as_str()),
        (Some("metrics"), Some("2.5.0")),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_up_waits_lock_wait_per_target_and_runs_one_fleet_at_a_time() {
    use sqlx::Connection;
    let Some(db) = TestDb::new(migrate::testing::Backend::Postgres).await else {
        return;
    };
    let url = crate::fleet::tenants(&db).await;
    // tenant_00's run lock, held by another runner for the whole test.
    let key = migrate::postgres::PgDb::connect(&url)
        .await
        .expect("connect")
        .with_schema("tenant_00")
        .expect("schema")
        .lock_key();
    let holder = crate::harness::hold_advisory_lock(db.url(), key).await;
    let fleet = migrate::fleet::Fleet::new([&crate::MIGRATIONS])
        .all_schemas(&url, Some("tenant\\_%"))
        .await
        .expect("schemas")
        .concurrency(12);
    let lock_wait = std::time::Duration::from_secs(3);
    let config = HttpConfig {
        fleet: Some(std::sync::Arc::new(fleet)),
        lock_wait,
        ..with_token()
    };
    let addr = serve(&db, config).await;
    let first = tokio::spawn(request(
        addr,
        "POST",
        "/migrations/all/up",
        Some(TOKEN),
        None,
    ));
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    // The first run waits for tenant_00's lock: a second request does not start another.
    let (code, busy) = request(addr, "POST", "/migrations/all/up", Some(TOKEN), None).await;
    assert_eq!(
        (
            code,
            busy["error"]["kind"].as_str(),
            busy["error"]["category"].as_str()
        ),
        (409, Some("FleetRunning"), Some("locked")),
        "{busy}"
    );
    let (code, body) = first.await.expect("the first request");
    assert_eq!(code, 207, "{body}");
    let tenant_00 = &body["targets"][0];
    assert!(
        tenant_00["target"]
            .as_str()
            .is_some_and(|t| t.ends_with("tenant_00")),
        "{body}"
    );
    assert_eq!(tenant_00["error"]["category"], "locked", "{body}");
    // It waited the router's lock_wait, not the 30 s the connection's lock timeout would be.
    let waited = tenant_00["error"]["waited_ms"].as_f64().unwrap_or(-1.0);
    assert!(
        (2_500.0..15_000.0).contains(&waited),
        "tenant_00 waited {waited} ms for its lock, with lock_wait {lock_wait:?}: {body}"
    );
    assert_eq!(body["targets"][1]["ok"], true, "{body}");
    // The first run over, the route runs again (its mark was cleared).
    let (code, again) = request(addr, "POST", "/migrations/all/up", Some(TOKEN), None).await;
    assert_eq!(code, 207, "{again}");
    assert_eq!(
        again["targets"][0]["error"]["category"], "locked",
        "{again}"
    );
    holder.close().await.expect("release");
}
