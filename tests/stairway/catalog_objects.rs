//! Wrong downs that leave a schema object other than a table behind (a sequence, a routine, a
//! materialized view, an extension, a row-level security policy, a scheduled event), where the
//! database has such objects. Their expected diff lines are listed in `catalog.rs`.

use crate::catalog::{drop_table, per_dialect};
use migrate::{Conn, Result};

// --- objects a down leaves behind (where the database has them) -----------------------------

#[migrate::migration(table = "sequence_left", version = "1.0.0", down = keep_sequence)]
async fn create_sequence_left(db: &mut Conn<'_>) -> Result<()> {
    let create = ["CREATE SEQUENCE IF NOT EXISTS ticket_numbers START WITH 100"];
    per_dialect(db, &[], &create, &create).await
}
async fn keep_sequence(db: &mut Conn<'_>) -> Result<()> {
    let wrong = ["DROP SEQUENCE IF EXISTS ticket_number"];
    per_dialect(db, &[], &wrong, &wrong).await
}

#[migrate::migration(table = "routine_left", version = "1.0.0", down = keep_routine)]
async fn create_routine_left(db: &mut Conn<'_>) -> Result<()> {
    per_dialect(
        db,
        &[],
        &["CREATE OR REPLACE FUNCTION add_one(x integer) RETURNS integer LANGUAGE sql IMMUTABLE AS 'SELECT x + 1'"],
        &["CREATE OR REPLACE FUNCTION add_one(x INT) RETURNS INT DETERMINISTIC RETURN x + 1"],
    )
    .await
}
async fn keep_routine(db: &mut Conn<'_>) -> Result<()> {
    per_dialect(
        db,
        &[],
        &["DROP FUNCTION IF EXISTS add_one(text)"],
        &["DROP PROCEDURE IF EXISTS add_one"],
    )
    .await
}

#[migrate::migration(table = "matview_left", version = "1.0.0", down = keep_matview)]
async fn create_matview_left(db: &mut Conn<'_>) -> Result<()> {
    per_dialect(
        db,
        &[],
        &["CREATE MATERIALIZED VIEW IF NOT EXISTS answer AS SELECT 42 AS value"],
        &[],
    )
    .await
}
async fn keep_matview(db: &mut Conn<'_>) -> Result<()> {
    per_dialect(db, &[], &["DROP VIEW IF EXISTS answer_view"], &[]).await
}

// --- an extension, a row-level security policy, a scheduled event left behind ----------------

#[migrate::migration(table = "extension_left", version = "1.0.0", down = keep_extension)]
async fn create_extension_left(db: &mut Conn<'_>) -> Result<()> {
    per_dialect(db, &[], &["CREATE EXTENSION IF NOT EXISTS hstore"], &[]).await
}
async fn keep_extension(db: &mut Conn<'_>) -> Result<()> {
    per_dialect(db, &[], &["DROP EXTENSION IF EXISTS citext"], &[]).await
}

#[migrate::migration(table = "policy_left", version = "1.0.0", down = drop_policy_left)]
async fn create_policy_left(db: &mut Conn<'_>) -> Result<()> {
    super::run(
        db,
        &["CREATE TABLE policy_left (id INTEGER PRIMARY KEY, owner_name VARCHAR(20))"],
    )
    .await
}
async fn drop_policy_left(db: &mut Conn<'_>) -> Result<()> {
    drop_table(db, "policy_left").await
}

#[migrate::migration(table = "policy_left", version = "1.1.0", parent = "1.0.0", down = keep_policy)]
async fn add_policy(db: &mut Conn<'_>) -> Result<()> {
    per_dialect(
        db,
        &[],
        &["CREATE POLICY own_rows ON policy_left USING (owner_name = current_user)"],
        &[],
    )
    .await
}
async fn keep_policy(db: &mut Conn<'_>) -> Result<()> {
    per_dialect(
        db,
        &[],
        &["DROP POLICY IF EXISTS own_row ON policy_left"],
        &[],
    )
    .await
}

#[migrate::migration(table = "event_left", version = "1.0.0", down = keep_event)]
async fn create_event_left(db: &mut Conn<'_>) -> Result<()> {
    per_dialect(
        db,
        &[],
        &[],
        &["CREATE EVENT IF NOT EXISTS nightly_cleanup ON SCHEDULE EVERY 1 DAY DO DELETE FROM fk_parent WHERE id < 0"],
    )
    .await
}
async fn keep_event(db: &mut Conn<'_>) -> Result<()> {
    per_dialect(db, &[], &[], &["DROP EVENT IF EXISTS nightly_clean"]).await
}
