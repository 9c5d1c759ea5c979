//! Parsing of `#[migration(...)]` arguments, with every error spanned and combined.

use proc_macro2::{Span, TokenStream};
use quote::ToTokens;
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Expr, ExprLit, Lit, LitBool, LitStr, Meta, Path, Token};

/// The keys `#[migration]` accepts, listed in errors.
pub(crate) const KEYS: &str =
    "table, version, parent, down, irreversible, transaction, resumable, after, name, fresh, crate";

/// A semver version with the literal it came from.
pub(crate) struct VersionArg {
    pub(crate) version: semver::Version,
    pub(crate) lit: LitStr,
}

/// `after = "table@X.Y.Z"`.
pub(crate) struct AfterArg {
    pub(crate) table: String,
    pub(crate) version: semver::Version,
    pub(crate) lit: LitStr,
}

/// How the migration is undone.
pub(crate) enum DownArg {
    Path(Path),
    Irreversible,
}

/// The parsed arguments.
pub(crate) struct MigrationArgs {
    pub(crate) table: LitStr,
    pub(crate) version: VersionArg,
    pub(crate) parent: Option<VersionArg>,
    pub(crate) down: DownArg,
    pub(crate) transaction: bool,
    /// `resumable`: a journalled step that may simply run again after it was cut off.
    pub(crate) resumable: bool,
    pub(crate) after: Option<AfterArg>,
    pub(crate) name: Option<LitStr>,
    /// `fresh = path`: the function that creates the table directly at this version.
    pub(crate) fresh: Option<Path>,
    /// `crate = "path"`: where the `migrate` facade is, for hosts that rename or re-export it.
    pub(crate) krate: Option<CratePath>,
}

/// The path of the `migrate` facade, with the literal it was given in.
pub(crate) struct CratePath {
    pub(crate) path: Path,
}

impl CratePath {
    /// The facade's path as tokens, every token spanned at `span`, so that errors in generated
    /// items still point where the item's check belongs.
    pub(crate) fn at(krate: Option<&CratePath>, span: Span) -> TokenStream {
        let tokens = match krate {
            Some(k) => k.path.to_token_stream(),
            None => quote::quote!(::migrate),
        };
        respan(tokens, span)
    }

    /// The path of the facade's hidden `__private` module, spanned at `span`.
    pub(crate) fn private(krate: Option<&CratePath>, span: Span) -> TokenStream {
        let path = CratePath::at(krate, span);
        quote::quote_spanned!(span=> #path::__private)
    }
}

fn respan(tokens: TokenStream, span: Span) -> TokenStream {
    tokens
        .into_iter()
        .map(|mut token| {
            if let proc_macro2::TokenTree::Group(group) = &token {
                let mut inner =
                    proc_macro2::Group::new(group.delimiter(), respan(group.stream(), span));
                inner.set_span(span);
                token = proc_macro2::TokenTree::Group(inner);
            } else {
                token.set_span(span);
            }
            token
        })
        .collect()
}

/// The key of a `key = value` argument of the function-like macros; `crate`, a keyword, is
/// accepted as a key too.
pub(crate) fn parse_key(input: syn::parse::ParseStream<'_>) -> syn::Result<syn::Ident> {
    if input.peek(Token![crate]) {
        let token: Token![crate] = input.parse()?;
        Ok(syn::Ident::new("crate", token.span))
    } else {
        input.parse()
    }
}

/// Parses `crate = "path"`.
pub(crate) fn parse_crate_path(lit: &LitStr) -> syn::Result<CratePath> {
    let path: Path = lit.parse().map_err(|_| {
        syn::Error::new(
            lit.span(),
            format!(
                "`crate` takes the path of the migrate facade, like crate = \"my_migrate\" or crate = \"::app::migrate\"; `{}` is not a path",
                lit.value()
            ),
        )
    })?;
    Ok(CratePath { path })
}

/// Accumulates errors the way serde's `Ctxt` does, so one build reports all of them.
#[derive(Default)]
pub(crate) struct Errors(Option<syn::Error>);

impl Errors {
    pub(crate) fn push(&mut self, err: syn::Error) {
        match &mut self.0 {
            Some(existing) => existing.combine(err),
            None => self.0 = Some(err),
        }
    }

    pub(crate) fn add(&mut self, span: Span, message: impl std::fmt::Display) {
        self.push(syn::Error::new(span, message));
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    pub(crate) fn finish(self) -> syn::Result<()> {
        self.0.map_or(Ok(()), Err)
    }

    /// The errors so far and `err`, where parsing cannot go on: what was found before the
    /// input stopped parsing is reported with it, not lost.
    pub(crate) fn and(self, err: syn::Error) -> syn::Error {
        match self.0 {
            Some(mut found) => {
                found.combine(err);
                found
            }
            None => err,
        }
    }
}

/// The most characters of a module or table name the tracking tables keep (MySQL's
/// `VARCHAR(191)`); `migrate_core::dialect::MAX_TRACKED_NAME_CHARS` at run time.
pub(crate) const MAX_TRACKED_NAME_CHARS: usize = 191;

/// A `module` or `table` name the tracking tables keep exactly: not blank, no whitespace around
/// it (MySQL's collation ignores trailing spaces), no NUL, at most [`MAX_TRACKED_NAME_CHARS`]
/// characters. The error points at the literal.
pub(crate) fn check_tracked_name(lit: &LitStr, what: &str) -> syn::Result<()> {
    let name = lit.value();
    let chars = name.chars().count();
    let why = if name.trim().is_empty() {
        "must not be empty".to_string()
    } else if name.trim() != name {
        "must not start or end with whitespace".to_string()
    } else if name.contains('\0') {
        "must not contain NUL".to_string()
    } else if chars > MAX_TRACKED_NAME_CHARS {
        format!("is {chars} characters long; the tracking tables keep {MAX_TRACKED_NAME_CHARS}")
    } else {
        return Ok(());
    };
    Err(syn::Error::new(lit.span(), format!("`{what}` {why}")))
}

/// Parses `text` as semver, reporting a spanned error.
pub(crate) fn parse_version(lit: &LitStr, what: &str) -> syn::Result<VersionArg> {
    let text = lit.value();
    if text.chars().count() > MAX_TRACKED_NAME_CHARS {
        return Err(syn::Error::new(
            lit.span(),
            format!("{what} is longer than the {MAX_TRACKED_NAME_CHARS} characters the tracking tables keep"),
        ));
    }
    semver::Version::parse(&text)
        .map(|version| VersionArg {
            version,
            lit: lit.clone(),
        })
        .map_err(|e| {
            syn::Error::new(
                lit.span(),
                format!("{what} `{text}` is not a semver version (expected MAJOR.MINOR.PATCH, like \"2.3.0\"): {e}"),
            )
        })
}

/// `expr` without the invisible groups `macro_rules!` wraps around `$x:literal` and `$x:expr`
/// fragments, so that migrations generated by a declarative macro parse like written ones.
fn ungrouped(mut expr: &Expr) -> &Expr {
    while let Expr::Group(group) = expr {
        expr = &group.expr;
    }
    expr
}

fn string(expr: &Expr, key: &str) -> syn::Result<LitStr> {
    match ungrouped(expr) {
        Expr::Lit(ExprLit {
            lit: Lit::Str(s), ..
        }) => Ok(s.clone()),
        other => Err(syn::Error::new(
            other.span(),
            format!("`{key}` takes a string literal, like {key} = \"...\""),
        )),
    }
}

fn boolean(expr: &Expr, key: &str) -> syn::Result<LitBool> {
    match ungrouped(expr) {
        Expr::Lit(ExprLit {
            lit: Lit::Bool(b), ..
        }) => Ok(b.clone()),
        other => Err(syn::Error::new(
            other.span(),
            format!("`{key}` takes `true` or `false`"),
        )),
    }
}

fn path(expr: &Expr, key: &str) -> syn::Result<Path> {
    match ungrouped(expr) {
        Expr::Path(p) if p.qself.is_none() => Ok(p.path.clone()),
        other => Err(syn::Error::new(
            other.span(),
            format!("`{key}` takes the path of the function that reverts this migration, like {key} = revert_it"),
        )),
    }
}

/// Parses the attribute's arguments, collecting every error.
pub(crate) fn parse(attr: TokenStream, attr_span: Span) -> syn::Result<MigrationArgs> {
    let metas = Punctuated::<Meta, Token![,]>::parse_terminated.parse2(attr)?;
    let mut errors = Errors::default();
    let mut seen: Vec<(String, Span)> = Vec::new();
    let mut table = None;
    let mut version = None;
    let mut parent = None;
    let mut down = None;
    let mut irreversible = None;
    let mut transaction = None;
    let mut resumable = None;
    let mut after = None;
    let mut name = None;
    let mut fresh = None;
    let mut krate = None;

    for meta in &metas {
        let key = meta
            .path()
            .get_ident()
            .map(ToString::to_string)
            .unwrap_or_default();
        // A path that is not one identifier (`a::b`) is an unknown key, told apart from
        // another by its text: two of them are each named, not taken for one key given twice.
        let written = if key.is_empty() {
            meta.path().to_token_stream().to_string()
        } else {
            key.clone()
        };
        if let Some((_, first)) = seen.iter().find(|(k, _)| *k == written) {
            let mut err =
                syn::Error::new(meta.path().span(), format!("`{written}` is given twice"));
            err.combine(syn::Error::new(
                *first,
                format!("`{written}` first given here"),
            ));
            errors.push(err);
            continue;
        }
        seen.push((written, meta.path().span()));
        let result: syn::Result<()> = (|| {
            match (key.as_str(), meta) {
                ("irreversible", Meta::Path(p)) => irreversible = Some(p.span()),
                ("resumable", Meta::Path(p)) => resumable = Some(p.span()),
                ("resumable", other) => {
                    return Err(syn::Error::new(other.span(), "`resumable` takes no value"))
                }
                ("irreversible", other) => {
                    return Err(syn::Error::new(
                        other.span(),
                        "`irreversible` takes no value",
                    ))
                }
                (_, Meta::NameValue(nv)) => match key.as_str() {
                    "table" => {
                        let lit = string(&nv.value, "table")?;
                        check_tracked_name(&lit, "table")?;
                        table = Some(lit);
                    }
                    "version" => {
                        version = Some(parse_version(&string(&nv.value, "version")?, "version")?)
                    }
                    "parent" => {
                        parent = Some(parse_version(&string(&nv.value, "parent")?, "parent")?)
                    }
                    "down" => down = Some(path(&nv.value, "down")?),
                    "fresh" => fresh = Some(path(&nv.value, "fresh")?),
                    "transaction" => transaction = Some(boolean(&nv.value, "transaction")?.value),
                    "after" => after = Some(parse_after(&string(&nv.value, "after")?)?),
                    "name" => {
                        let lit = string(&nv.value, "name")?;
                        if lit.value().trim().is_empty() {
                            return Err(syn::Error::new(lit.span(), "`name` must not be empty"));
                        }
                        if lit.value().contains('\0') {
                            return Err(syn::Error::new(lit.span(), "`name` must not contain NUL"));
                        }
                        name = Some(lit);
                    }
                    "crate" => krate = Some(parse_crate_path(&string(&nv.value, "crate")?)?),
                    _ => return Err(unknown_key(meta)),
                },
                (
                    "table" | "version" | "parent" | "down" | "transaction" | "after" | "name"
                    | "fresh" | "crate",
                    other,
                ) => {
                    return Err(syn::Error::new(
                        other.span(),
                        format!("`{key}` needs a value: {key} = ..."),
                    ))
                }
                _ => return Err(unknown_key(meta)),
            }
            Ok(())
        })();
        if let Err(e) = result {
            errors.push(e);
        }
    }

    if table.is_none() && !seen.iter().any(|(k, _)| k == "table") {
        errors.add(
            attr_span,
            "missing `table = \"...\"`: the table whose version line this migration extends",
        );
    }
    if version.is_none() && !seen.iter().any(|(k, _)| k == "version") {
        errors.add(
            attr_span,
            "missing `version = \"X.Y.Z\"`: the version this migration brings its table to",
        );
    }
    if let (Some(v), Some(p)) = (&version, &parent) {
        if v.version <= p.version {
            errors.add(
                v.lit.span(),
                format!(
                    "version {} is not greater than its parent {}",
                    v.version, p.version
                ),
            );
        }
    }
    let down = match (down, irreversible) {
        (Some(path), None) => Some(DownArg::Path(path)),
        (None, Some(_)) => Some(DownArg::Irreversible),
        (Some(path), Some(span)) => {
            let mut err = syn::Error::new(
                span,
                "give either `down = path` or `irreversible`, not both",
            );
            err.combine(syn::Error::new(path.span(), "`down` given here"));
            errors.push(err);
            None
        }
        (None, None) => {
            if !seen.iter().any(|(k, _)| k == "down") {
                errors.add(attr_span, "missing `down = path_to_revert_fn`, or `irreversible` to declare on purpose that this migration has no down");
            }
            None
        }
    };
    if let Some(span) = resumable {
        if transaction != Some(false) {
            errors.add(
                span,
                "`resumable` is for `transaction = false` steps: a transactional step never stops half-way, so it has nothing to resume",
            );
        }
    }
    errors.finish()?;
    match (table, version, down) {
        (Some(table), Some(version), Some(down)) => Ok(MigrationArgs {
            table,
            version,
            parent,
            down,
            transaction: transaction.unwrap_or(true),
            resumable: resumable.is_some(),
            after,
            name,
            fresh,
            krate,
        }),
        _ => Err(syn::Error::new(attr_span, "invalid #[migration] arguments")),
    }
}

fn unknown_key(meta: &Meta) -> syn::Error {
    let key = meta
        .path()
        .segments
        .iter()
        .map(|s| s.ident.to_string())
        .collect::<Vec<_>>()
        .join("::");
    syn::Error::new(
        meta.path().span(),
        format!("unknown key `{key}` in #[migration]; expected one of: {KEYS}"),
    )
}

fn parse_after(lit: &LitStr) -> syn::Result<AfterArg> {
    let text = lit.value();
    let bad = |why: String| {
        syn::Error::new(
            lit.span(),
            format!("after = \"{text}\": {why}; expected \"table@X.Y.Z\""),
        )
    };
    // At the last `@`: a table name may hold one, a version never does.
    let (table, version) = text
        .rsplit_once('@')
        .ok_or_else(|| bad("missing `@`".into()))?;
    if table.trim().is_empty() {
        return Err(bad("empty table".into()));
    }
    let version = semver::Version::parse(version).map_err(|e| bad(format!("bad version: {e}")))?;
    Ok(AfterArg {
        table: table.to_string(),
        version,
        lit: lit.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proc_macro2::{Delimiter, Group, TokenTree};
    use quote::quote;

    /// `tokens` wrapped in the invisible group a `macro_rules!` fragment arrives in.
    fn invisible(tokens: TokenStream) -> TokenTree {
        TokenTree::Group(Group::new(Delimiter::None, tokens))
    }

    #[test]
    fn after_splits_at_the_last_at_sign() {
        let after = parse_after(&LitStr::new("team@eu@2.1.0", Span::call_site()))
            .expect("a table name may hold `@`");
        assert_eq!(
            (after.table.as_str(), after.version.to_string().as_str()),
            ("team@eu", "2.1.0")
        );
        assert!(parse_after(&LitStr::new("team@eu", Span::call_site())).is_err());
    }

    #[test]
    fn values_from_macro_rules_fragments_parse_like_written_ones() {
        let table = invisible(quote!("session"));
        let version = invisible(quote!("2.3.0"));
        let parent = invisible(quote!("2.0.0"));
        let down = invisible(quote!(revert));
        let transaction = invisible(quote!(false));
        let args = parse(
            quote!(table = #table, version = #version, parent = #parent, down = #down, transaction = #transaction),
            Span::call_site(),
        )
        .expect("grouped values parse");
        assert_eq!(args.table.value(), "session");
        assert!(!args.transaction && args.parent.is_some());
    }

    #[test]
    fn a_table_the_tracking_tables_cannot_keep_is_refused_at_its_literal() {
        let long = "t".repeat(MAX_TRACKED_NAME_CHARS + 1);
        for (table, why) in [
            ("a\0b", "`table` must not contain NUL"),
            (" ", "`table` must not be empty"),
            (long.as_str(), "`table` is 192 characters long"),
        ] {
            let err = parse(quote!(table = #table, version = "1.0.0"), Span::call_site())
                .err()
                .unwrap_or_else(|| panic!("{table:?} accepted"));
            assert!(err.to_string().starts_with(why), "{err}");
        }
        for (table, why) in [
            ("session ", "`table` must not start or end with whitespace"),
            (" session", "`table` must not start or end with whitespace"),
        ] {
            let err = parse(
                quote!(table = #table, version = "1.0.0", irreversible),
                Span::call_site(),
            )
            .err()
            .unwrap_or_else(|| panic!("{table:?} accepted"));
            assert_eq!(err.to_string(), why);
        }
        let long_version = format!("1.0.0-{}", "a".repeat(MAX_TRACKED_NAME_CHARS));
        let err = parse(
            quote!(table = "t", version = #long_version, irreversible),
            Span::call_site(),
        )
        .err()
        .expect("a version too long to keep");
        assert!(
            err.to_string()
                .starts_with("version is longer than the 191"),
            "{err}"
        );
        let err = parse(
            quote!(table = "t", version = "1.0.0", name = "a\0b", irreversible),
            Span::call_site(),
        )
        .err()
        .expect("a NUL in the name");
        assert_eq!(err.to_string(), "`name` must not contain NUL");
        // 191 characters, multi-byte ones included, are kept.
        let longest = "é".repeat(MAX_TRACKED_NAME_CHARS);
        let args = parse(
            quote!(table = #longest, version = "1.0.0", irreversible),
            Span::call_site(),
        )
        .expect("191 characters");
        assert_eq!(args.table.value(), longest);
    }
}
