//! The commonest migration body, read on its tokens: only `db.execute("...").await?;` lines
//! and a final `Ok(())`. Such a function's body is rewritten into one call of
//! `migrate_core::__private::execute_statements` with its string literals (see
//! `signature::statements_function`): rustc checks no future per function, which is most of
//! what a crate of migrations costs it (BENCHMARKS.md, "Compile time"). What runs is the same:
//! each statement through `Conn::execute`, in order, stopping at the first error, which `?`
//! passes on unchanged.

use crate::item::FnItem;
use crate::signature::{ungrouped, Signature};
use proc_macro2::{Delimiter, Ident, Literal, TokenTree};

/// A body that only executes string literals, as read.
pub(crate) struct Executes {
    /// The literals, in order.
    pub(crate) statements: Vec<Literal>,
    /// The body's first `db` as written (its span and hygiene): the rewritten call names the
    /// connection with it, so rustc resolves it as the body did. `None` when the body is only
    /// `Ok(())`.
    pub(crate) db: Option<Ident>,
    /// The body's `Ok` as written: the rewritten function checks `Ok(())` against the return
    /// type with it, as the body did (a user's own `Ok` in scope is an error there too).
    pub(crate) ok: Ident,
}

/// What the body executes, when the function is nothing but that: it is not `pub`, its
/// attributes are only documentation and lint levels (another attribute may wrap the body), it
/// has no inner attributes, and its argument is a plain name (`db`, `mut db`) that the body's
/// calls name, of type `&mut Conn<'_>` written as a path ending in `Conn` (so that `execute` is
/// `Conn`'s own: a `&mut dyn Trait` argument would call the trait's). `None` otherwise: the
/// function keeps its body, boxed.
pub(crate) fn only_executes(function: &FnItem, signature: Signature<'_>) -> Option<Executes> {
    const LINT_LEVELS: [&str; 6] = ["doc", "allow", "warn", "deny", "expect", "forbid"];
    if matches!(function.vis, syn::Visibility::Public(_)) || !function.inner_attrs.is_empty() {
        return None;
    }
    let plain = function.attrs.iter().all(|attr| {
        attr.path()
            .get_ident()
            .is_some_and(|ident| LINT_LEVELS.iter().any(|level| ident == level))
    });
    if !plain {
        return None;
    }
    let db = match &*signature.argument.pat {
        syn::Pat::Ident(pat) if pat.by_ref.is_none() && pat.subpat.is_none() => &pat.ident,
        _ => return None,
    };
    if !names_conn(&signature.argument.ty) {
        return None;
    }
    let tokens: Vec<TokenTree> = function.block.stream().into_iter().collect();
    let mut rest = tokens.as_slice();
    let mut statements = Vec::new();
    let mut first_db = None;
    loop {
        match rest {
            // `Ok(())`, last.
            [TokenTree::Ident(ok), TokenTree::Group(unit)]
                if ok == "Ok"
                    && unit.delimiter() == Delimiter::Parenthesis
                    && is_empty_parens(unit.stream()) =>
            {
                return Some(Executes {
                    statements,
                    db: first_db,
                    ok: ok.clone(),
                });
            }
            // `db.execute("...").await?;`
            [TokenTree::Ident(name), TokenTree::Punct(dot1), TokenTree::Ident(execute), TokenTree::Group(args), TokenTree::Punct(dot2), TokenTree::Ident(await_), TokenTree::Punct(question), TokenTree::Punct(semi), tail @ ..]
                if name == db
                    && dot1.as_char() == '.'
                    && execute == "execute"
                    && args.delimiter() == Delimiter::Parenthesis
                    && dot2.as_char() == '.'
                    && await_ == "await"
                    && question.as_char() == '?'
                    && semi.as_char() == ';' =>
            {
                statements.push(string_literal(args.stream())?);
                first_db.get_or_insert_with(|| name.clone());
                rest = tail;
            }
            _ => return None,
        }
    }
}

/// Whether `ty` is `&mut` of a path whose last segment is `Conn` (`&mut migrate::Conn<'_>`,
/// `&mut Conn<'_>`): the argument's type is checked against `&mut migrate::Conn<'_>` by rustc
/// in the kept function, and `Conn` derefs to nothing, so such a path is that type.
fn names_conn(ty: &syn::Type) -> bool {
    let syn::Type::Reference(reference) = ungrouped(ty) else {
        return false;
    };
    if reference.mutability.is_none() {
        return false;
    }
    match ungrouped(&reference.elem) {
        syn::Type::Path(path) => {
            path.qself.is_none() && path.path.segments.last().is_some_and(|s| s.ident == "Conn")
        }
        _ => false,
    }
}

/// Whether `tokens` is `()` and nothing else.
fn is_empty_parens(tokens: proc_macro2::TokenStream) -> bool {
    let mut tokens = tokens.into_iter();
    matches!(
        (tokens.next(), tokens.next()),
        (Some(TokenTree::Group(unit)), None)
            if unit.delimiter() == Delimiter::Parenthesis && unit.stream().is_empty()
    )
}

/// The one string literal `tokens` holds (`"..."`, `r#"..."#`, no suffix), or `None`.
fn string_literal(tokens: proc_macro2::TokenStream) -> Option<Literal> {
    let mut tokens = tokens.into_iter();
    // A trailing comma is how rustfmt writes a call whose literal is too long for one line.
    let literal = match (tokens.next(), tokens.next(), tokens.next()) {
        (Some(TokenTree::Literal(literal)), None, None) => literal,
        (Some(TokenTree::Literal(literal)), Some(TokenTree::Punct(comma)), None)
            if comma.as_char() == ',' =>
        {
            literal
        }
        _ => return None,
    };
    match syn::Lit::new(literal.clone()) {
        syn::Lit::Str(text) if text.suffix().is_empty() => Some(literal),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signature::check_signature;
    use proc_macro2::TokenStream;
    use quote::quote;

    /// The statements of `function` as written, or `None`.
    fn read(function: TokenStream) -> Option<Vec<String>> {
        let function = FnItem::parse(function).expect("a function");
        let signature = check_signature(&function).expect("a migration's signature");
        only_executes(&function, signature)
            .map(|read| read.statements.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn a_body_of_execute_lines_is_read_as_its_literals_in_order() {
        let read = read(quote!(
            /// Adds a column.
            #[allow(clippy::needless_question_mark)]
            async fn add(mut conn: &mut migrate::Conn<'_>) -> migrate::Result<()> {
                conn.execute("ALTER TABLE t ADD a INT").await?;
                conn.execute(r#"UPDATE t SET a = 1 WHERE b = "x""#).await?;
                // rustfmt's form of a call whose literal is long.
                conn.execute("CREATE INDEX a_long_index_name ON t (a)")
                    .await?;
                Ok(())
            }
        ));
        assert_eq!(
            read.expect("read"),
            [
                "\"ALTER TABLE t ADD a INT\"",
                "r#\"UPDATE t SET a = 1 WHERE b = \"x\"\"#",
                "\"CREATE INDEX a_long_index_name ON t (a)\""
            ]
        );
        let nothing = super::tests::read(quote!(
            async fn none(db: &mut migrate::Conn<'_>) -> migrate::Result<()> {
                Ok(())
            }
        ));
        assert_eq!(nothing.expect("read"), Vec::<String>::new());
    }

    #[test]
    fn the_function_is_rewritten_into_one_call_and_registered_as_itself() {
        use crate::test_support::{compile_errors, expand_migration, registered_call};
        let out = expand_migration(
            quote!(table = "t", version = "1.0.0", irreversible),
            quote!(
                #[warn(dead_code)]
                async fn create(db: &mut migrate::Conn<'_>) -> migrate::Result<()> {
                    db.execute("CREATE TABLE t (id INT)").await?;
                    db.execute("CREATE INDEX i ON t (id)").await?;
                    Ok(())
                }
            ),
        );
        assert!(compile_errors(&out).is_empty(), "{out}");
        let call = registered_call(&out).expect("one registration");
        let registered: syn::Expr = syn::parse_quote!(create);
        assert_eq!(call.args[5], registered, "{out}");
        let file: syn::File = syn::parse2(out.clone()).expect("output parses");
        let Some(create) = file.items.iter().find_map(|item| match item {
            syn::Item::Fn(f) if f.sig.ident == "create" => Some(f),
            _ => None,
        }) else {
            panic!("the function stays: {out}")
        };
        // Not async: no future of its own; the user's lint levels kept.
        assert!(create.sig.asyncness.is_none(), "{out}");
        assert!(
            create.attrs.iter().any(|a| a.path().is_ident("warn")),
            "{out}"
        );
        // The return type checked, the argument bound as declared, then one call with the
        // statements in order.
        let body = quote::ToTokens::to_token_stream(&create.block).to_string();
        assert!(
            body.contains("returns :: < migrate :: Result < () > >"),
            "{body}"
        );
        assert!(
            body.contains("let db : & mut migrate :: Conn < '_ > = __migrate_db"),
            "{body}"
        );
        assert!(
            body.contains(
                "execute_statements (db , & [\"CREATE TABLE t (id INT)\" , \"CREATE INDEX i ON t (id)\"])"
            ),
            "{body}"
        );
    }

    #[test]
    fn anything_else_keeps_the_function_registered_as_itself() {
        let bodies = [
            // Not only executes of literals.
            quote!({
                let sql = "X";
                db.execute(sql).await?;
                Ok(())
            }),
            quote!({
                db.execute(concat!("X", "Y")).await?;
                Ok(())
            }),
            quote!({
                db.execute(b"X").await?;
                Ok(())
            }),
            quote!({ db.execute("X" "Y").await?; Ok(()) }),
            // Two arguments, or a comma that is not the last token.
            quote!({
                db.execute("X", 1).await?;
                Ok(())
            }),
            quote!({ db.execute("X",,).await?; Ok(()) }),
            quote!({
                db.execute(1).await?;
                Ok(())
            }),
            quote!({
                db.query("X").await?;
                Ok(())
            }),
            quote!({
                db.execute("X").await;
                Ok(())
            }),
            quote!({
                db.execute("X").await?;
            }),
            quote!({
                db.execute("X").await?;
                Ok(());
            }),
            quote!({
                db.execute("X").await?;
                Ok(1)
            }),
            quote!({
                db.execute("X").await?;
                return Ok(());
            }),
            quote!({
                db.execute("X").await?;
                db.execute("Y").await
            }),
            // Another name than the argument's.
            quote!({
                other.execute("X").await?;
                Ok(())
            }),
        ];
        for body in bodies {
            let function = quote!(
                async fn up(db: &mut migrate::Conn<'_>) -> migrate::Result<()> #body
            );
            assert_eq!(read(function), None, "{body}");
        }
        let functions = [
            // Compiled for other crates anyway.
            quote!(
                pub async fn up(db: &mut migrate::Conn<'_>) -> migrate::Result<()> {
                    Ok(())
                }
            ),
            // Another attribute may wrap the body.
            quote!(
                #[tracing::instrument]
                async fn up(db: &mut migrate::Conn<'_>) -> migrate::Result<()> {
                    Ok(())
                }
            ),
            quote!(
                #[inline]
                async fn up(db: &mut migrate::Conn<'_>) -> migrate::Result<()> {
                    Ok(())
                }
            ),
            // An argument whose `execute` may not be `Conn`'s.
            quote!(
                async fn up(db: &mut (dyn Exec + Send)) -> migrate::Result<()> {
                    db.execute("X").await?;
                    Ok(())
                }
            ),
            quote!(
                async fn up(db: &mut Connection<'_>) -> migrate::Result<()> {
                    Ok(())
                }
            ),
            quote!(
                async fn up(db: &mut <X as Y>::Conn) -> migrate::Result<()> {
                    Ok(())
                }
            ),
            quote!(
                async fn up(db: &mut migrate::Conn<'_>) -> migrate::Result<()> {
                    #![allow(unused)]
                    Ok(())
                }
            ),
            // An argument that is not a plain name.
            quote!(
                async fn up(ref db: &mut migrate::Conn<'_>) -> migrate::Result<()> {
                    Ok(())
                }
            ),
            quote!(
                async fn up(_: &mut migrate::Conn<'_>) -> migrate::Result<()> {
                    Ok(())
                }
            ),
        ];
        for function in functions {
            assert_eq!(read(function.clone()), None, "{function}");
        }
    }
}
