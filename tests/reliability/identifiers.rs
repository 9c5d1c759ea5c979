//! Generated identifiers, on SQLite and PostgreSQL: table names in `{{tables.x}}` templates,
//! schema names, tracking-table names and module names, made of quotes, backticks,
//! semicolons, comment markers, NUL bytes, backslashes, unicode and runs of 40 to 80 bytes.
//!
//! Each name is refused with a clear error, or round-trips exactly: the database then holds an
//! object of exactly that name (looked up with the name as a bound parameter), and nothing else
//! was created or dropped. A refusal changes nothing. The framework's own rule (blank, NUL, or
//! longer than a database keeps: 63 bytes, 50 for a tracking table, which gains
//! `_history_step`; and for a tracking table or a schema, `$(`, `{` or `}`, which the crate's
//! own statements read as markers) must refuse exactly the names it describes; anything else
//! the database itself refuses (a schema named `pg_…`, say) must leave it unchanged too.
//!
//! `MIGRATE_FUZZ_CASES` sets the names per kind and backend (default 1,430: 7 × 1,430 = 10,010
//! in all); `MIGRATE_RELIABILITY_SEED` replays a run (each prints its seed).

use migrate::backend::{MigrationBackend, MigrationFuture, StepOutcome, StepRecord, StepRun};
use migrate::report::Direction;
use migrate::testing::{Backend, TestDatabase};
use migrate::{Conn, Dialect};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};
use std::collections::BTreeSet;
use std::sync::Mutex;

mod catalog;
use catalog::{difference, Catalog};

/// What names are made of.
const PIECES: &[&str] = &[
    "a",
    "Z",
    "_",
    "0",
    "9",
    " ",
    "\"",
    "'",
    "`",
    ";",
    "--",
    "/*",
    "*/",
    "#",
    "\0",
    "\\",
    "é",
    "ß",
    "日本",
    "🦀",
    "\u{202e}",
    "\u{200b}",
    "$$",
    "$1",
    "?",
    "%s",
    "{{",
    "}",
    "$(",
    "{limit}",
    ".",
    "\n",
    "\t",
    "DROP TABLE victim",
    "x\"; DROP TABLE victim; --",
    "x`; DROP TABLE victim; --",
    "'); DROP TABLE victim; --",
    "pg_",
    "public",
    "NULL",
];

/// Names: a few pieces, or a run of letters near the length limits followed by pieces.
fn identifier() -> impl Strategy<Value = String> {
    let pieces = prop::collection::vec(prop::sample::select(PIECES), 1..8);
    prop_oneof![
        3 => pieces.clone().prop_map(|p| p.concat()),
        1 => (40usize..80, pieces).prop_map(|(n, p)| format!("{}{}", "n".repeat(n), p.concat())),
    ]
}

/// The kind of name under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    TemplateTable,
    Schema,
    TrackingTable,
    Module,
}

/// How one name ended.
#[derive(Debug, Default)]
struct Tally {
    round_tripped: usize,
    refused_by_rule: usize,
    refused_by_database: usize,
}

/// Whether the framework's rule refuses `name` for `kind`.
fn rule_refuses(kind: Kind, name: &str) -> bool {
    let max = match kind {
        Kind::TrackingTable => 50,
        Kind::Schema | Kind::TemplateTable => 63,
        Kind::Module => return false,
    };
    let blank = match kind {
        Kind::TemplateTable => name.is_empty(),
        _ => name.trim().is_empty(),
    };
    // A tracking table's or a schema's name is written into the crate's own statements, which
    // read `$(`, `{` and `}` as markers.
    let marker = matches!(kind, Kind::TrackingTable | Kind::Schema)
        && ["$(", "{", "}"].iter().any(|m| name.contains(m));
    // A template's name holding `{{` reads as a placeholder inside a placeholder.
    let nested = kind == Kind::TemplateTable && name.contains("{{");
    blank || name.contains('\0') || name.len() > max || marker || nested
}

/// The name a step's action uses, per dialect (the SQLite and PostgreSQL suites run at once).
static NAMES: Mutex<[String; 2]> = Mutex::new([String::new(), String::new()]);

fn slot(dialect: Dialect) -> usize {
    usize::from(dialect == Dialect::Postgres)
}

fn current_name(dialect: Dialect) -> String {
    NAMES.lock().expect("names")[slot(dialect)].clone()
}

/// `{{tables.NAME}}`.
fn table_sql(name: &str) -> String {
    format!("{{{{tables.{name}}}}}")
}

/// A name as a template can hold it: a template's name ends at the first `}}` and loses
/// trailing whitespace (names like that are quoted with `Conn::table` instead).
fn templatable(name: String) -> String {
    name.replace('}', "}_").trim_end().to_string()
}

fn create_named<'a>(db: &'a mut Conn<'_>) -> MigrationFuture<'a> {
    Box::pin(async move {
        let name = current_name(db.dialect());
        let table = table_sql(&name);
        db.execute(&format!("CREATE TABLE {table} (v TEXT)"))
            .await?;
        db.execute(&format!("INSERT INTO {table} (v) VALUES ('kept')"))
            .await?;
        Ok(())
    })
}

fn drop_named<'a>(db: &'a mut Conn<'_>) -> MigrationFuture<'a> {
    Box::pin(async move {
        let name = current_name(db.dialect());
        let table = table_sql(&name);
        db.execute(&format!("DROP TABLE {table}")).await?;
        Ok(())
    })
}

fn create_fixed<'a>(db: &'a mut Conn<'_>) -> MigrationFuture<'a> {
    Box::pin(async move {
        db.execute("CREATE TABLE {{tables.fuzz_t}} (v TEXT)")
            .await?;
        Ok(())
    })
}

fn no_op<'a>(_db: &'a mut Conn<'_>) -> MigrationFuture<'a> {
    Box::pin(async { Ok(()) })
}

fn quote(dialect: Dialect, name: &str) -> String {
    dialect.quote_ident(name)
}

/// A step record of `module`'s table `t` moving from nothing to 1.0.0 (or back).
fn record(module: &str, direction: Direction) -> StepRecord<'_> {
    let up = direction == Direction::Up;
    StepRecord {
        module,
        table: "t",
        version: "1.0.0",
        name: "fuzz_step",
        checksum: "fuzz-checksum",
        direction,
        expected: if up { None } else { Some("1.0.0") },
        new_version: if up { Some("1.0.0") } else { None },
        new_checksum: if up { Some("fuzz-chain") } else { None },
        resumes: None,
    }
}

/// Runs one step under the runner lock.
async fn step(
    executor: &dyn MigrationBackend,
    record: StepRecord<'_>,
    action: migrate::backend::MigrationFn,
) -> migrate::Result<()> {
    executor.prepare().await?;
    let lock = executor.lock(None).await?;
    let run = StepRun {
        record,
        action,
        transactional: true,
        table_names: &migrate::TableNames::new(),
    };
    let outcome = executor.run_step(&run).await;
    // What a run leaves pending (the transaction begun for a next step) ends before the lock.
    let ended = executor.end_run().await;
    lock.release().await?;
    ended?;
    match outcome? {
        StepOutcome::Done { .. } => Ok(()),
        other => panic!("a step with no rival lost its compare-and-set: {other:?}"),
    }
}

fn check(condition: bool, what: impl FnOnce() -> String) -> Result<(), TestCaseError> {
    if condition {
        Ok(())
    } else {
        Err(TestCaseError::fail(what()))
    }
}

/// One database, its pristine catalog, and an executor whose tracking tables exist.
struct Target {
    backend: Backend,
    db: TestDatabase,
    catalog: Catalog,
    base: Box<dyn MigrationBackend>,
    dialect: Dialect,
}

impl Target {
    async fn new(backend: Backend) -> Option<Target> {
        let db = TestDatabase::create(backend)
            .await
            .expect("test database")?;
        let base = migrate::connect(db.url()).await.expect("connect");
        base.prepare().await.expect("tracking tables");
        let catalog = match backend {
            Backend::Sqlite => {
                Catalog::Sqlite(sqlx::SqlitePool::connect(db.url()).await.expect("pool"))
            }
            _ => Catalog::Postgres(sqlx::PgPool::connect(db.url()).await.expect("pool")),
        };
        // A bystander that a successful injection would drop.
        catalog.exec("CREATE TABLE victim (v TEXT)").await;
        let dialect = base.dialect();
        Some(Target {
            backend,
            db,
            catalog,
            base,
            dialect,
        })
    }

    /// An executor on the same database with `kind` set to `name`.
    async fn configured(
        &self,
        kind: Kind,
        name: &str,
    ) -> migrate::Result<Box<dyn MigrationBackend>> {
        let mut options = migrate::ConnectOptions::default();
        match kind {
            Kind::Schema => options.schema = Some(name.to_string()),
            Kind::TrackingTable => options.tracking_table = Some(name.to_string()),
            Kind::TemplateTable | Kind::Module => {}
        }
        migrate::connect_with(self.db.url(), &options).await
    }

    async fn case(&self, kind: Kind, name: &str, tally: &mut Tally) -> Result<(), TestCaseError> {
        let before = self.catalog.objects().await;
        let refused = rule_refuses(kind, name);
        let outcome = match kind {
            Kind::TemplateTable => self.template_table(name).await,
            Kind::Schema | Kind::TrackingTable => match self.configured(kind, name).await {
                Ok(executor) if kind == Kind::Schema => self.schema(executor, name).await,
                Ok(executor) => self.tracking_table(executor, name).await,
                Err(err) => Err(err),
            },
            Kind::Module => self.module(name).await,
        };
        let after = self.catalog.objects().await;
        check(after == before, || {
            format!(
                "{kind:?} {name:?}: the catalog changed: {:?}",
                difference(&before, &after)
            )
        })?;
        match outcome {
            Ok(checked) => {
                checked?;
                check(!refused, || {
                    format!("{kind:?} {name:?}: the rule refuses it, but it ran")
                })?;
                tally.round_tripped += 1;
            }
            Err(err) => {
                // The rule's refusal: the renderer's template error (the step's own error: the engine
                // is not involved here), before any SQL, or a
                // configuration error before connecting.
                let by_rule = match (&err, kind) {
                    (migrate::Error::Template(text), Kind::TemplateTable) => {
                        text.contains("table name")
                    }
                    (migrate::Error::Config(text), Kind::Schema | Kind::TrackingTable) => {
                        text.contains("must be 1 to") || text.contains("cannot hold")
                    }
                    _ => false,
                };
                if refused {
                    check(by_rule, || {
                        format!("{kind:?} {name:?}: expected the rule's error, got {err:?}")
                    })?;
                    tally.refused_by_rule += 1;
                } else {
                    // Only what the database is known to refuse by itself: PostgreSQL reserves
                    // schema names starting `pg_`, and its text cannot hold a NUL. Any other
                    // error (a syntax error from a name quoted wrongly) is a failure.
                    let known = match kind {
                        Kind::Schema => name.starts_with("pg_"),
                        Kind::Module => name.contains('\0'),
                        Kind::TemplateTable | Kind::TrackingTable => false,
                    };
                    check(
                        known && !by_rule && !matches!(err, migrate::Error::Config(_)),
                        || format!("{kind:?} {name:?}: refused by no rule, but got {err:?}"),
                    )?;
                    tally.refused_by_database += 1;
                }
            }
        }
        Ok(())
    }

    /// `CREATE TABLE {{tables.NAME}}` as a step, checked, then dropped as a step.
    async fn template_table(&self, name: &str) -> migrate::Result<Result<(), TestCaseError>> {
        NAMES.lock().expect("names")[slot(self.dialect)] = name.to_string();
        let module = "fuzz template";
        let before = self.catalog.objects().await;
        if let Err(err) = step(&*self.base, record(module, Direction::Up), create_named).await {
            self.catalog.forget_module(module).await;
            return Err(err);
        }
        let after = self.catalog.objects().await;
        let schema = if self.backend == Backend::Sqlite {
            "main"
        } else {
            "public"
        };
        let kind = if self.backend == Backend::Sqlite {
            "table"
        } else {
            "r"
        };
        let (added, removed) = difference(&before, &after);
        let tables: Vec<_> = added.iter().filter(|o| o.2 == kind).collect();
        let exact = tables == [&(schema.to_string(), name.to_string(), kind.to_string())]
            && removed.is_empty();
        step(&*self.base, record(module, Direction::Down), drop_named).await?;
        self.catalog.forget_module(module).await;
        Ok(check(exact, || {
            format!("{name:?}: expected exactly that table, got {added:?} (removed {removed:?})")
        }))
    }

    /// The tracking tables under `name`, one step recorded and read back, then dropped.
    async fn tracking_table(
        &self,
        executor: Box<dyn MigrationBackend>,
        name: &str,
    ) -> migrate::Result<Result<(), TestCaseError>> {
        let before = self.catalog.objects().await;
        let result = async {
            step(&*executor, record("fuzz", Direction::Up), no_op).await?;
            let state = executor.read_state().await?;
            let history = executor.history(&["fuzz"], None).await?;
            Ok::<_, migrate::Error>((state, history))
        }
        .await;
        let after = self.catalog.objects().await;
        let (added, _) = difference(&before, &after);
        let kind = if self.backend == Backend::Sqlite {
            "table"
        } else {
            "r"
        };
        let tables: BTreeSet<&str> = added
            .iter()
            .filter(|o| o.2 == kind)
            .map(|o| o.1.as_str())
            .collect();
        // Drop what was created, whatever it is called.
        for (_, table, _) in added.iter().filter(|o| o.2 == kind) {
            self.catalog
                .exec(&format!("DROP TABLE {}", quote(self.dialect, table)))
                .await;
        }
        let (state, history) = result?;
        let history_name = format!("{name}_history");
        Ok(check(
            tables == BTreeSet::from([name, history_name.as_str()])
                && state.len() == 1
                && state[0].module == "fuzz"
                && state[0].version.as_deref() == Some("1.0.0")
                && history.len() == 1,
            || {
                format!(
                    "{name:?}: created {tables:?}, read {state:?} and {} history rows",
                    history.len()
                )
            },
        ))
    }

    /// Tracking tables and one table inside schema `name`, then the schema dropped (or, for a
    /// schema that was there already, what the case added to it).
    async fn schema(
        &self,
        executor: Box<dyn MigrationBackend>,
        name: &str,
    ) -> migrate::Result<Result<(), TestCaseError>> {
        let before = self.catalog.objects().await;
        let existed = before.contains(&(name.to_string(), String::new(), "schema".to_string()));
        let result = async {
            step(&*executor, record("fuzz", Direction::Up), create_fixed).await?;
            executor.read_state().await
        }
        .await;
        let after = self.catalog.objects().await;
        let (added, removed) = difference(&before, &after);
        let schemas: BTreeSet<&str> = added
            .iter()
            .filter(|o| o.2 == "schema")
            .map(|o| o.0.as_str())
            .collect();
        let tables: BTreeSet<(&str, &str)> = added
            .iter()
            .filter(|o| o.2 == "r")
            .map(|o| (o.0.as_str(), o.1.as_str()))
            .collect();
        let q = |ident: &str| quote(self.dialect, ident);
        for schema in &schemas {
            self.catalog
                .exec(&format!("DROP SCHEMA {} CASCADE", q(schema)))
                .await;
        }
        if existed {
            for (schema, table) in &tables {
                self.catalog
                    .exec(&format!("DROP TABLE {}.{} CASCADE", q(schema), q(table)))
                    .await;
            }
            if !tables.iter().any(|t| t.1 == "migrate_schema_versions") {
                for table in ["migrate_schema_versions", "migrate_schema_versions_history"] {
                    self.catalog
                        .exec(&format!(
                            "DELETE FROM {}.{table} WHERE module = 'fuzz'",
                            q(name)
                        ))
                        .await;
                }
            }
        }
        let state = result?;
        let expected_schemas = if existed {
            BTreeSet::new()
        } else {
            BTreeSet::from([name])
        };
        Ok(check(
            schemas == expected_schemas
                && removed.is_empty()
                && tables.contains(&(name, "fuzz_t"))
                && tables.iter().all(|t| t.0 == name)
                && state.iter().filter(|r| r.module == "fuzz").count() == 1,
            || {
                format!("{name:?}: created schemas {schemas:?} with {tables:?}, removed {removed:?}, read {state:?}")
            },
        ))
    }

    /// A step of module `name` recorded, read back through every read, its checksum
    /// rewritten, and its state cleared.
    async fn module(&self, name: &str) -> migrate::Result<Result<(), TestCaseError>> {
        let executor = &*self.base;
        let result = async {
            step(executor, record(name, Direction::Up), no_op).await?;
            executor
                .set_step_checksum(name, "t", "1.0.0", "rewritten")
                .await?;
            let state = executor.read_state().await?;
            let history = executor.history(&[name], None).await?;
            executor.set_state(name, "t", None, None).await?;
            let cleared = executor.read_state().await?;
            Ok::<_, migrate::Error>((state, history, cleared))
        }
        .await;
        self.catalog.forget_module(name).await;
        let (state, history, cleared) = result?;
        let mine: Vec<_> = state.iter().filter(|r| r.module == name).collect();
        Ok(check(
            mine.len() == 1
                && mine[0].version.as_deref() == Some("1.0.0")
                && history.len() == 1
                && history[0].module == name
                && history[0].checksum == "rewritten"
                && cleared
                    .iter()
                    .filter(|r| r.module == name)
                    .all(|r| r.version.is_none()),
            || format!("{name:?}: read {state:?}, history {history:?}, then {cleared:?}"),
        ))
    }
}

fn cases() -> u32 {
    std::env::var("MIGRATE_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_430)
}

fn seed() -> u64 {
    std::env::var("MIGRATE_RELIABILITY_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        })
}

fn fuzz(backend: Backend, kinds: &[Kind]) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    // Pools are dropped inside the runtime, even when a case panics.
    let _context = runtime.enter();
    let Some(target) = runtime.block_on(Target::new(backend)) else {
        return;
    };
    let victim = runtime.block_on(target.catalog.objects());
    assert!(victim.iter().any(|o| o.1 == "victim"));
    for &kind in kinds {
        let seed = seed();
        let mut bytes = [0u8; 32];
        bytes[..8].copy_from_slice(&seed.to_le_bytes());
        let config = Config {
            cases: cases(),
            failure_persistence: None,
            ..Config::default()
        };
        let mut runner =
            TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &bytes));
        let tally = std::cell::RefCell::new(Tally::default());
        let started = std::time::Instant::now();
        let result = runner.run(&identifier(), |name| {
            let name = if kind == Kind::TemplateTable {
                templatable(name)
            } else {
                name
            };
            runtime.block_on(target.case(kind, &name, &mut tally.borrow_mut()))
        });
        if let Err(failure) = result {
            panic!("{} {kind:?} (seed {seed}): {failure}", backend.name());
        }
        let tally = tally.into_inner();
        let total = tally.round_tripped + tally.refused_by_rule + tally.refused_by_database;
        println!(
            "RELIABILITY identifiers backend={} kind={kind:?} names={total} round_tripped={} refused_by_rule={} refused_by_database={} changed_anything_else=0 seconds={} seed={seed}",
            backend.name(),
            tally.round_tripped,
            tally.refused_by_rule,
            tally.refused_by_database,
            started.elapsed().as_secs(),
        );
    }
    assert_eq!(
        runtime.block_on(target.catalog.objects()),
        victim,
        "the bystanders are all there"
    );
}

#[test]
fn generated_identifiers_on_sqlite_are_refused_or_round_trip() {
    fuzz(
        Backend::Sqlite,
        &[Kind::TemplateTable, Kind::TrackingTable, Kind::Module],
    );
}

#[test]
fn generated_identifiers_on_postgres_are_refused_or_round_trip() {
    fuzz(
        Backend::Postgres,
        &[
            Kind::TemplateTable,
            Kind::Schema,
            Kind::TrackingTable,
            Kind::Module,
        ],
    );
}
