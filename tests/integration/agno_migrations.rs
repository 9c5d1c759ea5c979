// The test fixture: Agno-like tables with per-table version lines. Included at the root of a
// test crate with `include!`, next to that crate's `migrate::migrations!{}`.
//
// Steps consult the `migrate_test_control` table (see `control`), so a test can make one step
// fail, or hang until the process is killed, in its own database only.

use migrate::{Conn, Error, Result};

/// What the test asked `step` to do: `fail`, `block`, `hang`, `panic`, `write_and_panic`,
/// `server_sleep`, or `None` (run normally).
async fn control(db: &mut Conn<'_>, step: &str) -> Result<Option<String>> {
    if !db.table_exists("migrate_test_control").await? {
        return Ok(None);
    }
    let sql = format!(
        "SELECT action FROM migrate_test_control WHERE step = '{}'",
        step.replace('\'', "''")
    );
    let rows = db.query(&sql).await?;
    Ok(rows
        .first()
        .and_then(|r| r.get(0))
        .and_then(|v| v.as_str().map(str::to_string)))
}

async fn obey(db: &mut Conn<'_>, step: &str) -> Result<()> {
    match control(db, step).await?.as_deref() {
        Some("fail") => Err(Error::msg(format!("{step} was told to fail"))),
        Some("block") => Err(Error::blocked(
            format!("{step} was told to refuse"),
            format!("delete the control row of {step}"),
        )),
        Some("block_with_nul") => Err(Error::blocked(
            format!("{step} was told to refuse\0 with a NUL"),
            format!("delete the control row of {step}"),
        )),
        Some("hang") => loop {
            tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
        },
        Some("pause") => {
            tokio::time::sleep(std::time::Duration::from_millis(700)).await;
            Ok(())
        }
        Some("panic") => panic!("{step} was told to panic"),
        // A write that must never commit: in a transaction of the step's own on MySQL (whose
        // steps are journalled, outside one), in the step's transaction elsewhere.
        Some("write_and_panic") => {
            if db.dialect() == migrate::Dialect::MySql {
                db.execute("START TRANSACTION").await?;
            }
            db.execute("INSERT INTO migrate_test_control (step, action) VALUES ('written', 'by the step')")
                .await?;
            panic!("{step} wrote, then was told to panic")
        }
        // Busy on the server (PostgreSQL), so that a restart ends the step's session.
        Some("server_sleep") => {
            db.execute("SELECT pg_sleep(60)").await?;
            Ok(())
        }
        _ => Ok(()),
    }
}

async fn add_column(db: &mut Conn<'_>, table: &str, column: &str, ty: &str) -> Result<()> {
    if !db.column_exists(table, column).await? {
        let sql = format!(
            "ALTER TABLE {} ADD COLUMN {} {ty}",
            db.table(table),
            db.quote_ident(column)
        );
        db.execute(&sql).await?;
    }
    Ok(())
}

async fn drop_column(db: &mut Conn<'_>, table: &str, column: &str) -> Result<()> {
    if db.column_exists(table, column).await? {
        let sql = format!("ALTER TABLE {} DROP COLUMN {}", db.table(table), db.quote_ident(column));
        db.execute(&sql).await?;
    }
    Ok(())
}

// --- session: 2.0.0 -> 2.1.0 -> 2.3.0 ------------------------------------------------------

#[migrate::migration(table = "session", version = "2.0.0", down = drop_session)]
async fn create_session(db: &mut Conn<'_>) -> Result<()> {
    db.execute("CREATE TABLE IF NOT EXISTS {{tables.session}} (session_id VARCHAR(64) PRIMARY KEY, data TEXT)")
        .await?;
    Ok(())
}
async fn drop_session(db: &mut Conn<'_>) -> Result<()> {
    db.execute("DROP TABLE IF EXISTS {{tables.session}}").await?;
    Ok(())
}

#[migrate::migration(table = "session", version = "2.1.0", parent = "2.0.0", down = session_2_1_0_down)]
async fn session_2_1_0(db: &mut Conn<'_>) -> Result<()> {
    obey(db, "session@2.1.0").await?;
    add_column(db, "session", "created_at", "BIGINT").await
}
async fn session_2_1_0_down(db: &mut Conn<'_>) -> Result<()> {
    drop_column(db, "session", "created_at").await
}

#[migrate::migration(table = "session", version = "2.3.0", parent = "2.1.0", down = session_2_3_0_down, fresh = session_fresh)]
async fn session_2_3_0(db: &mut Conn<'_>) -> Result<()> {
    obey(db, "session@2.3.0").await?;
    add_column(db, "session", "state", "TEXT").await
}
/// The session table as 2.0.0, 2.1.0 and 2.3.0 leave it, in one statement.
async fn session_fresh(db: &mut Conn<'_>) -> Result<()> {
    obey(db, "session fresh").await?;
    db.execute("CREATE TABLE {{tables.session}} (session_id VARCHAR(64) PRIMARY KEY, data TEXT, created_at BIGINT, state TEXT)")
        .await?;
    Ok(())
}
async fn session_2_3_0_down(db: &mut Conn<'_>) -> Result<()> {
    obey(db, "session@2.3.0 down").await?;
    drop_column(db, "session", "state").await
}

// --- memory: 2.0.0 -> 2.3.0 (after session 2.1.0) ------------------------------------------

#[migrate::migration(table = "memory", version = "2.0.0", down = drop_memory)]
async fn create_memory(db: &mut Conn<'_>) -> Result<()> {
    db.execute("CREATE TABLE IF NOT EXISTS {{tables.memory}} (memory_id VARCHAR(64) PRIMARY KEY, session_id VARCHAR(64))")
        .await?;
    Ok(())
}
async fn drop_memory(db: &mut Conn<'_>) -> Result<()> {
    db.execute("DROP TABLE IF EXISTS {{tables.memory}}").await?;
    Ok(())
}

#[migrate::migration(
    table = "memory",
    version = "2.3.0",
    parent = "2.0.0",
    down = memory_2_3_0_down,
    after = "session@2.1.0"
)]
async fn memory_2_3_0(db: &mut Conn<'_>) -> Result<()> {
    add_column(db, "memory", "created_at", "BIGINT").await?;
    db.execute(
        "UPDATE {{tables.memory}} SET created_at = (SELECT s.created_at FROM {{tables.session}} s \
         WHERE s.session_id = {{tables.memory}}.session_id)",
    )
    .await?;
    Ok(())
}
async fn memory_2_3_0_down(db: &mut Conn<'_>) -> Result<()> {
    drop_column(db, "memory", "created_at").await
}

// --- metrics: 2.0.0 -> 2.1.0 -> 2.5.0 (no transaction) -------------------------------------

#[migrate::migration(table = "metrics", version = "2.0.0", down = drop_metrics)]
async fn create_metrics(db: &mut Conn<'_>) -> Result<()> {
    db.execute("CREATE TABLE IF NOT EXISTS {{tables.metrics}} (id INTEGER PRIMARY KEY, day VARCHAR(10) NOT NULL)")
        .await?;
    Ok(())
}
async fn drop_metrics(db: &mut Conn<'_>) -> Result<()> {
    db.execute("DROP TABLE IF EXISTS {{tables.metrics}}").await?;
    Ok(())
}

#[migrate::migration(table = "metrics", version = "2.1.0", parent = "2.0.0", down = metrics_2_1_0_down)]
async fn metrics_2_1_0(db: &mut Conn<'_>) -> Result<()> {
    add_column(db, "metrics", "tokens", "BIGINT").await?;
    obey(db, "metrics@2.1.0").await
}
async fn metrics_2_1_0_down(db: &mut Conn<'_>) -> Result<()> {
    drop_column(db, "metrics", "tokens").await?;
    obey(db, "metrics@2.1.0 down").await
}

#[migrate::migration(
    table = "metrics",
    version = "2.5.0",
    parent = "2.1.0",
    down = metrics_2_5_0_down,
    transaction = false
)]
async fn metrics_2_5_0(db: &mut Conn<'_>) -> Result<()> {
    obey(db, "metrics@2.5.0").await?;
    db.execute("CREATE INDEX idx_metrics_day ON {{tables.metrics}} (day)").await?;
    Ok(())
}
async fn metrics_2_5_0_down(db: &mut Conn<'_>) -> Result<()> {
    let sql = match (db.dialect(), db.schema()) {
        (migrate::Dialect::MySql, _) => "DROP INDEX idx_metrics_day ON {{tables.metrics}}",
        // PostgreSQL indexes live in the table's schema.
        (migrate::Dialect::Postgres, Some(_)) => "DROP INDEX {{schema}}.idx_metrics_day",
        _ => "DROP INDEX idx_metrics_day",
    };
    db.execute(sql).await?;
    Ok(())
}

// --- eval: 2.0.0 -> 2.1.0 (irreversible) ----------------------------------------------------

#[migrate::migration(table = "eval", version = "2.0.0", down = drop_eval)]
async fn create_eval(db: &mut Conn<'_>) -> Result<()> {
    db.execute("CREATE TABLE IF NOT EXISTS {{tables.eval}} (id INTEGER PRIMARY KEY, score BIGINT)")
        .await?;
    Ok(())
}
async fn drop_eval(db: &mut Conn<'_>) -> Result<()> {
    db.execute("DROP TABLE IF EXISTS {{tables.eval}}").await?;
    Ok(())
}

#[migrate::migration(table = "eval", version = "2.1.0", parent = "2.0.0", irreversible)]
async fn eval_scores_to_percent(db: &mut Conn<'_>) -> Result<()> {
    db.execute("UPDATE {{tables.eval}} SET score = score * 100").await?;
    // Told to fail: a data step that fails after writing rows.
    obey(db, "eval@2.1.0").await
}
