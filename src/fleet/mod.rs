//! Fleets: one run over many databases and PostgreSQL tenant schemas, with bounded
//! concurrency, a lock and a report per target, and one outcome over all.
//!
//! ```no_run
//! # migrate::migrations! {}
//! # #[migrate::migration(table = "t", version = "1.0.0", irreversible)]
//! # async fn t(_: &mut migrate::Conn<'_>) -> migrate::Result<()> { Ok(()) }
//! # async fn demo() -> migrate::Result<()> {
//! use migrate::fleet::{Fleet, FleetOutcome};
//! let fleet = Fleet::new([&MIGRATIONS])
//!     .all_schemas("postgres://app@db/app", Some("tenant\\_%"))
//!     .await?
//!     .concurrency(8);
//! let report = fleet.up().await;
//! if report.outcome != FleetOutcome::AllSucceeded {
//!     for (target, error) in report.failures() {
//!         eprintln!("{target}: {error}");
//!     }
//! }
//! # Ok(()) }
//! # fn main() {}
//! ```
//!
//! - **Per target**: each target is migrated by its own manager, with its own lock (the advisory
//!   key or lock row of its schema) and its own report; one target's failure never stops or
//!   touches another. [`Fleet::fail_fast`] stops starting new targets after the first failure.
//! - **Bounded**: at most [`concurrency`](Fleet::concurrency) targets run at once (default 8).
//!   Schemas of one server share one pool of `2 × concurrency + 1` connections (a run holds
//!   one for its lock and one for its steps), so 1,000 schemas never open 1,000 connections.
//!   A server's pool is connected when its first target starts (servers as many at once as
//!   targets run, so unreachable servers are waited for side by side, not one after another)
//!   and closed after its last target in the list, not held to the end of the run (targets
//!   run in list order: a list that interleaves servers keeps each pool until its last line).
//! - **Re-runs** do what is left: a target already at head costs one state read.
//! - **Progress** goes through `tracing`: `k/n targets` and the failures so far.

mod report;
mod target;

pub use report::{FleetOutcome, FleetReport, TargetOutcome, TargetReport};
pub use target::Target;

use crate::startup::Problem;
use crate::{ConnectOptions, Error, MigrationManager, Result};
use migrate_core::backend::MigrationBackend;
use migrate_core::migration::MigrationSet;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::Instrument;

/// What a fleet run does on each target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Up,
    Status,
    Verify,
}

use crate::manager::Configure;

/// Many targets migrated as one: see the [module documentation](self).
#[derive(Clone)]
pub struct Fleet {
    sets: Vec<&'static MigrationSet>,
    targets: Vec<Target>,
    /// What `all_schemas` listed: listed again at each run, so that a fleet kept for many runs
    /// (the HTTP route's) takes tenants made since and does not bring back ones dropped.
    listings: Vec<Listing>,
    /// The listings that failed at this run, and why: their schemas fail, not run.
    unlisted: Vec<(Listing, String)>,
    concurrency: usize,
    fail_fast: bool,
    options: ConnectOptions,
    /// How long each `up` waits for its target's lock, when set ([`Fleet::lock_wait`]).
    lock_wait: Option<Duration>,
    configure: Option<Configure>,
}

impl std::fmt::Debug for Fleet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fleet")
            .field("targets", &self.targets.len())
            .field("concurrency", &self.concurrency)
            .field("fail_fast", &self.fail_fast)
            .finish_non_exhaustive()
    }
}

/// One `all_schemas` call: the server, the pattern, and the schemas it listed last.
#[derive(Debug, Clone)]
struct Listing {
    url: String,
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    like: Option<String>,
    schemas: Vec<String>,
}

/// The pool size for the schemas of one server: a lock and a step connection per running
/// target, and one spare.
fn shared_pool_size(concurrency: usize) -> u32 {
    u32::try_from(concurrency.saturating_mul(2).saturating_add(1)).unwrap_or(u32::MAX)
}

impl Fleet {
    /// A fleet over the migrations of `sets`, with no target yet.
    pub fn new(sets: impl IntoIterator<Item = &'static MigrationSet>) -> Self {
        Fleet {
            sets: sets.into_iter().collect(),
            targets: Vec::new(),
            listings: Vec::new(),
            unlisted: Vec::new(),
            concurrency: 8,
            fail_fast: false,
            options: ConnectOptions::new(),
            lock_wait: None,
            configure: None,
        }
    }

    /// Adds targets.
    pub fn targets(mut self, targets: impl IntoIterator<Item = Target>) -> Self {
        self.targets.extend(targets);
        self
    }

    /// Adds the targets of a file: one per line, `URL` or `URL SCHEMA` (see
    /// [`Target::read_file`]).
    pub fn targets_file(self, path: impl AsRef<std::path::Path>) -> Result<Self> {
        let targets = Target::read_file(path.as_ref())?;
        Ok(self.targets(targets))
    }

    /// Adds every schema of the PostgreSQL database at `url` but its own and `public`
    /// (with `like`, those matching that SQL `LIKE` pattern, such as `tenant\_%`: in `LIKE`,
    /// `_` matches any one character, so `tenant_%` would take a schema `tenants` too). Each
    /// run (`up`, `status`, `verify`) lists them again: a fleet kept for many runs takes the
    /// schemas made since, and leaves out the ones dropped; a server that cannot be listed
    /// fails its schemas listed before, or itself as a target when it had none.
    pub async fn all_schemas(self, url: &str, like: Option<&str>) -> Result<Self> {
        #[cfg(feature = "postgres")]
        {
            let schemas = list_schemas(url, like, &self.options).await?;
            let mut fleet = self.targets(schemas.iter().map(|s| Target::schema(url, s)));
            fleet.listings.push(Listing {
                url: url.to_string(),
                like: like.map(str::to_string),
                schemas,
            });
            Ok(fleet)
        }
        #[cfg(not(feature = "postgres"))]
        {
            let _ = (url, like);
            Err(Error::Config(
                "listing schemas needs the `postgres` feature".into(),
            ))
        }
    }

    /// How many targets run at once (at least 1; default 8).
    pub fn concurrency(mut self, targets: usize) -> Self {
        self.concurrency = targets.max(1);
        self
    }

    /// Starts no new target after the first failure; the ones running finish. Off by default:
    /// a failure is reported and every other target still runs.
    pub fn fail_fast(mut self, fail_fast: bool) -> Self {
        self.fail_fast = fail_fast;
        self
    }

    /// The connection options of every target (tracking table, lock timeout, connect
    /// timeout; a schema here applies to PostgreSQL database targets, and is overridden by
    /// schema targets).
    pub fn connect_options(mut self, options: ConnectOptions) -> Self {
        self.options = options;
        self
    }

    /// How long each target's `up` waits for another runner's lock before that target fails
    /// with [`Error::LockTimeout`] naming the holder, instead of the lock timeout of
    /// [`connect_options`](Self::connect_options) (which, on SQLite, is also the busy timeout
    /// of every connection, and is not changed by this). `Duration::ZERO` tries each lock once:
    /// what `POST /migrations/all/up` does with its `lock_wait`.
    pub fn lock_wait(mut self, wait: Duration) -> Self {
        self.lock_wait = Some(wait);
        self
    }

    /// Whether [`lock_wait`](Self::lock_wait) was set.
    #[cfg(feature = "http")]
    pub(crate) fn has_lock_wait(&self) -> bool {
        self.lock_wait.is_some()
    }

    /// Configures each target's manager (a baseline, table names), as `Cli::configure` does.
    pub fn configure(
        mut self,
        configure: impl Fn(MigrationManager) -> Result<MigrationManager> + Send + Sync + 'static,
    ) -> Self {
        self.configure = Some(Arc::new(configure));
        self
    }

    /// The targets, in order.
    pub fn target_list(&self) -> &[Target] {
        &self.targets
    }

    /// Whether the fleet has nothing to run: no target, and no server whose schemas each run
    /// lists again (such a fleet may find schemas made later).
    #[cfg(feature = "http")]
    pub(crate) fn runs_nothing(&self) -> bool {
        self.targets.is_empty() && self.listings.is_empty()
    }

    /// Every target up to its latest versions.
    pub async fn up(&self) -> FleetReport {
        self.run(Action::Up).await
    }

    /// Every target's status; a target fails only when it cannot be read.
    pub async fn status(&self) -> FleetReport {
        self.run(Action::Status).await
    }

    /// The CI gate over the fleet: a target fails when anything is pending, dirty, drifted or
    /// ahead, naming each problem.
    pub async fn verify(&self) -> FleetReport {
        self.run(Action::Verify).await
    }

    async fn run(&self, action: Action) -> FleetReport {
        // The whole run's wall time, the listing of schemas included.
        let started = Instant::now();
        match self.relisted().await {
            Some(fleet) => fleet.run_targets(action, started).await,
            None => self.run_targets(action, started).await,
        }
    }

    /// Checks every target with the options it would connect with, connecting to nothing:
    /// the tracking table's name, each schema's, and settings a target's database does not
    /// take (a schema, or transaction pooling, on SQLite or MySQL). The CLI refuses a fleet
    /// whose options fail here before anything connects, as it does for one database; a run
    /// reports the same error under each target it concerns.
    pub fn check(&self) -> Result<()> {
        for target in &self.targets {
            migrate_backends::checked_dialect(target.url(), &self.options_of(target))?;
        }
        if let Some(&(index, first)) = self.named_again().first() {
            return Err(Error::Config(format!(
                "{} is named twice (targets {} and {}): it would race itself for its own lock",
                self.targets[index],
                first + 1,
                index + 1
            )));
        }
        Ok(())
    }

    /// Each target equal to an earlier one, with the first one's index (one pass: a fleet of
    /// thousands of targets is checked in linear time).
    fn named_again(&self) -> Vec<(usize, usize)> {
        let mut first_at: HashMap<&Target, usize> = HashMap::with_capacity(self.targets.len());
        let mut again = Vec::new();
        for (index, target) in self.targets.iter().enumerate() {
            let first = *first_at.entry(target).or_insert(index);
            if first != index {
                again.push((index, first));
            }
        }
        again
    }

    /// The connection options of `target`: the fleet's, with a schema target's schema, and
    /// without the fleet's schema for a database that has none.
    fn options_of(&self, target: &Target) -> ConnectOptions {
        let mut options = self.options.clone();
        match target {
            Target::Schema { schema, .. } => options.schema = Some(schema.clone()),
            Target::Database { url } if !is_postgres_url(url) => options.schema = None,
            Target::Database { .. } => {}
        }
        options
    }

    /// This fleet with the schemas of its listings listed again (`None` when it has none):
    /// each listing's schemas replaced by what it finds now, the other targets kept. A server
    /// that cannot be listed keeps the schemas listed when the fleet was built, which then
    /// fail without running (what was dropped since must not be made again); one that had
    /// none fails as a target of its own (`run_targets`).
    async fn relisted(&self) -> Option<Fleet> {
        if self.listings.is_empty() {
            return None;
        }
        #[cfg_attr(not(feature = "postgres"), allow(unused_mut))]
        let mut fleet = self.clone();
        #[cfg(feature = "postgres")]
        for (i, listing) in self.listings.iter().enumerate() {
            let url = &listing.url;
            match list_schemas(url, listing.like.as_deref(), &self.options).await {
                Ok(schemas) => {
                    let was = |t: &Target| matches!(t, Target::Schema { url: u, schema } if u == url && listing.schemas.contains(schema));
                    fleet.targets.retain(|t| !was(t));
                    // A schema also given as a target of its own (one the first run made) is
                    // not added twice (a set: a listing may hold thousands of schemas).
                    let given: std::collections::HashSet<Target> =
                        fleet.targets.iter().cloned().collect();
                    fleet.targets.extend(
                        schemas
                            .iter()
                            .map(|s| Target::schema(url, s))
                            .filter(|target| !given.contains(target)),
                    );
                    fleet.listings[i].schemas = schemas;
                }
                Err(err) => {
                    let server = crate::backend::redact_url_password(url, url);
                    tracing::warn!(%server, error = %err, "could not list the schemas again; their targets fail");
                    fleet.unlisted.push((
                        listing.clone(),
                        if listing.schemas.is_empty() {
                            format!(
                                "the schemas of {server} could not be listed (none were when \
                                 the fleet was built): {err}"
                            )
                        } else {
                            format!("the schemas of {server} could not be listed again: {err}")
                        },
                    ));
                }
            }
        }
        Some(fleet)
    }

    async fn run_targets(&self, action: Action, started: Instant) -> FleetReport {
        let total = self.targets.len();
        let pools = Arc::new(self.shared_pools());
        let shared = Arc::new(self.clone());
        let mut outcomes: Vec<Option<TargetReport>> = (0..total).map(|_| None).collect();
        let mut running = tokio::task::JoinSet::new();
        // Each task's target and start: a task's output says nothing else, and a task that
        // panicked has none.
        let mut started_tasks = HashMap::new();
        let mut next = 0;
        let mut failures = 0;
        let mut done = 0;
        // A target named twice would race itself for its own lock: its second mention fails
        // without running (and, its first mention running, does not stop a `fail_fast` run).
        for (index, first) in self.named_again() {
            done += 1;
            outcomes[index] = Some(TargetReport {
                target: self.targets[index].clone(),
                outcome: TargetOutcome::Failed(Error::Config(format!(
                    "{} is named twice (targets {} and {}): the second is not run, as it would \
                     race the first for its own lock",
                    self.targets[index],
                    first + 1,
                    index + 1
                ))),
                elapsed: Duration::ZERO,
            });
        }
        // The schema targets of each server still to finish: its pool is closed after the last.
        let mut unfinished: HashMap<&str, usize> = HashMap::new();
        for (target, outcome) in self.targets.iter().zip(&outcomes) {
            if let (Target::Schema { url, .. }, None) = (target, outcome) {
                *unfinished.entry(url.as_str()).or_default() += 1;
            }
        }
        loop {
            while running.len() < self.concurrency && !(self.fail_fast && failures > 0) {
                // Past the targets that already have their outcome (named twice).
                while next < total && outcomes[next].is_some() {
                    next += 1;
                }
                if next == total {
                    break;
                }
                let fleet = shared.clone();
                let pools = pools.clone();
                let index = next;
                // Each target's events in a span naming it, under the caller's span.
                let span = tracing::info_span!("fleet_target", target = %self.targets[index]);
                let task = running.spawn(
                    async move {
                        let target = fleet.targets[index].clone();
                        let clock = Instant::now();
                        let outcome = fleet.run_one(&target, &pools, action).await;
                        TargetReport {
                            target,
                            outcome,
                            elapsed: clock.elapsed(),
                        }
                    }
                    .instrument(span),
                );
                started_tasks.insert(task.id(), (index, Instant::now()));
                next += 1;
            }
            let Some(joined) = running.join_next_with_id().await else {
                break;
            };
            let id = match &joined {
                Ok((id, _)) => *id,
                Err(err) => err.id(),
            };
            // Every task is in the map: it is put there as it is spawned.
            let Some((index, clock)) = started_tasks.remove(&id) else {
                continue;
            };
            let report = match joined {
                Ok((_, report)) => report,
                // A migration (or a `configure` callback) panicked: its target failed.
                Err(err) => {
                    tracing::error!(error = %err, "a fleet target's task panicked");
                    TargetReport {
                        target: self.targets[index].clone(),
                        outcome: TargetOutcome::Failed(Error::migration(TargetPanicked(
                            panic_message(err),
                        ))),
                        elapsed: clock.elapsed(),
                    }
                }
            };
            done += 1;
            if report.failed() {
                failures += 1;
                if let TargetOutcome::Failed(err) = &report.outcome {
                    tracing::warn!(target = %report.target, error = %err, "fleet target failed");
                }
            }
            tracing::info!(done, total, failures, "{done}/{total} targets");
            outcomes[index] = Some(report);
            if let Target::Schema { url, .. } = &self.targets[index] {
                let left = unfinished.get_mut(url.as_str()).map(|left| {
                    *left = left.saturating_sub(1);
                    *left
                });
                if left == Some(0) {
                    if let Some(Ok(pool)) = pools.get(url).and_then(|cell| cell.get()) {
                        close(pool).await;
                    }
                }
            }
        }
        // The pools of servers whose targets did not all run (a `fail_fast` run that stopped).
        for (url, left) in &unfinished {
            if *left > 0 {
                if let Some(Ok(pool)) = pools.get(*url).and_then(|cell| cell.get()) {
                    close(pool).await;
                }
            }
        }
        let max_connections = self.max_connections(&pools);
        let mut targets: Vec<TargetReport> = outcomes
            .into_iter()
            .zip(&self.targets)
            .map(|(report, target)| {
                report.unwrap_or_else(|| TargetReport {
                    target: target.clone(),
                    outcome: TargetOutcome::NotRun,
                    elapsed: Duration::ZERO,
                })
            })
            .collect();
        // A server that could not be listed, and had no schema listed before, has no target
        // to fail: it fails as itself, so that the run does not read as all succeeded.
        for (listing, why) in &self.unlisted {
            if listing.schemas.is_empty() {
                targets.push(TargetReport {
                    target: Target::database(&listing.url),
                    outcome: TargetOutcome::Failed(Error::msg(why.clone())),
                    elapsed: Duration::ZERO,
                });
            }
        }
        FleetReport::new(targets, max_connections, started.elapsed())
    }

    /// The connections the run's pools could hold: every shared pool that connected (only
    /// those held connections), counted as if all were open at once, and a pool of its own per
    /// database target running.
    fn max_connections(&self, pools: &SharedPools) -> u32 {
        let connected = pools
            .values()
            .filter(|cell| matches!(cell.get(), Some(Ok(_))))
            .count();
        let in_shared_pools = u32::try_from(connected)
            .unwrap_or(u32::MAX)
            .saturating_mul(shared_pool_size(self.concurrency));
        let databases = self.targets.len() - self.schema_targets();
        let in_own_pools = u32::try_from(databases.min(self.concurrency))
            .unwrap_or(u32::MAX)
            .saturating_mul(3);
        in_shared_pools.saturating_add(in_own_pools)
    }

    fn schema_targets(&self) -> usize {
        self.targets
            .iter()
            .filter(|t| matches!(t, Target::Schema { .. }))
            .count()
    }

    /// One pool per server that schema targets name, connected by the first of them to start
    /// (the others wait for it); a server that cannot be reached keeps its error, reported by
    /// each of its targets (see [`shared_failure`]). Servers are so connected as their targets
    /// come up, as many at once as targets run, and each pool is closed after its server's last
    /// target in the list: a fleet whose list puts each server's schemas together (as listings
    /// do) does not hold a session on every server for the whole run, nor wait for unreachable
    /// servers one after another before it starts.
    fn shared_pools(&self) -> SharedPools {
        let mut pools = SharedPools::new();
        for target in &self.targets {
            if let Target::Schema { url, .. } = target {
                pools.entry(url.clone()).or_default();
            }
        }
        pools
    }

    async fn run_one(&self, target: &Target, pools: &SharedPools, action: Action) -> TargetOutcome {
        if let Target::Schema { url, schema } = target {
            let unlisted = self
                .unlisted
                .iter()
                .find(|(l, _)| &l.url == url && l.schemas.contains(schema));
            if let Some((_, why)) = unlisted {
                return TargetOutcome::Failed(Error::msg(why.clone()));
            }
        }
        let backend = match self.backend(target, pools).await {
            Ok(backend) => backend,
            Err(err) => return TargetOutcome::Failed(err),
        };
        let manager = MigrationManager::new(backend, self.sets.iter().copied()).and_then(|m| {
            match &self.configure {
                Some(configure) => configure(m),
                None => Ok(m),
            }
        });
        let manager = match manager {
            Ok(manager) => manager,
            Err(err) => return TargetOutcome::Failed(err),
        };
        let outcome = match action {
            Action::Up => {
                let mut up = manager.up();
                if let Some(wait) = self.lock_wait {
                    up = up.lock_timeout(wait);
                }
                up.await.map(TargetOutcome::Ran)
            }
            Action::Status => manager.status().await.map(TargetOutcome::Read),
            Action::Verify => manager.status().await.map(|statuses| {
                let problems = Problem::of_all(&statuses);
                if problems.is_empty() {
                    TargetOutcome::Read(statuses)
                } else {
                    let list: Vec<String> = problems.iter().map(ToString::to_string).collect();
                    TargetOutcome::Failed(Error::msg(format!("verify: {}", list.join("; "))))
                }
            }),
        };
        outcome.unwrap_or_else(TargetOutcome::Failed)
    }

    async fn backend(
        &self,
        target: &Target,
        pools: &SharedPools,
    ) -> Result<Box<dyn MigrationBackend>> {
        match target {
            Target::Database { url } => crate::connect_with(url, &self.options_of(target)).await,
            Target::Schema { url, schema } => {
                let Some(cell) = pools.get(url) else {
                    return Err(Error::msg(format!("no pool for {target}")));
                };
                let size = shared_pool_size(self.concurrency);
                match cell
                    .get_or_init(|| connect_shared(url, &self.options, size))
                    .await
                {
                    Ok(pool) => on_schema(pool, schema, &self.options),
                    Err(err) => Err(shared_failure(err)),
                }
            }
        }
    }
}

/// A shared pool's failure, as each of its schema targets reports it: an unreachable server
/// or a bad setting keeps its kind (and so its category and exit code); another failure is
/// given as its text.
fn shared_failure(err: &Error) -> Error {
    match err {
        Error::Unreachable { target, waited } => Error::Unreachable {
            target: target.clone(),
            waited: *waited,
        },
        Error::Config(text) => Error::Config(text.clone()),
        other => Error::msg(other.to_string()),
    }
}

/// The schemas of the PostgreSQL database at `url` (matching `like`), on a connection of
/// their own.
#[cfg(feature = "postgres")]
async fn list_schemas(
    url: &str,
    like: Option<&str>,
    options: &ConnectOptions,
) -> Result<Vec<String>> {
    let db = connect_shared(url, options, 2).await?;
    let schemas = db.list_schemas(like).await;
    close(&db).await;
    schemas
}

/// Whether `url` is a PostgreSQL URL, the only kind that takes a schema.
fn is_postgres_url(url: &str) -> bool {
    matches!(url.split(':').next(), Some("postgres" | "postgresql"))
}

/// Each server's pool for its schema targets, by URL: connected by the first target to need
/// it, then its outcome (the pool, or why there is none) for every other.
type SharedPools = HashMap<String, tokio::sync::OnceCell<Result<SharedPool>>>;

#[cfg(feature = "postgres")]
type SharedPool = crate::postgres::PgDb;
#[cfg(not(feature = "postgres"))]
type SharedPool = ();

#[cfg(feature = "postgres")]
async fn connect_shared(
    url: &str,
    options: &ConnectOptions,
    connections: u32,
) -> Result<SharedPool> {
    if !is_postgres_url(url) {
        return Err(Error::Config(format!(
            "{}: only PostgreSQL URLs take a schema",
            crate::backend::redact_url_password(url, url)
        )));
    }
    let timeout = options
        .connect_timeout
        .unwrap_or(crate::backend::DEFAULT_CONNECT_TIMEOUT);
    let db = crate::postgres::PgDb::connect_shared(url, timeout, connections).await?;
    Ok(if options.transaction_pooling {
        db.behind_transaction_pooler()
    } else {
        db
    })
}

#[cfg(not(feature = "postgres"))]
async fn connect_shared(_: &str, _: &ConnectOptions, _: u32) -> Result<SharedPool> {
    Err(Error::Config(
        "schema targets need the `postgres` feature".into(),
    ))
}

#[cfg(feature = "postgres")]
fn on_schema(
    pool: &SharedPool,
    schema: &str,
    options: &ConnectOptions,
) -> Result<Box<dyn MigrationBackend>> {
    options.on_schema(pool, schema)
}

#[cfg(not(feature = "postgres"))]
fn on_schema(_: &SharedPool, _: &str, _: &ConnectOptions) -> Result<Box<dyn MigrationBackend>> {
    Err(Error::Config(
        "schema targets need the `postgres` feature".into(),
    ))
}

#[cfg(feature = "postgres")]
async fn close(pool: &SharedPool) {
    pool.close().await;
}

#[cfg(not(feature = "postgres"))]
async fn close(_: &SharedPool) {}

/// A target whose run panicked, with what the panic said: shown by the CLI and kept in the
/// report, left out of the HTTP route's answer (as a single run's panic is).
#[derive(Debug)]
pub(crate) struct TargetPanicked(String);

impl std::fmt::Display for TargetPanicked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "its run panicked: {}", self.0)
    }
}

impl std::error::Error for TargetPanicked {}

impl TargetPanicked {
    /// Whether `err` is a target's panic.
    #[cfg(any(feature = "cli", feature = "http"))]
    pub(crate) fn is(err: &Error) -> bool {
        matches!(err, Error::Migration(inner) if inner.is::<TargetPanicked>())
    }
}

/// What a task's panic said, when it said it with text. (The fleet never cancels its tasks,
/// so a task that did not finish panicked.)
fn panic_message(err: tokio::task::JoinError) -> String {
    if !err.is_panic() {
        return err.to_string();
    }
    panic_text(&*err.into_panic())
}

/// What a panic's payload says, when it says it with text.
pub(crate) fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(a panic without a message)".to_string())
}
