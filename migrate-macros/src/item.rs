//! The function under `#[migration]`, read as far as the expansion needs it: its attributes,
//! visibility and signature are parsed, and its body is kept as the tokens it came as.
//!
//! `syn::ItemFn` would parse every statement and expression of the body only for the expansion
//! to print them back. The body is most of a migration's tokens, and the macro runs again for
//! every migration at every build, unoptimized in a dev profile (BENCHMARKS.md, "Compile
//! time"). What the body holds is rustc's to check: a syntax error in it is reported by rustc,
//! at its tokens, in the function the expansion writes.
//!
//! Two cases still go through syn: an item whose shape the token-level reading does not know
//! (it is read by `syn::ItemFn`, so whatever syn accepts is accepted), and the checksum of a
//! body holding a `macro_rules!` fragment ([`FnItem::checksum_body`]).

use proc_macro2::{Delimiter, Group, TokenStream, TokenTree};
use quote::{quote, ToTokens};
use syn::parse::{ParseStream, Parser};
use syn::Attribute;

/// An `fn` item: everything up to its body parsed, the body as tokens.
pub(crate) struct FnItem {
    /// The attributes before the function (`#[...]`, doc comments).
    pub(crate) attrs: Vec<Attribute>,
    pub(crate) vis: syn::Visibility,
    pub(crate) sig: syn::Signature,
    /// The attributes at the start of the body (`#![...]`, `//!` comments).
    pub(crate) inner_attrs: Vec<Attribute>,
    /// The body without its inner attributes: a brace-delimited group, as `syn::Block` prints.
    pub(crate) block: Group,
}

/// An item's attributes, visibility and signature, and its body's group.
type Head = (Vec<Attribute>, syn::Visibility, syn::Signature, Group);

impl FnItem {
    /// Reads `item` as an `fn` item: whatever `syn::ItemFn` accepts, with syn's own error for
    /// anything else.
    pub(crate) fn parse(item: TokenStream) -> syn::Result<FnItem> {
        match FnItem::read_head(item.clone()) {
            Some((attrs, vis, sig, body)) => FnItem::with_body(attrs, vis, sig, &body),
            // A shape the token-level reading does not know (an attribute written before an
            // `$item` fragment puts the function in an invisible group of its own), or not a
            // function at all: syn reads it, or says what it expected.
            None => syn::parse2::<syn::ItemFn>(item).map(FnItem::from_syn),
        }
    }

    /// The attributes, visibility and signature parsed, and the body's group, when the item
    /// ends with a brace group (seen through invisible groups of one token) and what comes
    /// before it parses.
    fn read_head(item: TokenStream) -> Option<Head> {
        let mut head: Vec<TokenTree> = item.into_iter().collect();
        // An item passed through `macro_rules!` as `$item:item` arrives in an invisible group.
        while let [TokenTree::Group(whole)] = head.as_slice() {
            if whole.delimiter() != Delimiter::None {
                break;
            }
            head = whole.stream().into_iter().collect();
        }
        let body = match head.pop().map(visible) {
            Some(TokenTree::Group(body)) if body.delimiter() == Delimiter::Brace => body,
            _ => return None,
        };
        let head: TokenStream = head.into_iter().collect();
        (|input: ParseStream<'_>| {
            let attrs = input.call(Attribute::parse_outer)?;
            let vis: syn::Visibility = input.parse()?;
            let sig: syn::Signature = input.parse()?;
            Ok((attrs, vis, sig, body))
        })
        .parse2(head)
        .ok()
    }

    fn with_body(
        attrs: Vec<Attribute>,
        vis: syn::Visibility,
        sig: syn::Signature,
        body: &Group,
    ) -> syn::Result<FnItem> {
        let (inner, rest) = split_inner_attrs(body.stream());
        let inner_attrs = Attribute::parse_inner.parse2(inner)?;
        let mut block = Group::new(Delimiter::Brace, rest);
        block.set_span(body.span());
        Ok(FnItem {
            attrs,
            vis,
            sig,
            inner_attrs,
            block,
        })
    }

    /// The same item from syn's reading of it.
    fn from_syn(function: syn::ItemFn) -> FnItem {
        let (attrs, inner_attrs) = function
            .attrs
            .into_iter()
            .partition(|a| matches!(a.style, syn::AttrStyle::Outer));
        let mut block = printed_block(&function.block.stmts);
        block.set_span(function.block.brace_token.span.join());
        FnItem {
            attrs,
            vis: function.vis,
            sig: function.sig,
            inner_attrs,
            block,
        }
    }

    /// Every attribute of the function, outer then inner, as `syn::ItemFn::attrs` holds them.
    pub(crate) fn all_attrs(&self) -> impl Iterator<Item = &Attribute> {
        self.attrs.iter().chain(&self.inner_attrs)
    }

    /// The body as a step's checksum covers it: as `syn::Block` prints it, which is the tokens
    /// as written unless a `macro_rules!` fragment inside put some in an invisible group. syn
    /// prints some fragments (an item, a pattern, an empty visibility) without their group,
    /// and the checksum's canonical text looks at one level of groups at a time, so such a
    /// body is printed by syn, as before the body was kept as tokens. A body syn cannot parse
    /// was refused then, so no checksum of it is stored: its tokens are used.
    pub(crate) fn checksum_body(&self) -> TokenStream {
        if has_invisible_group(self.block.stream()) {
            if let Ok(stmts) = syn::Block::parse_within.parse2(self.block.stream()) {
                return printed_block(&stmts).into_token_stream();
            }
        }
        self.block.to_token_stream()
    }
}

/// Statements as `syn::Block` prints them: in a brace group.
fn printed_block(stmts: &[syn::Stmt]) -> Group {
    Group::new(Delimiter::Brace, quote!(#(#stmts)*))
}

/// Whether `tokens` hold an invisible group at any depth.
fn has_invisible_group(tokens: TokenStream) -> bool {
    tokens.into_iter().any(|token| match token {
        TokenTree::Group(group) => {
            group.delimiter() == Delimiter::None || has_invisible_group(group.stream())
        }
        _ => false,
    })
}

impl ToTokens for FnItem {
    /// The item as it was written.
    fn to_tokens(&self, tokens: &mut TokenStream) {
        let FnItem {
            attrs,
            vis,
            sig,
            inner_attrs,
            block,
        } = self;
        let body = block.stream();
        let mut group = Group::new(Delimiter::Brace, quote!(#(#inner_attrs)* #body));
        group.set_span(block.span());
        tokens.extend(quote!(#(#attrs)* #vis #sig #group));
    }
}

/// The token inside an invisible group of one token: a body written as `$body:block` in a
/// `macro_rules!` arrives as one.
fn visible(token: TokenTree) -> TokenTree {
    match token {
        TokenTree::Group(group) if group.delimiter() == Delimiter::None => {
            let mut inner = group.stream().into_iter();
            match (inner.next(), inner.next()) {
                (Some(only), None) => visible(only),
                _ => TokenTree::Group(group),
            }
        }
        other => other,
    }
}

/// Splits the leading `#![...]` attributes off a body's tokens.
fn split_inner_attrs(body: TokenStream) -> (TokenStream, TokenStream) {
    let tokens: Vec<TokenTree> = body.into_iter().collect();
    let mut end = 0;
    while let [TokenTree::Punct(pound), TokenTree::Punct(bang), TokenTree::Group(group), ..] =
        &tokens[end..]
    {
        let is_inner = pound.as_char() == '#'
            && bang.as_char() == '!'
            && group.delimiter() == Delimiter::Bracket;
        if !is_inner {
            break;
        }
        end += 3;
    }
    let mut tokens = tokens.into_iter();
    let inner = tokens.by_ref().take(end).collect();
    (inner, tokens.collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checksum::canonical;
    use std::path::{Path, PathBuf};
    use std::str::FromStr;

    fn parsed(item: TokenStream) -> FnItem {
        FnItem::parse(item).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn the_signature_is_parsed_and_the_body_kept_as_written() {
        let function = parsed(quote!(
            /// Documented.
            #[allow(unused)]
            pub(crate) async fn add_state(db: &mut migrate::Conn<'_>) -> migrate::Result<()>
            where
                (): Sized,
            {
                #![allow(clippy::needless_return)]
                //! Inner documentation.
                db.execute("ALTER TABLE session ADD COLUMN state TEXT")
                    .await?;
                return Ok(());
            }
        ));
        assert_eq!(function.sig.ident, "add_state");
        assert!(function.sig.asyncness.is_some());
        assert!(function.sig.generics.where_clause.is_some());
        assert!(matches!(function.vis, syn::Visibility::Restricted(_)));
        let names = |attrs: &[Attribute]| -> Vec<String> {
            attrs
                .iter()
                .map(|a| a.path().to_token_stream().to_string())
                .collect()
        };
        assert_eq!(names(&function.attrs), ["doc", "allow"]);
        assert_eq!(names(&function.inner_attrs), ["allow", "doc"]);
        assert!(function
            .inner_attrs
            .iter()
            .all(|a| matches!(a.style, syn::AttrStyle::Inner(_))));
        let body = function.block.stream().to_string();
        assert!(body.starts_with("db . execute"), "{body}");
        assert!(body.ends_with("return Ok (()) ;"), "{body}");
        assert_eq!(function.all_attrs().count(), 4);
    }

    #[test]
    fn the_item_prints_back_as_written() {
        let item = quote!(
            #[doc = "x"]
            async fn m(db: &mut migrate::Conn<'_>) -> migrate::Result<()> {
                #![allow(unused)]
                let x = { 1 };
                Ok(())
            }
        );
        let printed = parsed(item.clone()).into_token_stream();
        assert_eq!(printed.to_string(), item.to_string());
    }

    #[test]
    fn a_body_or_an_item_from_a_macro_rules_fragment_is_read_through_its_invisible_group() {
        let invisible = |tokens: TokenStream| Group::new(Delimiter::None, tokens);
        let body = invisible(quote!({
            db.execute("SELECT 1").await?;
            Ok(())
        }));
        let item = quote!(async fn m(db: &mut migrate::Conn<'_>) -> migrate::Result<()> #body);
        for item in [item.clone(), invisible(item).into_token_stream()] {
            let function = parsed(item);
            assert_eq!(function.sig.ident, "m");
            assert_eq!(function.block.delimiter(), Delimiter::Brace);
            assert_eq!(
                function.block.stream().to_string(),
                quote!(db.execute("SELECT 1").await?; Ok(())).to_string()
            );
        }
    }

    #[test]
    fn a_function_in_an_invisible_group_after_an_attribute_is_read_by_syn() {
        let item = Group::new(
            Delimiter::None,
            quote!(
                async fn m(db: &mut migrate::Conn<'_>) -> migrate::Result<()> {
                    #![allow(unused)]
                    Ok(())
                }
            ),
        );
        let function = parsed(quote!(#[doc = "written before an `$item` fragment"] #item));
        assert_eq!(function.sig.ident, "m");
        assert_eq!(function.attrs.len(), 1);
        assert_eq!(function.inner_attrs.len(), 1);
        assert_eq!(function.block.delimiter(), Delimiter::Brace);
        assert_eq!(function.block.stream().to_string(), "Ok (())");
    }

    /// Bodies with `macro_rules!` fragments inside, whose invisible groups syn did not print
    /// back: the checksum takes syn's printing, as before the body was kept as tokens.
    #[test]
    fn a_body_with_fragments_inside_is_checksummed_as_syn_printed_it() {
        let invisible = |tokens: TokenStream| Group::new(Delimiter::None, tokens);
        let item = invisible(quote!(
            const SQL: &str = "CREATE TABLE t (id INTEGER)";
        ));
        let pattern = invisible(quote!((x)));
        let bodies = [
            // An item fragment hides the `;` before a final `return ...;`.
            quote!({ #item db.execute(SQL).await?; return Ok(()); }),
            // ... and makes a block look like a match arm's expression.
            quote!({ let y = match 1 { _ => { #item 2 } }; Ok(()) }),
            // A pattern fragment in parentheses: doubled parentheses once printed.
            quote!({ let (#pattern) = 1; Ok(()) }),
        ];
        let mut differs_raw = 0;
        for body in bodies {
            let function = parsed(quote!(
                async fn m(db: &mut migrate::Conn<'_>) -> migrate::Result<()> #body
            ));
            let syn_block: syn::Block = syn::parse2(body.clone()).expect("a block");
            let printed = printed_block(&syn_block.stmts).into_token_stream();
            assert_eq!(
                canonical(&function.checksum_body()),
                canonical(&printed),
                "{body}"
            );
            if canonical(&function.block.to_token_stream()) != canonical(&printed) {
                differs_raw += 1;
            }
        }
        assert!(
            differs_raw > 0,
            "the raw tokens would have changed a checksum"
        );
    }

    #[test]
    fn what_is_not_a_function_gets_syns_error() {
        for item in [
            quote!(
                struct S;
            ),
            quote!(
                async fn m(db: &mut migrate::Conn<'_>) -> migrate::Result<()>;
            ),
            quote!(async fn m(db: &mut migrate::Conn<'_>) -> {}),
            quote!(),
        ] {
            let err = match FnItem::parse(item.clone()) {
                Err(err) => err.to_string(),
                Ok(_) => panic!("read as a function: {item}"),
            };
            let expected = syn::parse2::<syn::ItemFn>(item.clone())
                .err()
                .map(|e| e.to_string());
            assert_eq!(Some(err), expected, "{item}");
        }
    }

    /// A step's checksum covers its body as `syn::Block` printed it, before the body was kept as
    /// tokens: the two must agree, or every stored checksum of a Rust step would change. Checked
    /// on every function body of this repository that syn can parse (several thousand).
    #[test]
    fn a_body_kept_as_tokens_has_the_checksum_it_had_when_syn_parsed_it() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut files = Vec::new();
        rust_files(&root, &mut files);
        let mut bodies = Vec::new();
        for file in &files {
            let Ok(text) = std::fs::read_to_string(file) else {
                continue;
            };
            let Ok(tokens) = TokenStream::from_str(&text) else {
                continue;
            };
            function_bodies(tokens, &mut bodies);
        }
        let mut compared = 0;
        for body in &bodies {
            let Ok(stmts) = (|input: ParseStream<'_>| {
                input.call(Attribute::parse_inner)?;
                syn::Block::parse_within(input)
            })
            .parse2(body.stream()) else {
                continue; // a macro template's `$x`, or not Rust
            };
            let printed = printed_block(&stmts);
            let function = parsed(quote!(fn f() #body));
            assert_eq!(
                canonical(&function.checksum_body()),
                canonical(&printed.into_token_stream()),
                "{body}"
            );
            compared += 1;
        }
        eprintln!("{compared} of {} bodies compared", bodies.len());
        // Run from this repository (not from a packaged copy of this crate alone).
        if root.join("migrate-macros").is_dir() {
            assert!(compared > 2000, "only {compared} bodies compared");
        }
    }

    fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if path.is_dir() {
                if name != "target" && !name.starts_with('.') {
                    rust_files(&path, out);
                }
            } else if name.ends_with(".rs") {
                out.push(path);
            }
        }
    }

    /// Every `fn ... { body }` at any depth.
    fn function_bodies(tokens: TokenStream, out: &mut Vec<Group>) {
        let tokens: Vec<TokenTree> = tokens.into_iter().collect();
        for (i, token) in tokens.iter().enumerate() {
            if matches!(token, TokenTree::Ident(kw) if kw == "fn") {
                // The first brace group before a `;` (a declaration without a body has none).
                let body = tokens[i + 1..]
                    .iter()
                    .take_while(|t| !matches!(t, TokenTree::Punct(p) if p.as_char() == ';'))
                    .find_map(|t| match t {
                        TokenTree::Group(g) if g.delimiter() == Delimiter::Brace => Some(g),
                        _ => None,
                    });
                out.extend(body.cloned());
            }
            if let TokenTree::Group(group) = token {
                function_bodies(group.stream(), out);
            }
        }
    }
}
