//! Migration endpoints for the host's own HTTP server (feature `http`): an axum [`Router`] to
//! mount, as AgentOS offers its migrate endpoints.
//!
//! | route | does |
//! |---|---|
//! | `GET /migrations/status` | `{"ok": true, "tables": [...]}`, as `status --json` |
//! | `GET /migrations/history?limit=N` | `{"ok": true, "history": [...]}`, newest first |
//! | `POST /migrations/up` | runs `up`; the JSON body holds `target`, `tables`, `force`, `dry_run` |
//! | `POST /migrations/down` | runs `down`; `target` or `to_base: true` is required |
//! | `POST /migrations/all/up` | runs [`HttpConfig::fleet`] up: `200` when every target succeeded, `207` with each target's result when some failed, `500` with the same body when none succeeded, `404` without a fleet, `400` for a body with any run option (a fleet goes up to every head), `409` while this router's previous fleet run is still going; each target waits [`HttpConfig::lock_wait`] for its lock, and one whose lock stays held fails (category `locked`) in the `207` |
//!
//! The `POST` routes need `Authorization: Bearer <token>` (compared in constant time, before
//! the body is read), and so do the reads with [`HttpConfig::protect_reads`]. Without a token
//! ([`HttpConfig::insecure_no_auth`]) a `POST` a browser sent from another site is `403`. A body
//! over 64 KiB is `413`, one cut off `400`. A run never queues behind another: while
//! another runner holds the lock the answer is `409` naming the holder. Bad input is `400`, a
//! failed step `500` with the step, a database that cannot be reached (or went away) `503`;
//! every error body is `{"ok": false, "error": {"kind",
//! "category", "message", ...}}`.
//!
//! ```no_run
//! # migrate::migrations! {}
//! # #[migrate::migration(table = "t", version = "1.0.0", irreversible)]
//! # async fn t(_: &mut migrate::Conn<'_>) -> migrate::Result<()> { Ok(()) }
//! # async fn serve() -> Result<(), Box<dyn std::error::Error>> {
//! use migrate::http::{router, HttpConfig};
//! let manager = migrate::MigrationManager::new(migrate::connect("sqlite://app.db").await?, [&MIGRATIONS])?;
//! let token = std::env::var("MIGRATE_HTTP_TOKEN")?;
//! let app = axum::Router::new().merge(router(manager, HttpConfig { token: Some(token), ..Default::default() })?);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! axum::serve(listener, app).await?;
//! # Ok(()) }
//! # fn main() {}
//! ```

use crate::error::ErrorCategory;
use crate::error_json::error_json;
use crate::{Error, MigrationManager, Result};
use axum::body::Bytes;
use axum::extract::{RawQuery, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use subtle::ConstantTimeEq;

/// How the router authenticates and runs.
#[derive(Clone, Default)]
pub struct HttpConfig {
    /// The bearer token the mutating routes require. Without one (and without
    /// [`insecure_no_auth`](Self::insecure_no_auth)) [`router`] refuses to build, and so it
    /// does with one that has whitespace at either end or a byte outside printable ASCII.
    pub token: Option<String>,
    /// Require the token on the `GET` routes too (a router with this and no token is refused).
    pub protect_reads: bool,
    /// How long a run waits for another runner's lock before answering `409` (default zero:
    /// requests never queue).
    pub lock_wait: Duration,
    /// The most history rows one request may ask for (default 1,000; `Some(0)` is refused).
    pub max_history: Option<usize>,
    /// Serve without any token. Only through [`insecure_no_auth`](Self::insecure_no_auth).
    pub insecure_no_auth: bool,
    /// Counts the runs this router started, so that a host's shutdown can wait for them
    /// ([`Runs::wait_idle`]): a run goes on when its client disconnects, in a task of its own,
    /// which a runtime that shuts down would cut off mid-step.
    pub runs: Runs,
    /// The fleet `POST /migrations/all/up` runs (every database AgentOS knows, every tenant
    /// schema); without one that route answers `404`. A fleet with no target and no listed
    /// server is refused when the router is built.
    pub fleet: Option<Arc<crate::fleet::Fleet>>,
}

impl std::fmt::Debug for HttpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpConfig")
            .field("token", &self.token.as_ref().map(|_| "***"))
            .field("protect_reads", &self.protect_reads)
            .field("lock_wait", &self.lock_wait)
            .field("max_history", &self.max_history)
            .field("insecure_no_auth", &self.insecure_no_auth)
            .field("runs", &self.runs.running())
            .field("fleet", &self.fleet.as_ref().map(|f| f.target_list().len()))
            .finish()
    }
}

impl HttpConfig {
    /// Every route open to anyone who can reach the server (but for a browser's `POST` from
    /// another site, `403`): for a server bound to loopback in a test, never for one reachable
    /// from a network. A page served from a host name that resolves to this server (DNS
    /// rebinding) is not told apart.
    pub fn insecure_no_auth() -> Self {
        HttpConfig {
            insecure_no_auth: true,
            ..Default::default()
        }
    }
}

/// The runs a router started that have not finished, for a host's graceful shutdown: keep a
/// clone, give it to the router in [`HttpConfig::runs`], stop taking requests, then await
/// [`wait_idle`](Self::wait_idle) before the process exits.
///
/// ```no_run
/// # migrate::migrations! {}
/// # #[migrate::migration(table = "t", version = "1.0.0", irreversible)]
/// # async fn t(_: &mut migrate::Conn<'_>) -> migrate::Result<()> { Ok(()) }
/// # async fn serve(
/// #     manager: migrate::MigrationManager,
/// #     token: String,
/// #     shutdown: impl std::future::Future<Output = ()> + Send + 'static, // a signal, say
/// # ) -> Result<(), Box<dyn std::error::Error>> {
/// use migrate::http::{router, HttpConfig, Runs};
/// let runs = Runs::new();
/// let config = HttpConfig { token: Some(token), runs: runs.clone(), ..Default::default() };
/// let app = router(manager, config)?;
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
/// axum::serve(listener, app)
///     .with_graceful_shutdown(shutdown)
///     .await?;
/// runs.wait_idle().await; // a run its client left goes on to its end
/// # Ok(()) }
/// # fn main() {}
/// ```
#[derive(Clone, Default)]
pub struct Runs(Arc<RunCount>);

#[derive(Default)]
struct RunCount {
    running: std::sync::atomic::AtomicUsize,
    idle: tokio::sync::Notify,
}

impl Runs {
    /// A tracker with no run.
    pub fn new() -> Self {
        Runs::default()
    }

    /// How many runs have started and not finished.
    pub fn running(&self) -> usize {
        self.0.running.load(Ordering::Acquire)
    }

    /// Waits until no run is going (at once when none is).
    pub async fn wait_idle(&self) {
        loop {
            // Registered before the count is read: a run that ends in between still wakes it.
            let notified = self.0.idle.notified();
            if self.running() == 0 {
                return;
            }
            notified.await;
        }
    }

    /// Counts a run until the guard is dropped (at its end, or as its task unwinds).
    fn start(&self) -> RunGuard {
        self.0.running.fetch_add(1, Ordering::AcqRel);
        RunGuard(self.0.clone())
    }
}

impl std::fmt::Debug for Runs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runs")
            .field("running", &self.running())
            .finish()
    }
}

struct RunGuard(Arc<RunCount>);

impl Drop for RunGuard {
    fn drop(&mut self) {
        if self.0.running.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

const DEFAULT_HISTORY: usize = 50;
const DEFAULT_MAX_HISTORY: usize = 1_000;

struct Shared {
    manager: Arc<MigrationManager>,
    /// SHA-256 of the token: compared in constant time whatever the length of what is sent.
    token: Option<[u8; 32]>,
    protect_reads: bool,
    lock_wait: Duration,
    max_history: usize,
    fleet: Option<Arc<crate::fleet::Fleet>>,
    runs: Runs,
    /// Whether a `POST /migrations/all/up` of this router is running: a second one answers
    /// `409` rather than running every target again behind it.
    fleet_running: AtomicBool,
}

/// Marks this router's fleet run as going until dropped (at the run's end, or as its task
/// unwinds from a panic).
struct FleetRunning(Arc<Shared>);

impl FleetRunning {
    fn start(shared: &Arc<Shared>) -> Option<FleetRunning> {
        let idle = shared
            .fleet_running
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_ok();
        idle.then(|| FleetRunning(Arc::clone(shared)))
    }
}

impl Drop for FleetRunning {
    fn drop(&mut self) {
        self.0.fleet_running.store(false, Ordering::Release);
    }
}

fn digest(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

/// The routes under `/migrations`, ready to merge into the host's router. Refuses (an
/// [`Error::Config`]) to build without a token unless the config is
/// [`HttpConfig::insecure_no_auth`]; with a token no request could match (whitespace at either
/// end, or a byte other than printable ASCII and tab); with `protect_reads` but no token;
/// with `max_history: Some(0)`; and with a fleet that has nothing to run or that
/// [`Fleet::check`](crate::fleet::Fleet::check) refuses.
pub fn router(manager: impl Into<Arc<MigrationManager>>, config: HttpConfig) -> Result<Router> {
    let token = config.token.as_deref().filter(|t| !t.is_empty());
    if token.is_none() && !config.insecure_no_auth {
        return Err(Error::Config(
            "the migration routes need a bearer token: set HttpConfig { token: Some(..), .. }, \
             or pass HttpConfig::insecure_no_auth() to serve them to anyone"
                .to_string(),
        ));
    }
    // A sent token is compared trimmed, and read only when the header is visible ASCII, so a
    // configured one with whitespace at an end (a newline read from a file) or another byte
    // could never match: refused, rather than answering 401 forever.
    if let Some(token) = token {
        if token.trim() != token {
            return Err(Error::Config(format!(
                "the migration routes' bearer token has whitespace at its start or end ({} \
                 bytes; a newline read from a file?): trim it",
                token.len()
            )));
        }
        if !token
            .bytes()
            .all(|b| b == b'\t' || (0x20..=0x7e).contains(&b))
        {
            return Err(Error::Config(
                "the migration routes' bearer token holds a byte an HTTP header cannot carry \
                 as text (a control character, or one outside ASCII): use printable ASCII"
                    .to_string(),
            ));
        }
    }
    if config.protect_reads && token.is_none() {
        return Err(Error::Config(
            "protect_reads needs a token to protect the reads with: set HttpConfig { token: \
             Some(..), .. } (with insecure_no_auth alone the reads would stay open)"
                .to_string(),
        ));
    }
    if config.max_history == Some(0) {
        return Err(Error::Config(
            "max_history is 0: /migrations/history could never answer a row (leave it None for \
             the default of 1,000)"
                .to_string(),
        ));
    }
    if let Some(fleet) = &config.fleet {
        if fleet.runs_nothing() {
            return Err(Error::Config(
                "the fleet for POST /migrations/all/up has no target and lists no server's \
                 schemas: every run would answer 200 having done nothing"
                    .to_string(),
            ));
        }
        fleet.check()?;
    }
    let shared = Arc::new(Shared {
        manager: manager.into(),
        token: token.map(digest),
        protect_reads: config.protect_reads,
        lock_wait: config.lock_wait,
        max_history: config.max_history.unwrap_or(DEFAULT_MAX_HISTORY),
        fleet: config.fleet.clone(),
        runs: config.runs.clone(),
        fleet_running: AtomicBool::new(false),
    });
    Ok(Router::new()
        .route("/migrations/status", get(status))
        .route("/migrations/history", get(history))
        .route("/migrations/up", post(up))
        .route("/migrations/down", post(down))
        .route("/migrations/all/up", post(all_up))
        .with_state(shared))
}

/// An error answer: the status and `{"ok": false, "error": {...}}`.
fn error_response(status: StatusCode, error: Value) -> Response {
    (status, Json(json!({ "ok": false, "error": error }))).into_response()
}

fn status_of(err: &Error) -> StatusCode {
    match err.category() {
        ErrorCategory::BadInput => StatusCode::BAD_REQUEST,
        ErrorCategory::Locked
        | ErrorCategory::Dirty
        | ErrorCategory::Drift
        | ErrorCategory::Refused
        | ErrorCategory::Blocked => StatusCode::CONFLICT,
        ErrorCategory::Unreachable => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn failure(err: &Error) -> Response {
    error_response(status_of(err), error_json(err))
}

fn bad_request(kind: &str, message: String) -> Response {
    error_response(
        StatusCode::BAD_REQUEST,
        json!({ "kind": kind, "category": "bad_input", "message": message }),
    )
}

/// The credentials of a `Bearer` authorization (the scheme's name is case-insensitive).
fn bearer(value: &str) -> Option<&str> {
    let (scheme, credentials) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(credentials)
}

/// `None` when the request may go on; else the `401`.
fn authorize(shared: &Shared, headers: &HeaderMap) -> Option<Response> {
    let expected = shared.token?;
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer)
        .map(|t| digest(t.trim()));
    let authorized = given.is_some_and(|given| bool::from(given.ct_eq(&expected)));
    if authorized {
        return None;
    }
    let mut response = error_response(
        StatusCode::UNAUTHORIZED,
        json!({
            "kind": "Unauthorized",
            "category": "unauthorized",
            "message": "this route needs `Authorization: Bearer <token>` with the configured token",
        }),
    );
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    Some(response)
}

async fn status(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    if shared.protect_reads {
        if let Some(denied) = authorize(&shared, &headers) {
            return denied;
        }
    }
    match shared.manager.status().await {
        Ok(tables) => Json(json!({ "ok": true, "tables": tables })).into_response(),
        Err(err) => failure(&err),
    }
}

async fn history(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    if shared.protect_reads {
        if let Some(denied) = authorize(&shared, &headers) {
            return denied;
        }
    }
    let mut limit = None;
    for pair in query.as_deref().unwrap_or_default().split('&') {
        match pair.split_once('=').unwrap_or((pair, "")) {
            ("limit", _) if limit.is_some() => {
                return bad_request(
                    "InvalidQuery",
                    "`limit` is given twice: give it once".to_string(),
                )
            }
            ("limit", value) => match value.parse::<usize>() {
                Ok(n) if n <= shared.max_history && value.bytes().all(|b| b.is_ascii_digit()) => {
                    limit = Some(n)
                }
                _ => {
                    return bad_request(
                        "InvalidLimit",
                        format!(
                            "limit `{value}` is not a number from 0 to {}",
                            shared.max_history
                        ),
                    )
                }
            },
            _ if pair.is_empty() => {}
            _ => {
                return bad_request(
                    "InvalidQuery",
                    format!("unknown query parameter `{pair}`: only `limit` is accepted"),
                )
            }
        }
    }
    let limit = limit.unwrap_or(DEFAULT_HISTORY.min(shared.max_history));
    match shared.manager.history(limit).await {
        Ok(history) => Json(json!({ "ok": true, "history": history })).into_response(),
        Err(err) => failure(&err),
    }
}

/// The most a run request's body may hold: a JSON object of a few options and table names.
const MAX_BODY: usize = 64 * 1024;

/// The body of a `POST`, read only once its token is checked (an unauthenticated request is
/// answered without waiting for a body it may never finish sending), and at most
/// [`MAX_BODY`] bytes of it; else the `401`, the `403` (a browser's cross-site request to a
/// router without a token), the `413` (a body over the limit) or the `400` (a body cut off).
async fn authorized_body(
    shared: &Shared,
    request: Request,
) -> std::result::Result<Bytes, Response> {
    if let Some(denied) = authorize(shared, request.headers()) {
        return Err(denied);
    }
    if shared.token.is_none() {
        if let Some(site) = cross_site(request.headers(), request.uri()) {
            return Err(error_response(
                StatusCode::FORBIDDEN,
                json!({
                    "kind": "CrossSite",
                    "category": "unauthorized",
                    "message": format!(
                        "a browser sent this request from another site ({site}): without a \
                         token the migration routes refuse what a web page could send"
                    ),
                }),
            ));
        }
    }
    axum::body::to_bytes(request.into_body(), MAX_BODY)
        .await
        .map_err(|e| {
            let too_large =
                std::iter::successors(Some(&e as &(dyn std::error::Error + 'static)), |err| {
                    err.source()
                })
                .any(|err| err.is::<http_body_util::LengthLimitError>());
            let (status, message) = if too_large {
                (
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!(
                        "the body is over {MAX_BODY} bytes (a run request is a small JSON object)"
                    ),
                )
            } else {
                (
                    StatusCode::BAD_REQUEST,
                    format!("the body could not be read whole: {e}"),
                )
            };
            error_response(
                status,
                json!({ "kind": "InvalidBody", "category": "bad_input", "message": message }),
            )
        })
}

/// Why a request is a browser's from another site, if it is: its `Sec-Fetch-Site` says so (a
/// browser that sends it is believed either way), or, from a browser without it, its `Origin`
/// names another host than the request's (its `Host`, or the URI's authority over HTTP/2). A
/// web page can send a `POST` with a text body to any address without asking first (a
/// "simple" request); only one with an `Authorization` header needs the server's leave. Tools
/// (curl, a deploy script) send neither header. This does not stop DNS rebinding (a page whose
/// own host name resolves to the server): bind a router without a token to loopback in tests
/// only.
fn cross_site(headers: &HeaderMap, uri: &axum::http::Uri) -> Option<String> {
    let text = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    if let Some(site) = text(header::HeaderName::from_static("sec-fetch-site")) {
        return (!matches!(site, "same-origin" | "none"))
            .then(|| format!("Sec-Fetch-Site: {site}"));
    }
    let origin = text(header::ORIGIN)?;
    let origin_host = origin.split_once("://").map(|(_, host)| host);
    let host = text(header::HOST).or_else(|| uri.authority().map(|a| a.as_str()));
    let same = origin_host
        .zip(host)
        .is_some_and(|(origin_host, host)| origin_host.eq_ignore_ascii_case(host));
    (!same).then(|| format!("Origin: {origin}"))
}

/// The body of `up` and `down`: the manager's request options.
#[derive(Debug, Default, PartialEq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RunBody {
    #[serde(alias = "to", deserialize_with = "given")]
    target: Option<String>,
    #[serde(deserialize_with = "given")]
    table: Option<String>,
    /// `None` when not given (every table); an empty list is refused, not read as every table.
    #[serde(deserialize_with = "given")]
    tables: Option<Vec<String>>,
    force: bool,
    dry_run: bool,
    to_base: bool,
}

/// A field that is given: `null` is refused (serde would read it as left out, and
/// `"tables": null` from a client's unset variable would run every table).
fn given<'de, D, T>(deserializer: D) -> std::result::Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    T::deserialize(deserializer).map(Some)
}

/// The body, or why it is not a run request.
fn parse_body(body: &Bytes) -> std::result::Result<RunBody, String> {
    const SHAPE: &str =
        "{\"target\" (or \"to\"), \"tables\" (or \"table\"), \"force\", \"dry_run\", \"to_base\"}";
    match body.iter().find(|b| !b.is_ascii_whitespace()) {
        None => return Ok(RunBody::default()),
        // serde reads a JSON array into the struct field by field, in order, unchecked.
        Some(b'{') => {}
        Some(_) => {
            return Err(format!(
                "the body is not a run request: a JSON object {SHAPE}"
            ))
        }
    }
    let body: RunBody = serde_json::from_slice(body)
        .map_err(|e| format!("the body is not a run request ({SHAPE}): {e}"))?;
    if body.tables.as_ref().is_some_and(Vec::is_empty) {
        // A list built by the client that came out empty: running every table instead (a
        // down to every base) is not what it meant.
        return Err("`tables` is empty: leave it out to run every table, or name one".to_string());
    }
    Ok(body)
}

async fn up(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let body = match authorized_body(&shared, request).await {
        Ok(body) => body,
        Err(refused) => return refused,
    };
    let body = match parse_body(&body) {
        Ok(body) => body,
        Err(message) => return bad_request("InvalidBody", message),
    };
    if body.to_base {
        return bad_request(
            "InvalidBody",
            "`to_base` belongs to down, not up".to_string(),
        );
    }
    let runs = shared.runs.clone();
    respond_detached(&runs, async move {
        let mut request = shared
            .manager
            .up()
            .force(body.force)
            .dry_run(body.dry_run)
            .lock_timeout(shared.lock_wait);
        if let Some(target) = body.target {
            request = request.target(target);
        }
        for table in body
            .table
            .into_iter()
            .chain(body.tables.into_iter().flatten())
        {
            request = request.table(table);
        }
        request.await
    })
    .await
}

/// A run request's answer, the run [`detached`] from the request.
async fn respond_detached(
    runs: &Runs,
    run: impl std::future::Future<Output = Result<crate::report::Report>> + Send + 'static,
) -> Response {
    match detached(runs, run).await {
        Ok(outcome) => respond(outcome),
        Err(not_finished) => not_finished,
    }
}

/// Runs `run` in a task of its own and waits for it. A client that disconnects (a timeout, a
/// load balancer's idle limit) drops the handler's future: the run must not go with it, or a
/// step cut off between its statements would be left dirty and a commit riding on the next
/// step lost. The task lives as long as the runtime, and is counted in `runs` until it ends,
/// so that a host's shutdown can wait for it ([`Runs::wait_idle`]). A run that panics answers
/// `500`, and so does one the runtime cancelled.
async fn detached<T: Send + 'static>(
    runs: &Runs,
    run: impl std::future::Future<Output = T> + Send + 'static,
) -> std::result::Result<T, Response> {
    let counted = runs.start();
    let run = async move {
        let _counted = counted;
        run.await
    };
    // In the request's span (a host's request id), though it outlives the request.
    tokio::spawn(tracing::Instrument::in_current_span(run))
        .await
        .map_err(|e| {
            // The panic's message (a migration's or a driver's text) goes to the log only.
            let (kind, message) = if e.is_panic() {
                (
                    "Panicked",
                    "the run did not finish: it panicked (the message is in the server's log)",
                )
            } else {
                (
                    "Cancelled",
                    "the run did not finish: the runtime cancelled it",
                )
            };
            tracing::error!(error = %e, kind, "migration run did not finish");
            error_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                json!({ "kind": kind, "category": "other", "message": message }),
            )
        })
}

/// The fleet up: `200` when every target succeeded, `207` (Multi-Status) when some failed and
/// `500` when none succeeded, with every target's result, failures named with their target and
/// step.
async fn all_up(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let body = match authorized_body(&shared, request).await {
        Ok(body) => body,
        Err(refused) => return refused,
    };
    // A fleet goes up to every head: a request that asks for anything else (a dry run, above
    // all) is refused, not run as a plain up.
    match parse_body(&body) {
        Ok(body) if body == RunBody::default() => {}
        Ok(_) => {
            return bad_request(
                "InvalidBody",
                "a fleet goes up to every head: `target`, `tables`, `force`, `dry_run` and \
                 `to_base` are for /migrations/up"
                    .to_string(),
            )
        }
        Err(message) => return bad_request("InvalidBody", message),
    }
    let Some(fleet) = &shared.fleet else {
        return error_response(
            StatusCode::NOT_FOUND,
            json!({ "kind": "NoFleet", "category": "bad_input", "message": "no fleet is configured: set HttpConfig { fleet: Some(..), .. }" }),
        );
    };
    let Some(running) = FleetRunning::start(&shared) else {
        return error_response(
            StatusCode::CONFLICT,
            json!({ "kind": "FleetRunning", "category": "locked", "message": "a fleet run of this server is already going: try again when it has finished" }),
        );
    };
    // Each target waits for its lock as long as a single run does here, unless the fleet
    // was given a wait of its own.
    let mut fleet = (**fleet).clone();
    if !fleet.has_lock_wait() {
        fleet = fleet.lock_wait(shared.lock_wait);
    }
    let runs = shared.runs.clone();
    let report = match detached(&runs, async move {
        let _running = running;
        fleet.up().await
    })
    .await
    {
        Ok(report) => report,
        Err(panicked) => return panicked,
    };
    // No target succeeded: a failure, not a mixed answer that `curl -f` would take for one.
    let status = match report.outcome {
        crate::fleet::FleetOutcome::AllSucceeded => StatusCode::OK,
        crate::fleet::FleetOutcome::PartlyFailed => StatusCode::MULTI_STATUS,
        crate::fleet::FleetOutcome::AllFailed => StatusCode::INTERNAL_SERVER_ERROR,
    };
    let body = crate::fleet_json::fleet_json(&report, crate::fleet_json::Panics::Hidden);
    (status, Json(body)).into_response()
}

async fn down(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let body = match authorized_body(&shared, request).await {
        Ok(body) => body,
        Err(refused) => return refused,
    };
    let body = match parse_body(&body) {
        Ok(body) => body,
        Err(message) => return bad_request("InvalidBody", message),
    };
    if body.to_base && body.target.is_some() {
        return bad_request(
            "InvalidBody",
            "give `target` or `to_base: true`, not both".to_string(),
        );
    }
    let runs = shared.runs.clone();
    respond_detached(&runs, async move {
        let mut request = shared
            .manager
            .down()
            .force(body.force)
            .dry_run(body.dry_run)
            .lock_timeout(shared.lock_wait);
        if let Some(target) = body.target {
            request = request.target(target);
        }
        if body.to_base {
            request = request.to_base();
        }
        for table in body
            .table
            .into_iter()
            .chain(body.tables.into_iter().flatten())
        {
            request = request.table(table);
        }
        request.await
    })
    .await
}

fn respond(outcome: Result<crate::report::Report>) -> Response {
    match outcome {
        Ok(report) => Json(json!({ "ok": true, "report": report })).into_response(),
        Err(err) => failure(&err),
    }
}
