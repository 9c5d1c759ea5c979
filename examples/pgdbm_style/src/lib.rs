//! A library that owns its schema as a directory of SQL files, the way pgdbm's "dual-mode"
//! libraries do: the host hands it a database (and, on PostgreSQL, a schema), and it brings
//! its tables up to date there. The files are checked and embedded at compile time.

migrate::migrations! { module = "pgdbm_style" }

// One version line for the whole library: `001_...`, `002_...`, `003_...`.
migrate::sql_dir!(table = "app", dir = "migrations", down = "required");

/// Brings this library's tables up to date on `db`, and returns the report.
pub async fn migrate_up(
    db: impl migrate::backend::MigrationBackend + 'static,
) -> migrate::Result<migrate::report::Report> {
    migrate::MigrationManager::new(db, [&MIGRATIONS])?
        .up()
        .await
}

/// Applies the migrations to each schema of `schemas` on the PostgreSQL server at `url`: each
/// schema has its own tables and its own tracking tables.
pub async fn migrate_tenants(url: &str, schemas: &[&str]) -> migrate::Result<Vec<usize>> {
    let mut applied = Vec::new();
    for schema in schemas {
        let db = migrate::postgres::PgDb::connect(url)
            .await?
            .with_schema(schema)?;
        applied.push(migrate_up(db).await?.applied.len());
    }
    Ok(applied)
}
