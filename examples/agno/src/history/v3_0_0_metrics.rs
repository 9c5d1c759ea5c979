//! 3.0.0 for metrics: `user_id` (NOT NULL, `''` for the rows that exist), the unique key moved
//! from `(date, aggregation_period)` to `(user_id, date, aggregation_period)` (a rebuild on
//! SQLite), and the newest day's incomplete rollup dropped so that it is recomputed per user.

use super::names::{
    constraint, constraint_name, drop_index, index, index_exists, index_name, run, types,
};
use super::v2_0_0::{metrics_columns, metrics_indexes};
use migrate::{Conn, Dialect, Error, Result};

/// The columns a rebuild copies: every metrics column but `user_id`.
const CARRIED: &str = "id, agent_runs_count, team_runs_count, workflow_runs_count, agent_sessions_count, \
     team_sessions_count, workflow_sessions_count, users_count, token_metrics, model_metrics, date, \
     aggregation_period, created_at, updated_at, completed";

/// Refuses while two rows would share `(user_id, date, aggregation_period)`.
async fn refuse_colliding_rows(db: &mut Conn<'_>) -> Result<()> {
    let table = db.table("metrics");
    // Rows that exist get user_id '' (or keep theirs): they collide when they share a day.
    let owner = if db.column_exists("metrics", "user_id").await? {
        "COALESCE(user_id, ''), "
    } else {
        ""
    };
    let groups = db
        .query_i64(&format!(
            "SELECT COUNT(*) FROM (SELECT date FROM {table} \
             GROUP BY {owner}date, aggregation_period HAVING COUNT(*) > 1) d"
        ))
        .await?;
    if groups > 0 {
        return Err(Error::blocked(
            format!("{groups} (user_id, date, aggregation_period) groups of {table} hold more than one row, so they cannot become its unique key"),
            format!("delete the duplicate rows of {table}, keeping one per user, day and period (the metrics are recomputed), then run the migrations again"),
        ));
    }
    Ok(())
}

/// Deletes the newest day's unowned rollup when it is not complete, as Agno does: it is
/// recomputed per user by the next metrics run.
async fn drop_incomplete_newest_day(db: &mut Conn<'_>) -> Result<()> {
    let table = db.table("metrics");
    let (yes, no) = if db.dialect() == Dialect::Postgres {
        ("true", "false")
    } else {
        ("1", "0")
    };
    let newest = db.query(&format!("SELECT MAX(date) FROM {table}")).await?;
    let Some(newest) = newest
        .first()
        .and_then(|r| r.get(0))
        .and_then(|v| v.as_str())
        .map(str::to_string)
    else {
        return Ok(());
    };
    let complete = db
        .query(&format!(
            "SELECT MAX(date) FROM {table} WHERE completed = {yes}"
        ))
        .await?;
    let complete = complete
        .first()
        .and_then(|r| r.get(0))
        .and_then(|v| v.as_str())
        .map(str::to_string);
    if complete.is_some_and(|c| c >= newest) {
        return Ok(());
    }
    let sql = format!(
        "DELETE FROM {table} WHERE completed = {no} AND (user_id = '' OR user_id IS NULL) AND date = {}",
        db.dialect().quote_literal(&newest)
    );
    db.execute(&sql).await?;
    Ok(())
}

/// The metrics table as 3.0.0 leaves it on SQLite, under `name`.
pub fn sqlite_metrics_v3(db: &Conn<'_>, name: &str) -> String {
    let json = types(db).json;
    format!(
        "CREATE TABLE {name} ({}, user_id VARCHAR NOT NULL, created_at BIGINT NOT NULL, updated_at BIGINT, \
         completed BOOLEAN NOT NULL, PRIMARY KEY (id), CONSTRAINT {} UNIQUE (user_id, date, aggregation_period))",
        metrics_columns(db, json),
        constraint(db, "metrics", "uq_metrics_user_date_period")
    )
}

#[migrate::migration(table = "metrics", version = "3.0.0", parent = "2.3.0", down = metrics_key_back, fresh = super::fresh::metrics_fresh)]
pub async fn metrics_user_key(db: &mut Conn<'_>) -> Result<()> {
    let has_user_id = db.column_exists("metrics", "user_id").await?;
    // SQLite rebuilds the table in one transaction: with the column, it is done.
    if has_user_id && db.dialect() == Dialect::Sqlite {
        return Ok(());
    }
    if !has_user_id {
        refuse_colliding_rows(db).await?;
    }
    let table = db.table("metrics");
    let new_key = constraint(db, "metrics", "uq_metrics_user_date_period");
    let old_key = constraint(db, "metrics", "uq_metrics_date_period");
    let user_index = index(db, "metrics", "user_id");
    // On PostgreSQL and MySQL each piece is checked on its own, as Agno does: on MySQL every
    // statement commits, and a run cut off after the column must still move the key (the old
    // key left in place refuses a second user's row for a day).
    let new_key_name = constraint_name(db, "metrics", "uq_metrics_user_date_period");
    match db.dialect() {
        Dialect::Sqlite => {
            let old = db.quote_ident(&format!("{}_pre_v3_0_0", db.physical_table("metrics")));
            let mut sql = vec![format!("ALTER TABLE {table} RENAME TO {old}")];
            for suffix in ["date", "aggregation_period"] {
                sql.push(drop_index(
                    db,
                    "metrics",
                    &index_name(db, "metrics", suffix),
                ));
            }
            sql.push(sqlite_metrics_v3(db, &table));
            sql.extend(metrics_indexes(db));
            sql.push(format!("CREATE INDEX {user_index} ON {table} (user_id)"));
            sql.push(format!(
                "INSERT INTO {table} ({CARRIED}, user_id) SELECT {CARRIED}, '' FROM {old}"
            ));
            sql.push(format!("DROP TABLE {old}"));
            run(db, &sql).await?;
        }
        Dialect::Postgres => {
            let mut sql = Vec::new();
            if !has_user_id {
                sql.push(format!(
                    "ALTER TABLE {table} ADD COLUMN user_id VARCHAR NOT NULL DEFAULT ''"
                ));
            }
            if !index_exists(db, "metrics", &new_key_name).await? {
                sql.push(format!("ALTER TABLE {table} ADD CONSTRAINT {new_key} UNIQUE (user_id, date, aggregation_period)"));
            }
            sql.push(format!(
                "ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {old_key}"
            ));
            sql.push(format!(
                "ALTER TABLE {table} ALTER COLUMN user_id DROP DEFAULT"
            ));
            sql.push(format!(
                "CREATE INDEX IF NOT EXISTS {user_index} ON {table} (user_id)"
            ));
            run(db, &sql).await?;
        }
        Dialect::MySql => {
            let t = types(db);
            let mut sql = Vec::new();
            if !has_user_id {
                sql.push(format!(
                    "ALTER TABLE {table} ADD COLUMN `user_id` {} NOT NULL DEFAULT ''",
                    t.id
                ));
            }
            if !index_exists(db, "metrics", &index_name(db, "metrics", "user_id")).await? {
                sql.push(format!("CREATE INDEX {user_index} ON {table} (`user_id`)"));
            }
            if !index_exists(db, "metrics", &new_key_name).await? {
                sql.push(format!("ALTER TABLE {table} ADD CONSTRAINT {new_key} UNIQUE (`user_id`, `date`, `aggregation_period`)"));
            }
            let old_key_name = constraint_name(db, "metrics", "uq_metrics_date_period");
            if index_exists(db, "metrics", &old_key_name).await? {
                sql.push(format!("DROP INDEX {old_key} ON {table}"));
            }
            sql.push(format!(
                "ALTER TABLE {table} MODIFY COLUMN `user_id` {} NOT NULL",
                t.id
            ));
            run(db, &sql).await?;
        }
    }
    // Also on a run again after one cut off: it deletes only unowned rows of an incomplete
    // newest day, which is harmless twice.
    drop_incomplete_newest_day(db).await
}

/// Back to the `(date, aggregation_period)` key, refusing while rows belong to users (they
/// would collide under the old key). The dropped incomplete day is not restored.
pub async fn metrics_key_back(db: &mut Conn<'_>) -> Result<()> {
    if !db.column_exists("metrics", "user_id").await? {
        return Ok(());
    }
    let table = db.table("metrics");
    let owned = db
        .query_i64(&format!("SELECT COUNT(*) FROM {table} WHERE user_id <> ''"))
        .await?;
    if owned > 0 {
        return Err(Error::blocked(
            format!("{owned} rows of {table} belong to users, and the 2.x key (date, aggregation_period) cannot hold them"),
            format!("delete the per-user rows of {table} (user_id <> ''), then run the down again"),
        ));
    }
    let new_key = constraint(db, "metrics", "uq_metrics_user_date_period");
    let old_key = constraint(db, "metrics", "uq_metrics_date_period");
    let user_index = index_name(db, "metrics", "user_id");
    match db.dialect() {
        Dialect::Sqlite => {
            let old = db.quote_ident(&format!("{}_v3_0_0", db.physical_table("metrics")));
            let mut sql = vec![format!("ALTER TABLE {table} RENAME TO {old}")];
            for suffix in ["date", "aggregation_period", "user_id"] {
                sql.push(drop_index(
                    db,
                    "metrics",
                    &index_name(db, "metrics", suffix),
                ));
            }
            sql.push(format!(
                "CREATE TABLE {table} ({}, created_at BIGINT NOT NULL, updated_at BIGINT, completed BOOLEAN NOT NULL, \
                 PRIMARY KEY (id), CONSTRAINT {old_key} UNIQUE (date, aggregation_period))",
                metrics_columns(db, types(db).json)
            ));
            sql.extend(metrics_indexes(db));
            sql.push(format!(
                "INSERT INTO {table} ({CARRIED}) SELECT {CARRIED} FROM {old}"
            ));
            sql.push(format!("DROP TABLE {old}"));
            run(db, &sql).await
        }
        Dialect::Postgres => {
            let sql = [
                format!("ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {new_key}"),
                drop_index(db, "metrics", &user_index),
                format!("ALTER TABLE {table} DROP COLUMN user_id"),
                format!("ALTER TABLE {table} ADD CONSTRAINT {old_key} UNIQUE (date, aggregation_period)"),
            ];
            run(db, &sql).await
        }
        Dialect::MySql => {
            let sql = [
                format!("ALTER TABLE {table} ADD CONSTRAINT {old_key} UNIQUE (`date`, `aggregation_period`)"),
                format!("DROP INDEX {new_key} ON {table}"),
                drop_index(db, "metrics", &user_index),
                format!("ALTER TABLE {table} DROP COLUMN `user_id`"),
            ];
            run(db, &sql).await
        }
    }
}
