//! MySQL/MariaDB snapshots from `information_schema`. `AUTO_INCREMENT` counters are never read.

use super::{cells, is_tracking, normalize_sql, text, Column, Rows, Schema};
use migrate_core::error::Result;
use sqlx::{AssertSqlSafe, Connection, MySqlConnection};

async fn rows(conn: &mut MySqlConnection, sql: &str) -> Result<Rows> {
    let rows = sqlx::query(AssertSqlSafe(sql.to_string()))
        .fetch_all(&mut *conn)
        .await?;
    Ok(rows.iter().map(cells).collect())
}

const COLUMNS: &str = "SELECT TABLE_NAME, COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE, COLUMN_DEFAULT, \
    CAST(ORDINAL_POSITION AS CHAR), EXTRA, CHARACTER_SET_NAME, COLLATION_NAME, GENERATION_EXPRESSION, \
    COLUMN_COMMENT FROM information_schema.COLUMNS c \
    WHERE TABLE_SCHEMA = DATABASE() AND EXISTS (SELECT 1 FROM information_schema.TABLES t \
    WHERE t.TABLE_SCHEMA = c.TABLE_SCHEMA AND t.TABLE_NAME = c.TABLE_NAME AND t.TABLE_TYPE = 'BASE TABLE') \
    ORDER BY TABLE_NAME, ORDINAL_POSITION";
const INDEXES: &str = "SELECT TABLE_NAME, INDEX_NAME, CAST(NON_UNIQUE AS CHAR), COLUMN_NAME, CAST(SUB_PART AS CHAR), \
    COLLATION, INDEX_TYPE FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() \
    ORDER BY TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX";
const CONSTRAINTS: &str = "SELECT tc.TABLE_NAME, tc.CONSTRAINT_NAME, tc.CONSTRAINT_TYPE, \
    (SELECT GROUP_CONCAT(k.COLUMN_NAME ORDER BY k.ORDINAL_POSITION) FROM information_schema.KEY_COLUMN_USAGE k \
      WHERE k.CONSTRAINT_SCHEMA = tc.CONSTRAINT_SCHEMA AND k.TABLE_NAME = tc.TABLE_NAME AND k.CONSTRAINT_NAME = tc.CONSTRAINT_NAME), \
    (SELECT CONCAT(r.REFERENCED_TABLE_NAME, ' (', (SELECT GROUP_CONCAT(k.REFERENCED_COLUMN_NAME ORDER BY k.ORDINAL_POSITION) \
      FROM information_schema.KEY_COLUMN_USAGE k WHERE k.CONSTRAINT_SCHEMA = tc.CONSTRAINT_SCHEMA \
      AND k.TABLE_NAME = tc.TABLE_NAME AND k.CONSTRAINT_NAME = tc.CONSTRAINT_NAME), ')', \
      ' ON UPDATE ', r.UPDATE_RULE, ' ON DELETE ', r.DELETE_RULE) \
      FROM information_schema.REFERENTIAL_CONSTRAINTS r WHERE r.CONSTRAINT_SCHEMA = tc.CONSTRAINT_SCHEMA \
      AND r.TABLE_NAME = tc.TABLE_NAME AND r.CONSTRAINT_NAME = tc.CONSTRAINT_NAME), \
    (SELECT GROUP_CONCAT(cc.CHECK_CLAUSE ORDER BY cc.CHECK_CLAUSE SEPARATOR ') AND (') \
      FROM information_schema.CHECK_CONSTRAINTS cc WHERE tc.CONSTRAINT_TYPE = 'CHECK' \
      AND cc.CONSTRAINT_SCHEMA = tc.CONSTRAINT_SCHEMA \
      AND cc.TABLE_NAME = tc.TABLE_NAME AND cc.CONSTRAINT_NAME = tc.CONSTRAINT_NAME) \
    FROM information_schema.TABLE_CONSTRAINTS tc WHERE tc.CONSTRAINT_SCHEMA = DATABASE() ORDER BY 1, 2, 3";
/// [`CONSTRAINTS`] for MariaDB, or for MySQL, whose CHECK_CONSTRAINTS has no TABLE_NAME.
fn constraints_query(mariadb: bool) -> String {
    if mariadb {
        CONSTRAINTS.to_string()
    } else {
        CONSTRAINTS.replace(" AND cc.TABLE_NAME = tc.TABLE_NAME", "")
    }
}

/// Per base table: collation, engine, options (row format, partitioning), comment.
const TABLES: &str = "SELECT TABLE_NAME, TABLE_COLLATION, ENGINE, CREATE_OPTIONS, TABLE_COMMENT \
    FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE = 'BASE TABLE' ORDER BY 1";
const SEQUENCES: &str = "SELECT TABLE_NAME FROM information_schema.TABLES \
    WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE = 'SEQUENCE' ORDER BY 1";
/// Stored functions and procedures: parameters, result, attributes and body.
const ROUTINES: &str = "SELECT CONCAT(LOWER(r.ROUTINE_TYPE), ' ', r.ROUTINE_NAME), CONCAT_WS(' ', \
    CONCAT('(', COALESCE((SELECT GROUP_CONCAT(CONCAT_WS(' ', p.PARAMETER_MODE, p.PARAMETER_NAME, p.DTD_IDENTIFIER) \
      ORDER BY p.ORDINAL_POSITION SEPARATOR ', ') FROM information_schema.PARAMETERS p \
      WHERE p.SPECIFIC_SCHEMA = r.ROUTINE_SCHEMA AND p.SPECIFIC_NAME = r.ROUTINE_NAME \
      AND p.ROUTINE_TYPE = r.ROUTINE_TYPE AND p.ORDINAL_POSITION > 0), ''), ')'), \
    CONCAT('returns ', r.DTD_IDENTIFIER), IF(r.IS_DETERMINISTIC = 'YES', 'deterministic', NULL), \
    LOWER(r.SQL_DATA_ACCESS), CONCAT('security ', LOWER(r.SECURITY_TYPE)), CONCAT('as ', r.ROUTINE_DEFINITION)) \
    FROM information_schema.ROUTINES r WHERE r.ROUTINE_SCHEMA = DATABASE() ORDER BY 1";
const VIEWS: &str =
    "SELECT TABLE_NAME, CONCAT_WS(' ', VIEW_DEFINITION, CONCAT('check option ', CHECK_OPTION), \
    CONCAT('security ', SECURITY_TYPE), CONCAT('algorithm ', ALGORITHM)) \
    FROM information_schema.VIEWS WHERE TABLE_SCHEMA = DATABASE() ORDER BY 1";
/// Scheduled events: their schedule and body. A one-time event's `AT` time and a recurring
/// one's `STARTS` are left out: they are clock times taken when the event was created, which a
/// correct re-creation does not reproduce.
const EVENTS: &str = "SELECT CONCAT('event ', EVENT_NAME), CONCAT_WS(' ', EVENT_TYPE, \
    CONCAT('every ', INTERVAL_VALUE, ' ', INTERVAL_FIELD), STATUS, ON_COMPLETION, CONCAT('do ', EVENT_DEFINITION)) \
    FROM information_schema.EVENTS WHERE EVENT_SCHEMA = DATABASE() ORDER BY 1";
/// Partitioning, per table: method, expression and each partition's bound.
const PARTITIONS: &str = "SELECT TABLE_NAME, CONCAT_WS(' ', PARTITION_METHOD, PARTITION_EXPRESSION), \
    GROUP_CONCAT(CONCAT_WS(' ', PARTITION_NAME, PARTITION_DESCRIPTION) ORDER BY PARTITION_ORDINAL_POSITION SEPARATOR ', ') \
    FROM information_schema.PARTITIONS WHERE TABLE_SCHEMA = DATABASE() AND PARTITION_NAME IS NOT NULL \
    GROUP BY TABLE_NAME, PARTITION_METHOD, PARTITION_EXPRESSION ORDER BY 1";
const TRIGGERS: &str = "SELECT EVENT_OBJECT_TABLE, TRIGGER_NAME, CONCAT(ACTION_TIMING, ' ', EVENT_MANIPULATION, ' ', ACTION_STATEMENT) \
    FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE() ORDER BY 1, 2";

/// MariaDB spells "no default" on a nullable column as the text `NULL`.
fn default_of(raw: Option<String>) -> Option<String> {
    raw.filter(|d| d != "NULL")
}

/// `sql` without the database's own name: MariaDB writes view and trigger bodies with every
/// table qualified (`` `db`.`t` ``), which would make two databases' snapshots differ. Only a
/// qualifier is taken out: a name that follows a `.` is a table's or an alias's (`` `db`.`db` ``,
/// a table named like its database), and stays.
fn without_database(sql: &str, database: &str) -> String {
    if database.is_empty() {
        return sql.to_string();
    }
    let qualifier = format!("`{}`.", database.replace('`', "``"));
    let mut out = String::with_capacity(sql.len());
    let mut copied = 0;
    for (at, _) in sql.match_indices(&qualifier) {
        // What precedes it in the text as the server wrote it.
        let qualified = sql[..at].ends_with('.');
        out.push_str(&sql[copied..at]);
        if qualified {
            out.push_str(&qualifier);
        }
        copied = at + qualifier.len();
    }
    out.push_str(&sql[copied..]);
    out
}

pub(super) async fn snapshot(url: &str, tracking_table: &str) -> Result<Schema> {
    let mut conn = MySqlConnection::connect(url).await?;
    let mut out = Schema::default();
    let database = rows(&mut conn, "SELECT DATABASE()")
        .await?
        .first()
        .map(|row| text(row, 0))
        .unwrap_or_default();
    for row in rows(&mut conn, COLUMNS).await? {
        let table = text(&row, 0);
        if is_tracking(&table, tracking_table) {
            continue;
        }
        let entry = out.tables.entry(table).or_default();
        let name = text(&row, 1);
        let extra = text(&row, 6);
        let mut data_type = if extra.is_empty() {
            text(&row, 2)
        } else {
            format!("{} {}", text(&row, 2), extra.to_uppercase())
        };
        if let Some(expression) = row.get(9).cloned().flatten() {
            data_type.push_str(&format!(" AS ({expression})"));
        }
        if let Some(charset) = row.get(7).cloned().flatten() {
            data_type.push_str(&format!(" CHARACTER SET {charset}"));
        }
        if let Some(collation) = row.get(8).cloned().flatten() {
            data_type.push_str(&format!(" COLLATE {collation}"));
        }
        let comment = text(&row, 10);
        if !comment.is_empty() {
            entry
                .properties
                .insert(format!("comment on column {name}"), comment);
        }
        entry.push_column(
            name,
            Column {
                data_type,
                nullable: text(&row, 3) == "YES",
                default: default_of(row.get(4).cloned().flatten()),
            },
        );
    }
    let mut indexes: std::collections::BTreeMap<(String, String), (String, Vec<String>)> =
        Default::default();
    for row in rows(&mut conn, INDEXES).await? {
        let key = (text(&row, 0), text(&row, 1));
        let entry = indexes.entry(key).or_insert_with(|| {
            let unique = if text(&row, 2) == "0" { "UNIQUE " } else { "" };
            // BTREE is every plain index's type: only another one (FULLTEXT, SPATIAL, HASH) is
            // printed.
            let kind = match text(&row, 6).as_str() {
                "BTREE" | "" => String::new(),
                other => format!("{other} "),
            };
            (format!("{unique}{kind}"), Vec::new())
        });
        let part = match row.get(4).cloned().flatten() {
            Some(len) => format!("{}({len})", text(&row, 3)),
            None => text(&row, 3),
        };
        let order = if text(&row, 5) == "D" { " DESC" } else { "" };
        entry.1.push(format!("{part}{order}"));
    }
    for ((table, name), (kind, columns)) in indexes {
        if let Some(t) = out.tables.get_mut(&table) {
            t.indexes
                .insert(name, format!("{kind}({})", columns.join(", ")));
        }
    }
    // MySQL's CHECK_CONSTRAINTS has no TABLE_NAME (a CHECK's name is unique in its schema
    // there); MariaDB's has, and needs it (its CHECKs are named per table: CONSTRAINT_1).
    let version = rows(&mut conn, "SELECT VERSION()").await?;
    let mariadb = version
        .first()
        .is_some_and(|row| text(row, 0).contains("MariaDB"));
    for row in rows(&mut conn, &constraints_query(mariadb)).await? {
        if let Some(t) = out.tables.get_mut(&text(&row, 0)) {
            // A CHECK has no key columns: it is printed as its clause alone.
            let mut def = match row.get(5).cloned().flatten() {
                Some(check) => format!("{} ({})", text(&row, 2), normalize_sql(&check)),
                None => format!("{} ({})", text(&row, 2), text(&row, 3)),
            };
            if let Some(reference) = row.get(4).cloned().flatten() {
                def.push_str(&format!(" REFERENCES {reference}"));
            }
            // MariaDB names a column's CHECK, and an unnamed UNIQUE key, after the column: two
            // constraints of one name. The first by type keeps the name, the other gets its
            // type beside it (the rows come ordered by type, so both snapshots agree).
            let name = text(&row, 1);
            let key = if t.constraints.contains_key(&name) {
                format!("{name} ({})", text(&row, 2).to_lowercase())
            } else {
                name
            };
            t.constraints.insert(key, def);
        }
    }
    for row in rows(&mut conn, TABLES).await? {
        let Some(table) = out.tables.get_mut(&text(&row, 0)) else {
            continue;
        };
        for (i, property) in ["collation", "engine", "options", "comment"]
            .iter()
            .enumerate()
        {
            let value = text(&row, i + 1);
            if !value.is_empty() {
                table.properties.insert((*property).to_string(), value);
            }
        }
    }
    for row in rows(&mut conn, PARTITIONS).await? {
        if let Some(table) = out.tables.get_mut(&text(&row, 0)) {
            table
                .properties
                .insert("partition key".into(), text(&row, 1));
            table.properties.insert("partitions".into(), text(&row, 2));
        }
    }
    for row in rows(&mut conn, EVENTS).await? {
        let body = without_database(&text(&row, 1), &database);
        out.other.insert(text(&row, 0), normalize_sql(&body));
    }
    for row in rows(&mut conn, SEQUENCES).await? {
        let name = text(&row, 0);
        if is_tracking(&name, tracking_table) {
            continue;
        }
        // `SHOW CREATE SEQUENCE` prints the settings (start, bounds, increment, cache, cycle),
        // never the next value.
        let show = format!("SHOW CREATE SEQUENCE `{}`", name.replace('`', "``"));
        let definition = rows(&mut conn, &show)
            .await?
            .first()
            .map(|row| text(row, 1))
            .unwrap_or_default();
        out.sequences.insert(name, normalize_sql(&definition));
    }
    for row in rows(&mut conn, ROUTINES).await? {
        let body = without_database(&text(&row, 1), &database);
        out.routines.insert(text(&row, 0), body);
    }
    for row in rows(&mut conn, VIEWS).await? {
        let definition = without_database(&text(&row, 1), &database);
        out.views.insert(text(&row, 0), normalize_sql(&definition));
    }
    for row in rows(&mut conn, TRIGGERS).await? {
        if !is_tracking(&text(&row, 0), tracking_table) {
            out.triggers.insert(
                format!("{}.{}", text(&row, 0), text(&row, 1)),
                normalize_sql(&without_database(&text(&row, 2), &database)),
            );
        }
    }
    conn.close().await?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    /// MySQL's CHECK_CONSTRAINTS has no TABLE_NAME: its query must not name one.
    #[test]
    fn the_mysql_constraints_query_names_no_check_table() {
        assert!(super::constraints_query(true).contains("cc.TABLE_NAME"));
        assert!(!super::constraints_query(false).contains("cc.TABLE_NAME"));
    }

    #[test]
    fn only_the_databases_qualifier_is_taken_out() {
        let view =
            "select `shop`.`shop`.`id` AS `id` from `shop`.`shop` join `shop`.`items` `shop`";
        assert_eq!(
            super::without_database(view, "shop"),
            "select `shop`.`id` AS `id` from `shop` join `items` `shop`"
        );
        let scratch = "select `scratch`.`shop`.`id` AS `id` from `scratch`.`shop` join `scratch`.`items` `shop`";
        assert_eq!(
            super::without_database(scratch, "scratch"),
            super::without_database(view, "shop")
        );
    }
}
