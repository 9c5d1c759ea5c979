//! PostgreSQL snapshots from `pg_catalog`.

use super::{cells, is_tracking, normalize_sql, text, Column, Rows, Schema};
use migrate_core::error::Result;
use sqlx::{AssertSqlSafe, Connection, PgConnection};

/// Runs a catalog query whose columns are all cast to text, bound to the schema name.
async fn rows(conn: &mut PgConnection, sql: &str, schema: &str) -> Result<Rows> {
    let rows = sqlx::query(AssertSqlSafe(sql.to_string()))
        .bind(schema.to_string())
        .fetch_all(&mut *conn)
        .await?;
    Ok(rows.iter().map(cells).collect())
}

const COLUMNS: &str = "SELECT c.relname::text, a.attname::text, format_type(a.atttypid, a.atttypmod), \
    a.attnotnull::text, pg_get_expr(d.adbin, d.adrelid), a.attnum::text, a.attidentity::text, a.attgenerated::text, \
    CASE WHEN a.attcollation <> t.typcollation THEN (SELECT quote_ident(co.collname) FROM pg_collation co \
      WHERE co.oid = a.attcollation) END, col_description(c.oid, a.attnum) \
    FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
    JOIN pg_type t ON t.oid = a.atttypid \
    LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum \
    WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped \
    AND NOT EXISTS (SELECT 1 FROM pg_depend x WHERE x.classid = 'pg_class'::regclass \
    AND x.objid = c.oid AND x.deptype = 'e') \
    ORDER BY c.relname, a.attnum";
const CONSTRAINTS: &str = "SELECT c.relname::text, con.conname::text, pg_get_constraintdef(con.oid) \
    FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
    WHERE n.nspname = $1 ORDER BY 1, 2";
const INDEXES: &str = "SELECT tablename::text, indexname::text, indexdef FROM pg_indexes WHERE schemaname = $1 ORDER BY 1, 2";
/// Views: the definition, and the options (`security_barrier`, `check_option`) if any.
const VIEWS: &str = "SELECT c.relname::text, concat_ws(' WITH ', pg_get_viewdef(c.oid), c.reloptions::text) \
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relkind = 'v' \
    AND NOT EXISTS (SELECT 1 FROM pg_depend x WHERE x.classid = 'pg_class'::regclass \
    AND x.objid = c.oid AND x.deptype = 'e') ORDER BY 1";
/// Extensions installed into the schema, policies and rules.
const OTHER: &str = "SELECT 'extension ' || e.extname::text, 'version ' || e.extversion FROM pg_extension e \
    JOIN pg_namespace n ON n.oid = e.extnamespace WHERE n.nspname = $1 \
    UNION ALL SELECT 'policy ' || tablename::text || '.' || policyname::text, concat_ws(' ', permissive, cmd, \
      'to ' || roles::text, 'using ' || qual, 'with check ' || with_check) FROM pg_policies WHERE schemaname = $1 \
    UNION ALL SELECT 'rule ' || tablename::text || '.' || rulename::text, definition FROM pg_rules WHERE schemaname = $1 \
    ORDER BY 1";
/// Sequences: the table that owns one (a `serial` or identity column's, or `OWNED BY`; NULL
/// for none), its name and its settings.
const SEQUENCES: &str = "SELECT (SELECT t.relname::text FROM pg_depend d JOIN pg_class t ON t.oid = d.refobjid \
    WHERE d.classid = 'pg_class'::regclass AND d.objid = s.seq AND d.refclassid = 'pg_class'::regclass \
    AND d.deptype IN ('a', 'i') LIMIT 1), s.sequencename::text, concat_ws(' ', s.data_type, 'start', s.start_value, \
    'increment', s.increment_by, 'min', s.min_value, 'max', s.max_value, 'cycle', s.cycle) \
    FROM (SELECT q.*, (quote_ident(q.schemaname) || '.' || quote_ident(q.sequencename))::regclass::oid AS seq \
    FROM pg_sequences q WHERE q.schemaname = $1) s \
    WHERE NOT EXISTS (SELECT 1 FROM pg_depend x WHERE x.classid = 'pg_class'::regclass \
    AND x.objid = s.seq AND x.deptype = 'e') ORDER BY 2";
const ENUMS: &str = "SELECT t.typname::text, e.enumlabel::text FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid \
    JOIN pg_namespace n ON n.oid = t.typnamespace WHERE n.nspname = $1 \
    AND NOT EXISTS (SELECT 1 FROM pg_depend x WHERE x.classid = 'pg_type'::regclass \
    AND x.objid = t.oid AND x.deptype = 'e') ORDER BY t.typname, e.enumsortorder";
/// Per table: partition key, parent and bound, comment, persistence, row security.
const TABLES: &str = "SELECT c.relname::text, pg_get_partkeydef(c.oid), \
    (SELECT p.relname::text FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhparent WHERE i.inhrelid = c.oid LIMIT 1), \
    pg_get_expr(c.relpartbound, c.oid), obj_description(c.oid, 'pg_class'), \
    CASE c.relpersistence WHEN 'u' THEN 'unlogged' END, \
    CASE WHEN c.relrowsecurity AND c.relforcerowsecurity THEN 'enabled, forced' \
    WHEN c.relrowsecurity THEN 'enabled' WHEN c.relforcerowsecurity THEN 'forced' END, c.reloptions::text, \
    CASE c.relreplident WHEN 'n' THEN 'nothing' WHEN 'f' THEN 'full' WHEN 'i' THEN 'index' END \
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') \
    ORDER BY 1";
const MATERIALIZED_VIEWS: &str =
    "SELECT matviewname::text, definition FROM pg_matviews WHERE schemaname = $1 \
    AND NOT EXISTS (SELECT 1 FROM pg_depend x WHERE x.classid = 'pg_class'::regclass \
    AND x.objid = (quote_ident(schemaname) || '.' || quote_ident(matviewname))::regclass \
    AND x.deptype = 'e') ORDER BY 1";
/// Functions, procedures, aggregates: identity, result, language, attributes and body; those
/// of extensions are left out.
const ROUTINES: &str = "SELECT CASE p.prokind WHEN 'p' THEN 'procedure' WHEN 'a' THEN 'aggregate' \
    WHEN 'w' THEN 'window function' ELSE 'function' END || ' ' || quote_ident(p.proname) || '(' || \
    pg_get_function_identity_arguments(p.oid) || ')', \
    concat_ws(' ', 'arguments (' || pg_get_function_arguments(p.oid) || ')', \
    'returns ' || pg_get_function_result(p.oid), 'language ' || l.lanname, \
    CASE p.provolatile WHEN 'i' THEN 'immutable' WHEN 's' THEN 'stable' ELSE 'volatile' END, \
    CASE WHEN p.proisstrict THEN 'strict' END, CASE WHEN p.prosecdef THEN 'security definer' END, \
    CASE WHEN p.proleakproof THEN 'leakproof' END, \
    CASE p.proparallel WHEN 's' THEN 'parallel safe' WHEN 'r' THEN 'parallel restricted' END, \
    'set ' || array_to_string(p.proconfig, ', '), \
    'as ' || coalesce(pg_get_function_sqlbody(p.oid), p.prosrc)) \
    FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace JOIN pg_language l ON l.oid = p.prolang \
    WHERE n.nspname = $1 AND NOT EXISTS (SELECT 1 FROM pg_depend dep WHERE dep.classid = 'pg_proc'::regclass \
    AND dep.objid = p.oid AND dep.deptype = 'e') ORDER BY 1";
/// Domains (base type, nullability, default, checks) and standalone composite types.
const TYPES: &str = "SELECT t.typname::text, CASE t.typtype WHEN 'd' THEN concat_ws(' ', 'domain', \
    format_type(t.typbasetype, t.typtypmod), CASE WHEN t.typnotnull THEN 'NOT NULL' END, \
    'DEFAULT ' || t.typdefault, (SELECT string_agg(pg_get_constraintdef(con.oid), ' ' ORDER BY con.conname) \
    FROM pg_constraint con WHERE con.contypid = t.oid)) \
    ELSE 'composite (' || (SELECT string_agg(quote_ident(a.attname) || ' ' || format_type(a.atttypid, a.atttypmod), \
    ', ' ORDER BY a.attnum) FROM pg_attribute a WHERE a.attrelid = t.typrelid AND a.attnum > 0 \
    AND NOT a.attisdropped) || ')' END \
    FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace \
    WHERE n.nspname = $1 AND (t.typtype = 'd' OR (t.typtype = 'c' AND \
    (SELECT r.relkind FROM pg_class r WHERE r.oid = t.typrelid) = 'c')) \
    AND NOT EXISTS (SELECT 1 FROM pg_depend x WHERE x.classid = 'pg_type'::regclass \
    AND x.objid = t.oid AND x.deptype = 'e') ORDER BY 1";
const TRIGGERS: &str =
    "SELECT c.relname::text, t.tgname::text, pg_get_triggerdef(t.oid) || CASE t.tgenabled \
    WHEN 'D' THEN ' (disabled)' WHEN 'R' THEN ' (enabled replica)' WHEN 'A' THEN ' (enabled always)' \
    ELSE '' END FROM pg_trigger t \
    JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
    WHERE n.nspname = $1 AND NOT t.tgisinternal \
    AND NOT EXISTS (SELECT 1 FROM pg_depend x WHERE x.classid = 'pg_class'::regclass \
    AND x.objid = c.oid AND x.deptype = 'e') ORDER BY 1, 2";

pub(super) async fn snapshot(
    url: &str,
    schema: Option<&str>,
    tracking_table: &str,
) -> Result<Schema> {
    let mut conn = PgConnection::connect(url).await?;
    let namespace: String = match schema {
        Some(s) => s.to_string(),
        None => {
            sqlx::query_scalar("SELECT current_schema()::text")
                .fetch_one(&mut conn)
                .await?
        }
    };
    // Definitions name objects of the schema without qualifying them only when it is on the
    // search path: so that two schemas, or two databases, compare. Index definitions are
    // always qualified; the schema's name is taken out of them.
    let quoted: String = sqlx::query_scalar(
        "SELECT quote_ident($1) FROM (SELECT set_config('search_path', quote_ident($1) || ', pg_catalog', false)) s",
    )
    .bind(&namespace)
    .fetch_one(&mut conn)
    .await?;
    let unqualified = |definition: String| {
        definition
            .replace(&format!(" ON {quoted}."), " ON ")
            .replace(&format!(" ON ONLY {quoted}."), " ON ONLY ")
    };
    let mut out = Schema::default();
    for row in rows(&mut conn, COLUMNS, &namespace).await? {
        let table = text(&row, 0);
        if is_tracking(&table, tracking_table) {
            continue;
        }
        let entry = out.tables.entry(table).or_default();
        let name = text(&row, 1);
        let mut data_type = text(&row, 2);
        let mut default = row.get(4).cloned().flatten();
        match (text(&row, 6).as_str(), text(&row, 7).as_str()) {
            ("a", _) => data_type.push_str(" GENERATED ALWAYS AS IDENTITY"),
            ("d", _) => data_type.push_str(" GENERATED BY DEFAULT AS IDENTITY"),
            // The catalog keeps a generation expression where defaults go: it is part of the
            // column's type here, as on the other databases.
            (_, "s") => {
                let expression = default.take().unwrap_or_default();
                data_type.push_str(&format!(" GENERATED ALWAYS AS {expression} STORED"));
            }
            _ => {}
        }
        if let Some(collation) = row.get(8).cloned().flatten() {
            data_type.push_str(&format!(" COLLATE {collation}"));
        }
        if let Some(comment) = row.get(9).cloned().flatten() {
            entry
                .properties
                .insert(format!("comment on column {name}"), comment);
        }
        entry.push_column(
            name,
            Column {
                data_type,
                nullable: text(&row, 3) != "true",
                default,
            },
        );
    }
    for row in rows(&mut conn, CONSTRAINTS, &namespace).await? {
        if let Some(table) = out.tables.get_mut(&text(&row, 0)) {
            table.constraints.insert(text(&row, 1), text(&row, 2));
        }
    }
    for row in rows(&mut conn, TABLES, &namespace).await? {
        let Some(table) = out.tables.get_mut(&text(&row, 0)) else {
            continue;
        };
        let properties = [
            "partition key",
            "parent",
            "partition bound",
            "comment",
            "persistence",
            "row level security",
            "storage options",
            "replica identity",
        ];
        for (i, property) in properties.iter().enumerate() {
            if let Some(value) = row.get(i + 1).cloned().flatten() {
                table.properties.insert((*property).to_string(), value);
            }
        }
    }
    for row in rows(&mut conn, MATERIALIZED_VIEWS, &namespace).await? {
        out.materialized_views
            .insert(text(&row, 0), normalize_sql(&text(&row, 1)));
    }
    for row in rows(&mut conn, INDEXES, &namespace).await? {
        let (on, name) = (text(&row, 0), text(&row, 1));
        if let Some(table) = out.tables.get_mut(&on) {
            table.indexes.insert(name, unqualified(text(&row, 2)));
        } else if out.materialized_views.contains_key(&on) {
            out.materialized_views
                .insert(format!("{on}.{name}"), unqualified(text(&row, 2)));
        }
    }
    // `pg_get_function_sqlbody` (a SQL-standard body) is PostgreSQL 14's; before it, the
    // source text is all there is.
    let routines = match conn.server_version_num() {
        Some(version) if version < 140_000 => std::borrow::Cow::Owned(ROUTINES.replace(
            "coalesce(pg_get_function_sqlbody(p.oid), p.prosrc)",
            "p.prosrc",
        )),
        _ => std::borrow::Cow::Borrowed(ROUTINES),
    };
    for row in rows(&mut conn, &routines, &namespace).await? {
        out.routines.insert(text(&row, 0), text(&row, 1));
    }
    for row in rows(&mut conn, TYPES, &namespace).await? {
        out.types.insert(text(&row, 0), text(&row, 1));
    }
    for row in rows(&mut conn, OTHER, &namespace).await? {
        out.other
            .insert(text(&row, 0), normalize_sql(&text(&row, 1)));
    }
    for row in rows(&mut conn, VIEWS, &namespace).await? {
        out.views
            .insert(text(&row, 0), normalize_sql(&text(&row, 1)));
    }
    for row in rows(&mut conn, SEQUENCES, &namespace).await? {
        let owner: Option<String> = row.first().cloned().flatten();
        let name = text(&row, 1);
        if is_tracking(&name, tracking_table)
            || owner
                .as_deref()
                .is_some_and(|t| is_tracking(t, tracking_table))
        {
            continue;
        }
        // A sequence a table owns is named with it (`session.session_id_seq`), as its
        // triggers, policies and rules are: `DriftCheck::ignore_table` leaves them out with it.
        let key = match owner {
            Some(table) => format!("{table}.{name}"),
            None => name,
        };
        out.sequences.insert(key, text(&row, 2));
    }
    for row in rows(&mut conn, ENUMS, &namespace).await? {
        out.enums
            .entry(text(&row, 0))
            .or_default()
            .push(text(&row, 1));
    }
    for row in rows(&mut conn, TRIGGERS, &namespace).await? {
        if !is_tracking(&text(&row, 0), tracking_table) {
            out.triggers.insert(
                format!("{}.{}", text(&row, 0), text(&row, 1)),
                normalize_sql(&unqualified(text(&row, 2))),
            );
        }
    }
    conn.close().await?;
    Ok(out)
}
