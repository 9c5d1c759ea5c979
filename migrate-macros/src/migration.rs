//! Expansion of `#[migration(...)]`.
//!
//! The output is the user's function, rewritten from `async fn` into a plain `fn` that returns
//! its body's future boxed (so that the function itself is the registered `MigrationFn`), followed
//! by a `const _: () = { ... };` block holding the graph-check items (see
//! `migrate_core::__private`), the shims that box the down's and the fresh function's futures,
//! and the `inventory` registration.

use crate::args::{self, CratePath, DownArg, Errors, MigrationArgs};
use crate::checksum;
use crate::includes::{includes, Includes};
use crate::register::{register, Declaration, Step, Up};
use crate::source::SourceFile;
use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned, ToTokens};
use std::path::Path;
use syn::spanned::Spanned;
use syn::{FnArg, ItemFn, ReturnType};

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
    let function: syn::Result<ItemFn> = syn::parse2(item.clone());
    let args = args::parse(attr, attr_span);
    let (function, args) = match (function, args) {
        (Ok(f), Ok(a)) => (f, a),
        (Err(mut e1), Err(e2)) => {
            e1.combine(e2);
            return Err(e1);
        }
        (Err(e), _) | (_, Err(e)) => return Err(e),
    };
    let signature = check_signature(&function)?;
    generate(&function, signature, &args, file)
}

/// The two parts of a migration's signature that the expansion uses, once checked.
#[derive(Clone, Copy)]
struct Signature<'a> {
    /// The one argument, `db: &mut migrate::Conn<'_>` as the user wrote it.
    argument: &'a syn::PatType,
    /// The return type as the user wrote it.
    output: &'a syn::Type,
}

/// A migration is `async fn name(db: &mut migrate::Conn<'_>) -> migrate::Result<()>`: checks
/// what can be checked on the syntax (the types themselves are checked by rustc, inside the
/// rewritten function). Returns the argument and the return type.
fn check_signature(function: &ItemFn) -> syn::Result<Signature<'_>> {
    let sig = &function.sig;
    let mut errors = Errors::default();
    if sig.asyncness.is_none() {
        errors.add(sig.fn_token.span(), "a migration must be an `async fn`: async fn name(db: &mut migrate::Conn<'_>) -> migrate::Result<()>");
    }
    if let Some(unsafety) = &sig.unsafety {
        errors.add(unsafety.span(), "a migration cannot be `unsafe`");
    }
    if let Some(abi) = &sig.abi {
        errors.add(abi.span(), "a migration cannot declare an ABI");
    }
    if !sig.generics.params.is_empty() {
        errors.add(sig.generics.span(), "a migration cannot be generic");
    }
    if let Some(variadic) = &sig.variadic {
        errors.add(variadic.span(), "a migration cannot be variadic");
    }
    let output = match &sig.output {
        ReturnType::Type(_, ty) => Some(&**ty),
        ReturnType::Default => {
            errors.add(
                sig.ident.span(),
                "a migration must return `migrate::Result<()>`",
            );
            None
        }
    };
    let mut argument = None;
    match sig.inputs.len() {
        1 => match &sig.inputs[0] {
            FnArg::Typed(typed) => match &*typed.ty {
                syn::Type::Reference(r) if r.mutability.is_some() => argument = Some(typed),
                other => errors.add(
                    other.span(),
                    "the argument of a migration must be `&mut migrate::Conn<'_>`",
                ),
            },
            FnArg::Receiver(r) => {
                errors.add(r.span(), "a migration is a free function, not a method")
            }
        },
        _ => errors.add(
            if sig.inputs.is_empty() {
                sig.ident.span()
            } else {
                sig.inputs.span()
            },
            "a migration takes exactly one argument: `db: &mut migrate::Conn<'_>`",
        ),
    }
    errors.finish()?;
    match (argument, output) {
        (Some(argument), Some(output)) => Ok(Signature { argument, output }),
        // Each missing part added its error above.
        _ => Err(syn::Error::new(sig.span(), "invalid migration signature")),
    }
}

fn generate(
    function: &ItemFn,
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
    let up = if rewrite {
        Up::Function(quote!(#fn_name))
    } else {
        let ty_span = signature.argument.ty.span();
        let up_db = db(ty_span);
        let up_call = quote_spanned!(ty_span=> #fn_name(#up_db));
        Up::Expression(quote_spanned!(ret_span=> #private::boxed(#up_call)))
    };
    let down = match &args.down {
        DownArg::Path(path) => {
            let down_db = db(path.span());
            Some(quote_spanned!(path.span()=> #private::boxed(#path(#down_db))))
        }
        DownArg::Irreversible => None,
    };
    let fresh = args.fresh.as_ref().map(|path| {
        let fresh_db = db(path.span());
        let name = path
            .segments
            .last()
            .map_or_else(String::new, |s| s.ident.to_string());
        (
            quote_spanned!(path.span()=> #private::boxed(#path(#fresh_db))),
            name,
        )
    });
    let name = args
        .name
        .as_ref()
        .map_or_else(|| fn_name.to_string(), syn::LitStr::value);
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
        checksum: &sum,
        sql: None,
        file: quote!(::core::file!()),
        line: quote_spanned!(args.table.span()=> ::core::line!()),
    };
    let registration = register(&step);
    let function = if rewrite {
        boxed_function(function, signature, &private)
    } else {
        function.to_token_stream()
    };
    Ok(quote! {
        #function
        #registration
    })
}

/// Whether the function can be rewritten into the registered plain `fn` without changing what it
/// means: its attributes are only documentation, lint levels and `cfg` (another attribute, such
/// as `#[tracing::instrument]`, may need the `async fn` and its parameter as written), and its
/// argument's type has no `impl Trait` (which a `let` cannot declare).
fn rewritable(function: &ItemFn, signature: Signature<'_>) -> bool {
    const PLAIN: [&str; 7] = ["doc", "allow", "warn", "deny", "expect", "forbid", "cfg"];
    let plain_attrs = function.attrs.iter().all(|attr| {
        attr.path()
            .get_ident()
            .is_some_and(|ident| PLAIN.iter().any(|plain| ident == plain))
    });
    plain_attrs && !mentions_impl_trait(&signature.argument.ty)
}

/// Whether `ty` has an `impl Trait` anywhere in it.
fn mentions_impl_trait(ty: &syn::Type) -> bool {
    fn has_impl(tokens: TokenStream) -> bool {
        tokens.into_iter().any(|token| match token {
            proc_macro2::TokenTree::Ident(ident) => ident == "impl",
            proc_macro2::TokenTree::Group(group) => has_impl(group.stream()),
            _ => false,
        })
    }
    has_impl(ty.to_token_stream())
}

/// The user's `async fn` as the plain `fn` that is registered: the same name, attributes and
/// body, returning the body's future boxed (`MigrationFuture`). One function per migration
/// instead of an `async fn` and a shim that boxes its future: rustc checks, lowers and compiles
/// less per migration (BENCHMARKS.md, "Compile time").
///
/// The parameter is always `&mut Conn<'_>`, so the function is a `MigrationFn` whatever the
/// user wrote; the argument's pattern and type and the return type as written are checked
/// inside, where errors point at them. As in an `async fn`, the argument is moved into the
/// future and `return` and `?` leave the body.
fn boxed_function(
    function: &ItemFn,
    signature: Signature<'_>,
    private: &TokenStream,
) -> TokenStream {
    let (outer, inner): (Vec<&syn::Attribute>, Vec<&syn::Attribute>) = function
        .attrs
        .iter()
        .partition(|a| matches!(a.style, syn::AttrStyle::Outer));
    let vis = &function.vis;
    let sig = &function.sig;
    let name = &sig.ident;
    let where_clause = &sig.generics.where_clause;
    // Names the user's body cannot see (`mixed_site`), so nothing it declares is shadowed.
    let param = syn::Ident::new("__migrate_db", Span::mixed_site());
    let lifetime = syn::Lifetime::new("'__migrate", Span::call_site());
    // The argument as the user declared it, bound to the connection: a wrong type is an error
    // at that type.
    let argument = {
        let syn::PatType { attrs, pat, ty, .. } = signature.argument;
        let connection = syn::Ident::new("__migrate_db", param.span().located_at(ty.span()));
        quote!(#(#attrs)* let #pat: #ty = #connection;)
    };
    // The return type as the user wrote it must be a migration's: an error at that type. (The
    // body's own type is the future's output, checked by `boxed`: nothing follows the body, so
    // a body that ends by returning or diverging draws no `unreachable` warning.)
    let output = signature.output;
    let ret_span = output.span();
    let ret_check = quote_spanned!(ret_span=> #private::returns::<#output>(););
    let block = &function.block;
    let boxed = quote_spanned!(ret_span=> #private::boxed);
    // Spanned at the return type, where an error about the future's output belongs.
    let future = quote_spanned!(ret_span=> async move { #argument #block });
    quote! {
        #(#outer)*
        #vis fn #name<#lifetime>(
            #param: &#lifetime mut #private::Conn<'_>,
        ) -> #private::MigrationFuture<#lifetime> #where_clause {
            #(#inner)*
            #ret_check
            #boxed(#future)
        }
    }
}

/// The step's checksum: its body, its down's body when the down is in the same file (else the
/// down's path), and the files both pull in. An include whose path cannot be worked out is an
/// error at that path (at the `down` argument when it is the down's).
fn step_checksum(
    function: &ItemFn,
    args: &MigrationArgs,
    file: Option<&Path>,
) -> syn::Result<String> {
    let body = function.block.to_token_stream();
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
        included = source.read_included(&files);
    }
    if let DownArg::Path(path) = &args.down {
        let last = path.segments.last().map(|s| s.ident.to_string());
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
                included.extend(source.read_included(&body.includes));
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

    fn expand(attr: TokenStream, item: TokenStream) -> TokenStream {
        super::expand(attr, item, None)
    }
    use crate::test_support::{compile_errors, implemented_traits, registered_call};
    use quote::quote;

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
    fn the_function_is_rewritten_into_the_registered_one() {
        let out = expand(
            quote!(table = "session", version = "2.0.0", irreversible),
            quote!(
                /// Creates the table.
                #[allow(unused_mut)]
                pub async fn create(mut db: &mut migrate::Conn<'_>) -> migrate::Result<()> {
                    #![allow(clippy::needless_return)]
                    return Ok(());
                }
            ),
        );
        assert!(compile_errors(&out).is_empty(), "{out}");
        let file: syn::File = syn::parse2(out.clone()).expect("output parses");
        let function = file
            .items
            .iter()
            .find_map(|i| match i {
                syn::Item::Fn(f) if f.sig.ident == "create" => Some(f),
                _ => None,
            })
            .expect("the function is kept under its name");
        assert!(function.sig.asyncness.is_none(), "a plain fn: {out}");
        assert!(matches!(function.vis, syn::Visibility::Public(_)));
        let ret = function.sig.output.to_token_stream().to_string();
        assert!(ret.contains("MigrationFuture"), "{ret}");
        // syn gathers a body's inner attributes into `attrs` too, by style.
        let (outer, inner): (Vec<_>, Vec<_>) = function
            .attrs
            .iter()
            .partition(|a| matches!(a.style, syn::AttrStyle::Outer));
        let text = |attrs: &[&syn::Attribute]| -> Vec<String> {
            attrs
                .iter()
                .map(|a| a.to_token_stream().to_string())
                .collect()
        };
        let (outer, inner) = (text(&outer), text(&inner));
        assert!(outer.iter().any(|a| a.contains("doc")), "{outer:?}");
        assert!(outer.iter().any(|a| a.contains("unused_mut")), "{outer:?}");
        assert!(
            inner.len() == 1 && inner[0].contains("needless_return"),
            "the inner attribute stays inside: {inner:?}"
        );
        let body = function.block.to_token_stream().to_string();
        assert!(
            body.contains("let mut db"),
            "the argument as declared: {body}"
        );
        assert!(
            body.contains("returns"),
            "the return type is checked: {body}"
        );
        let call = registered_call(&out).expect("one registration");
        assert_eq!(
            call.args[5],
            syn::parse_quote!(create),
            "the function itself is registered, without a shim"
        );
    }

    #[test]
    fn a_function_that_must_stay_as_written_is_kept_behind_a_shim() {
        let kept = |item: TokenStream| {
            let out = expand(quote!(table = "t", version = "1.0.0", irreversible), item);
            assert!(compile_errors(&out).is_empty(), "{out}");
            let file: syn::File = syn::parse2(out.clone()).expect("output parses");
            let still_async = file.items.iter().any(|i| {
                matches!(i, syn::Item::Fn(f) if f.sig.ident == "m" && f.sig.asyncness.is_some())
            });
            let call = registered_call(&out).expect("one registration");
            (still_async, call.args[5].clone())
        };
        let shim: syn::Expr = syn::parse_quote!(__migrate_up);
        // Another attribute (it may need the `async fn` and its parameter as written).
        let (still_async, up) = kept(quote!(
            #[tracing::instrument(skip(db))]
            async fn m(db: &mut migrate::Conn<'_>) -> migrate::Result<()> {
                Ok(())
            }
        ));
        assert!(still_async);
        assert_eq!(up, shim);
        // An `impl Trait` argument, which a `let` cannot declare.
        let (still_async, up) = kept(quote!(
            async fn m(db: &mut (impl migrate::ConnExt + Send)) -> migrate::Result<()> {
                Ok(())
            }
        ));
        assert!(still_async);
        assert_eq!(up, shim);
        // Documentation, lint levels and `cfg` alone are rewritten.
        let (still_async, up) = kept(quote!(
            /// Documented.
            #[allow(unused)]
            #[cfg(all())]
            async fn m(db: &mut migrate::Conn<'_>) -> migrate::Result<()> {
                Ok(())
            }
        ));
        assert!(!still_async);
        assert_eq!(up, syn::parse_quote!(m));
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
    fn rejects_signatures_that_cannot_be_migrations() {
        let out = expand(
            quote!(table = "t", version = "1.0.0", irreversible),
            quote!(
                fn m(a: &mut migrate::Conn<'_>, b: u8) {}
            ),
        );
        let errors = compile_errors(&out);
        for expected in [
            "must be an `async fn`",
            "must return `migrate::Result<()>`",
            "exactly one argument",
        ] {
            assert!(
                errors.iter().any(|e| e.contains(expected)),
                "{expected} in {errors:?}"
            );
        }
        // The registered function is a safe Rust `fn`: neither `unsafe` nor another ABI.
        let out = expand(
            quote!(table = "t", version = "1.0.0", irreversible),
            quote!(
                async unsafe extern "C" fn m(db: &mut migrate::Conn<'_>) -> migrate::Result<()> {
                    Ok(())
                }
            ),
        );
        let errors = compile_errors(&out);
        for expected in ["cannot be `unsafe`", "cannot declare an ABI"] {
            assert!(
                errors.iter().any(|e| e.contains(expected)),
                "{expected} in {errors:?}"
            );
        }
        assert!(registered_call(&out).is_none(), "nothing registered: {out}");
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
