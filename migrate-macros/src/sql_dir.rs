//! Expansion of `sql_dir!(table = "...", dir = "...")`: every `.sql` file of a directory becomes
//! a step of one table's version line, checked like a `#[migration]` function. The directory's
//! steps are registered together: one `inventory` entry holding an array of them, run by one
//! generic shim per kind (up, down, fresh) that indexes a table of their statements.
//!
//! Every mistake in the directory is a compile error that names the file: a name that matches
//! no pattern, a gap in a numbered sequence, two files with one version, a down without its up,
//! a file that is not UTF-8, an unknown `{{...}}` template, a file that opens or closes a
//! transaction itself, and (with `down = "required"`) an up without its down. A version that a
//! `#[migration]` function of the same table also declares conflicts in the trait checks, whose
//! message names the file.

use crate::args::{
    check_tracked_name, parse_crate_path, parse_key, parse_version, CratePath, Errors, VersionArg,
};
use crate::checksum;
use crate::register::{register_group, words, Action, Declaration, Step};
use crate::sql_names::{self, Parsed, Style};
use crate::sql_text;
use proc_macro2::{Span, TokenStream};
use quote::quote;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use syn::parse::{Parse, ParseStream};
use syn::{Ident, LitStr, Token};

/// The macro's arguments.
struct Args {
    table: LitStr,
    dir: LitStr,
    parent: Option<VersionArg>,
    down_required: bool,
    krate: Option<CratePath>,
}

impl Parse for Args {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let mut table = None;
        let mut dir = None;
        let mut parent = None;
        let mut down_required = false;
        let mut krate = None;
        let mut errors = Errors::default();
        let mut seen: Vec<String> = Vec::new();
        while !input.is_empty() {
            let parsed = parse_key(input).and_then(|key| {
                input.parse::<Token![=]>()?;
                Ok((key, input.parse::<LitStr>()?))
            });
            let (key, value) = match parsed {
                Ok(pair) => pair,
                Err(err) => return Err(std::mem::take(&mut errors).and(err)),
            };
            let name = key.to_string();
            if seen.contains(&name) {
                errors.add(key.span(), format!("`{name}` is given twice"));
            }
            seen.push(name.clone());
            match name.as_str() {
                "table" => match check_tracked_name(&value, "table") {
                    Ok(()) => table = Some(value),
                    Err(e) => errors.push(e),
                },
                "dir" => {
                    if value.value().trim().is_empty() {
                        errors.add(
                            value.span(),
                            "`dir` is empty: name the directory of the SQL files, relative to \
                             the crate's Cargo.toml",
                        );
                    }
                    dir = Some(value);
                }
                "parent" => match parse_version(&value, "parent") {
                    Ok(v) => parent = Some(v),
                    Err(e) => errors.push(e),
                },
                "down" => match value.value().as_str() {
                    "required" => down_required = true,
                    "optional" => down_required = false,
                    other => errors.add(
                        value.span(),
                        format!("`down` is \"required\" or \"optional\", not \"{other}\""),
                    ),
                },
                "crate" => match parse_crate_path(&value) {
                    Ok(path) => krate = Some(path),
                    Err(e) => errors.push(e),
                },
                _ => errors.add(
                    key.span(),
                    format!("unknown key `{name}` in sql_dir!; expected table, dir, parent, down or crate"),
                ),
            }
            if !input.is_empty() {
                if let Err(err) = input.parse::<Token![,]>() {
                    return Err(std::mem::take(&mut errors).and(err));
                }
            }
        }
        if table.is_none() && !seen.iter().any(|k| k == "table") {
            errors.add(
                Span::call_site(),
                "missing `table = \"...\"`: the table the files migrate",
            );
        }
        if dir.is_none() {
            errors.add(
                Span::call_site(),
                "missing `dir = \"...\"`: the directory of the files, relative to the crate root",
            );
        }
        errors.finish()?;
        match (table, dir) {
            (Some(table), Some(dir)) => Ok(Args {
                table,
                dir,
                parent,
                down_required,
                krate,
            }),
            _ => Err(syn::Error::new(
                Span::call_site(),
                "invalid sql_dir! arguments",
            )),
        }
    }
}

/// One up file, with its down if there is one.
struct SqlStep {
    parsed: Parsed,
    /// The path as the errors and the history show it: `dir/file`.
    shown: String,
    path: PathBuf,
    sql: String,
    down: Option<(PathBuf, String)>,
    /// `<stem>.fresh.sql`.
    fresh: Option<(PathBuf, String)>,
}

/// Expands the macro. `invoking_dir` is the directory of the file that invokes it, where `dir`
/// is looked for when the crate root has no such directory.
pub(crate) fn expand(input: TokenStream, invoking_dir: Option<&Path>) -> TokenStream {
    match syn::parse2::<Args>(input).and_then(|args| generate(&args, invoking_dir)) {
        Ok(tokens) => tokens,
        Err(err) => err.into_compile_error(),
    }
}

fn resolve_dir(dir: &str, invoking_dir: Option<&Path>) -> Option<PathBuf> {
    let from_root =
        std::env::var_os("CARGO_MANIFEST_DIR").map(|root| PathBuf::from(root).join(dir));
    // Made absolute against the compiler's working directory, which a relative path from the
    // compiler is relative to (cargo names a workspace member's files from the workspace
    // root): the `include_str!` paths written from it would otherwise be resolved again, from
    // the invoking file's directory, and not found.
    let from_file = invoking_dir.map(|d| {
        std::path::absolute(d)
            .unwrap_or_else(|_| d.to_path_buf())
            .join(dir)
    });
    from_root.into_iter().chain(from_file).find(|p| p.is_dir())
}

fn generate(args: &Args, invoking_dir: Option<&Path>) -> syn::Result<TokenStream> {
    let span = args.dir.span();
    let dir_text = args.dir.value();
    let dir = resolve_dir(&dir_text, invoking_dir).ok_or_else(|| {
        syn::Error::new(
            span,
            format!("sql_dir!: `{dir_text}` is not a directory (relative to the crate root, or to this file)"),
        )
    })?;
    let steps = read_steps(&dir, &dir_text, args, span)?;
    if let (Some(parent), Some(first)) = (&args.parent, steps.first()) {
        // As `#[migration]` checks its own parent: a step is above the step it continues.
        if first.parsed.version <= parent.version {
            return Err(syn::Error::new(
                parent.lit.span(),
                format!(
                    "sql_dir!: the first file, `{}` ({}), is not above its parent {}",
                    first.shown, first.parsed.version, parent.version
                ),
            ));
        }
    }
    let table = args.table.value();
    // The first file continues the macro's own `parent` (errors about it point at that literal);
    // each later file continues the one before it.
    let mut parent = args.parent.as_ref().map(|p| (&p.version, p.lit.span()));
    let mut registered = Vec::with_capacity(steps.len());
    let mut shims = SharedShims::default();
    for step in &steps {
        registered.push(step_of(args, &table, step, parent, &mut shims));
        parent = Some((&step.parsed.version, args.dir.span()));
    }
    // The directory's steps are registered together: one `inventory` entry for all of them.
    let private = CratePath::private(args.krate.as_ref(), Span::call_site());
    Ok(register_group(&registered, shims.items(&private), &private))
}

/// The statements of a directory's ups, downs and fresh files, each kind in a table that one
/// generic shim indexes: `__migrate_up::<3>` runs the fourth up's statements. One function to
/// type-check per kind instead of one per file (BENCHMARKS.md, "Compile time").
#[derive(Default)]
struct SharedShims {
    /// Per kind, in [`Kind`]'s order: the statements expressions (`&[&str]`) of its files.
    tables: [Vec<TokenStream>; 3],
}

/// What a file is to its step.
#[derive(Clone, Copy)]
enum Kind {
    Up,
    Down,
    Fresh,
}

impl Kind {
    const ALL: [Kind; 3] = [Kind::Up, Kind::Down, Kind::Fresh];

    /// The shim's name and its table's.
    fn names(self) -> (Ident, Ident) {
        let kind = match self {
            Kind::Up => "up",
            Kind::Down => "down",
            Kind::Fresh => "fresh",
        };
        let at = Span::call_site();
        (
            Ident::new(&format!("__migrate_{kind}"), at),
            Ident::new(&format!("__MIGRATE_{}", kind.to_uppercase()), at),
        )
    }
}

impl SharedShims {
    /// Adds `statements` to `kind`'s table, returning the shim's instance that runs them.
    fn add(&mut self, kind: Kind, statements: TokenStream) -> Action {
        let table = &mut self.tables[kind as usize];
        let index = table.len();
        table.push(statements);
        let (shim, _) = kind.names();
        Action::Function(quote!(#shim::<#index>))
    }

    /// The shims and their tables, for the kinds that have statements.
    fn items(&self, private: &TokenStream) -> TokenStream {
        let mut out = TokenStream::new();
        for (kind, statements) in Kind::ALL.into_iter().zip(&self.tables) {
            if statements.is_empty() {
                continue;
            }
            let (shim, table) = kind.names();
            let count = statements.len();
            out.extend(quote! {
                static #table: [&[&str]; #count] = [#(#statements),*];
                fn #shim<'a, 'b, const I: usize>(
                    db: &'a mut #private::Conn<'b>,
                ) -> #private::MigrationFuture<'a> {
                    #private::run_sql(db, #table[I])
                }
            });
        }
        out
    }
}

/// Reads and checks every file, returning the up steps in version order.
fn read_steps(dir: &Path, dir_text: &str, args: &Args, span: Span) -> syn::Result<Vec<SqlStep>> {
    let mut errors = Errors::default();
    let entries = std::fs::read_dir(dir)
        .map_err(|e| syn::Error::new(span, format!("sql_dir!: cannot read `{dir_text}`: {e}")))?;
    let shown = |name: &str| format!("{}/{name}", dir_text.trim_end_matches('/'));
    let mut names: Vec<String> = Vec::new();
    for entry in entries {
        // An entry left out silently would be a step that never runs (and, as the newest,
        // leaves no gap): every `.sql` name is a file this reads, or an error.
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) => {
                errors.add(span, format!("sql_dir!: cannot read `{dir_text}`: {e}"));
                continue;
            }
        };
        let file_name = entry.file_name();
        let lossy = file_name.to_string_lossy();
        if lossy.starts_with('.') || !lossy.to_ascii_lowercase().ends_with(".sql") {
            continue;
        }
        let Some(name) = file_name.to_str() else {
            errors.add(
                span,
                format!(
                    "sql_dir!: `{}`: the file name is not UTF-8; rename it",
                    shown(&lossy)
                ),
            );
            continue;
        };
        if !entry.path().is_file() {
            errors.add(
                span,
                format!(
                    "sql_dir!: `{}` is not a file that can be read (a directory, or a link to \
                     nothing); rename or remove it",
                    shown(name)
                ),
            );
            continue;
        }
        names.push(name.to_string());
    }
    names.sort();
    names.retain(|name| {
        let lower_case = name.ends_with(".sql");
        if !lower_case {
            // Left out silently, the step would never run (and, as the newest, leave no gap).
            errors.add(
                span,
                format!(
                    "sql_dir!: `{}` ends in another case than `.sql`, which is what is read; rename it",
                    shown(name)
                ),
            );
        }
        lower_case
    });
    let mut ups: BTreeMap<semver::Version, SqlStep> = BTreeMap::new();
    let mut downs: Vec<(Parsed, String, PathBuf, String)> = Vec::new();
    for name in &names {
        let parsed = match sql_names::parse(name) {
            Ok(parsed) => parsed,
            Err(why) => {
                errors.add(
                    span,
                    format!(
                        "sql_dir!: `{}` matches no file-name pattern: {why}",
                        shown(name)
                    ),
                );
                continue;
            }
        };
        let path = dir.join(name);
        let sql = match std::fs::read(&path).map(String::from_utf8) {
            Ok(Ok(sql)) => sql,
            Ok(Err(_)) => {
                errors.add(
                    span,
                    format!("sql_dir!: `{}` is not UTF-8 text", shown(name)),
                );
                continue;
            }
            Err(e) => {
                errors.add(
                    span,
                    format!("sql_dir!: cannot read `{}`: {e}", shown(name)),
                );
                continue;
            }
        };
        if sql.starts_with('\u{feff}') {
            errors.add(
                span,
                format!("sql_dir!: `{}` starts with a byte-order mark (U+FEFF), which a server reads as part of the first statement; save it as UTF-8 without one", shown(name)),
            );
            continue;
        }
        for problem in sql_text::problems(&shown(name), &sql, parsed.fresh) {
            errors.add(span, format!("sql_dir!: {problem}"));
        }
        if parsed.down || parsed.fresh {
            downs.push((parsed, name.clone(), path, sql));
            continue;
        }
        if let Some(first) = ups.get(&parsed.version) {
            errors.add(
                span,
                format!(
                    "sql_dir!: `{}` and `{}` both declare version {} of table `{}`",
                    first.shown,
                    shown(name),
                    parsed.version,
                    args.table.value()
                ),
            );
            continue;
        }
        ups.insert(
            parsed.version.clone(),
            SqlStep {
                shown: shown(name),
                path,
                sql,
                down: None,
                fresh: None,
                parsed,
            },
        );
    }
    for (parsed, name, path, sql) in downs {
        let up = ups.values_mut().find(|up| up.parsed.stem == parsed.stem);
        let what = if parsed.fresh {
            "fresh install"
        } else {
            "down"
        };
        match up {
            Some(up) if parsed.fresh => up.fresh = Some((path, sql)),
            Some(up) => up.down = Some((path, sql)),
            None => errors.add(
                span,
                format!(
                    "sql_dir!: `{}` is a {what} without its up: there is no `{}.sql`",
                    shown(&name),
                    parsed.stem
                ),
            ),
        }
    }
    check_gaps(&ups, &mut errors, span);
    if args.down_required {
        for up in ups.values().filter(|up| up.down.is_none()) {
            errors.add(
                span,
                format!("sql_dir!: `{}` has no down, and this directory says down = \"required\": add `{}.down.sql`", up.shown, up.parsed.stem),
            );
        }
    }
    if ups.is_empty() && errors.is_empty() {
        errors.add(span, format!("sql_dir!: `{dir_text}` holds no `.sql` file"));
    }
    errors.finish()?;
    Ok(ups.into_values().collect())
}

/// Numbered files must follow each other without a gap: `001`, `002`, `004` is missing `003`.
fn check_gaps(ups: &BTreeMap<semver::Version, SqlStep>, errors: &mut Errors, span: Span) {
    let numbered: Vec<(&SqlStep, usize)> = ups
        .values()
        .filter_map(|s| match s.parsed.style {
            Style::Numbered { width } => Some((s, width)),
            _ => None,
        })
        .collect();
    for pair in numbered.windows(2) {
        let ((before, _), (after, width)) = (pair[0], pair[1]);
        let (a, b) = (before.parsed.version.major, after.parsed.version.major);
        if b != a + 1 {
            errors.add(
                span,
                format!(
                    "sql_dir!: a gap in the numbered files: `{}` follows `{}`, so {:0width$} is missing",
                    after.shown,
                    before.shown,
                    a + 1
                ),
            );
        }
    }
}

/// The statements a shim runs: the whole file at once, or one by one outside a transaction (a
/// file of nothing but comments runs nothing).
fn statements_expr(path: &Path, sql: &str, split: bool) -> TokenStream {
    let path = path.to_string_lossy().into_owned();
    let statements = sql_text::statements(sql);
    if split || statements.is_empty() {
        // The file is still included, so that editing it rebuilds the crate.
        quote!({
            const _: &str = ::core::include_str!(#path);
            &[#(#statements),*]
        })
    } else {
        quote!(&[::core::include_str!(#path)])
    }
}

/// The step a file declares, its statements added to the directory's `shims`.
fn step_of<'a>(
    args: &'a Args,
    table: &'a str,
    step: &'a SqlStep,
    parent: Option<(&'a semver::Version, Span)>,
    shims: &mut SharedShims,
) -> Step<'a> {
    let span = args.dir.span();
    let krate = args.krate.as_ref();
    // One mode per step, which its fresh install runs with too: a marker on its up or down.
    let no_transaction = sql_text::no_transaction(&step.sql)
        || step
            .down
            .as_ref()
            .is_some_and(|(_, sql)| sql_text::no_transaction(sql));
    let up_statements = statements_expr(&step.path, &step.sql, no_transaction);
    let up = shims.add(Kind::Up, up_statements);
    let down = step
        .down
        .as_ref()
        .map(|(path, sql)| shims.add(Kind::Down, statements_expr(path, sql, no_transaction)));
    let fresh = step.fresh.as_ref().map(|(path, sql)| {
        let statements = statements_expr(path, sql, no_transaction);
        (
            shims.add(Kind::Fresh, statements),
            format!("{}.fresh", step.parsed.stem),
        )
    });
    let up_text = step.path.to_string_lossy().into_owned();
    let down_text = step.down.as_ref().map(|(path, _)| {
        let path = path.to_string_lossy().into_owned();
        quote!(::core::include_str!(#path))
    });
    let file_words: Vec<String> = words(&step.shown)
        .split('_')
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect();
    let file_type = Ident::new(&format!("sql_file_{}", file_words.join("_")), span);
    let shown = &step.shown;
    Step {
        krate,
        table,
        table_span: args.table.span(),
        version: &step.parsed.version,
        version_span: span,
        parent,
        after: None,
        declaration: Declaration::SqlFile(file_type),
        name: &step.parsed.stem,
        transaction: !no_transaction,
        resumable: false,
        up,
        down,
        fresh,
        checksum: checksum::sql_step(&step.sql, step.down.as_ref().map(|(_, sql)| sql.as_str())),
        sql: Some((quote!(::core::include_str!(#up_text)), down_text)),
        file: quote!(#shown),
        line: quote!(1u32),
    }
}

#[cfg(test)]
mod tests {
    use crate::test_support::{compile_errors, only_block};
    use quote::{quote, ToTokens};
    use std::path::PathBuf;

    /// A directory of its own under the system's temporary one, holding `files`; the macro
    /// finds it by [`dir_name`], relative to the invoking file's directory (the temporary one).
    fn directory(name: &str, files: &[(&str, &str)]) -> PathBuf {
        let dir = std::env::temp_dir().join(dir_name(name));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create the directory");
        for (file, sql) in files {
            std::fs::write(dir.join(file), sql).expect("write a file");
        }
        dir
    }

    fn dir_name(name: &str) -> String {
        format!("migrate-sql-dir-{}-{name}", std::process::id())
    }

    /// Expands `sql_dir!` over the directory made by [`directory`].
    fn expand(name: &str) -> proc_macro2::TokenStream {
        let dir = dir_name(name);
        super::expand(quote!(table = "t", dir = #dir), Some(&std::env::temp_dir()))
    }

    /// The elements of the group's array of migrations, as text.
    fn group_elements(out: &proc_macro2::TokenStream) -> Vec<String> {
        only_block(out)
            .iter()
            .find_map(|stmt| match stmt {
                syn::Stmt::Item(syn::Item::Static(s)) if s.ident == "__MIGRATE_GROUP" => {
                    match &*s.expr {
                        syn::Expr::Array(array) => Some(
                            array
                                .elems
                                .iter()
                                .map(|e| e.to_token_stream().to_string())
                                .collect(),
                        ),
                        _ => None,
                    }
                }
                _ => None,
            })
            .unwrap_or_else(|| panic!("the group's array: {out}"))
    }

    #[test]
    fn each_kind_of_file_is_numbered_in_its_own_table() {
        // The first file has no down, so the second's down is the first in the downs' table.
        let dir = directory(
            "kinds",
            &[
                ("001_create.sql", "CREATE TABLE t (id INT)"),
                ("002_add.sql", "ALTER TABLE t ADD COLUMN a INT"),
                ("002_add.down.sql", "ALTER TABLE t DROP COLUMN a"),
                ("002_add.fresh.sql", "CREATE TABLE t (id INT, a INT)"),
            ],
        );
        let out = expand("kinds");
        assert!(compile_errors(&out).is_empty(), "{out}");
        let elements = group_elements(&out);
        assert_eq!(elements.len(), 2, "{elements:#?}");
        for (index, expected) in [
            (0, "__migrate_up :: < 0usize >"),
            (0, "Reversal :: Irreversible"),
            (1, "__migrate_up :: < 1usize >"),
            (1, "Down (__migrate_down :: < 0usize >)"),
            (1, "__with_fresh (__migrate_fresh :: < 0usize >"),
        ] {
            let element = &elements[index];
            assert!(element.contains(expected), "{expected} in {element}");
        }
        let text = out.to_string();
        for table in [
            "static __MIGRATE_UP : [& [& str] ; 2usize]",
            "static __MIGRATE_DOWN : [& [& str] ; 1usize]",
            "static __MIGRATE_FRESH : [& [& str] ; 1usize]",
        ] {
            assert!(text.contains(table), "{table} in {text}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn files_whose_names_read_alike_declare_their_types_in_blocks_apart() {
        // `1.0.0-1_x` and `1.0.0_1_x` are two versions, and the same words.
        let dir = directory(
            "alike",
            &[
                ("1.0.0-1_x.sql", "CREATE TABLE t (id INT)"),
                ("1.0.0_1_x.sql", "ALTER TABLE t ADD COLUMN a INT"),
            ],
        );
        let out = expand("alike");
        assert!(compile_errors(&out).is_empty(), "{out}");
        // No struct at the group's level: each step's are inside its own block.
        let structs_at_group_level = only_block(&out)
            .iter()
            .filter(|s| matches!(s, syn::Stmt::Item(syn::Item::Struct(_))))
            .count();
        assert_eq!(structs_at_group_level, 0, "{out}");
        let text = out.to_string();
        assert_eq!(text.matches("struct sql_file_").count(), 2, "{text}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
