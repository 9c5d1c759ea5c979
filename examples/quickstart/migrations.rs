// The quickstart's migrations: three tables across versions 2.0.0, 2.1.0 and 2.3.0. Portable
// SQL, so the same functions run on SQLite, PostgreSQL and MySQL/MariaDB; where the dialects
// differ, the function asks `db.dialect()`. Included by `main.rs`, and by
// `tests/quickstart_round_trip.rs`, which proves on every backend that each step goes up, comes
// back down, and goes up again.

// The crate's anchor. `heads` makes "added a migration but forgot to move the head" a compile
// error; every table with migrations must be listed.
migrate::migrations! { heads { session = "2.3.0", memory = "2.3.0", metrics = "2.1.0" } }

// --- session: 2.0.0 -> 2.1.0 -> 2.3.0 -----------------------------------------------------

#[migrate::migration(table = "session", version = "2.0.0", down = drop_session)]
async fn create_session(db: &mut migrate::Conn<'_>) -> migrate::Result<()> {
    db.execute("CREATE TABLE {{tables.session}} (session_id VARCHAR(64) PRIMARY KEY, data TEXT)")
        .await?;
    Ok(())
}
async fn drop_session(db: &mut migrate::Conn<'_>) -> migrate::Result<()> {
    db.execute("DROP TABLE {{tables.session}}").await?;
    Ok(())
}

#[migrate::migration(table = "session", version = "2.1.0", parent = "2.0.0", down = drop_created_at)]
async fn session_created_at(db: &mut migrate::Conn<'_>) -> migrate::Result<()> {
    db.execute("ALTER TABLE {{tables.session}} ADD COLUMN created_at BIGINT NOT NULL DEFAULT 0")
        .await?;
    Ok(())
}
async fn drop_created_at(db: &mut migrate::Conn<'_>) -> migrate::Result<()> {
    db.execute("ALTER TABLE {{tables.session}} DROP COLUMN created_at").await?;
    Ok(())
}

// Index creation outside a transaction (on PostgreSQL this could be CONCURRENTLY): the step is
// journalled, so a crash half-way leaves a dirty mark instead of a silent half-state.
#[migrate::migration(
    table = "session",
    version = "2.3.0",
    parent = "2.1.0",
    down = drop_created_at_index,
    transaction = false
)]
async fn session_created_at_index(db: &mut migrate::Conn<'_>) -> migrate::Result<()> {
    db.execute("CREATE INDEX idx_session_created_at ON {{tables.session}} (created_at)")
        .await?;
    Ok(())
}
async fn drop_created_at_index(db: &mut migrate::Conn<'_>) -> migrate::Result<()> {
    let sql = match db.dialect() {
        migrate::Dialect::MySql => "DROP INDEX idx_session_created_at ON {{tables.session}}",
        _ => "DROP INDEX idx_session_created_at",
    };
    db.execute(sql).await?;
    Ok(())
}

// --- memory: 2.0.0 -> 2.3.0 ---------------------------------------------------------------

#[migrate::migration(table = "memory", version = "2.0.0", down = drop_memory)]
async fn create_memory(db: &mut migrate::Conn<'_>) -> migrate::Result<()> {
    db.execute(
        "CREATE TABLE {{tables.memory}} (memory_id VARCHAR(64) PRIMARY KEY, \
         session_id VARCHAR(64), memory TEXT)",
    )
    .await?;
    Ok(())
}
async fn drop_memory(db: &mut migrate::Conn<'_>) -> migrate::Result<()> {
    db.execute("DROP TABLE {{tables.memory}}").await?;
    Ok(())
}

// A data migration that needs session 2.1.0's column: `after` orders it behind that step.
#[migrate::migration(
    table = "memory",
    version = "2.3.0",
    parent = "2.0.0",
    down = drop_memory_created_at,
    after = "session@2.1.0"
)]
async fn memory_created_at(db: &mut migrate::Conn<'_>) -> migrate::Result<()> {
    db.execute("ALTER TABLE {{tables.memory}} ADD COLUMN created_at BIGINT").await?;
    db.execute(
        "UPDATE {{tables.memory}} SET created_at = (SELECT s.created_at FROM {{tables.session}} s \
         WHERE s.session_id = {{tables.memory}}.session_id)",
    )
    .await?;
    Ok(())
}
async fn drop_memory_created_at(db: &mut migrate::Conn<'_>) -> migrate::Result<()> {
    db.execute("ALTER TABLE {{tables.memory}} DROP COLUMN created_at").await?;
    Ok(())
}

// --- metrics: 2.0.0 -> 2.1.0 --------------------------------------------------------------

#[migrate::migration(table = "metrics", version = "2.0.0", down = drop_metrics)]
async fn create_metrics(db: &mut migrate::Conn<'_>) -> migrate::Result<()> {
    db.execute("CREATE TABLE {{tables.metrics}} (id INTEGER PRIMARY KEY, day VARCHAR(10) NOT NULL)")
        .await?;
    Ok(())
}
async fn drop_metrics(db: &mut migrate::Conn<'_>) -> migrate::Result<()> {
    db.execute("DROP TABLE {{tables.metrics}}").await?;
    Ok(())
}

#[migrate::migration(table = "metrics", version = "2.1.0", parent = "2.0.0", down = drop_tokens)]
async fn metrics_tokens(db: &mut migrate::Conn<'_>) -> migrate::Result<()> {
    db.execute("ALTER TABLE {{tables.metrics}} ADD COLUMN token_count BIGINT NOT NULL DEFAULT 0")
        .await?;
    Ok(())
}
async fn drop_tokens(db: &mut migrate::Conn<'_>) -> migrate::Result<()> {
    db.execute("ALTER TABLE {{tables.metrics}} DROP COLUMN token_count").await?;
    Ok(())
}
