//! The files a step's bodies pull in with `include_str!`, `include_bytes!` or `include!`: their
//! content is part of the step's checksum, so an edit to one is an edit to the step.
//!
//! A path is followed when it is a string literal, `env!("NAME")`, or `concat!` of those (the
//! usual `concat!(env!("CARGO_MANIFEST_DIR"), "/sql/add_state.sql")`), each optionally written
//! as `core::`/`std::` path. The checksum names such a path as written, with `env!("NAME")`
//! kept as `${NAME}`, so it does not depend on where the crate is checked out. Any other path
//! expression is refused at compile time: the checksum could not see its file.

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

/// One include found in a body.
#[derive(Debug, Clone)]
pub(crate) enum Include {
    /// A file the checksum follows.
    File(FileInclude),
    /// A path expression this macro cannot work out, at its span.
    Unfollowed(Span),
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
pub(crate) fn includes(tokens: &TokenStream) -> Vec<Include> {
    let mut found = Vec::new();
    collect(tokens.clone(), &mut found);
    found
}

fn collect(tokens: TokenStream, found: &mut Vec<Include>) {
    let tokens: Vec<TokenTree> = tokens.into_iter().collect();
    for (i, token) in tokens.iter().enumerate() {
        match token {
            TokenTree::Ident(ident) => {
                let kind = match ident.to_string().as_str() {
                    "include_str" => IncludeKind::Str,
                    "include_bytes" => IncludeKind::Bytes,
                    "include" => IncludeKind::Rust,
                    _ => continue,
                };
                let bang =
                    matches!(tokens.get(i + 1), Some(TokenTree::Punct(p)) if p.as_char() == '!');
                let Some(TokenTree::Group(args)) = tokens.get(i + 2).filter(|_| bang) else {
                    continue;
                };
                found.push(match path_of(args.stream()) {
                    Some((label, path)) => Include::File(FileInclude { kind, label, path }),
                    None => Include::Unfollowed(args.span()),
                });
            }
            TokenTree::Group(g) => collect(g.stream(), found),
            _ => {}
        }
    }
}

/// The include's path, as `(label, path)`, when it is one this macro can work out.
fn path_of(args: TokenStream) -> Option<(String, String)> {
    let tokens = without_trailing_comma(args.into_iter().collect());
    let tokens = without_std_path(&tokens);
    if let [TokenTree::Literal(_)] = tokens {
        let text = string(&tokens[0])?;
        return Some((text.clone(), text));
    }
    let (name, args) = macro_call(tokens)?;
    match name.as_str() {
        "env" => env(args),
        "concat" => {
            let (mut label, mut path) = (String::new(), String::new());
            let parts: Vec<TokenTree> = args.into_iter().collect();
            for part in without_trailing_comma(parts).split(is_comma) {
                let part = without_std_path(part);
                let (l, p) = match part {
                    [literal @ TokenTree::Literal(_)] => {
                        let text = string(literal)?;
                        (text.clone(), text)
                    }
                    _ => match macro_call(part)? {
                        (name, args) if name == "env" => env(args)?,
                        _ => return None,
                    },
                };
                label.push_str(&l);
                path.push_str(&p);
            }
            Some((label, path))
        }
        _ => None,
    }
}

/// `env!("NAME")`'s `(label, value)`: the variable as set for this compilation.
fn env(args: TokenStream) -> Option<(String, String)> {
    let tokens = without_trailing_comma(args.into_iter().collect());
    let [literal @ TokenTree::Literal(_)] = tokens.as_slice() else {
        return None;
    };
    let name = string(literal)?;
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

/// The value of a string literal token (`"..."` or a raw string).
fn string(token: &TokenTree) -> Option<String> {
    syn::parse_str::<syn::LitStr>(&token.to_string())
        .ok()
        .map(|lit| lit.value())
}

fn is_comma(token: &TokenTree) -> bool {
    matches!(token, TokenTree::Punct(p) if p.as_char() == ',')
}

fn without_trailing_comma(mut tokens: Vec<TokenTree>) -> Vec<TokenTree> {
    if tokens.last().is_some_and(is_comma) {
        tokens.pop();
    }
    tokens
}

/// `tokens` without a leading `::core::`, `core::`, `::std::` or `std::`.
fn without_std_path(tokens: &[TokenTree]) -> &[TokenTree] {
    let colon =
        |t: Option<&TokenTree>| matches!(t, Some(TokenTree::Punct(p)) if p.as_char() == ':');
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
    use std::str::FromStr;

    fn found(src: &str) -> Vec<Include> {
        includes(&TokenStream::from_str(src).expect("tokens"))
    }

    /// The files `src` includes; `None` for each include that is not followed.
    fn files(src: &str) -> Vec<Option<FileInclude>> {
        found(src)
            .into_iter()
            .map(|include| match include {
                Include::File(file) => Some(file),
                Include::Unfollowed(_) => None,
            })
            .collect()
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
            r#"{ include_bytes!(1) }"#,
        ] {
            assert_eq!(files(src), [None], "{src}");
        }
        assert_eq!(
            files(r#"{ let include = 1; include_str; x!(include) }"#),
            []
        );
    }
}
