//! Expansion of `#[migration(...)]`.
//!
//! The output is the user's function, rewritten from `async fn` into a plain `fn` that returns
//! its body's future boxed (so that the function itself is the registered `MigrationFn`), followed
//! by a `const _: () = { ... };` block holding the graph-check items (see
//! `migrate_core::__private`), the shims that box the down's and the fresh function's futures,
//! and the `inventory` registration. A body of `db.execute("...").await?;` lines is rewritten
//! into one call that runs its statements instead (`statements.rs`), with no future of its own.

use crate::args::{self, CratePath, DownArg, Errors, MigrationArgs};
use crate::checksum;
use crate::includes::{includes, Includes};
use crate::item::FnItem;
use crate::register::{register, Action, Declaration, Step};
use crate::signature::{
    boxed_function, check_signature, rewritable, statements_function, Signature,
};
use crate::source::SourceFile;
use crate::statements::only_executes;
use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned, ToTokens};
use std::path::Path;
use syn::ext::IdentExt;
use syn::spanned::Spanned;

/// Expands the attribute. On error, returns the original item together with the errors, so
/// that the rest of the crate (and rust-analyzer) still sees the function.
///
/// `file` is the file the attribute is in, when the compiler tells: the checksum then covers
/// the down function and the files the bodies include (the file is read only for those).
pub(crate) fn expand(attr: TokenStream, item: TokenStream, file: Option<&Path>) -> TokenStream {
    let attr_span = attr_span(&attr);
    match try_expand(attr, item.clone(), attr_span, file) {
        Ok(tokens) => tokens,
        Err(err) => {
            let errors = err.into_compile_error();
            quote!(#item #errors)
        }
    }
}

/// The span errors about missing keys point at: the attribute's arguments, or the call site.
fn attr_span(attr: &TokenStream) -> Span {
    let mut tokens = attr.clone().into_iter();
    match tokens.next() {
        Some(first) => {
            let start = first.span();
            tokens
                .last()
                .and_then(|l| start.join(l.span()))
                .unwrap_or(start)
        }
        None => Span::call_site(),
    }
}

fn try_expand(
    attr: TokenStream,
    item: TokenStream,
    attr_span: Span,
    file: Option<&Path>,
) -> syn::Result<TokenStream> {
    let function = FnItem::parse(item);
    let args = args::parse(attr, attr_span);
    let (function, args) = match (function, args) {
        (Ok(f), Ok(a)) => (f, a),
        (Err(mut e1), Err(e2)) => {
            e1.combine(e2);
            return Err(e1);
        }
        // The function's own mistakes are reported with the arguments': one build shows both.
        (Ok(function), Err(mut e)) => {
            if let Err(signature) = check_signature(&function) {
                e.combine(signature);
            }
            return Err(e);
        }
        (Err(e), Ok(_)) => return Err(e),
    };
    let signature = check_signature(&function)?;
    generate(&function, signature, &args, file)
}

fn generate(
    function: &FnItem,
    signature: Signature<'_>,
    args: &MigrationArgs,
    file: Option<&Path>,
) -> syn::Result<TokenStream> {
    let fn_name = &function.sig.ident;
    let krate = args.krate.as_ref();
    let private = CratePath::private(krate, Span::call_site());
    let ret_span = signature.output.span();
    // The shims' parameter, with the same hygiene where it is declared (register.rs, at the call
    // site) and where it is used here, even when the user's spans come from a macro_rules! body.
    // Located at the user's tokens, so type errors point there.
    let db = |at: Span| syn::Ident::new("db", Span::call_site().located_at(at));
    // The function is rewritten into the registered one unless something in it needs the
    // `async fn` as written; then it is kept, and a shim boxes its future.
    let rewrite = rewritable(function, signature);
    // A body of `db.execute("...").await?;` lines is rewritten into one call that runs its
    // statements (no future of its own for rustc to check), and registered as itself.
    let statements = rewrite
        .then(|| only_executes(function, signature))
        .flatten();
    let up = if rewrite {
        Action::Function(quote!(#fn_name))
    } else {
        let ty_span = signature.argument.ty.span();
        let up_db = db(ty_span);
        let up_call = quote_spanned!(ty_span=> #fn_name(#up_db));
        Action::Expression(quote_spanned!(ret_span=> #private::boxed(#up_call)))
    };
    let down = match &args.down {
        DownArg::Path(path) => {
            let down_db = db(path.span());
            Some(Action::Expression(
                quote_spanned!(path.span()=> #private::boxed(#path(#down_db))),
            ))
        }
        DownArg::Irreversible => None,
    };
    let fresh = args.fresh.as_ref().map(|path| {
        let fresh_db = db(path.span());
        let name = path
            .segments
            .last()
            .map_or_else(String::new, |s| s.ident.unraw().to_string());
        (
            Action::Expression(quote_spanned!(path.span()=> #private::boxed(#path(#fresh_db)))),
            name,
        )
    });
    let name = args
        .name
        .as_ref()
        .map_or_else(|| fn_name.unraw().to_string(), syn::LitStr::value);
    let sum = step_checksum(function, args, file)?;
    let table = args.table.value();
    let step = Step {
        krate,
        table: &table,
        table_span: args.table.span(),
        version: &args.version.version,
        version_span: args.version.lit.span(),
        parent: args.parent.as_ref().map(|p| (&p.version, p.lit.span())),
        after: args
            .after
            .as_ref()
            .map(|a| (a.table.as_str(), &a.version, a.lit.span())),
        declaration: Declaration::Function,
        name: &name,
        transaction: args.transaction,
        resumable: args.resumable,
        up,
        down,
        fresh,
        checksum: sum,
        sql: None,
        file: quote!(::core::file!()),
        line: quote_spanned!(args.table.span()=> ::core::line!()),
    };
    let registration = register(&step);
    let function = if let Some(body) = statements {
        statements_function(function, signature, &private, &body)
    } else if rewrite {
        boxed_function(function, signature, &private)
    } else {
        function.to_token_stream()
    };
    Ok(quote! {
        #function
        #registration
    })
}

/// The step's checksum: its body, its down's body when the down is in the same file (else the
/// down's path), and the files both pull in. An include whose path cannot be worked out is an
/// error at that path (at the `down` argument when it is the down's).
fn step_checksum(
    function: &FnItem,
    args: &MigrationArgs,
    file: Option<&Path>,
) -> syn::Result<String> {
    let body = function.checksum_body();
    let Includes { files, unfollowed } = includes(&body);
    let mut errors = Errors::default();
    for span in unfollowed {
        errors.add(span, UNFOLLOWED);
    }
    // The file is read (once per compilation) only for what only it holds: the down's body
    // and the files the body includes.
    let source = match (&args.down, files.is_empty()) {
        (DownArg::Path(_), _) | (_, false) => file.and_then(SourceFile::load),
        _ => None,
    };
    let source = source.as_ref();
    let mut included = Vec::new();
    let mut down_text = None;
    if let Some(source) = source {
        match source.read_included(&files) {
            Ok(read) => included = read,
            Err(why) => errors.add(function.sig.ident.span(), why),
        }
    }
    if let DownArg::Path(path) = &args.down {
        // Its body is hashed only when the path names a function of this file by its name
        // alone (`revert`, `self::revert`) and the file defines one of that name: the body of
        // a same-named function elsewhere in the file is not this down's.
        let local = path.leading_colon.is_none()
            && match path.segments.len() {
                1 => true,
                2 => path.segments[0].ident == "self",
                _ => false,
            };
        let last = path
            .segments
            .last()
            .filter(|_| local)
            .map(|s| s.ident.to_string());
        let found = source
            .zip(last)
            .and_then(|(src, name)| src.body_of(&name).map(|b| (src, b)));
        down_text = Some(match found {
            Some((source, body)) => {
                if body.unfollowed {
                    errors.add(
                        path.span(),
                        format!("in the down `{}`: {UNFOLLOWED}", path.to_token_stream()),
                    );
                }
                match source.read_included(&body.includes) {
                    Ok(read) => included.extend(read),
                    Err(why) => errors.add(
                        path.span(),
                        format!("in the down `{}`: {why}", path.to_token_stream()),
                    ),
                }
                body.canonical.clone()
            }
            None => format!("down = {}", path.to_token_stream()),
        });
    }
    errors.finish()?;
    Ok(checksum::rust_step(&body, down_text.as_deref(), &included))
}

/// Why an include's path is refused.
const UNFOLLOWED: &str = "the step's checksum cannot follow this include: write its path as a \
    string literal, `env!(\"NAME\")`, or `concat!` of those (`concat!(env!(\"CARGO_MANIFEST_DIR\"), \
    \"/sql/step.sql\")`), so that an edit to the file is an edit to the step";

#[cfg(test)]
mod tests {
    use super::*;

    use crate::test_support::expand_migration as expand;
    use crate::test_support::{compile_errors, implemented_traits, registered_call};
    use quote::quote;

    /// The checksum of `up_fn()` with `attr`, declared in a file holding `file_text`.
    fn checksum_in(attr: TokenStream, file_text: &str, n: usize) -> syn::Result<String> {
        let dir = std::env::temp_dir().join(format!("migrate-down-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let file = dir.join("steps.rs");
        std::fs::write(&file, file_text).expect("write");
        let args = args::parse(attr, Span::call_site()).expect("args");
        let sum = step_checksum(&FnItem::parse(up_fn()).expect("fn"), &args, Some(&file));
        let _ = std::fs::remove_dir_all(&dir);
        sum
    }

    #[test]
    fn a_downs_body_is_hashed_only_when_its_name_is_this_files_one_function() {
        let one = "async fn revert(db: &mut Conn<'_>) -> Result<()> { db.execute(\"A\").await }";
        let edited = one.replace("\"A\"", "\"B\"");
        let down = quote!(table = "t", version = "1.0.0", down = revert);
        assert_ne!(
            checksum_in(down.clone(), one, 0).unwrap(),
            checksum_in(down.clone(), &edited, 1).unwrap(),
            "the body of this file's only `revert` is covered"
        );
        // Two functions named `revert` (two modules): neither body is this down's for sure,
        // so the path is hashed, and an edit to either changes nothing.
        let two = format!("mod v1 {{ {one} }} mod v2 {{ {one} }}");
        let two_edited = format!("mod v1 {{ {one} }} mod v2 {{ {edited} }}");
        assert_eq!(
            checksum_in(down.clone(), &two, 2).unwrap(),
            checksum_in(down.clone(), &two_edited, 3).unwrap()
        );
        // A path into another module names another function than this file's `revert`.
        let elsewhere = quote!(table = "t", version = "1.0.0", down = other::revert);
        assert_eq!(
            checksum_in(elsewhere.clone(), one, 4).unwrap(),
            checksum_in(elsewhere, &edited, 5).unwrap()
        );
        let local = quote!(table = "t", version = "1.0.0", down = self::revert);
        assert_ne!(
            checksum_in(local.clone(), one, 6).unwrap(),
            checksum_in(local, &edited, 7).unwrap()
        );
        // A trait's bodiless `fn revert(&self);` does not take the next item's body.
        let declared = format!("trait T {{ fn revert(&self); }} fn other() {{ 1 }} {one}");
        let declared_edited = format!("trait T {{ fn revert(&self); }} fn other() {{ 2 }} {one}");
        assert_eq!(
            checksum_in(down.clone(), &declared, 8).unwrap(),
            checksum_in(down, &declared_edited, 9).unwrap()
        );
    }

    #[test]
    fn an_include_the_checksum_cannot_read_is_an_error_naming_it() {
        let file = "async fn revert(db: &mut Conn<'_>) -> Result<()> { \
                    db.execute(include_str!(\"missing.sql\")).await }";
        let err = checksum_in(
            quote!(table = "t", version = "1.0.0", down = revert),
            file,
            10,
        )
        .expect_err("missing.sql cannot be read");
        assert!(
            err.to_string().contains("cannot read `missing.sql`")
                && err.to_string().contains("CARGO_MANIFEST_DIR"),
            "{err}"
        );
    }

    fn up_fn() -> TokenStream {
        quote!(
            async fn add_state(db: &mut migrate::Conn<'_>) -> migrate::Result<()> {
                Ok(())
            }
        )
    }

    #[test]
    fn a_child_claims_its_version_and_its_parent() {
        let out = expand(
            quote!(
                table = "session",
                version = "2.3.0",
                parent = "2.0.0",
                down = revert
            ),
            up_fn(),
        );
        assert!(compile_errors(&out).is_empty(), "{out}");
        let traits = implemented_traits(&out);
        for expected in [
            "EachTableVersionIsDeclaredOnce",
            "TwoMigrationsShareThisParent",
            "HeadsEntryIsNotTheLatestVersion",
        ] {
            assert!(
                traits.iter().any(|t| t == expected),
                "{expected} in {traits:?}"
            );
        }
        assert!(!traits.iter().any(|t| t == "TwoFirstMigrationsForThisTable"));
        let call = registered_call(&out).expect("one registration");
        assert_eq!(call.args[1], syn::parse_quote!("session"));
        assert_eq!(call.args[2], syn::parse_quote!("2.3.0"));
        assert_eq!(
            call.args[3],
            syn::parse_quote!(::core::option::Option::Some("2.0.0"))
        );
        assert_eq!(
            call.args[6],
            syn::parse_quote!(::migrate::__private::Reversal::Down(__migrate_down))
        );
    }

    #[test]
    fn the_heads_check_names_the_child_in_words() {
        let name = |table: &str, version: &str, parent: &str| {
            let v = |t: &str| semver::Version::parse(t).unwrap();
            crate::register::child_name(table, &v(version), &v(parent), Span::call_site())
                .to_string()
        };
        assert_eq!(
            name("session", "1.1.0", "1.0.0"),
            "session_1_1_0_upgrades_from_1_0_0"
        );
        assert_eq!(
            name("odd-näme", "2.0.0-rc.1", "1.0.0"),
            "odd_n_me_2_0_0_rc_1_upgrades_from_1_0_0"
        );
        assert_eq!(
            name("9lives", "1.0.1", "1.0.0"),
            "table_9lives_1_0_1_upgrades_from_1_0_0"
        );
    }

    #[test]
    fn a_first_migration_claims_the_root() {
        let out = expand(
            quote!(
                table = "session",
                version = "2.0.0",
                irreversible,
                transaction = false,
                name = "create"
            ),
            up_fn(),
        );
        let traits = implemented_traits(&out);
        assert!(
            traits.iter().any(|t| t == "TwoFirstMigrationsForThisTable"),
            "{traits:?}"
        );
        assert!(
            !traits.iter().any(|t| t == "TwoMigrationsShareThisParent"),
            "{traits:?}"
        );
        let call = registered_call(&out).expect("one registration");
        assert_eq!(call.args[4], syn::parse_quote!("create"));
        assert_eq!(
            call.args[6],
            syn::parse_quote!(::migrate::__private::Reversal::Irreversible)
        );
        assert_eq!(call.args[7], syn::parse_quote!(false));
    }

    #[test]
    fn the_crate_key_replaces_every_path_to_the_facade() {
        let out = expand(
            quote!(
                table = "t",
                version = "1.0.0",
                parent = "0.1.0",
                down = revert,
                crate = "::host::db"
            ),
            up_fn(),
        );
        assert!(compile_errors(&out).is_empty(), "{out}");
        let text = out.to_string();
        assert!(
            !text.contains(":: migrate ::"),
            "no hard-coded facade: {text}"
        );
        assert!(text.contains(":: host :: db :: __private"), "{text}");
        let bad = expand(
            quote!(
                table = "t",
                version = "1.0.0",
                irreversible,
                crate = "not a path"
            ),
            up_fn(),
        );
        assert!(
            compile_errors(&bad)
                .iter()
                .any(|e| e.contains("is not a path")),
            "{bad}"
        );
    }

    #[test]
    fn errors_are_combined_and_the_item_is_kept() {
        let out = expand(
            quote!(
                table = "session",
                version = "two",
                colour = "red",
                down = revert,
                down = again
            ),
            quote!(
                fn not_async(db: &mut migrate::Conn<'_>) -> migrate::Result<()> {
                    Ok(())
                }
            ),
        );
        let file: syn::File = syn::parse2(out.clone()).expect("output parses");
        assert!(
            file.items
                .iter()
                .any(|i| matches!(i, syn::Item::Fn(f) if f.sig.ident == "not_async")),
            "original item kept: {out}"
        );
        let errors = compile_errors(&out);
        for expected in [
            "is not a semver version",
            "unknown key `colour`",
            "`down` is given twice",
        ] {
            assert!(
                errors.iter().any(|e| e.contains(expected)),
                "{expected} in {errors:?}"
            );
        }
        assert!(
            registered_call(&out).is_none(),
            "nothing registered on error"
        );
    }

    #[test]
    fn two_unknown_path_keys_are_each_named() {
        let out = expand(
            quote!(
                table = "t",
                version = "1.0.0",
                irreversible,
                a::b = 1,
                c::d = 2
            ),
            up_fn(),
        );
        let errors = compile_errors(&out);
        for expected in ["unknown key `a::b`", "unknown key `c::d`"] {
            assert!(
                errors.iter().any(|e| e.contains(expected)),
                "{expected} in {errors:?}"
            );
        }
        assert!(
            errors.iter().all(|e| !e.contains("given twice")),
            "{errors:?}"
        );
    }

    #[test]
    fn rejects_versions_not_above_the_parent_and_missing_down() {
        let out = expand(
            quote!(table = "t", version = "1.0.0", parent = "1.0.0"),
            up_fn(),
        );
        let errors = compile_errors(&out);
        assert!(
            errors
                .iter()
                .any(|e| e.contains("not greater than its parent")),
            "{errors:?}"
        );
        assert!(
            errors.iter().any(|e| e.contains("missing `down")),
            "{errors:?}"
        );
    }
}
