//! SQLite snapshots from the `pragma_*` table-valued functions.

use super::sqlite_sql;
use super::{cells, is_tracking, text, Column, Rows, Schema, Table};
use migrate_core::error::Result;
use sqlx::{AssertSqlSafe, Connection, SqliteConnection};
use std::collections::BTreeMap;

async fn rows(conn: &mut SqliteConnection, sql: String, bind: Option<&str>) -> Result<Rows> {
    let mut query = sqlx::query(AssertSqlSafe(sql));
    if let Some(value) = bind {
        query = query.bind(value.to_string());
    }
    let rows = query.fetch_all(&mut *conn).await?;
    Ok(rows.iter().map(cells).collect())
}

pub(super) async fn snapshot(url: &str, tracking_table: &str) -> Result<Schema> {
    let mut conn = SqliteConnection::connect(url).await?;
    let mut schema = Schema::default();
    let objects = rows(
        &mut conn,
        // SQLite's own objects are named `sqlite_…` exactly (LIKE would also drop a user's
        // `sqlitecache`: `_` matches any character, and LIKE ignores case).
        "SELECT type, name, tbl_name, sql FROM sqlite_master WHERE substr(name, 1, 7) <> 'sqlite_' ORDER BY type, name".into(),
        None,
    )
    .await?;
    // The SQL of explicit indexes: the only place their predicate and expressions are kept.
    let index_sql: BTreeMap<String, String> = objects
        .iter()
        .filter(|o| text(o, 0) == "index" && o.get(3).is_some_and(Option::is_some))
        .map(|o| (text(o, 1), text(o, 3)))
        .collect();
    for object in &objects {
        let (kind, name, table) = (text(object, 0), text(object, 1), text(object, 2));
        if is_tracking(&table, tracking_table) {
            continue;
        }
        match kind.as_str() {
            "table" => {
                let mut table = read_table(&mut conn, &name, &index_sql).await?;
                add_table_text(&mut table, &text(object, 3));
                schema.tables.insert(name, table);
            }
            // Canonical spelling: a view or trigger re-created with other quotes, case or
            // spacing is the same view or trigger.
            "view" => {
                schema
                    .views
                    .insert(name, sqlite_sql::canonical(&text(object, 3)));
            }
            "trigger" => {
                // Named with its table, as on PostgreSQL and MySQL.
                schema.triggers.insert(
                    format!("{table}.{name}"),
                    sqlite_sql::canonical(&text(object, 3)),
                );
            }
            _ => {}
        }
    }
    conn.close().await?;
    Ok(schema)
}

/// What only the table's `CREATE TABLE` text holds: CHECK constraints, AUTOINCREMENT,
/// collations and generated expressions, and the table options.
fn add_table_text(table: &mut Table, sql: &str) {
    let text = sqlite_sql::read_table(sql);
    for (column, suffix) in text.column_suffixes {
        // The text is read lower-cased; SQLite's names are case-insensitive.
        let found = table
            .columns
            .iter_mut()
            .find(|(name, _)| name.to_lowercase() == column);
        if let Some((_, c)) = found {
            // The pragma's type of a generated column already says GENERATED.
            let base = c.data_type.trim_end_matches(" GENERATED").to_string();
            c.data_type = format!("{base} {suffix}");
        } else {
            table.properties.insert(format!("column {column}"), suffix);
        }
    }
    for (name, check) in text.checks {
        table.constraints.insert(name, check);
    }
    if let Some(column) = text.autoincrement {
        table.properties.insert("autoincrement".into(), column);
    }
    if !text.options.is_empty() {
        table
            .properties
            .insert("options".into(), text.options.join(", "));
    }
}

async fn read_table(
    conn: &mut SqliteConnection,
    name: &str,
    index_sql: &BTreeMap<String, String>,
) -> Result<Table> {
    let mut table = Table::default();
    let columns = rows(
        conn,
        "SELECT name, type, \"notnull\", dflt_value, pk, hidden FROM pragma_table_xinfo(?1) ORDER BY cid".into(),
        Some(name),
    )
    .await?;
    let mut primary_key = Vec::new();
    for column in &columns {
        let column_name = text(column, 0);
        if text(column, 4) != "0" {
            primary_key.push((text(column, 4), column_name.clone()));
        }
        let hidden = text(column, 5);
        let data_type = match hidden.as_str() {
            "2" | "3" => format!("{} GENERATED", text(column, 1).to_uppercase()),
            _ => text(column, 1).to_uppercase(),
        };
        table.push_column(
            column_name,
            Column {
                data_type,
                nullable: text(column, 2) == "0",
                default: column.get(3).cloned().flatten(),
            },
        );
    }
    if !primary_key.is_empty() {
        primary_key.sort();
        let columns: Vec<String> = primary_key.into_iter().map(|(_, c)| c).collect();
        table.constraints.insert(
            "PRIMARY KEY".into(),
            format!("PRIMARY KEY ({})", columns.join(", ")),
        );
    }
    let indexes = rows(
        conn,
        "SELECT name, \"unique\", origin, partial FROM pragma_index_list(?1)".into(),
        Some(name),
    )
    .await?;
    for index in &indexes {
        let index_name = text(index, 0);
        let keys = rows(
            conn,
            "SELECT name, \"desc\", coll FROM pragma_index_xinfo(?1) WHERE key = 1 ORDER BY seqno"
                .into(),
            Some(&index_name),
        )
        .await?;
        let keys: Vec<String> = keys
            .iter()
            .map(|k| {
                let column = k
                    .first()
                    .cloned()
                    .flatten()
                    .unwrap_or_else(|| "<expression>".into());
                let order = if text(k, 1) == "1" { " DESC" } else { "" };
                let collation = match text(k, 2).as_str() {
                    "BINARY" | "" => String::new(),
                    other => format!(" COLLATE {other}"),
                };
                format!("{column}{collation}{order}")
            })
            .collect();
        let unique = if text(index, 1) == "1" { "UNIQUE " } else { "" };
        let partial = if text(index, 3) == "1" {
            " (partial)"
        } else {
            ""
        };
        let origin = match text(index, 2).as_str() {
            "pk" => " from PRIMARY KEY",
            "u" => " from UNIQUE",
            _ => "",
        };
        // Automatic indexes are named by position; their definition is what identifies them.
        let key = if index_name.starts_with("sqlite_autoindex_") {
            format!("{unique}({}){origin}", keys.join(", "))
        } else {
            index_name
        };
        // An explicit index's own text has its expressions and its WHERE, in canonical form.
        let definition = match index_sql
            .get(&key)
            .and_then(|sql| sqlite_sql::index_tail(sql))
        {
            Some(tail) => format!("{unique}{tail}"),
            None => format!("{unique}({}){partial}{origin}", keys.join(", ")),
        };
        table.indexes.insert(key, definition);
    }
    let foreign_keys = rows(
        conn,
        "SELECT id, \"table\", \"from\", \"to\", on_update, on_delete FROM pragma_foreign_key_list(?1) ORDER BY id, seq".into(),
        Some(name),
    )
    .await?;
    let mut grouped: std::collections::BTreeMap<
        String,
        (String, Vec<String>, Vec<String>, String),
    > = std::collections::BTreeMap::new();
    for fk in &foreign_keys {
        let entry = grouped.entry(text(fk, 0)).or_insert_with(|| {
            (
                text(fk, 1),
                Vec::new(),
                Vec::new(),
                format!("ON UPDATE {} ON DELETE {}", text(fk, 4), text(fk, 5)),
            )
        });
        entry.1.push(text(fk, 2));
        entry.2.push(text(fk, 3));
    }
    for (_, (target, from, to, actions)) in grouped {
        table.foreign_keys.insert(format!(
            "({}) REFERENCES {target} ({}) {actions}",
            from.join(", "),
            to.join(", ")
        ));
    }
    Ok(table)
}
