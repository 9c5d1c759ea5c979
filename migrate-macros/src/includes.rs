//! The files a step's bodies pull in with `include_str!`, `include_bytes!` or `include!`: their
//! content is part of the step's checksum, so an edit to one is an edit to the step.
//!
//! A path is followed when it is a string literal, `env!("NAME")` (with or without its
//! message), or `concat!` of those and of the other literals `concat!` takes (the usual
//! `concat!(env!("CARGO_MANIFEST_DIR"), "/sql/add_state.sql")`), each optionally written as a
//! `core::`/`std::` path, and also when it arrives through a `macro_rules!` fragment. The
//! checksum names such a path as written, with `env!("NAME")` kept as `${NAME}`, so it does not
//! depend on where the crate is checked out. Any other path expression is refused at compile
//! time: the checksum could not see its file. In a `macro_rules!` template inside a body, and
//! for a macro of another path (`my_mod::include_str!`), a path that can be worked out is
//! followed and one that cannot is left alone: an include such a template makes from its
//! `$path` when called is not seen.

use crate::checksum::is_punct;
use proc_macro2::{Delimiter, Span, TokenStream, TokenTree};

/// How a file is pulled in, which decides how its content is hashed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IncludeKind {
    /// `include_str!`: text, hashed with line endings and trailing whitespace normalised.
    Str,
    /// `include!`: Rust source, hashed as text like `include_str!`.
    Rust,
    /// `include_bytes!`: hashed byte for byte.
    Bytes,
}

/// What a body pulls in.
#[derive(Debug, Default)]
pub(crate) struct Includes {
    /// The files the checksum follows, in order.
    pub(crate) files: Vec<FileInclude>,
    /// Where a path expression this macro cannot work out is.
    pub(crate) unfollowed: Vec<Span>,
}

/// A file the checksum follows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FileInclude {
    pub(crate) kind: IncludeKind,
    /// The path as the checksum names it (the literal path; `${NAME}` for `env!`).
    pub(crate) label: String,
    /// The path to read (relative paths are relative to the including file).
    pub(crate) path: String,
}

/// A followed include, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Included {
    pub(crate) kind: IncludeKind,
    pub(crate) label: String,
    pub(crate) content: Vec<u8>,
}

impl Included {
    /// A file pulled in with `include_str!`, for tests.
    #[cfg(test)]
    pub(crate) fn text(label: &str, content: &str) -> Included {
        Included {
            kind: IncludeKind::Str,
            label: label.to_string(),
            content: content.as_bytes().to_vec(),
        }
    }
}

/// Every include in `tokens`, at any depth, in order.
pub(crate) fn includes(tokens: &TokenStream) -> Includes {
    let mut found = Includes::default();
    collect(tokens.clone(), &mut found, false);
    found
}

/// Collects the includes of `tokens`. In a `lenient` place (a `macro_rules!` template in the
/// body) and for another path's macro (`my_mod::include_str!`), a path that can be worked out
/// is followed, as it always was, but one that cannot is left alone rather than refused: it
/// may be a template's `$path`, or not an include at all.
fn collect(tokens: TokenStream, found: &mut Includes, lenient: bool) {
    let tokens: Vec<TokenTree> = tokens.into_iter().collect();
    let bang = |i: usize| tokens.get(i).is_some_and(|t| is_punct(t, '!'));
    let mut i = 0;
    while i < tokens.len() {
        match &tokens[i] {
            // A `macro_rules!` defined in the body holds templates.
            TokenTree::Ident(ident) if ident == "macro_rules" && bang(i + 1) => {
                if let Some(TokenTree::Group(template)) = tokens.get(i + 3) {
                    collect(template.stream(), found, true);
                }
                i += 4;
                continue;
            }
            TokenTree::Ident(ident) => {
                let kind = match ident.to_string().as_str() {
                    "include_str" => Some(IncludeKind::Str),
                    "include_bytes" => Some(IncludeKind::Bytes),
                    "include" => Some(IncludeKind::Rust),
                    _ => None,
                };
                let args = match tokens.get(i + 2) {
                    Some(TokenTree::Group(args)) if bang(i + 1) => Some(args),
                    _ => None,
                };
                if let (Some(kind), Some(args)) = (kind, args) {
                    let lenient = lenient || other_crates(&tokens[..i]);
                    match path_of(args.stream()) {
                        Some((label, path)) => found.files.push(FileInclude { kind, label, path }),
                        None if !lenient => found.unfollowed.push(args.span()),
                        None => {}
                    }
                }
            }
            TokenTree::Group(g) => collect(g.stream(), found, lenient),
            _ => {}
        }
        i += 1;
    }
}

/// Whether the macro named right after `before` is another crate's (`my_mod::include!`): a
/// path that is not `core::` or `std::`.
fn other_crates(before: &[TokenTree]) -> bool {
    let colon = |t: &TokenTree| is_punct(t, ':');
    match before {
        [.., root, a, b] if colon(a) && colon(b) => {
            !matches!(root, TokenTree::Ident(root) if root == "core" || root == "std")
        }
        _ => false,
    }
}

/// The include's path, as `(label, path)`, when it is one this macro can work out.
fn path_of(args: TokenStream) -> Option<(String, String)> {
    let tokens = opened(args);
    let tokens = without_trailing_comma(tokens);
    part(without_std_path(&tokens))
}

/// One piece of a path: a literal, `env!`, or `concat!` of pieces.
fn part(tokens: &[TokenTree]) -> Option<(String, String)> {
    if let Some(text) = literal_text(tokens) {
        return Some((text.clone(), text));
    }
    let (name, args) = macro_call(tokens)?;
    let args = without_trailing_comma(opened(args));
    match name.as_str() {
        "env" => env(&args),
        "concat" => {
            let (mut label, mut path) = (String::new(), String::new());
            for piece in args.split(is_comma) {
                let (l, p) = part(without_std_path(piece))?;
                label.push_str(&l);
                path.push_str(&p);
            }
            Some((label, path))
        }
        _ => None,
    }
}

/// What `concat!` makes of a literal: a string's value, a number as written (a leading `-`
/// kept), a character, `true` or `false`.
fn literal_text(tokens: &[TokenTree]) -> Option<String> {
    let (sign, token) = match tokens {
        [TokenTree::Punct(minus), token] if minus.as_char() == '-' => ("-", token),
        [token] => ("", token),
        _ => return None,
    };
    match token {
        TokenTree::Ident(word) if sign.is_empty() && (word == "true" || word == "false") => {
            Some(word.to_string())
        }
        TokenTree::Literal(literal) => {
            let text = match syn::parse_str::<syn::Lit>(&literal.to_string()).ok()? {
                syn::Lit::Str(s) if sign.is_empty() => s.value(),
                syn::Lit::Char(c) if sign.is_empty() => c.value().to_string(),
                syn::Lit::Int(n) => n.base10_digits().to_string(),
                syn::Lit::Float(f) => f.base10_digits().to_string(),
                _ => return None,
            };
            Some(format!("{sign}{text}"))
        }
        _ => None,
    }
}

/// `env!("NAME")` or `env!("NAME", "message")`: `(label, value)`, the variable as set for this
/// compilation.
fn env(args: &[TokenTree]) -> Option<(String, String)> {
    let name = match args {
        [name] => name,
        [name, comma, TokenTree::Literal(_)] if is_comma(comma) => name,
        _ => return None,
    };
    let TokenTree::Literal(_) = name else {
        return None;
    };
    let name = literal_text(std::slice::from_ref(name))?;
    let value = std::env::var(&name).ok()?;
    Some((format!("${{{name}}}"), value))
}

/// `name!( args )`: the macro's name and its arguments.
fn macro_call(tokens: &[TokenTree]) -> Option<(String, TokenStream)> {
    match tokens {
        [TokenTree::Ident(name), TokenTree::Punct(bang), TokenTree::Group(args)]
            if bang.as_char() == '!' && args.delimiter() != Delimiter::None =>
        {
            Some((name.to_string(), args.stream()))
        }
        _ => None,
    }
}

/// `tokens` with every invisible group opened: a `macro_rules!` fragment (`$path:expr`) passed
/// into the body arrives wrapped in one.
fn opened(tokens: TokenStream) -> Vec<TokenTree> {
    let mut out = Vec::new();
    for token in tokens {
        match token {
            TokenTree::Group(g) if g.delimiter() == Delimiter::None => {
                out.extend(opened(g.stream()))
            }
            other => out.push(other),
        }
    }
    out
}

fn is_comma(token: &TokenTree) -> bool {
    is_punct(token, ',')
}

fn without_trailing_comma(mut tokens: Vec<TokenTree>) -> Vec<TokenTree> {
    if tokens.last().is_some_and(is_comma) {
        tokens.pop();
    }
    tokens
}

/// `tokens` without a leading `::core::`, `core::`, `::std::` or `std::`.
fn without_std_path(tokens: &[TokenTree]) -> &[TokenTree] {
    let colon = |t: Option<&TokenTree>| t.is_some_and(|t| is_punct(t, ':'));
    let start = usize::from(colon(tokens.first()) && colon(tokens.get(1))) * 2;
    match tokens.get(start..start + 3) {
        Some([TokenTree::Ident(root), a, b])
            if (root == "core" || root == "std") && colon(Some(a)) && colon(Some(b)) =>
        {
            &tokens[start + 3..]
        }
        _ => tokens,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proc_macro2::Group;
    use std::str::FromStr;

    /// The files `tokens` include, then `None` for each include that is not followed.
    fn listed(tokens: &TokenStream) -> Vec<Option<FileInclude>> {
        let found = includes(tokens);
        let unfollowed = found.unfollowed.iter().map(|_| None);
        found
            .files
            .into_iter()
            .map(Some)
            .chain(unfollowed)
            .collect()
    }

    fn files(src: &str) -> Vec<Option<FileInclude>> {
        listed(&TokenStream::from_str(src).expect("tokens"))
    }

    fn file(kind: IncludeKind, label: &str, path: &str) -> Option<FileInclude> {
        Some(FileInclude {
            kind,
            label: label.to_string(),
            path: path.to_string(),
        })
    }

    #[test]
    fn literal_paths_are_followed_as_written() {
        assert_eq!(
            files(
                r#"{ db.execute(include_str!("add.sql")).await?; f(include_bytes!(r"blob.bin",)); }"#
            ),
            [
                file(IncludeKind::Str, "add.sql", "add.sql"),
                file(IncludeKind::Bytes, "blob.bin", "blob.bin"),
            ]
        );
        assert_eq!(
            files(r#"{ ::core::include_str!("a.sql"); std::include!("b.rs"); }"#),
            [
                file(IncludeKind::Str, "a.sql", "a.sql"),
                file(IncludeKind::Rust, "b.rs", "b.rs"),
            ]
        );
    }

    #[test]
    fn env_and_concat_are_worked_out_and_named_by_the_variable() {
        let root = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it");
        assert_eq!(
            files(r#"{ include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/sql/", "add.sql",)) }"#),
            [file(
                IncludeKind::Str,
                "${CARGO_MANIFEST_DIR}/sql/add.sql",
                &format!("{root}/sql/add.sql"),
            )]
        );
        assert_eq!(
            files(
                r#"{ include_str!(::core::concat!(::core::env!("CARGO_MANIFEST_DIR"), "/a.sql")) }"#
            ),
            [file(
                IncludeKind::Str,
                "${CARGO_MANIFEST_DIR}/a.sql",
                &format!("{root}/a.sql"),
            )]
        );
        assert_eq!(
            files(r#"{ include_str!(concat!("sql/", "a.sql")) }"#),
            [file(IncludeKind::Str, "sql/a.sql", "sql/a.sql")],
            "literals alone are named like the one literal they make"
        );
    }

    #[test]
    fn anything_else_is_unfollowed() {
        for src in [
            r#"{ include_str!(PATH) }"#,
            r#"{ include_str!(my_path!()) }"#,
            r#"{ include_str!(concat!(PATH, ".sql")) }"#,
            r#"{ include_str!(env!("MIGRATE_NO_SUCH_VARIABLE_IS_SET")) }"#,
            r#"{ include_str!(concat!("a", stringify!(b))) }"#,
            r#"{ include_str!(concat!("a", b"x")) }"#,
            r#"{ include_str!(concat!("a", -true)) }"#,
        ] {
            assert_eq!(files(src), [None], "{src}");
        }
        assert_eq!(
            files(r#"{ let include = 1; include_str; x!(include) }"#),
            []
        );
    }

    #[test]
    fn concat_takes_what_rustc_takes() {
        assert_eq!(
            files(r#"{ include_str!(concat!("sql/v", 2, "_", -1, 'c', true, 1.5, ".sql")) }"#),
            [file(
                IncludeKind::Str,
                "sql/v2_-1ctrue1.5.sql",
                "sql/v2_-1ctrue1.5.sql"
            )]
        );
        assert_eq!(
            files(r#"{ include_str!(concat!(concat!("a", "b"), std::concat!("c"))) }"#),
            [file(IncludeKind::Str, "abc", "abc")]
        );
        let root = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it");
        assert_eq!(
            files(r#"{ include_str!(env!("CARGO_MANIFEST_DIR", "set by cargo")) }"#),
            [file(IncludeKind::Str, "${CARGO_MANIFEST_DIR}", &root)]
        );
    }

    #[test]
    fn a_path_from_a_macro_rules_fragment_is_followed() {
        // `$path:expr` arrives in an invisible group.
        let fragment = Group::new(
            Delimiter::None,
            TokenStream::from_str(r#""a.sql""#).unwrap(),
        );
        let body: TokenStream = quote::quote!({ db.execute(include_str!(#fragment)).await });
        assert_eq!(listed(&body), [file(IncludeKind::Str, "a.sql", "a.sql")]);
    }

    #[test]
    fn other_macros_and_macro_templates_are_followed_when_they_can_be_and_never_refused() {
        assert_eq!(
            files(r#"{ my_mod::include!(x); self::include_str!(y) }"#),
            []
        );
        assert_eq!(
            files(r#"{ macro_rules! m { ($p:expr) => { include_str!($p) } } m!("a.sql") }"#),
            []
        );
        // A literal path there was always followed: the checksums of such steps stay.
        assert_eq!(
            files(
                r#"{ macro_rules! m { () => { include_str!("a.sql") } } my_mod::include_str!("b.sql") }"#
            ),
            [
                file(IncludeKind::Str, "a.sql", "a.sql"),
                file(IncludeKind::Str, "b.sql", "b.sql"),
            ]
        );
    }
}
