//! 2.5.0: sessions get a primary key on `session_id` (PostgreSQL and MySQL; SQLite had it
//! from the start), refusing while NULL or duplicate ids exist; the approvals table appears.
//! 2.5.6: approvals get `run_status` and its index (a 255-character prefix on MySQL).

use super::names::{constraint, constraint_name, index, index_exists, run, schema_filter, types};
use migrate::{Conn, Dialect, Error, Result};

async fn has_primary_key(db: &mut Conn<'_>, table: &str) -> Result<bool> {
    let sql = format!(
        "SELECT COUNT(*) FROM information_schema.table_constraints WHERE table_schema = {} \
         AND table_name = {} AND constraint_type = 'PRIMARY KEY'",
        schema_filter(db),
        db.dialect().quote_literal(db.physical_table(table))
    );
    Ok(db.query_i64(&sql).await? > 0)
}

async fn has_unique_session_id(db: &mut Conn<'_>) -> Result<bool> {
    let name = constraint_name(db, "session", "uq_session_id");
    let sql = format!(
        "SELECT COUNT(*) FROM information_schema.table_constraints WHERE table_schema = {} \
         AND table_name = {} AND constraint_name = {} AND constraint_type = 'UNIQUE'",
        schema_filter(db),
        db.dialect().quote_literal(db.physical_table("session")),
        db.dialect().quote_literal(&name)
    );
    Ok(db.query_i64(&sql).await? > 0)
}

/// Refuses, naming the rows at fault and the fix, while the ids cannot carry a primary key.
async fn refuse_bad_session_ids(db: &mut Conn<'_>) -> Result<()> {
    let table = db.table("session");
    let nulls = db
        .query_i64(&format!(
            "SELECT COUNT(*) FROM {table} WHERE session_id IS NULL"
        ))
        .await?;
    if nulls > 0 {
        return Err(Error::blocked(
            format!("{nulls} rows of {table} have no session_id, so it cannot become the primary key"),
            format!("delete them (DELETE FROM {table} WHERE session_id IS NULL) or give them ids, then run the migrations again"),
        ));
    }
    let duplicated =
        format!("SELECT session_id FROM {table} GROUP BY session_id HAVING COUNT(*) > 1");
    let groups = db
        .query_i64(&format!("SELECT COUNT(*) FROM ({duplicated}) d"))
        .await?;
    if groups > 0 {
        let examples: Vec<String> = db
            .query(&format!("{duplicated} ORDER BY session_id LIMIT 5"))
            .await?
            .iter()
            .filter_map(|r| r.get(0).and_then(|v| v.as_str()).map(str::to_string))
            .collect();
        return Err(Error::blocked(
            format!(
                "{groups} session ids appear more than once in {table} (for example {}), so session_id cannot become the primary key",
                examples.join(", ")
            ),
            format!("remove the duplicate rows of {table}, keeping one row per session_id, then run the migrations again"),
        ));
    }
    Ok(())
}

// The session table's fresh function is here, not on 3.0.0 (which copies runs out and leaves
// the table as 2.5.0 made it): 3.0.0 runs after `runs@3.0.0`, which runs after this step, so a
// fresh install standing for 3.0.0 could never run first on a new database.
#[migrate::migration(
    table = "session",
    version = "2.5.0",
    parent = "2.3.0",
    down = session_unique_again,
    fresh = super::fresh::session_fresh
)]
pub async fn session_primary_key(db: &mut Conn<'_>) -> Result<()> {
    if db.dialect() == Dialect::Sqlite {
        return Ok(());
    }
    let table = db.table("session");
    let uq = constraint(db, "session", "uq_session_id");
    let mut sql = Vec::new();
    // Each piece on its own (a table with the key already, from a run cut off before the
    // unique constraint went, still loses that redundant constraint, as with Agno).
    if !has_primary_key(db, "session").await? {
        refuse_bad_session_ids(db).await?;
        sql.push(format!("ALTER TABLE {table} ADD PRIMARY KEY (session_id)"));
    }
    if has_unique_session_id(db).await? {
        sql.push(match db.dialect() {
            Dialect::MySql => format!("ALTER TABLE {table} DROP INDEX {uq}"),
            _ => format!("ALTER TABLE {table} DROP CONSTRAINT {uq}"),
        });
    }
    run(db, &sql).await
}

pub async fn session_unique_again(db: &mut Conn<'_>) -> Result<()> {
    if db.dialect() == Dialect::Sqlite {
        return Ok(());
    }
    let table = db.table("session");
    let uq = constraint(db, "session", "uq_session_id");
    if !has_unique_session_id(db).await? {
        let sql = match db.dialect() {
            Dialect::MySql => format!("ALTER TABLE {table} ADD UNIQUE INDEX {uq} (session_id)"),
            _ => format!("ALTER TABLE {table} ADD CONSTRAINT {uq} UNIQUE (session_id)"),
        };
        db.execute(&sql).await?;
    }
    if has_primary_key(db, "session").await? {
        let sql = match db.dialect() {
            Dialect::MySql => format!("ALTER TABLE {table} DROP PRIMARY KEY"),
            _ => format!(
                "ALTER TABLE {table} DROP CONSTRAINT {}",
                constraint(db, "session", "pkey")
            ),
        };
        db.execute(&sql).await?;
    }
    Ok(())
}

/// The approvals columns and indexed columns, as Agno 2.5 creates the table.
pub const APPROVAL_INDEXES: [&str; 13] = [
    "run_id",
    "session_id",
    "status",
    "source_type",
    "approval_type",
    "pause_type",
    "agent_id",
    "team_id",
    "workflow_id",
    "user_id",
    "schedule_id",
    "schedule_run_id",
    "created_at",
];

/// The approvals table's columns without `run_status`.
pub fn approval_columns(db: &Conn<'_>) -> String {
    let t = types(db);
    format!(
        "id {id} NOT NULL, run_id {id} NOT NULL, session_id {id} NOT NULL, status {st} NOT NULL, \
         source_type {st} NOT NULL, approval_type {st}, pause_type {st} NOT NULL, tool_name {name}, \
         tool_args {json}, expires_at BIGINT, agent_id {id}, team_id {id}, workflow_id {id}, user_id {id}, \
         schedule_id {id}, schedule_run_id {id}, source_name {name}, requirements {json}, context {json}, \
         resolution_data {json}, resolved_by {id}, resolved_at BIGINT, created_at BIGINT NOT NULL, \
         updated_at BIGINT",
        id = t.id,
        st = t.status,
        name = t.name,
        json = t.json3
    )
}

#[migrate::migration(table = "approvals", version = "2.5.0", down = drop_approvals)]
pub async fn create_approvals(db: &mut Conn<'_>) -> Result<()> {
    if db.table_exists("approvals").await? {
        // Made by Agno 2.5 before this tool knew the table: it is already here.
        return Ok(());
    }
    let sql = approvals_sql(db, "");
    run(db, &sql).await
}

/// The approvals table with `extra` columns (`, a T, ...`) and its indexes.
pub fn approvals_sql(db: &Conn<'_>, extra: &str) -> Vec<String> {
    let table = db.table("approvals");
    let mut sql = vec![format!(
        "CREATE TABLE {table} ({}{extra}, PRIMARY KEY (id))",
        approval_columns(db)
    )];
    for column in APPROVAL_INDEXES {
        sql.push(format!(
            "CREATE INDEX {} ON {table} ({column})",
            index(db, "approvals", column)
        ));
    }
    sql
}

pub async fn drop_approvals(db: &mut Conn<'_>) -> Result<()> {
    let sql = format!("DROP TABLE {}", db.table("approvals"));
    db.execute(&sql).await?;
    Ok(())
}

/// `ix_{table}_run_status`: 2.5.6 names its index with `ix_`, unlike every other index.
pub fn run_status_index(db: &Conn<'_>) -> String {
    format!("ix_{}_run_status", db.physical_table("approvals"))
}

/// The `run_status` index's definition: a 255-character prefix on MySQL (TEXT has no length).
pub fn run_status_index_sql(db: &Conn<'_>) -> String {
    let column = if db.dialect() == Dialect::MySql {
        "`run_status`(255)"
    } else {
        "run_status"
    };
    format!(
        "CREATE INDEX {} ON {} ({column})",
        db.quote_ident(&run_status_index(db)),
        db.table("approvals")
    )
}

#[migrate::migration(table = "approvals", version = "2.5.6", parent = "2.5.0", down = approvals_2_5_6_down, fresh = super::fresh::approvals_fresh)]
pub async fn approvals_run_status(db: &mut Conn<'_>) -> Result<()> {
    if !db.column_exists("approvals", "run_status").await? {
        let sql = format!(
            "ALTER TABLE {} ADD COLUMN run_status TEXT",
            db.table("approvals")
        );
        db.execute(&sql).await?;
    }
    // Its own check: on MySQL the column commits before the index is made.
    if !index_exists(db, "approvals", &run_status_index(db)).await? {
        let sql = run_status_index_sql(db);
        db.execute(&sql).await?;
    }
    Ok(())
}

pub async fn approvals_2_5_6_down(db: &mut Conn<'_>) -> Result<()> {
    if db.column_exists("approvals", "run_status").await? {
        let name = run_status_index(db);
        let drop = super::names::drop_index(db, "approvals", &name);
        db.execute(&drop).await?;
        let sql = format!(
            "ALTER TABLE {} DROP COLUMN run_status",
            db.table("approvals")
        );
        db.execute(&sql).await?;
    }
    Ok(())
}
