//! Fresh installs: each table created directly as its head leaves it, for `install-fresh`
//! (the session table's stands for 2.5.0, which leaves it as 3.0.0 does: see `v2_5.rs`).
//! `round_trip_tests!` (`examples/agno/tests/round_trip.rs`) proves on every backend that each equals the table
//! upgraded step by step; that is why sessions keep the `runs` backup column here too.

use super::names::{constraint, index, run, types};
use super::v2_0_0::{
    eval_sql, knowledge_sql, memory_sql, metrics_columns, metrics_indexes, session_sql,
};
use super::v2_5::{approvals_sql, run_status_index_sql};
use super::v3_0_0_metrics::sqlite_metrics_v3;
use migrate::{Conn, Dialect, Result};

pub async fn session_fresh(db: &mut Conn<'_>) -> Result<()> {
    let sql = session_sql(db, types(db).json3, "PRIMARY KEY (session_id)");
    run(db, &sql).await
}

pub async fn memory_fresh(db: &mut Conn<'_>) -> Result<()> {
    let extra = match db.dialect() {
        Dialect::Sqlite => ", created_at BIGINT NOT NULL DEFAULT 0, feedback VARCHAR",
        _ => ", created_at BIGINT NOT NULL, feedback TEXT",
    };
    let mut sql = memory_sql(db, types(db).json3, extra);
    sql.push(format!(
        "CREATE INDEX {} ON {} (created_at)",
        index(db, "memory", "created_at"),
        db.table("memory")
    ));
    run(db, &sql).await
}

fn user_id_column(db: &Conn<'_>) -> String {
    format!(", user_id {}", types(db).id)
}

pub async fn eval_fresh(db: &mut Conn<'_>) -> Result<()> {
    let mut sql = eval_sql(db, types(db).json3, &user_id_column(db));
    sql.push(format!(
        "CREATE INDEX {} ON {} (user_id)",
        index(db, "eval", "user_id"),
        db.table("eval")
    ));
    run(db, &sql).await
}

pub async fn knowledge_fresh(db: &mut Conn<'_>) -> Result<()> {
    let table = db.table("knowledge");
    let mut sql = vec![
        knowledge_sql(db, types(db).json3, &user_id_column(db)),
        format!(
            "CREATE INDEX {} ON {table} (user_id)",
            index(db, "knowledge", "user_id")
        ),
    ];
    if db.dialect() != Dialect::MySql {
        sql.push(format!(
            "CREATE INDEX {} ON {table} (user_id, linked_to)",
            index(db, "knowledge", "user_id_linked_to")
        ));
    }
    run(db, &sql).await
}

pub async fn metrics_fresh(db: &mut Conn<'_>) -> Result<()> {
    let table = db.table("metrics");
    let t = types(db);
    let create = match db.dialect() {
        Dialect::Sqlite => sqlite_metrics_v3(db, &table),
        dialect => format!(
            "CREATE TABLE {table} ({}, user_id {} NOT NULL, created_at BIGINT NOT NULL, updated_at BIGINT, \
             completed {} NOT NULL, PRIMARY KEY (id), CONSTRAINT {} UNIQUE (user_id, date, aggregation_period))",
            metrics_columns(db, t.json3),
            t.id,
            if dialect == Dialect::MySql { "BOOL" } else { "BOOLEAN" },
            constraint(db, "metrics", "uq_metrics_user_date_period")
        ),
    };
    let mut sql = vec![create];
    sql.extend(metrics_indexes(db));
    sql.push(format!(
        "CREATE INDEX {} ON {table} (user_id)",
        index(db, "metrics", "user_id")
    ));
    run(db, &sql).await
}

pub async fn approvals_fresh(db: &mut Conn<'_>) -> Result<()> {
    let mut sql = approvals_sql(db, ", run_status TEXT");
    sql.push(run_status_index_sql(db));
    run(db, &sql).await
}
