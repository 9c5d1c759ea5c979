//! Migrating at start-up: one call before the application serves, chosen by
//! `MIGRATE_ON_STARTUP` (Alembic's `MIGRATE_DB=True`).
//!
//! ```
//! migrate::migrations! {}
//! # #[migrate::migration(table = "session", version = "1.0.0", irreversible)]
//! # async fn create_session(db: &mut migrate::Conn<'_>) -> migrate::Result<()> {
//! #     db.execute("CREATE TABLE session (id TEXT)").await?;
//! #     Ok(())
//! # }
//! use migrate::startup::{ensure, Policy};
//!
//! # async fn serve() -> Result<(), Box<dyn std::error::Error>> {
//! let db = migrate::connect("sqlite::memory:").await?;
//! let manager = migrate::MigrationManager::new(db, [&MIGRATIONS])?;
//! // MIGRATE_ON_STARTUP=apply|check|off; unset means check.
//! let ready = ensure(&manager, Policy::from_env()).await?;
//! println!("serving against {}", ready.target);
//! # Ok(()) }
//! # fn main() {
//! #     std::env::set_var("MIGRATE_ON_STARTUP", "apply");
//! #     tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
//! #         .block_on(serve()).unwrap();
//! # }
//! ```
//!
//! Every policy but `off` names the database it checked in its log line and in its errors
//! (`MigrationBackend::describe`: server or file, schema, tracking table, never a password), so
//! a service pointed at the wrong database or schema says so instead of serving.

use crate::error::ErrorCategory;
use crate::report::{AdoptionConflict, ChecksumDrift, DirtyMark, Report, TableStatus};
use crate::{Error, MigrationManager, Version};
use std::fmt;

/// The environment variable [`Policy::from_env`] reads.
pub const POLICY_ENV: &str = "MIGRATE_ON_STARTUP";

/// What [`ensure`] does.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Policy {
    /// Apply pending migrations, then serve. A dirty, drifted or ahead database is refused
    /// before anything runs. Up to date, it costs one read of the state table (and, with
    /// `with_adopted_versions` or `with_baseline_for_existing_tables`, the reads those take).
    Apply,
    /// Serve only if the database is exactly where this binary expects it: not behind, not
    /// ahead, not dirty, no drift.
    Check,
    /// Do nothing: migrations are run by an operator (the CLI) or a deploy step.
    Off,
    /// `MIGRATE_ON_STARTUP` held something else; [`ensure`] refuses to start, naming it.
    Invalid(String),
}

impl Policy {
    /// Reads [`POLICY_ENV`]: `apply`, `check` or `off` (any case; also `true`/`1` for apply and
    /// `false`/`0` for off, as Alembic users write `MIGRATE_DB`). Unset means [`Policy::Check`]:
    /// a service that calls `ensure` never serves a database it does not match, unless told.
    pub fn from_env() -> Policy {
        match std::env::var(POLICY_ENV) {
            Ok(value) => Policy::parse(&value),
            Err(std::env::VarError::NotPresent) => Policy::Check,
            Err(std::env::VarError::NotUnicode(value)) => {
                Policy::Invalid(value.to_string_lossy().into_owned())
            }
        }
    }

    /// Parses a policy's name, as [`from_env`](Self::from_env) does.
    pub fn parse(value: &str) -> Policy {
        match value.trim().to_ascii_lowercase().as_str() {
            "apply" | "true" | "1" => Policy::Apply,
            "check" => Policy::Check,
            "off" | "false" | "0" => Policy::Off,
            _ => Policy::Invalid(value.to_string()),
        }
    }
}

/// Why the database is not where this binary expects it. Each says how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Problem {
    /// Migrations are pending.
    Behind {
        /// The migration set's module.
        module: String,
        /// The table.
        table: String,
        /// Where it is.
        current: Option<Version>,
        /// Where this binary would take it.
        latest: Version,
        /// How many steps are pending.
        pending: usize,
    },
    /// The database records a version (or a table) this binary does not know: a newer binary
    /// ran, or the row was edited.
    Ahead {
        /// The migration set's module.
        module: String,
        /// The table.
        table: String,
        /// The recorded version.
        recorded: String,
    },
    /// A step started outside a transaction and never finished.
    Dirty {
        /// The migration set's module.
        module: String,
        /// The table.
        table: String,
        /// The mark.
        mark: DirtyMark,
    },
    /// An applied step was edited after it ran.
    Drift(ChecksumDrift),
    /// The adopted version table (`with_adopted_versions`) and this manager's tracking table
    /// disagree: another tool migrated the table after it was adopted, or records a version
    /// none of its migrations declares.
    Adopted {
        /// The migration set's module.
        module: String,
        /// The table.
        table: String,
        /// What the two tables record.
        conflict: AdoptionConflict,
    },
}

impl Problem {
    /// The problems of one table's status, worst first. Pending steps are a problem of their
    /// own only when nothing else is wrong with the table: its other problem is fixed first
    /// (`up` refuses the table until then), and a table this binary does not link is only
    /// ahead. A `resumable` step cut off on its way up is pending work, not a dirty mark: the
    /// next `up` runs it again.
    pub fn of(status: &TableStatus) -> Vec<Problem> {
        let module = || status.module.clone();
        let table = || status.table.clone();
        if !status.linked {
            // A newer binary's table: its repairs belong to that binary, which knows it.
            return vec![Problem::Ahead {
                module: module(),
                table: table(),
                recorded: status.unknown_version.clone().unwrap_or_else(|| {
                    status.current.as_ref().map_or_else(
                        || match &status.dirty {
                            // Its first step was cut off: a mark and no version.
                            Some(mark) => format!(
                                "{} (a step cut off going {}, nothing finished)",
                                mark.version, mark.direction
                            ),
                            None => "a row with no version".to_string(),
                        },
                        Version::to_string,
                    )
                }),
            }];
        }
        let mut problems = Vec::new();
        if let Some(mark) = status.dirty.as_ref().filter(|_| !status.resumes) {
            problems.push(Problem::Dirty {
                module: module(),
                table: table(),
                mark: mark.clone(),
            });
        }
        if let Some(drift) = &status.drift {
            problems.push(Problem::Drift(drift.clone()));
        }
        if let Some(conflict) = &status.adoption {
            problems.push(Problem::Adopted {
                module: module(),
                table: table(),
                conflict: conflict.clone(),
            });
        }
        if let Some(recorded) = &status.unknown_version {
            problems.push(Problem::Ahead {
                module: module(),
                table: table(),
                recorded: recorded.clone(),
            });
        }
        if status.pending > 0 && problems.is_empty() {
            problems.push(Problem::Behind {
                module: module(),
                table: table(),
                current: status.current.clone(),
                latest: status.latest.clone(),
                pending: status.pending,
            });
        }
        problems
    }

    /// The problems of every table.
    pub fn of_all(statuses: &[TableStatus]) -> Vec<Problem> {
        statuses.iter().flat_map(Problem::of).collect()
    }

    /// Whether this is only pending work (what `apply` fixes by itself, a cut-off `resumable`
    /// step included).
    pub fn is_behind(&self) -> bool {
        matches!(self, Problem::Behind { .. })
    }

    /// A short machine-readable name: `behind`, `ahead`, `dirty`, `drift`, `adopted`.
    pub fn kind(&self) -> &'static str {
        match self {
            Problem::Behind { .. } => "behind",
            Problem::Ahead { .. } => "ahead",
            Problem::Adopted { .. } => "adopted",
            Problem::Dirty { .. } => "dirty",
            Problem::Drift(_) => "drift",
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Behind {
                module,
                table,
                current,
                latest,
                pending,
            } => write!(
                f,
                "`{module}` table `{table}` is behind: at {}, this binary brings it to {latest} \
                 ({pending} pending); run `up` (or start with {POLICY_ENV}=apply)",
                current
                    .as_ref()
                    .map_or_else(|| "nothing applied".to_string(), Version::to_string)
            ),
            Problem::Ahead {
                module,
                table,
                recorded,
            } => write!(
                f,
                "`{module}` table `{table}` is ahead: recorded at {recorded}, which this binary \
                 does not know; deploy the binary that applied it, or check that this is the \
                 right database"
            ),
            Problem::Dirty {
                module,
                table,
                mark,
            } => write!(
                f,
                "`{module}` table `{table}` is dirty: {} step {} ({}) started at {} and never \
                 finished (unless a runner is applying it now); check the schema, then `repair {} --completed` or \
                 `--rolled-back`",
                mark.direction, mark.version, mark.name, mark.since, command_name(module, table)
            ),
            Problem::Adopted {
                module,
                table,
                conflict,
            } => match &conflict.current {
                None => write!(
                    f,
                    "`{module}` table `{table}`: `{}` records it at {}, which none of its \
                     migrations declares; correct that row, or delete it to start from the \
                     baseline",
                    conflict.from, conflict.adopted
                ),
                Some(current) => write!(
                    f,
                    "`{module}` table `{table}`: `{}` records it at {}, but `{}` at {current}: \
                     another tool migrated it after it was adopted; check the schema, then \
                     correct one of the two",
                    conflict.from, conflict.adopted, conflict.tracking
                ),
            },
            Problem::Drift(drift) if drift.never_applied() => write!(
                f,
                "{} (declared at {}) has no run recorded, though its table is recorded above it: it was \
                 added below steps already applied, and a run would skip it; give it a version \
                 above the recorded one, or, once it is applied by hand, `accept-checksums {}`",
                drift.step, drift.location, command_name(&drift.step.module, &drift.step.table)
            ),
            Problem::Drift(drift) => write!(
                f,
                "{} was edited after it ran (declared at {}; applied with {}, now {}); revert \
                 the edit, or `accept-checksums {}`",
                drift.step,
                drift.location,
                drift.applied,
                drift.current,
                command_name(&drift.step.module, &drift.step.table)
            ),
        }
    }
}

/// Why [`ensure`] refused to let the application start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartupError {
    /// [`POLICY_ENV`] holds no policy.
    #[error("{POLICY_ENV}={0:?} is not a policy: use apply, check or off")]
    InvalidPolicy(String),
    /// The database is not where this binary expects it.
    #[error("refusing to start: {target} is not ready for this binary:\n  - {}", join(.problems))]
    NotReady {
        /// The database, as [`MigrationBackend::describe`](crate::backend::MigrationBackend::describe) gives it.
        target: String,
        /// What is wrong, worst first per table.
        problems: Vec<Problem>,
    },
    /// Reading the state (every policy that reads it) or applying (`Apply`) failed.
    #[error(
        "the start-up check of {target} failed (reading its state, or applying under `apply`)"
    )]
    Migrate {
        /// The database.
        target: String,
        /// Why.
        #[source]
        source: Error,
    },
    /// The blocking [`ensure`](crate::blocking::MigrationManager::ensure) could not run where
    /// it was called: inside an async runtime's context ([`Error::InsideRuntime`], naming the
    /// call), or on a manager that is no longer open. Nothing was read.
    #[error(transparent)]
    CannotRun(Error),
}

fn join(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(Problem::to_string)
        .collect::<Vec<_>>()
        .join("\n  - ")
}

/// What [`ensure`] found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Ready {
    /// The policy it followed.
    pub policy: Policy,
    /// The database, as the backend describes it.
    pub target: String,
    /// What `apply` ran (`None` for `check` and `off`).
    pub report: Option<Report>,
}

/// What [`ensure`] answers without the database: an invalid policy, and `off`.
#[allow(clippy::result_large_err)] // the error `ensure` returns
pub(crate) fn settled_without_the_database(
    manager: &MigrationManager,
    policy: &Policy,
) -> Option<Result<Ready, StartupError>> {
    match policy {
        Policy::Invalid(value) => Some(Err(StartupError::InvalidPolicy(value.clone()))),
        Policy::Off => {
            let target = manager.backend().describe();
            tracing::info!(%target, "{POLICY_ENV}=off: not checking migrations");
            Some(Ok(Ready {
                policy: Policy::Off,
                target,
                report: None,
            }))
        }
        Policy::Apply | Policy::Check => None,
    }
}

/// Brings the database in line with `policy` before the application serves, or says why not.
pub async fn ensure(manager: &MigrationManager, policy: Policy) -> Result<Ready, StartupError> {
    if let Some(settled) = settled_without_the_database(manager, &policy) {
        return settled;
    }
    let target = manager.backend().describe();
    let failed = |source: Error| StartupError::Migrate {
        target: target.clone(),
        source,
    };
    let report = match &policy {
        Policy::Invalid(_) | Policy::Off => None,
        Policy::Check => {
            let problems = Problem::of_all(&manager.status().await.map_err(failed)?);
            if !problems.is_empty() {
                return Err(StartupError::NotReady { target, problems });
            }
            tracing::info!(%target, "database matches this binary's migrations");
            None
        }
        Policy::Apply => {
            // `up` itself refuses a dirty, drifted or ahead database before any step runs, and
            // costs one state read when nothing is pending; the status is read only to explain
            // a refusal.
            tracing::info!(%target, "applying pending migrations at start-up");
            let report = match manager.up().await {
                Ok(report) => report,
                Err(err)
                    if matches!(err.category(), ErrorCategory::Dirty | ErrorCategory::Drift) =>
                {
                    let statuses = manager.status().await.map_err(failed)?;
                    let problems: Vec<Problem> = Problem::of_all(&statuses)
                        .into_iter()
                        .filter(|p| !p.is_behind())
                        .collect();
                    if problems.is_empty() {
                        return Err(failed(err));
                    }
                    return Err(StartupError::NotReady { target, problems });
                }
                Err(err) => return Err(failed(err)),
            };
            tracing::info!(%target, steps = report.applied.len(), "migrations applied");
            Some(report)
        }
    };
    Ok(Ready {
        policy,
        target,
        report,
    })
}

/// How a repair command names `table` of `module`: `module:table`, which names it even when
/// another module has a table of that name; the bare table for a module whose name a command
/// line could not carry that way (a `:` or whitespace in it).
fn command_name(module: &str, table: &str) -> String {
    if module.contains(':') || module.contains(char::is_whitespace) {
        table.to_string()
    } else {
        format!("{module}:{table}")
    }
}
