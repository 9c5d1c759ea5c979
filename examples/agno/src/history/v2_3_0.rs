//! 2.3.0: memories get `created_at` (backfilled from `updated_at`, then NOT NULL, indexed) and
//! `feedback`; on PostgreSQL every JSON column of the five tables becomes JSONB.
//!
//! Where Agno's own 2.3.0 cannot go back (SQLite, and JSONB on PostgreSQL), these downs do.
//! SQLite's `created_at` gets `DEFAULT 0` where Agno writes the install time into the
//! default: a schema that does not depend on the clock compares equal across databases.

use super::names::{drop_index, index, index_name, run};
use migrate::{Conn, Dialect, Result};

/// The JSON columns 2.3.0 moves to JSONB on PostgreSQL, per table.
pub const JSON_COLUMNS: [(&str, &[&str]); 5] = [
    (
        "session",
        &[
            "session_data",
            "agent_data",
            "team_data",
            "workflow_data",
            "metadata",
            "runs",
            "summary",
        ],
    ),
    ("eval", &["eval_data", "eval_input"]),
    ("metrics", &["token_metrics", "model_metrics"]),
    ("knowledge", &["metadata"]),
    ("memory", &["memory", "topics"]),
];

/// On PostgreSQL, retypes the JSON columns of `table` that exist to `to` (`JSONB` or `JSON`).
async fn retype_json(db: &mut Conn<'_>, table: &str, to: &str) -> Result<()> {
    if db.dialect() != Dialect::Postgres {
        return Ok(());
    }
    let columns = JSON_COLUMNS
        .iter()
        .find(|(t, _)| *t == table)
        .map_or(&[][..], |(_, c)| *c);
    for column in columns {
        if db.column_exists(table, column).await? {
            let sql = format!(
                "ALTER TABLE {} ALTER COLUMN {c} TYPE {to} USING {c}::{}",
                db.table(table),
                to.to_lowercase(),
                c = db.quote_ident(column)
            );
            db.execute(&sql).await?;
        }
    }
    Ok(())
}

#[migrate::migration(table = "session", version = "2.3.0", parent = "2.0.0", down = session_json_back)]
pub async fn session_jsonb(db: &mut Conn<'_>) -> Result<()> {
    retype_json(db, "session", "JSONB").await
}
pub async fn session_json_back(db: &mut Conn<'_>) -> Result<()> {
    retype_json(db, "session", "JSON").await
}

#[migrate::migration(table = "eval", version = "2.3.0", parent = "2.0.0", down = eval_json_back)]
pub async fn eval_jsonb(db: &mut Conn<'_>) -> Result<()> {
    retype_json(db, "eval", "JSONB").await
}
pub async fn eval_json_back(db: &mut Conn<'_>) -> Result<()> {
    retype_json(db, "eval", "JSON").await
}

#[migrate::migration(table = "metrics", version = "2.3.0", parent = "2.0.0", down = metrics_json_back)]
pub async fn metrics_jsonb(db: &mut Conn<'_>) -> Result<()> {
    retype_json(db, "metrics", "JSONB").await
}
pub async fn metrics_json_back(db: &mut Conn<'_>) -> Result<()> {
    retype_json(db, "metrics", "JSON").await
}

#[migrate::migration(table = "knowledge", version = "2.3.0", parent = "2.0.0", down = knowledge_json_back)]
pub async fn knowledge_jsonb(db: &mut Conn<'_>) -> Result<()> {
    retype_json(db, "knowledge", "JSONB").await
}
pub async fn knowledge_json_back(db: &mut Conn<'_>) -> Result<()> {
    retype_json(db, "knowledge", "JSON").await
}

#[migrate::migration(table = "memory", version = "2.3.0", parent = "2.0.0", down = memory_2_3_0_down, fresh = super::fresh::memory_fresh)]
pub async fn memory_created_at_and_feedback(db: &mut Conn<'_>) -> Result<()> {
    let table = db.table("memory");
    let now = super::names::now();
    if !db.column_exists("memory", "created_at").await? {
        let idx = index(db, "memory", "created_at");
        let sql = match db.dialect() {
            Dialect::Sqlite => vec![
                format!("ALTER TABLE {table} ADD COLUMN created_at BIGINT NOT NULL DEFAULT 0"),
                format!("UPDATE {table} SET created_at = COALESCE(updated_at, {now}) WHERE created_at = 0"),
                format!("CREATE INDEX IF NOT EXISTS {idx} ON {table} (created_at)"),
            ],
            Dialect::Postgres => vec![
                format!("ALTER TABLE {table} ADD COLUMN created_at BIGINT"),
                format!("UPDATE {table} SET created_at = COALESCE(updated_at, {now})"),
                format!("ALTER TABLE {table} ALTER COLUMN created_at SET NOT NULL"),
                format!("CREATE INDEX IF NOT EXISTS {idx} ON {table} (created_at)"),
            ],
            Dialect::MySql => vec![
                format!("ALTER TABLE {table} ADD COLUMN `created_at` BIGINT, ADD INDEX {idx} (`created_at`)"),
                format!("UPDATE {table} SET `created_at` = COALESCE(`updated_at`, {now})"),
                format!("ALTER TABLE {table} MODIFY COLUMN `created_at` BIGINT NOT NULL"),
            ],
        };
        run(db, &sql).await?;
    }
    if !db.column_exists("memory", "feedback").await? {
        let ty = if db.dialect() == Dialect::Sqlite {
            "VARCHAR"
        } else {
            "TEXT"
        };
        let sql = format!("ALTER TABLE {table} ADD COLUMN feedback {ty}");
        db.execute(&sql).await?;
    }
    retype_json(db, "memory", "JSONB").await
}

pub async fn memory_2_3_0_down(db: &mut Conn<'_>) -> Result<()> {
    let table = db.table("memory");
    retype_json(db, "memory", "JSON").await?;
    if db.column_exists("memory", "feedback").await? {
        db.execute(&format!("ALTER TABLE {table} DROP COLUMN feedback"))
            .await?;
    }
    if db.column_exists("memory", "created_at").await? {
        let name = index_name(db, "memory", "created_at");
        let drop = drop_index(db, "memory", &name);
        db.execute(&drop).await?;
        db.execute(&format!("ALTER TABLE {table} DROP COLUMN created_at"))
            .await?;
    }
    Ok(())
}
