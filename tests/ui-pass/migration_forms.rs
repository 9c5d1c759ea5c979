//! The forms a migration function takes that `#[migration]` rewrites into the plain `fn` it
//! registers: attributes (outer and inner) kept, a `mut` or unused argument, an early `return`,
//! `?` on the body's own errors, a visibility used from another module, the function called
//! directly as the `MigrationFn` it now is, functions written by `macro_rules!` (the argument's
//! type a `$t:ty` fragment too), and raw identifiers.
migrate::migrations! { heads { forms = "1.3.0", kept = "1.2.0", generated = "1.1.0", r#type = "1.0.0" } }

mod steps {
    /// Creates the table; documented, and public for the module above.
    #[migrate::migration(table = "forms", version = "1.0.0", irreversible)]
    #[allow(clippy::needless_return)]
    pub async fn create(mut db: &mut migrate::Conn<'_>) -> migrate::Result<()> {
        #![allow(unused_mut)]
        let table = db.table("forms");
        db.execute(&format!("CREATE TABLE {table} (id INTEGER PRIMARY KEY, note TEXT)"))
            .await?;
        return Ok(());
    }
}

#[migrate::migration(table = "forms", version = "1.1.0", parent = "1.0.0", irreversible)]
async fn returns_early(db: &mut migrate::Conn<'_>) -> migrate::Result<()> {
    if db.column_exists("forms", "note").await? {
        db.execute("INSERT INTO {{tables.forms}} (id, note) VALUES (1, 'early')").await?;
        return Ok(());
    }
    Err(migrate::Error::msg("the column made by 1.0.0 is missing"))
}

#[migrate::migration(table = "forms", version = "1.2.0", parent = "1.1.0", irreversible)]
async fn unused_argument(_db: &mut migrate::Conn<'_>) -> migrate::Result<()> {
    let parsed: u32 = "12".parse().map_err(|e| migrate::Error::msg(format!("{e}")))?;
    assert_eq!(parsed, 12);
    Ok(())
}

#[migrate::migration(table = "forms", version = "1.3.0", parent = "1.2.0", irreversible)]
async fn holds_a_value_across_await(db: &mut migrate::Conn<'_>) -> migrate::Result<()> {
    let note = String::from("after");
    let count = db.query_i64("SELECT COUNT(*) FROM {{tables.forms}} WHERE note = 'early'").await?;
    if count != 1 {
        return Err(migrate::Error::msg(format!("1.1.0 left {count} rows, not 1")));
    }
    db.execute(&format!("INSERT INTO {{{{tables.forms}}}} (id, note) VALUES ({}, '{note}')", count + 1))
        .await?;
    Ok(())
}

/// Kept as written behind a shim: another attribute than documentation and lint levels.
#[migrate::migration(table = "kept", version = "1.0.0", irreversible)]
#[inline]
async fn with_another_attribute(
    #[allow(unused_variables)] db: &mut migrate::Conn<'_>,
) -> migrate::Result<()> {
    Ok(())
}

/// Kept as written behind a shim: an `impl Trait` argument.
#[migrate::migration(table = "kept", version = "1.1.0", parent = "1.0.0", irreversible)]
async fn with_impl_trait(_db: &mut (impl migrate::ConnExt + Send)) -> migrate::Result<()> {
    Ok(())
}

/// Rewritten, with an attribute on its parameter.
#[migrate::migration(table = "kept", version = "1.2.0", parent = "1.1.0", irreversible)]
async fn with_a_parameter_attribute(
    #[allow(unused_variables)] db: &mut migrate::Conn<'_>,
) -> migrate::Result<()> {
    Ok(())
}

/// Written by `macro_rules!`: the body as a `$body:block` fragment, and the whole function as
/// an `$item:item` fragment.
macro_rules! step_with_body {
    ($name:ident($db:ident), $version:literal, $parent:literal, $body:block) => {
        #[migrate::migration(table = "generated", version = $version, parent = $parent, irreversible)]
        async fn $name($db: &mut migrate::Conn<'_>) -> migrate::Result<()> $body
    };
}

macro_rules! step_as_item {
    ($item:item) => {
        #[migrate::migration(table = "generated", version = "1.0.0", irreversible)]
        $item
    };
}

step_as_item!(
    async fn generated_create(db: &mut migrate::Conn<'_>) -> migrate::Result<()> {
        db.execute("CREATE TABLE {{tables.generated}} (id INTEGER PRIMARY KEY)").await?;
        Ok(())
    }
);

step_with_body!(generated_row(db), "1.1.0", "1.0.0", {
    db.execute("INSERT INTO {{tables.generated}} (id) VALUES (1)").await?;
    Ok(())
});

/// Written by `macro_rules!` with the argument's type as a `$conn:ty` fragment (it arrives
/// grouped), and named with a raw identifier, as the head above names its table.
macro_rules! step_with_type {
    ($name:ident, $conn:ty) => {
        #[migrate::migration(table = "type", version = "1.0.0", irreversible)]
        async fn $name(db: $conn) -> migrate::Result<()> {
            db.execute("CREATE TABLE {{tables.type}} (id INTEGER PRIMARY KEY)").await?;
            Ok(())
        }
    };
}

step_with_type!(r#use, &mut migrate::Conn<'_>);

fn main() {
    // Each function is itself a `MigrationFn`, reachable with its visibility.
    let _registered: [migrate::backend::MigrationFn; 4] =
        [steps::create, returns_early, unused_argument, holds_a_value_across_await];

    support::with_sqlite_manager("forms", &MIGRATIONS, |manager| async move {
        manager.up().await.unwrap();
        assert_eq!(manager.current_version("forms").await.unwrap(), Some("1.3.0".parse().unwrap()));
        assert_eq!(manager.current_version("kept").await.unwrap(), Some("1.2.0".parse().unwrap()));
        assert_eq!(manager.current_version("generated").await.unwrap(), Some("1.1.0".parse().unwrap()));
        assert_eq!(manager.current_version("type").await.unwrap(), Some("1.0.0".parse().unwrap()));
        let names: Vec<String> = manager.history(100).await.unwrap().into_iter().map(|e| e.name).collect();
        assert!(names.iter().any(|n| n == "use"), "the name without `r#`: {names:?}");
    });
}

#[path = "support/sqlite.rs"]
mod support;
