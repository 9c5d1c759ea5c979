//! Names and types as Agno writes them: `idx_{table}_{column}` indexes on the physical table,
//! and the column types each dialect gets.

use migrate::{Conn, Dialect};

/// The quoted name of an index named after the physical table: `idx_agno_sessions_created_at`.
pub fn index(db: &Conn<'_>, table: &str, suffix: &str) -> String {
    db.quote_ident(&index_name(db, table, suffix))
}

/// The bare index name.
pub fn index_name(db: &Conn<'_>, table: &str, suffix: &str) -> String {
    format!("idx_{}_{suffix}", db.physical_table(table))
}

/// A name for `DROP INDEX`: schema-qualified on PostgreSQL when a schema is configured.
pub fn index_to_drop(db: &Conn<'_>, name: &str) -> String {
    match (db.dialect(), db.schema()) {
        (Dialect::Postgres, Some(schema)) => {
            format!("{}.{}", db.quote_ident(schema), db.quote_ident(name))
        }
        _ => db.quote_ident(name),
    }
}

/// `DROP INDEX` for this dialect (MySQL names the table).
pub fn drop_index(db: &Conn<'_>, table: &str, name: &str) -> String {
    match db.dialect() {
        Dialect::MySql => format!("DROP INDEX {} ON {}", db.quote_ident(name), db.table(table)),
        _ => format!("DROP INDEX IF EXISTS {}", index_to_drop(db, name)),
    }
}

/// The quoted name of a constraint named after the physical table:
/// `agno_sessions_uq_session_id`.
pub fn constraint(db: &Conn<'_>, table: &str, suffix: &str) -> String {
    db.quote_ident(&constraint_name(db, table, suffix))
}

/// The bare constraint name.
pub fn constraint_name(db: &Conn<'_>, table: &str, suffix: &str) -> String {
    format!("{}_{suffix}", db.physical_table(table))
}

/// The column types of one dialect, as SQLAlchemy renders Agno's schema types.
pub struct Types {
    /// An id (`String` on SQLite/PostgreSQL, `String(128)` on MySQL).
    pub id: &'static str,
    /// A short kind (`session_type`, `run_type`, `aggregation_period`).
    pub kind: &'static str,
    /// A status or type field.
    pub status: &'static str,
    /// A name.
    pub name: &'static str,
    /// Any other string.
    pub text: &'static str,
    /// JSON as 2.0.0 wrote it (JSON everywhere).
    pub json: &'static str,
    /// JSON as 3.x writes it (JSONB on PostgreSQL).
    pub json3: &'static str,
}

/// The types of `db`'s dialect.
pub fn types(db: &Conn<'_>) -> Types {
    match db.dialect() {
        Dialect::MySql => Types {
            id: "VARCHAR(128)",
            kind: "VARCHAR(20)",
            status: "VARCHAR(50)",
            name: "VARCHAR(255)",
            text: "TEXT",
            json: "JSON",
            json3: "JSON",
        },
        // SQLAlchemy's unbounded String on both; 3.x moves PostgreSQL's JSON to JSONB.
        dialect @ (Dialect::Postgres | Dialect::Sqlite) => Types {
            id: "VARCHAR",
            kind: "VARCHAR",
            status: "VARCHAR",
            name: "VARCHAR",
            text: "VARCHAR",
            json: "JSON",
            json3: if dialect == Dialect::Postgres {
                "JSONB"
            } else {
                "JSON"
            },
        },
    }
}

/// Now, in epoch seconds, as Agno stamps its rows.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// The schema a catalog query filters on: the configured one, else the connection's own (the
/// database, on MySQL).
pub fn schema_filter(db: &Conn<'_>) -> String {
    match (db.dialect(), db.schema()) {
        (Dialect::MySql, _) => "DATABASE()".to_string(),
        (_, Some(schema)) => db.dialect().quote_literal(schema),
        _ => "current_schema()".to_string(),
    }
}

/// Whether `table` has an index named `name` (a UNIQUE constraint has one of its name too).
/// Each step checks every piece it makes, as Agno does: on MySQL, where each statement
/// commits, a step cut off half-way and run again must finish what is missing.
pub async fn index_exists(db: &mut Conn<'_>, table: &str, name: &str) -> migrate::Result<bool> {
    let dialect = db.dialect();
    let quote = |text: &str| dialect.quote_literal(text);
    let sql = match dialect {
        Dialect::Sqlite => format!(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND tbl_name = {} AND name = {}",
            quote(db.physical_table(table)),
            quote(name)
        ),
        Dialect::Postgres => format!(
            "SELECT COUNT(*) FROM pg_indexes WHERE schemaname = {} AND tablename = {} AND indexname = {}",
            schema_filter(db),
            quote(db.physical_table(table)),
            quote(name)
        ),
        Dialect::MySql => format!(
            "SELECT COUNT(*) FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() \
             AND TABLE_NAME = {} AND INDEX_NAME = {}",
            quote(db.physical_table(table)),
            quote(name)
        ),
    };
    Ok(db.query_i64(&sql).await? > 0)
}

/// Runs each statement in order.
pub async fn run(db: &mut Conn<'_>, statements: &[String]) -> migrate::Result<()> {
    for sql in statements {
        db.execute(sql).await?;
    }
    Ok(())
}
