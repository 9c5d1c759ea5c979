//! 2.0.0, the baseline: the tables an Agno 2.0.0 install creates (when first used), for a
//! database that has none of them. On an existing Agno database these steps are the baseline
//! and never run ("no row means 2.0.0").
//!
//! PostgreSQL and MySQL get a UNIQUE `{table}_uq_session_id` where SQLite has the primary key
//! (2.5.0 moves them to a primary key). Agno 2.0.0 cannot create its tables on MySQL at all
//! (VARCHAR without a length); the MySQL lengths here are those of later releases.

use super::names::{constraint, index, run, types};
use migrate::{Conn, Dialect, Result};

#[migrate::migration(table = "session", version = "2.0.0", down = drop_session)]
pub async fn create_session(db: &mut Conn<'_>) -> Result<()> {
    let key = match db.dialect() {
        Dialect::Sqlite => "PRIMARY KEY (session_id)".to_string(),
        _ => format!(
            "CONSTRAINT {} UNIQUE (session_id)",
            constraint(db, "session", "uq_session_id")
        ),
    };
    let sql = session_sql(db, types(db).json, &key);
    run(db, &sql).await
}

/// The sessions table with JSON columns of type `json` and the key clause `key`.
pub fn session_sql(db: &Conn<'_>, json: &str, key: &str) -> Vec<String> {
    let t = types(db);
    vec![
        format!(
            "CREATE TABLE {} (session_id {id} NOT NULL, session_type {kind} NOT NULL, \
             agent_id {id}, team_id {id}, workflow_id {id}, user_id {id}, session_data {json}, \
             agent_data {json}, team_data {json}, workflow_data {json}, metadata {json}, runs {json}, \
             summary {json}, created_at BIGINT NOT NULL, updated_at BIGINT, {key})",
            db.table("session"),
            id = t.id,
            kind = t.kind,
        ),
        format!("CREATE INDEX {} ON {} (session_type)", index(db, "session", "session_type"), db.table("session")),
        format!("CREATE INDEX {} ON {} (created_at)", index(db, "session", "created_at"), db.table("session")),
    ]
}

pub async fn drop_session(db: &mut Conn<'_>) -> Result<()> {
    let sql = format!("DROP TABLE {}", db.table("session"));
    db.execute(&sql).await?;
    Ok(())
}

#[migrate::migration(table = "memory", version = "2.0.0", down = drop_memory)]
pub async fn create_memory(db: &mut Conn<'_>) -> Result<()> {
    let sql = memory_sql(db, types(db).json, "");
    run(db, &sql).await
}

/// The memories table with JSON columns of type `json` and `extra` columns (`, a T, ...`).
pub fn memory_sql(db: &Conn<'_>, json: &str, extra: &str) -> Vec<String> {
    let t = types(db);
    let input = if db.dialect() == Dialect::MySql {
        "TEXT"
    } else {
        t.text
    };
    vec![
        format!(
            "CREATE TABLE {} (memory_id {id} NOT NULL, memory {json} NOT NULL, input {input}, \
             agent_id {id}, team_id {id}, user_id {id}, topics {json}, updated_at BIGINT{extra}, \
             PRIMARY KEY (memory_id))",
            db.table("memory"),
            id = t.id,
        ),
        format!(
            "CREATE INDEX {} ON {} (user_id)",
            index(db, "memory", "user_id"),
            db.table("memory")
        ),
        format!(
            "CREATE INDEX {} ON {} (updated_at)",
            index(db, "memory", "updated_at"),
            db.table("memory")
        ),
    ]
}

pub async fn drop_memory(db: &mut Conn<'_>) -> Result<()> {
    let sql = format!("DROP TABLE {}", db.table("memory"));
    db.execute(&sql).await?;
    Ok(())
}

/// The metrics columns every release has, in Agno's order, before `user_id`; `json` is the
/// type of the two JSON columns.
pub fn metrics_columns(db: &Conn<'_>, json: &str) -> String {
    let t = types(db);
    format!(
        "id {id} NOT NULL, agent_runs_count BIGINT NOT NULL, team_runs_count BIGINT NOT NULL, \
         workflow_runs_count BIGINT NOT NULL, agent_sessions_count BIGINT NOT NULL, \
         team_sessions_count BIGINT NOT NULL, workflow_sessions_count BIGINT NOT NULL, \
         users_count BIGINT NOT NULL, token_metrics {json} NOT NULL, model_metrics {json} NOT NULL, \
         date DATE NOT NULL, aggregation_period {kind} NOT NULL",
        id = t.id,
        kind = t.kind,
    )
}

/// The metrics indexes: `date` everywhere, `aggregation_period` on SQLite only (as Agno).
pub fn metrics_indexes(db: &Conn<'_>) -> Vec<String> {
    let mut sql = vec![format!(
        "CREATE INDEX {} ON {} (date)",
        index(db, "metrics", "date"),
        db.table("metrics")
    )];
    if db.dialect() == Dialect::Sqlite {
        sql.push(format!(
            "CREATE INDEX {} ON {} (aggregation_period)",
            index(db, "metrics", "aggregation_period"),
            db.table("metrics")
        ));
    }
    sql
}

#[migrate::migration(table = "metrics", version = "2.0.0", down = drop_metrics)]
pub async fn create_metrics(db: &mut Conn<'_>) -> Result<()> {
    let completed = if db.dialect() == Dialect::MySql {
        "BOOL"
    } else {
        "BOOLEAN"
    };
    let mut sql = vec![format!(
        "CREATE TABLE {} ({}, created_at BIGINT NOT NULL, updated_at BIGINT, completed {completed} NOT NULL, \
         PRIMARY KEY (id), CONSTRAINT {} UNIQUE (date, aggregation_period))",
        db.table("metrics"),
        metrics_columns(db, types(db).json),
        constraint(db, "metrics", "uq_metrics_date_period"),
    )];
    sql.extend(metrics_indexes(db));
    run(db, &sql).await
}

pub async fn drop_metrics(db: &mut Conn<'_>) -> Result<()> {
    let sql = format!("DROP TABLE {}", db.table("metrics"));
    db.execute(&sql).await?;
    Ok(())
}

#[migrate::migration(table = "eval", version = "2.0.0", down = drop_eval)]
pub async fn create_eval(db: &mut Conn<'_>) -> Result<()> {
    let sql = eval_sql(db, types(db).json, "");
    run(db, &sql).await
}

/// The eval runs table with JSON columns of type `json` and `extra` columns.
pub fn eval_sql(db: &Conn<'_>, json: &str, extra: &str) -> Vec<String> {
    let t = types(db);
    vec![
        format!(
            "CREATE TABLE {} (run_id {id} NOT NULL, eval_type {kind} NOT NULL, eval_data {json} NOT NULL, \
             eval_input {json} NOT NULL, name {name}, agent_id {id}, team_id {id}, workflow_id {id}, \
             model_id {id}, model_provider {name}, evaluated_component_name {name}, \
             created_at BIGINT NOT NULL, updated_at BIGINT{extra}, PRIMARY KEY (run_id))",
            db.table("eval"),
            id = t.id,
            kind = t.status,
            name = t.name,
        ),
        format!("CREATE INDEX {} ON {} (created_at)", index(db, "eval", "created_at"), db.table("eval")),
    ]
}

pub async fn drop_eval(db: &mut Conn<'_>) -> Result<()> {
    let sql = format!("DROP TABLE {}", db.table("eval"));
    db.execute(&sql).await?;
    Ok(())
}

#[migrate::migration(table = "knowledge", version = "2.0.0", down = drop_knowledge)]
pub async fn create_knowledge(db: &mut Conn<'_>) -> Result<()> {
    let sql = knowledge_sql(db, types(db).json, "");
    db.execute(&sql).await?;
    Ok(())
}

/// The knowledge table with a JSON column of type `json` and `extra` columns.
pub fn knowledge_sql(db: &Conn<'_>, json: &str, extra: &str) -> String {
    let t = types(db);
    let long = if db.dialect() == Dialect::MySql {
        "TEXT"
    } else {
        t.text
    };
    format!(
        "CREATE TABLE {} (id {id} NOT NULL, name {name} NOT NULL, description {long} NOT NULL, \
         metadata {json}, type {status}, size BIGINT, linked_to {id}, access_count BIGINT, \
         status {status}, status_message {long}, created_at BIGINT, updated_at BIGINT, \
         external_id {id}{extra}, PRIMARY KEY (id))",
        db.table("knowledge"),
        id = t.id,
        name = t.name,
        status = t.status,
    )
}

pub async fn drop_knowledge(db: &mut Conn<'_>) -> Result<()> {
    let sql = format!("DROP TABLE {}", db.table("knowledge"));
    db.execute(&sql).await?;
    Ok(())
}
