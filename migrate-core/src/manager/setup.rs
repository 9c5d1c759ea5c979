//! [`MigrationManager`]: what it holds, how it is built, and how it resolves the tables and
//! versions a caller names.

use crate::backend::MigrationBackend;
use crate::error::{Error, Result};
use crate::graph::Graph;
use crate::migration::{Migration, MigrationSet};
use crate::table_names::TableNames;
use semver::Version;
use std::collections::HashMap;
use std::sync::Arc;

/// Runs the migrations of the given sets against one database.
///
/// ```no_run
/// # async fn demo(db: impl migrate_core::backend::MigrationBackend + 'static, set: &'static migrate_core::migration::MigrationSet) -> migrate_core::error::Result<()> {
/// use migrate_core::manager::MigrationManager;
/// let manager = MigrationManager::new(db, [set])?.with_baseline("2.0.0")?;
/// let report = manager.up().await?;                       // every table to its latest version
/// manager.up().table("memory").target("2.3.0").await?;    // one table, to a version
/// manager.down().target("2.0.0").await?;                  // every table back to 2.0.0
/// println!("{:?} in {:?}", report.status, report.total_time);
/// # Ok(()) }
/// ```
pub struct MigrationManager {
    pub(super) backend: Box<dyn MigrationBackend>,
    /// Shared by the process's managers over the same sets (`shared_graphs`).
    pub(super) graph: Arc<Graph>,
    pub(super) sets: Vec<&'static MigrationSet>,
    pub(super) baseline: Option<Version>,
    /// Per-table baselines, by chain index (a name may select one module's chain or all).
    pub(super) table_baselines: HashMap<usize, Version>,
    /// The physical names of renamed tables.
    pub(super) table_names: TableNames,
    /// Another tool's version table, read as the starting state of tables with no row.
    pub(super) adopted_from: Option<String>,
    /// The baselines apply only to tables whose physical table exists.
    pub(super) baseline_if_exists: bool,
    /// The "up to date" verdicts a plain `up` gives from the state rows alone.
    pub(super) up_to_date: super::up_to_date::UpToDate,
    /// Adopted versions (chain, text) this manager's own history reached: not a conflict,
    /// whatever the tracking row says now (the history only grows), so it is not read again.
    pub(super) adoptions_reached: std::sync::Mutex<Vec<(usize, String)>>,
}

impl std::fmt::Debug for MigrationManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MigrationManager")
            .field("dialect", &self.backend.dialect())
            .field("sets", &self.sets)
            .field("migrations", &self.graph.len())
            .field("baseline", &self.baseline)
            .finish_non_exhaustive()
    }
}

/// Parses a caller's version, accepting a leading `v` (`"v2.3.0"`).
pub(super) fn parse_version(input: &str) -> Result<Version> {
    let trimmed = input.trim();
    let text = trimmed.strip_prefix('v').unwrap_or(trimmed);
    Version::parse(text).map_err(|e| Error::InvalidVersion {
        input: input.to_string(),
        reason: e.to_string(),
    })
}

impl MigrationManager {
    /// Builds a manager over the migrations of `sets`, validating the linked graph (an empty set,
    /// a duplicate module, an `after` cycle are errors here). Touches no database.
    ///
    /// The graph (and the "up to date" verdict at its heads) is built once per process for the
    /// same `sets`, in the same order, and shared by the managers built after: the first manager
    /// pays the chain checksums and the plan over every migration (about 0.1 ms for 300), later
    /// ones (a fleet's, one per target; a test suite's) a lookup. A library loaded at run time
    /// that registers more migrations makes the next manager build the graph again.
    pub fn new<B: MigrationBackend + 'static>(
        db: B,
        sets: impl IntoIterator<Item = &'static MigrationSet>,
    ) -> Result<Self> {
        let sets: Vec<_> = sets.into_iter().collect();
        let mark = crate::migration::registry_mark();
        if let Some((graph, heads)) = super::shared_graphs::kept(&sets, mark) {
            let mut manager = Self::unsettled(Box::new(db), graph, sets);
            manager.up_to_date = super::up_to_date::UpToDate::with_heads(heads);
            return Ok(manager);
        }
        let graph = Arc::new(Graph::build(sets.iter().copied())?);
        let manager = Self::with_graph(Box::new(db), graph.clone(), sets);
        super::shared_graphs::keep(&manager.sets, mark, graph, manager.up_to_date.heads());
        Ok(manager)
    }

    /// Builds a manager over migrations made at run time instead of registered by
    /// `#[migration]` (generated sets, benchmarks), with the same validation.
    #[doc(hidden)]
    pub fn from_migrations<B: MigrationBackend + 'static>(
        db: B,
        migrations: impl IntoIterator<Item = &'static Migration>,
    ) -> Result<Self> {
        let graph = Graph::from_migrations(migrations)?;
        let mut sets: Vec<&'static MigrationSet> = Vec::new();
        for node in &graph.nodes {
            let set = node.migration.set();
            if !sets.iter().any(|s| std::ptr::eq(*s, set)) {
                sets.push(set);
            }
        }
        Ok(Self::with_graph(Box::new(db), Arc::new(graph), sets))
    }

    fn with_graph(
        backend: Box<dyn MigrationBackend>,
        graph: Arc<Graph>,
        sets: Vec<&'static MigrationSet>,
    ) -> Self {
        Self::unsettled(backend, graph, sets).settled()
    }

    /// The manager with the default settings and no verdict at the heads worked out yet.
    fn unsettled(
        backend: Box<dyn MigrationBackend>,
        graph: Arc<Graph>,
        sets: Vec<&'static MigrationSet>,
    ) -> Self {
        MigrationManager {
            backend,
            graph,
            sets,
            baseline: None,
            table_baselines: HashMap::new(),
            table_names: TableNames::new(),
            adopted_from: None,
            baseline_if_exists: false,
            up_to_date: Default::default(),
            adoptions_reached: Default::default(),
        }
    }

    /// Works out the "up to date" verdict at the heads for the current settings, forgetting
    /// the last one: every builder ends here.
    fn settled(mut self) -> Self {
        self.up_to_date = super::up_to_date::UpToDate::at_heads(self.verdict_at_heads());
        self
    }

    /// The version a table is at when the tracking table has no row for it ("no stored
    /// version means 2.0.0"). Without a baseline such a table has nothing applied.
    ///
    /// Like a target, the baseline is a release: a table whose versions skip it is at its
    /// highest version below it. A version that no table declares is a typo, refused with
    /// [`Error::UnknownVersion`](crate::error::Error::UnknownVersion).
    pub fn with_baseline(mut self, version: &str) -> Result<Self> {
        self.baseline = Some(self.declared_baseline(version)?);
        Ok(self.settled())
    }

    /// `version`, parsed and declared by at least one table.
    fn declared_baseline(&self, version: &str) -> Result<Version> {
        let version = parse_version(version)?;
        let every: Vec<usize> = (0..self.graph.chains.len()).collect();
        crate::plan::check_declared(&self.graph, &every, &version)?;
        Ok(version)
    }

    /// Like [`with_baseline`](Self::with_baseline), but only for tables that exist: a table
    /// with no tracking row whose physical table is in the database is at `version`, and one
    /// that is not there has nothing applied, so its first step creates it. For products whose
    /// tables appear one by one (Agno creates a table when it is first used): an `up` on an
    /// empty database creates every table, on an old one it upgrades the tables there. Each
    /// run asks the catalog once per table that has no row.
    pub fn with_baseline_for_existing_tables(mut self, version: &str) -> Result<Self> {
        self.baseline = Some(self.declared_baseline(version)?);
        self.baseline_if_exists = true;
        Ok(self.settled())
    }

    /// A baseline for one table, overriding [`with_baseline`](Self::with_baseline). The table
    /// must declare the version, else
    /// [`Error::UnknownVersion`](crate::error::Error::UnknownVersion) names both.
    pub fn with_table_baseline(mut self, table: &str, version: &str) -> Result<Self> {
        let version = parse_version(version)?;
        let chains = self.resolve_tables(&[table.to_string()])?;
        crate::plan::check_declared(&self.graph, &chains, &version)?;
        for c in chains {
            self.table_baselines.insert(c, version.clone());
        }
        Ok(self.settled())
    }

    /// Gives the logical table `table` (the `table = ` of its migrations) the physical name
    /// `physical` in this database: `{{tables.table}}` and `Conn::table` render `physical`, and
    /// the tracking rows record it. Reports, errors and the API keep the logical name.
    ///
    /// For products whose users rename tables (Agno's `session_table="my_sessions"`). The
    /// physical name must be 1 to 63 bytes without NUL or `{{`, and may not be another table's name
    /// nor one of the backend's tracking tables (`{{tables.x}}` would then alter or drop
    /// them). Names are compared without regard to case except on PostgreSQL, whose quoted
    /// names keep it (SQLite's do not, nor MySQL's on some systems).
    pub fn with_table_name(mut self, table: &str, physical: &str) -> Result<Self> {
        if !self.graph.has_table(table) {
            return Err(self.unknown_table(table));
        }
        let same = |a: &str, b: &str| match self.backend.dialect() {
            crate::dialect::Dialect::Postgres => a == b,
            _ => a.eq_ignore_ascii_case(b),
        };
        let taken = self
            .graph
            .tables()
            .find(|(_, t)| *t != table && same(t, physical) && self.table_names.physical(t) == *t);
        if let Some((_, other)) = taken {
            return Err(Error::Config(format!(
                "table `{table}` cannot be renamed to `{physical}`: that is the name of table `{other}`"
            )));
        }
        let reserved = crate::table_names::tracking_tables(self.backend.tracking_table());
        if let Some(name) = reserved.iter().find(|name| same(name, physical)) {
            return Err(Error::Config(format!(
                "table `{table}` cannot be renamed to `{physical}`: `{name}` is one of this \
                 backend's tracking tables"
            )));
        }
        self.table_names.insert_with(table, physical, same)?;
        Ok(self.settled())
    }

    /// Adopts the version table of another migration tool (Agno's `agno_schema_versions`,
    /// with the columns `table_name` and `version`) as the starting state: a table with no row
    /// in this manager's tracking table starts at the version that table records for its
    /// physical name, and one with no row there either starts at the baseline. The adopted table
    /// is only read, never written; once a step has run, this manager's own row counts.
    ///
    /// A recorded version is read as a release: the table starts at its highest version at or
    /// below it, provided some table of the same module declares that version (Agno stamps
    /// every table with the release its manager reached, `3.0.0` on a memories table whose
    /// steps end at `2.3.0`). Such a row naming a table that does not exist is passed over (Agno
    /// stamps table types it never created), so the table starts as if the row were absent.
    ///
    /// A recorded version no table of the module declares, or one below the table's first
    /// version, or one standing for a version above what this manager's tracking table records
    /// (the other tool migrated the table after the adoption), is
    /// [`Error::AdoptedVersion`](crate::error::Error::AdoptedVersion), naming both tables.
    /// Each run and listing reads the adopted table once (one more query), and asks the catalog
    /// whether each table it names without a row of ours exists.
    pub fn with_adopted_versions(mut self, table: &str) -> Result<Self> {
        crate::table_names::check_name(table)?;
        self.adopted_from = Some(table.to_string());
        Ok(self.settled())
    }

    /// The physical names of the renamed tables.
    pub fn table_names(&self) -> &TableNames {
        &self.table_names
    }

    /// The physical name of a chain's table.
    pub(super) fn physical(&self, chain: usize) -> &str {
        self.table_names.physical(self.graph.chains[chain].table)
    }

    /// The validated graph.
    #[doc(hidden)]
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// The backend this manager runs on.
    pub fn backend(&self) -> &dyn MigrationBackend {
        self.backend.as_ref()
    }

    pub(super) fn modules(&self) -> Vec<&'static str> {
        self.sets.iter().map(|s| s.module()).collect()
    }

    pub(super) fn unknown_table(&self, table: &str) -> Error {
        self.graph.unknown_table(table)
    }
    /// Chains named by `tables`: `table` matches that table in every module, `module:table`
    /// one module's.
    pub(super) fn resolve_tables(&self, tables: &[String]) -> Result<Vec<usize>> {
        let mut chains = Vec::new();
        for name in tables {
            let (module, table) = match name.split_once(':') {
                Some((m, t)) => (Some(m), t),
                None => (None, name.as_str()),
            };
            let matched: Vec<usize> = (0..self.graph.chains.len())
                .filter(|&c| {
                    let chain = &self.graph.chains[c];
                    chain.table == table && module.is_none_or(|m| m == chain.module)
                })
                .collect();
            if matched.is_empty() {
                return Err(self.unknown_table(name));
            }
            for c in matched {
                if !chains.contains(&c) {
                    chains.push(c);
                }
            }
        }
        Ok(chains)
    }

    /// The one chain `table` names, for a command that moves one record (`stamp`, `unstamp`):
    /// a bare table name that two modules share is refused with [`Error::Config`] naming them,
    /// rather than acting on the first.
    pub(super) fn resolve_one_table(&self, table: &str) -> Result<usize> {
        match self.resolve_tables(&[table.to_string()])?.as_slice() {
            [one] => Ok(*one),
            several => {
                let names: Vec<String> = several
                    .iter()
                    .map(|&c| {
                        let chain = &self.graph.chains[c];
                        format!("{}:{}", chain.module, chain.table)
                    })
                    .collect();
                Err(Error::Config(format!(
                    "table `{table}` is in several modules: name one as module:table ({})",
                    names.join(", ")
                )))
            }
        }
    }

    pub(super) fn baseline_of(&self, chain: usize) -> Option<Version> {
        self.table_baselines
            .get(&chain)
            .or(self.baseline.as_ref())
            .cloned()
    }
}
