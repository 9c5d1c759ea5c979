//! Wrong downs that only a full catalog reader notices, one per kind of object: the ups are
//! written with `IF NOT EXISTS` where they can be, so that nothing but the snapshot sees what
//! the down leaves behind. A step is a no-op on a database that lacks the object (a sequence
//! on SQLite), and passes there. A correct rebuild of a table with every such property, spelled
//! differently, must pass everywhere.
//!
//! This file holds the lists the stairway checks against and the downs that get a table's
//! own properties wrong; `catalog_objects.rs` the downs that leave other objects behind.

use migrate::{Conn, Dialect, Result};

/// Runs the statements for the database at hand.
pub(crate) async fn per_dialect(
    db: &mut Conn<'_>,
    sqlite: &[&str],
    postgres: &[&str],
    mysql: &[&str],
) -> Result<()> {
    let statements = match db.dialect() {
        Dialect::Sqlite => sqlite,
        Dialect::Postgres => postgres,
        Dialect::MySql => mysql,
    };
    super::run(db, statements).await
}

/// The steps whose down is wrong on `backend`, as `table@version`.
pub fn wrong_on(backend: migrate::testing::Backend) -> Vec<&'static str> {
    use migrate::testing::Backend;
    let mut wrong = vec![
        "check_lost@1.1.0",
        "collation_lost@1.1.0",
        "generated_changed@1.1.0",
    ];
    match backend {
        Backend::Sqlite => wrong.extend(["autoincrement_lost@1.1.0", "partial_changed@1.1.0"]),
        Backend::Postgres => wrong.extend([
            "comment_lost@1.1.0",
            "extension_left@1.0.0",
            "identity_lost@1.1.0",
            "matview_left@1.0.0",
            "partial_changed@1.1.0",
            "policy_left@1.1.0",
            "routine_left@1.0.0",
            "sequence_left@1.0.0",
        ]),
        Backend::MySql => wrong.extend([
            "autoincrement_lost@1.1.0",
            "charset_lost@1.1.0",
            "comment_lost@1.1.0",
            "event_left@1.0.0",
            "fk_target_changed@1.1.0",
            "routine_left@1.0.0",
            "sequence_left@1.0.0",
        ]),
    }
    wrong.sort_unstable();
    wrong
}

/// A piece of the diff line each wrong down must produce, by table.
pub fn expected_change(table: &str) -> &'static str {
    match table {
        "check_lost" => "price_positive: removed (was CHECK",
        "collation_lost" => "column collation_lost.name: type changed",
        "autoincrement_lost" => "autoincrement_lost",
        "partial_changed" => "index on partial_changed: idx_partial_x: changed",
        "sequence_left" => "sequence ticket_numbers: added",
        "routine_left" => "routine function add_one",
        "matview_left" => "materialized view answer: added",
        "fk_target_changed" => "fk_child_parent: changed",
        "extension_left" => "extension hstore: added",
        "policy_left" => "policy policy_left.own_rows: added",
        "event_left" => "event nightly_cleanup: added",
        "generated_changed" => "column generated_changed.doubled: type changed",
        "comment_lost" => "table comment_lost: comment: removed",
        "identity_lost" => "column identity_lost.id: type changed",
        "charset_lost" => "table charset_lost: collation: changed",
        _ => "",
    }
}

pub(crate) async fn drop_table(db: &mut Conn<'_>, table: &str) -> Result<()> {
    db.execute(&format!("DROP TABLE {table}")).await?;
    Ok(())
}

// --- a down that forgets a CHECK constraint ------------------------------------------------

const CHECKED: &str =
    "CREATE TABLE check_lost (id INTEGER PRIMARY KEY, price INTEGER, CONSTRAINT price_positive CHECK (price >= 0))";

#[migrate::migration(table = "check_lost", version = "1.0.0", down = drop_check_lost)]
async fn create_check_lost(db: &mut Conn<'_>) -> Result<()> {
    super::run(db, &[CHECKED]).await
}
async fn drop_check_lost(db: &mut Conn<'_>) -> Result<()> {
    drop_table(db, "check_lost").await
}

#[migrate::migration(table = "check_lost", version = "1.1.0", parent = "1.0.0", down = lose_check)]
async fn check_lost_note(db: &mut Conn<'_>) -> Result<()> {
    super::run(db, &["ALTER TABLE check_lost ADD COLUMN note VARCHAR(20)"]).await
}
async fn lose_check(db: &mut Conn<'_>) -> Result<()> {
    per_dialect(
        db,
        &[
            "CREATE TABLE check_lost_new (id INTEGER PRIMARY KEY, price INTEGER)",
            "INSERT INTO check_lost_new (id, price) SELECT id, price FROM check_lost",
            "DROP TABLE check_lost",
            "ALTER TABLE check_lost_new RENAME TO check_lost",
        ],
        &[
            "ALTER TABLE check_lost DROP COLUMN note",
            "ALTER TABLE check_lost DROP CONSTRAINT price_positive",
        ],
        &[
            "ALTER TABLE check_lost DROP COLUMN note",
            "ALTER TABLE check_lost DROP CONSTRAINT price_positive",
        ],
    )
    .await
}

// --- a down that loses a column's collation ------------------------------------------------

#[migrate::migration(table = "collation_lost", version = "1.0.0", down = drop_collation_lost)]
async fn create_collation_lost(db: &mut Conn<'_>) -> Result<()> {
    per_dialect(
        db,
        &["CREATE TABLE collation_lost (id INTEGER PRIMARY KEY, name VARCHAR(20) COLLATE NOCASE)"],
        &["CREATE TABLE collation_lost (id INTEGER PRIMARY KEY, name VARCHAR(20) COLLATE \"C\")"],
        &["CREATE TABLE collation_lost (id INTEGER PRIMARY KEY, name VARCHAR(20) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin)"],
    )
    .await
}
async fn drop_collation_lost(db: &mut Conn<'_>) -> Result<()> {
    drop_table(db, "collation_lost").await
}

#[migrate::migration(table = "collation_lost", version = "1.1.0", parent = "1.0.0", down = lose_collation)]
async fn widen_collated_name(db: &mut Conn<'_>) -> Result<()> {
    per_dialect(
        db,
        &["ALTER TABLE collation_lost ADD COLUMN extra INTEGER"],
        &["ALTER TABLE collation_lost ADD COLUMN extra INTEGER"],
        &["ALTER TABLE collation_lost ADD COLUMN extra INTEGER"],
    )
    .await
}
async fn lose_collation(db: &mut Conn<'_>) -> Result<()> {
    per_dialect(
        db,
        &[
            "CREATE TABLE collation_lost_new (id INTEGER PRIMARY KEY, name VARCHAR(20))",
            "INSERT INTO collation_lost_new (id, name) SELECT id, name FROM collation_lost",
            "DROP TABLE collation_lost",
            "ALTER TABLE collation_lost_new RENAME TO collation_lost",
        ],
        &[
            "ALTER TABLE collation_lost DROP COLUMN extra",
            "ALTER TABLE collation_lost ALTER COLUMN name TYPE VARCHAR(20)",
        ],
        &[
            "ALTER TABLE collation_lost DROP COLUMN extra",
            "ALTER TABLE collation_lost MODIFY name VARCHAR(20) CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci",
        ],
    )
    .await
}

// --- a down that loses AUTOINCREMENT (PostgreSQL: a correct down) ----------------------------

#[migrate::migration(table = "autoincrement_lost", version = "1.0.0", down = drop_autoincrement_lost)]
async fn create_autoincrement_lost(db: &mut Conn<'_>) -> Result<()> {
    per_dialect(
        db,
        &["CREATE TABLE autoincrement_lost (id INTEGER PRIMARY KEY AUTOINCREMENT, v INTEGER)"],
        &["CREATE TABLE autoincrement_lost (id SERIAL PRIMARY KEY, v INTEGER)"],
        &["CREATE TABLE autoincrement_lost (id INTEGER AUTO_INCREMENT PRIMARY KEY, v INTEGER)"],
    )
    .await
}
async fn drop_autoincrement_lost(db: &mut Conn<'_>) -> Result<()> {
    drop_table(db, "autoincrement_lost").await
}

#[migrate::migration(table = "autoincrement_lost", version = "1.1.0", parent = "1.0.0", down = lose_autoincrement)]
async fn autoincrement_note(db: &mut Conn<'_>) -> Result<()> {
    super::run(
        db,
        &["ALTER TABLE autoincrement_lost ADD COLUMN note VARCHAR(20)"],
    )
    .await
}
async fn lose_autoincrement(db: &mut Conn<'_>) -> Result<()> {
    per_dialect(
        db,
        &[
            "CREATE TABLE autoincrement_lost_new (id INTEGER PRIMARY KEY, v INTEGER)",
            "INSERT INTO autoincrement_lost_new (id, v) SELECT id, v FROM autoincrement_lost",
            "DROP TABLE autoincrement_lost",
            "ALTER TABLE autoincrement_lost_new RENAME TO autoincrement_lost",
        ],
        &["ALTER TABLE autoincrement_lost DROP COLUMN note"],
        &[
            "ALTER TABLE autoincrement_lost DROP COLUMN note",
            "ALTER TABLE autoincrement_lost MODIFY id INTEGER NOT NULL",
        ],
    )
    .await
}

// --- a down that changes a partial index's predicate (MariaDB has none: no-op) --------------

#[migrate::migration(table = "partial_changed", version = "1.0.0", down = drop_partial_changed)]
async fn create_partial_changed(db: &mut Conn<'_>) -> Result<()> {
    per_dialect(
        db,
        &[
            "CREATE TABLE partial_changed (id INTEGER PRIMARY KEY, x INTEGER)",
            "CREATE INDEX idx_partial_x ON partial_changed (x) WHERE x > 0",
        ],
        &[
            "CREATE TABLE partial_changed (id INTEGER PRIMARY KEY, x INTEGER)",
            "CREATE INDEX idx_partial_x ON partial_changed (x) WHERE x > 0",
        ],
        &["CREATE TABLE partial_changed (id INTEGER PRIMARY KEY, x INTEGER)"],
    )
    .await
}
async fn drop_partial_changed(db: &mut Conn<'_>) -> Result<()> {
    drop_table(db, "partial_changed").await
}

#[migrate::migration(table = "partial_changed", version = "1.1.0", parent = "1.0.0", down = restore_wrong_predicate)]
async fn narrow_partial(db: &mut Conn<'_>) -> Result<()> {
    let swap = [
        "DROP INDEX idx_partial_x",
        "CREATE INDEX idx_partial_x ON partial_changed (x) WHERE x > 10",
    ];
    per_dialect(db, &swap, &swap, &[]).await
}
async fn restore_wrong_predicate(db: &mut Conn<'_>) -> Result<()> {
    let swap = [
        "DROP INDEX idx_partial_x",
        "CREATE INDEX idx_partial_x ON partial_changed (x) WHERE x >= 0",
    ];
    per_dialect(db, &swap, &swap, &[]).await
}

// --- a down that re-adds a foreign key to another column (MariaDB) --------------------------

#[migrate::migration(table = "fk_target_changed", version = "1.0.0", down = drop_fk_target_changed)]
async fn create_fk_target_changed(db: &mut Conn<'_>) -> Result<()> {
    super::run(
        db,
        &[
            "CREATE TABLE fk_parent (id INTEGER PRIMARY KEY, code INTEGER NOT NULL UNIQUE)",
            "CREATE TABLE fk_target_changed (id INTEGER PRIMARY KEY, parent_code INTEGER, \
             CONSTRAINT fk_child_parent FOREIGN KEY (parent_code) REFERENCES fk_parent (code))",
        ],
    )
    .await
}
async fn drop_fk_target_changed(db: &mut Conn<'_>) -> Result<()> {
    super::run(
        db,
        &["DROP TABLE fk_target_changed", "DROP TABLE fk_parent"],
    )
    .await
}

#[migrate::migration(table = "fk_target_changed", version = "1.1.0", parent = "1.0.0", down = repoint_fk)]
async fn drop_fk_for_a_while(db: &mut Conn<'_>) -> Result<()> {
    per_dialect(
        db,
        &[],
        &[],
        &["ALTER TABLE fk_target_changed DROP FOREIGN KEY fk_child_parent"],
    )
    .await
}
async fn repoint_fk(db: &mut Conn<'_>) -> Result<()> {
    per_dialect(
        db,
        &[],
        &[],
        &["ALTER TABLE fk_target_changed ADD CONSTRAINT fk_child_parent FOREIGN KEY (parent_code) REFERENCES fk_parent (id)"],
    )
    .await
}

// --- a correct rebuild of a table with all of it, spelled differently ------------------------

#[migrate::migration(table = "rebuilt_right", version = "1.0.0", down = drop_rebuilt_right)]
async fn create_rebuilt_right(db: &mut Conn<'_>) -> Result<()> {
    per_dialect(
        db,
        &[
            "CREATE TABLE rebuilt_right (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT COLLATE NOCASE NOT NULL, \
             price INTEGER CHECK (price >= 0), doubled INTEGER GENERATED ALWAYS AS (price * 2) STORED, \
             CONSTRAINT name_set CHECK (length(name) > 0))",
            "CREATE INDEX idx_rebuilt_price ON rebuilt_right (price) WHERE price > 0",
        ],
        &[
            "CREATE TABLE rebuilt_right (id INTEGER GENERATED ALWAYS AS IDENTITY PRIMARY KEY, \
             name TEXT COLLATE \"C\" NOT NULL, price INTEGER CHECK (price >= 0), \
             doubled INTEGER GENERATED ALWAYS AS (price * 2) STORED)",
            "CREATE INDEX idx_rebuilt_price ON rebuilt_right (price) WHERE price > 0",
        ],
        &[
            "CREATE TABLE rebuilt_right (id INTEGER AUTO_INCREMENT PRIMARY KEY, \
             name VARCHAR(20) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL, \
             price INTEGER CHECK (price >= 0), doubled INTEGER AS (price * 2) STORED)",
        ],
    )
    .await
}
async fn drop_rebuilt_right(db: &mut Conn<'_>) -> Result<()> {
    drop_table(db, "rebuilt_right").await
}

#[migrate::migration(table = "rebuilt_right", version = "1.1.0", parent = "1.0.0", down = rebuild_exactly)]
async fn rebuilt_right_note(db: &mut Conn<'_>) -> Result<()> {
    super::run(
        db,
        &["ALTER TABLE rebuilt_right ADD COLUMN note VARCHAR(20)"],
    )
    .await
}
async fn rebuild_exactly(db: &mut Conn<'_>) -> Result<()> {
    per_dialect(
        db,
        &[
            "CREATE TABLE \"rebuilt_right_new\" (\n  \"id\" integer primary key autoincrement,\n  \
             [name] text collate nocase not null,\n  price integer check(price>=0),\n  \
             doubled integer generated always as ( price*2 ) stored,\n  \
             constraint \"name_set\" check (length( name )>0)\n)",
            "INSERT INTO rebuilt_right_new (id, name, price) SELECT id, name, price FROM rebuilt_right",
            "DROP TABLE rebuilt_right",
            "ALTER TABLE rebuilt_right_new RENAME TO rebuilt_right",
            "create index idx_rebuilt_price on rebuilt_right(price) where price>0",
        ],
        &["ALTER TABLE rebuilt_right DROP COLUMN note"],
        &["ALTER TABLE rebuilt_right DROP COLUMN note"],
    )
    .await
}

// --- a generated column's expression, a table comment, an identity, a table charset ----------

#[migrate::migration(table = "generated_changed", version = "1.0.0", down = drop_generated_changed)]
async fn create_generated_changed(db: &mut Conn<'_>) -> Result<()> {
    per_dialect(
        db,
        &["CREATE TABLE generated_changed (id INTEGER PRIMARY KEY, n INTEGER, doubled INTEGER GENERATED ALWAYS AS (n * 2) STORED)"],
        &["CREATE TABLE generated_changed (id INTEGER PRIMARY KEY, n INTEGER, doubled INTEGER GENERATED ALWAYS AS (n * 2) STORED)"],
        &["CREATE TABLE generated_changed (id INTEGER PRIMARY KEY, n INTEGER, doubled INTEGER AS (n * 2) STORED)"],
    )
    .await
}
async fn drop_generated_changed(db: &mut Conn<'_>) -> Result<()> {
    drop_table(db, "generated_changed").await
}

#[migrate::migration(table = "generated_changed", version = "1.1.0", parent = "1.0.0", down = triple_instead)]
async fn generated_note(db: &mut Conn<'_>) -> Result<()> {
    super::run(
        db,
        &["ALTER TABLE generated_changed ADD COLUMN note VARCHAR(20)"],
    )
    .await
}
async fn triple_instead(db: &mut Conn<'_>) -> Result<()> {
    per_dialect(
        db,
        &[
            "CREATE TABLE generated_changed_new (id INTEGER PRIMARY KEY, n INTEGER, doubled INTEGER GENERATED ALWAYS AS (n * 3) STORED)",
            "INSERT INTO generated_changed_new (id, n) SELECT id, n FROM generated_changed",
            "DROP TABLE generated_changed",
            "ALTER TABLE generated_changed_new RENAME TO generated_changed",
        ],
        &[
            "ALTER TABLE generated_changed DROP COLUMN note",
            "ALTER TABLE generated_changed DROP COLUMN doubled",
            "ALTER TABLE generated_changed ADD COLUMN doubled INTEGER GENERATED ALWAYS AS (n * 3) STORED",
        ],
        &[
            "ALTER TABLE generated_changed DROP COLUMN note",
            "ALTER TABLE generated_changed MODIFY doubled INTEGER AS (n * 3) STORED",
        ],
    )
    .await
}

#[migrate::migration(table = "comment_lost", version = "1.0.0", down = drop_comment_lost)]
async fn create_comment_lost(db: &mut Conn<'_>) -> Result<()> {
    per_dialect(
        db,
        &["CREATE TABLE comment_lost (id INTEGER PRIMARY KEY)"],
        &[
            "CREATE TABLE comment_lost (id INTEGER PRIMARY KEY)",
            "COMMENT ON TABLE comment_lost IS 'who reads this'",
        ],
        &["CREATE TABLE comment_lost (id INTEGER PRIMARY KEY) COMMENT = 'who reads this'"],
    )
    .await
}
async fn drop_comment_lost(db: &mut Conn<'_>) -> Result<()> {
    drop_table(db, "comment_lost").await
}

#[migrate::migration(table = "comment_lost", version = "1.1.0", parent = "1.0.0", down = lose_comment)]
async fn comment_note(db: &mut Conn<'_>) -> Result<()> {
    super::run(
        db,
        &["ALTER TABLE comment_lost ADD COLUMN note VARCHAR(20)"],
    )
    .await
}
async fn lose_comment(db: &mut Conn<'_>) -> Result<()> {
    per_dialect(
        db,
        &["ALTER TABLE comment_lost DROP COLUMN note"],
        &[
            "ALTER TABLE comment_lost DROP COLUMN note",
            "COMMENT ON TABLE comment_lost IS NULL",
        ],
        &[
            "ALTER TABLE comment_lost DROP COLUMN note",
            "ALTER TABLE comment_lost COMMENT = ''",
        ],
    )
    .await
}

#[migrate::migration(table = "identity_lost", version = "1.0.0", down = drop_identity_lost)]
async fn create_identity_lost(db: &mut Conn<'_>) -> Result<()> {
    per_dialect(
        db,
        &["CREATE TABLE identity_lost (id INTEGER PRIMARY KEY)"],
        &["CREATE TABLE identity_lost (id INTEGER GENERATED ALWAYS AS IDENTITY PRIMARY KEY)"],
        &["CREATE TABLE identity_lost (id INTEGER PRIMARY KEY)"],
    )
    .await
}
async fn drop_identity_lost(db: &mut Conn<'_>) -> Result<()> {
    drop_table(db, "identity_lost").await
}

#[migrate::migration(table = "identity_lost", version = "1.1.0", parent = "1.0.0", down = lose_identity)]
async fn identity_note(db: &mut Conn<'_>) -> Result<()> {
    super::run(
        db,
        &["ALTER TABLE identity_lost ADD COLUMN note VARCHAR(20)"],
    )
    .await
}
async fn lose_identity(db: &mut Conn<'_>) -> Result<()> {
    let drop_note = "ALTER TABLE identity_lost DROP COLUMN note";
    per_dialect(
        db,
        &[drop_note],
        &[
            drop_note,
            "ALTER TABLE identity_lost ALTER COLUMN id DROP IDENTITY",
        ],
        &[drop_note],
    )
    .await
}

#[migrate::migration(table = "charset_lost", version = "1.0.0", down = drop_charset_lost)]
async fn create_charset_lost(db: &mut Conn<'_>) -> Result<()> {
    per_dialect(
        db,
        &["CREATE TABLE charset_lost (id INTEGER PRIMARY KEY)"],
        &["CREATE TABLE charset_lost (id INTEGER PRIMARY KEY)"],
        &["CREATE TABLE charset_lost (id INTEGER PRIMARY KEY) DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin"],
    )
    .await
}
async fn drop_charset_lost(db: &mut Conn<'_>) -> Result<()> {
    drop_table(db, "charset_lost").await
}

#[migrate::migration(table = "charset_lost", version = "1.1.0", parent = "1.0.0", down = lose_charset)]
async fn charset_note(db: &mut Conn<'_>) -> Result<()> {
    super::run(db, &["ALTER TABLE charset_lost ADD COLUMN note INTEGER"]).await
}
async fn lose_charset(db: &mut Conn<'_>) -> Result<()> {
    let drop_note = "ALTER TABLE charset_lost DROP COLUMN note";
    per_dialect(
        db,
        &[drop_note],
        &[drop_note],
        &[
            drop_note,
            "ALTER TABLE charset_lost DEFAULT CHARACTER SET latin1",
        ],
    )
    .await
}
