//! 3.0.0: runs move out of the sessions' `runs` JSON into their own table (a batched,
//! resumable copy; the old column stays as a backup), and evals, knowledge and metrics get
//! `user_id`. Metrics move their unique key to `(user_id, date, aggregation_period)`, a table
//! rebuild on SQLite, refusing while rows would collide.

use super::names::{drop_index, index, index_exists, index_name, now, run, types};
use migrate::data::{Batches, Upsert};
use migrate::query::Value;
use migrate::{Conn, Dialect, Error, Result};

/// The runs table's indexed columns.
pub const RUN_INDEXES: [&str; 8] = [
    "session_id",
    "run_type",
    "agent_id",
    "team_id",
    "workflow_id",
    "user_id",
    "status",
    "created_at",
];

/// Creates the runs table and its indexes.
pub fn create_runs_sql(db: &Conn<'_>) -> Vec<String> {
    let t = types(db);
    let table = db.table("runs");
    let mut sql = vec![format!(
        "CREATE TABLE {table} (run_id {id} NOT NULL, session_id {id} NOT NULL, run_type {kind} NOT NULL, \
         agent_id {id}, team_id {id}, workflow_id {id}, user_id {id}, parent_run_id {id}, status {st}, \
         run_index BIGINT, run_data {json} NOT NULL, created_at BIGINT NOT NULL, updated_at BIGINT, \
         PRIMARY KEY (run_id), FOREIGN KEY (session_id) REFERENCES {} (session_id) ON DELETE CASCADE)",
        db.table("session"),
        id = t.id,
        kind = t.kind,
        st = t.status,
        json = t.json3
    )];
    for column in RUN_INDEXES {
        sql.push(format!(
            "CREATE INDEX {} ON {table} ({column})",
            index(db, "runs", column)
        ));
    }
    let composite = if db.dialect() == Dialect::MySql {
        db.quote_ident(&format!(
            "{}_runs_session_id_run_index",
            db.physical_table("runs")
        ))
    } else {
        index(db, "runs", "session_id_run_index")
    };
    sql.push(format!(
        "CREATE INDEX {composite} ON {table} (session_id, run_index)"
    ));
    sql
}

#[migrate::migration(table = "runs", version = "3.0.0", down = drop_runs, after = "session@2.5.0")]
pub async fn create_runs(db: &mut Conn<'_>) -> Result<()> {
    let sql = create_runs_sql(db);
    run(db, &sql).await
}

pub async fn drop_runs(db: &mut Conn<'_>) -> Result<()> {
    let sql = format!("DROP TABLE {}", db.table("runs"));
    db.execute(&sql).await?;
    Ok(())
}

/// The copy's job name in the checkpoint table.
const RUNS_JOB: &str = "agno_3_0_0_runs";

/// A `runs` value as stored: JSON text, JSON text of JSON text (SQLite), or NULL.
fn decode_runs(value: &Value) -> Option<Vec<serde_json::Value>> {
    let text = value.as_str()?;
    let mut parsed: serde_json::Value = serde_json::from_str(text).ok()?;
    for _ in 0..2 {
        match parsed {
            serde_json::Value::String(inner) => parsed = serde_json::from_str(&inner).ok()?,
            _ => break,
        }
    }
    match parsed {
        serde_json::Value::Array(runs) => Some(runs),
        _ => None,
    }
}

fn text(run: &serde_json::Value, key: &str) -> Value {
    match run.get(key) {
        Some(serde_json::Value::String(s)) => Value::Text(s.clone()),
        Some(serde_json::Value::Null) | None => Value::Null,
        Some(other) => Value::Text(other.to_string()),
    }
}

#[migrate::migration(
    table = "session",
    version = "3.0.0",
    parent = "2.5.0",
    down = runs_back_into_sessions,
    after = "runs@3.0.0",
    transaction = false,
    resumable
)]
pub async fn move_runs_out_of_sessions(db: &mut Conn<'_>) -> Result<()> {
    if !db.column_exists("session", "runs").await? {
        return Ok(());
    }
    let mut job = Batches::new(RUNS_JOB, "session", "session_id")
        .columns(&["session_id", "user_id", "runs"])
        .filter("runs IS NOT NULL")
        .batch_size(50)
        .start(db)
        .await?;
    while let Some(sessions) = job.next(db).await? {
        let mut upsert = Upsert::new(
            "runs",
            &["run_id"],
            &[
                "session_id",
                "run_type",
                "agent_id",
                "team_id",
                "workflow_id",
                "user_id",
                "parent_run_id",
                "status",
                "run_index",
                "run_data",
                "created_at",
                "updated_at",
            ],
        )
        .keep_existing();
        let at = now();
        for session in &sessions {
            let (Some(id), Some(user), Some(runs)) =
                (session.get(0), session.get(1), session.get(2))
            else {
                continue;
            };
            let Some(runs) = decode_runs(runs) else {
                job.tally().refused("runs is not a JSON array");
                continue;
            };
            for (position, run) in runs.iter().enumerate() {
                let Some(run_id) = run.get("run_id").and_then(|v| v.as_str()) else {
                    job.tally().skipped("a run without a run_id");
                    continue;
                };
                let truthy = |k: &str| run.get(k).is_some_and(|v| !v.is_null() && v != "");
                let run_type = if truthy("agent_id") {
                    "agent"
                } else if truthy("team_id") {
                    "team"
                } else {
                    "workflow"
                };
                let created = run
                    .get("created_at")
                    .and_then(|v| v.as_i64())
                    .filter(|c| *c != 0)
                    .unwrap_or(at);
                upsert.row(vec![
                    Value::Text(run_id.to_string()),
                    id.clone(),
                    Value::Text(run_type.to_string()),
                    text(run, "agent_id"),
                    text(run, "team_id"),
                    text(run, "workflow_id"),
                    user.clone(),
                    text(run, "parent_run_id"),
                    text(run, "status"),
                    Value::Int(position as i64),
                    Value::Text(run.to_string()),
                    Value::Int(created),
                    Value::Int(at),
                ]);
                job.tally().moved(1);
            }
        }
        if !upsert.is_empty() {
            // In statements under the server's packet limit (one statement of a batch of
            // large sessions could pass MariaDB's 16 MiB and fail at every resume).
            upsert.execute(db).await?;
        }
    }
    let tally = job.finish(db).await?;
    tracing::info!(%tally, "3.0.0: runs copied out of the sessions table; its runs column is kept as a backup");
    Ok(())
}

/// Puts each session's runs back into its `runs` column, in run order, from the runs table.
pub async fn runs_back_into_sessions(db: &mut Conn<'_>) -> Result<()> {
    Batches::forget(db, RUNS_JOB, migrate::data::DEFAULT_CHECKPOINT_TABLE).await?;
    if !db.table_exists("runs").await? {
        return Ok(());
    }
    if !db.column_exists("session", "runs").await? {
        let ty = types(db).json3;
        let sql = format!("ALTER TABLE {} ADD COLUMN runs {ty}", db.table("session"));
        db.execute(&sql).await?;
    }
    let rows = db
        .query(&format!(
            "SELECT session_id, run_data FROM {} ORDER BY session_id, run_index, created_at",
            db.table("runs")
        ))
        .await?;
    let mut current: Option<(Value, Vec<serde_json::Value>)> = None;
    let mut sessions = Vec::new();
    for row in rows {
        let (Some(id), Some(data)) = (row.get(0).cloned(), row.get(1).and_then(|v| v.as_str()))
        else {
            continue;
        };
        let run: serde_json::Value = serde_json::from_str(data).map_err(Error::migration)?;
        match &mut current {
            Some((session, runs)) if *session == id => runs.push(run),
            _ => {
                sessions.extend(current.take());
                current = Some((id, vec![run]));
            }
        }
    }
    sessions.extend(current);
    for (id, runs) in sessions {
        let json = serde_json::Value::Array(runs).to_string();
        let sql = format!(
            "UPDATE {} SET runs = {} WHERE session_id = {}",
            db.table("session"),
            // A run's text may hold `{{…}}` (a prompt template): `data::literal` writes it so
            // that `Conn`'s template renderer leaves it as it is.
            migrate::data::literal(db.dialect(), &migrate::query::Value::Text(json))?,
            migrate::data::literal(db.dialect(), &id)?
        );
        db.execute(&sql).await?;
    }
    Ok(())
}

/// Adds `user_id` and its index to `table`, and for knowledge the `(user_id, linked_to)` index
/// (PostgreSQL and SQLite, as Agno).
async fn add_user_id(db: &mut Conn<'_>, table: &str) -> Result<()> {
    let t = types(db);
    let physical = db.table(table);
    let mut sql = Vec::new();
    // Each piece on its own, as Agno checks them: on MySQL each statement commits, and a run
    // cut off after the column must still make the indexes.
    if !db.column_exists(table, "user_id").await? {
        sql.push(format!(
            "ALTER TABLE {physical} ADD COLUMN user_id {}",
            t.id
        ));
    }
    let mut indexes = vec![("user_id", "user_id")];
    if table == "knowledge" && db.dialect() != Dialect::MySql {
        indexes.push(("user_id_linked_to", "user_id, linked_to"));
    }
    for (suffix, columns) in indexes {
        if !index_exists(db, table, &index_name(db, table, suffix)).await? {
            sql.push(format!(
                "CREATE INDEX {} ON {physical} ({columns})",
                index(db, table, suffix)
            ));
        }
    }
    run(db, &sql).await
}

async fn drop_user_id(db: &mut Conn<'_>, table: &str) -> Result<()> {
    if !db.column_exists(table, "user_id").await? {
        return Ok(());
    }
    let mut names = vec![index_name(db, table, "user_id")];
    if table == "knowledge" && db.dialect() != Dialect::MySql {
        names.push(index_name(db, table, "user_id_linked_to"));
    }
    for name in names {
        let sql = drop_index(db, table, &name);
        db.execute(&sql).await?;
    }
    let sql = format!("ALTER TABLE {} DROP COLUMN user_id", db.table(table));
    db.execute(&sql).await?;
    Ok(())
}

#[migrate::migration(table = "eval", version = "3.0.0", parent = "2.3.0", down = eval_without_user_id, fresh = super::fresh::eval_fresh)]
pub async fn eval_user_id(db: &mut Conn<'_>) -> Result<()> {
    add_user_id(db, "eval").await
}
pub async fn eval_without_user_id(db: &mut Conn<'_>) -> Result<()> {
    drop_user_id(db, "eval").await
}

#[migrate::migration(table = "knowledge", version = "3.0.0", parent = "2.3.0", down = knowledge_without_user_id, fresh = super::fresh::knowledge_fresh)]
pub async fn knowledge_user_id(db: &mut Conn<'_>) -> Result<()> {
    add_user_id(db, "knowledge").await
}
pub async fn knowledge_without_user_id(db: &mut Conn<'_>) -> Result<()> {
    drop_user_id(db, "knowledge").await
}
