//! The checksum of a step: SHA-256 over everything the step runs, in a canonical form, so that
//! formatting never changes it and nearly every real edit does (the known exceptions: commas
//! are not written, so `[a, -b]` and `[a - b]` read alike, as do runs of whitespace inside a
//! string literal; the README lists them).
//!
//! - **Rust steps:** the up function's body and the down function's body (when the down is in
//!   the same file), plus every file the bodies pull in (`include_str!`, `include!`, and
//!   `include_bytes!` byte for byte; see [`crate::includes`]). Bodies
//!   are hashed as tokens, written canonically: comments and layout are not tokens, runs of
//!   whitespace inside string literals are folded, and what rustfmt may add or remove (trailing
//!   commas, a `;` after a final `return`/`break`/`continue`, braces around a match arm's or a
//!   closure's expression, doubled parentheses) is written one way. A one-element tuple `(x,)` stays
//!   distinct from `(x)`.
//! - **SQL steps:** the up file and the down file, with line endings and trailing whitespace
//!   normalised.

use crate::includes::{IncludeKind, Included};
use proc_macro2::{Delimiter, Spacing, TokenStream, TokenTree};
use sha2::{Digest, Sha256};

/// The prefix that names the algorithm in every stored step checksum.
pub(crate) const ALGORITHM: &str = "sha256";

fn render(hasher: Sha256) -> String {
    let digest = hasher.finalize();
    let mut out = String::with_capacity(ALGORITHM.len() + 1 + 64);
    out.push_str(ALGORITHM);
    out.push(':');
    for byte in digest {
        out.push_str(&format!("{byte:02x}"));
    }
    out
}

/// The checksum of a Rust step: its up body, the canonical text of its down body (see
/// [`canonical`]; when known) and the files they include. A file pulled in with `include_str!`
/// is hashed exactly as it was before the other two kinds were followed: such steps kept their
/// checksums.
pub(crate) fn rust_step(up: &TokenStream, down: Option<&str>, included: &[Included]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"rust\0up\0");
    hasher.update(canonical(up).as_bytes());
    if let Some(down) = down {
        hasher.update(b"\0down\0");
        hasher.update(down.as_bytes());
    }
    for file in included {
        let tag: &[u8] = match file.kind {
            IncludeKind::Str => b"\0include\0",
            IncludeKind::Rust => b"\0include!\0",
            IncludeKind::Bytes => b"\0include_bytes\0",
        };
        hasher.update(tag);
        hasher.update(file.label.as_bytes());
        hasher.update(b"\0");
        match file.kind {
            IncludeKind::Bytes => hasher.update(&file.content),
            IncludeKind::Str | IncludeKind::Rust => {
                let text = String::from_utf8_lossy(&file.content);
                hasher.update(normalize_text(&text).as_bytes());
            }
        }
    }
    render(hasher)
}

/// The checksum of a SQL step: its up file and its down file.
pub(crate) fn sql_step(up: &str, down: Option<&str>) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"sql\0up\0");
    hasher.update(normalize_text(up).as_bytes());
    if let Some(down) = down {
        hasher.update(b"\0down\0");
        hasher.update(normalize_text(down).as_bytes());
    }
    render(hasher)
}

/// A stable 64-bit hash (the first eight bytes of SHA-256), for the compile-time table keys.
pub(crate) fn stable_u64(bytes: &[u8]) -> u64 {
    let digest = Sha256::digest(bytes);
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_le_bytes(first)
}

/// Text with CRLF and CR turned into LF, trailing whitespace removed from every line, and
/// trailing blank lines dropped: an editor's or a checkout's changes, not the author's.
pub(crate) fn normalize_text(text: &str) -> String {
    let unified = text.replace("\r\n", "\n").replace('\r', "\n");
    let mut out: String = unified
        .split('\n')
        .map(str::trim_end)
        .collect::<Vec<_>>()
        .join("\n");
    while out.ends_with('\n') {
        out.pop();
    }
    out
}

/// Keywords after which a parenthesised group is an expression or a tuple, not a call's
/// arguments.
const KEYWORDS: &[&str] = &[
    "as", "async", "await", "box", "break", "const", "continue", "crate", "dyn", "else", "enum",
    "extern", "fn", "for", "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub",
    "ref", "return", "static", "struct", "trait", "type", "unsafe", "use", "where", "while",
    "yield",
];

/// The canonical text of a token stream (see the module docs).
pub(crate) fn canonical(tokens: &TokenStream) -> String {
    let mut out = String::new();
    write_stream(tokens.clone().into_iter().collect(), &mut out);
    out
}

pub(crate) fn is_punct(token: &TokenTree, ch: char) -> bool {
    matches!(token, TokenTree::Punct(p) if p.as_char() == ch)
}

/// Whether a parenthesised group after `prev` holds a call's (or a tuple struct's, or a
/// macro's) arguments, where a trailing comma means nothing.
fn call_like(prev: Option<&TokenTree>) -> bool {
    match prev {
        Some(TokenTree::Ident(ident)) => !KEYWORDS.contains(&ident.to_string().as_str()),
        Some(TokenTree::Punct(p)) => matches!(p.as_char(), '>' | '!'),
        Some(TokenTree::Group(g)) => {
            matches!(g.delimiter(), Delimiter::Parenthesis | Delimiter::Bracket)
        }
        _ => false,
    }
}

/// An expression group's tokens without a redundant layer of parentheses: `((x))` is `(x)`.
/// A call's argument `f(())` and the unit value `(())` keep theirs.
fn strip_nested_parens(group: &proc_macro2::Group) -> Vec<TokenTree> {
    let mut inner: Vec<TokenTree> = group.stream().into_iter().collect();
    while let [TokenTree::Group(only)] = inner.as_slice() {
        if only.delimiter() != Delimiter::Parenthesis || only.stream().is_empty() {
            break;
        }
        inner = only.stream().into_iter().collect();
    }
    inner
}

/// The tokens of a brace group, without a `;` after a final `return`, `break` or `continue`.
fn brace_contents(group: &proc_macro2::Group) -> Vec<TokenTree> {
    let mut inner: Vec<TokenTree> = group.stream().into_iter().collect();
    if inner.last().is_some_and(|t| is_punct(t, ';')) {
        let body = &inner[..inner.len() - 1];
        let start = body
            .iter()
            .rposition(|t| is_punct(t, ';'))
            .map_or(0, |i| i + 1);
        let diverges = matches!(body.get(start), Some(TokenTree::Ident(i))
            if matches!(i.to_string().as_str(), "return" | "break" | "continue"));
        if diverges {
            inner.pop();
        }
    }
    inner
}

fn write_stream(tokens: Vec<TokenTree>, out: &mut String) {
    let mut prev: Option<&TokenTree> = None;
    let mut after_arrow = false;
    for (i, token) in tokens.iter().enumerate() {
        match token {
            // Commas are separators whose trailing form rustfmt chooses: never written. A
            // tuple's commas are kept as a marker (below), so `(x,)` and `(x)` differ.
            TokenTree::Punct(p) if p.as_char() == ',' => {
                prev = Some(token);
                continue;
            }
            TokenTree::Group(group) => {
                match group.delimiter() {
                    Delimiter::Parenthesis => {
                        let call = call_like(prev);
                        let inner = if call {
                            group.stream().into_iter().collect()
                        } else {
                            strip_nested_parens(group)
                        };
                        let tuple = !call && inner.iter().any(|t| is_punct(t, ','));
                        out.push_str(if tuple { "(, " } else { "( " });
                        write_stream(inner, out);
                        out.push(')');
                    }
                    Delimiter::Bracket => {
                        out.push_str("[ ");
                        write_stream(group.stream().into_iter().collect(), out);
                        out.push(']');
                    }
                    Delimiter::Brace => {
                        let inner = brace_contents(group);
                        // `=> { expr }` is `=> expr`, and `|x| { expr }` is `|x| expr`: rustfmt
                        // wraps a long match arm or closure body in braces.
                        let arm = after_arrow && !inner.iter().any(|t| is_punct(t, ';'));
                        if !arm {
                            out.push_str("{ ");
                        }
                        write_stream(inner, out);
                        if !arm {
                            out.push('}');
                        }
                    }
                    Delimiter::None => write_stream(group.stream().into_iter().collect(), out),
                }
            }
            TokenTree::Ident(ident) => out.push_str(&ident.to_string()),
            TokenTree::Punct(punct) => out.push(punct.as_char()),
            TokenTree::Literal(literal) => {
                let text = literal.to_string();
                if text.contains('"') {
                    out.push_str(&text.split_whitespace().collect::<Vec<_>>().join(" "));
                } else {
                    out.push_str(&text);
                }
            }
        }
        if !out.ends_with(' ') {
            out.push(' ');
        }
        after_arrow = is_punct(token, '|')
            || is_punct(token, '>')
                && i > 0
                && matches!(&tokens[i - 1], TokenTree::Punct(p) if p.as_char() == '=' && p.spacing() == Spacing::Joint);
        prev = Some(token);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn sum(src: &str) -> String {
        rust_step(&TokenStream::from_str(src).unwrap(), None, &[])
    }

    #[test]
    fn layout_comments_and_trailing_commas_do_not_matter() {
        let a = sum("{ db.execute(\"CREATE TABLE t (id INT)\").await?; Ok(()) }");
        let b = sum("{\n    // make the table\n    db . execute(\n  \"CREATE TABLE t\n      (id INT)\",\n ).await ?;\r\n Ok(())\n}");
        assert_eq!(a, b);
        let c = sum("{ let v = vec![1, 2, 3,]; f(a, b,); match x { A => 1, B => { g(x) }, } }");
        let d = sum("{ let v = vec![1, 2, 3]; f(a, b); match x { A => 1, B => g(x) } }");
        assert_eq!(c, d);
        assert_eq!(
            sum("{ if x { return y; } ((z)) }"),
            sum("{ if x { return y } (z) }")
        );
    }

    #[test]
    fn real_edits_do_matter() {
        let a = sum("{ db.execute(\"CREATE TABLE t (id INT)\").await?; Ok(()) }");
        assert_ne!(
            a,
            sum("{ db.execute(\"CREATE TABLE t (id BIGINT)\").await?; Ok(()) }")
        );
        assert_ne!(
            sum("{ let t = (x,); }"),
            sum("{ let t = (x); }"),
            "a one-element tuple"
        );
        assert_ne!(
            sum("{ match (a,) { _ => 1 } }"),
            sum("{ match (a) { _ => 1 } }")
        );
        assert_ne!(
            sum("{ f(); }"),
            sum("{ f() }"),
            "a unit statement is not a tail value"
        );
        assert_ne!(
            sum("{ Ok(()) }"),
            sum("{ Ok() }"),
            "a unit argument is an argument"
        );
        assert!(a.starts_with("sha256:") && a.len() == "sha256:".len() + 64);
    }

    #[test]
    fn the_down_and_included_files_are_covered() {
        let up = TokenStream::from_str("{ Ok(()) }").unwrap();
        let down = canonical(&TokenStream::from_str("{ drop() }").unwrap());
        let edited = canonical(&TokenStream::from_str("{ drop_all() }").unwrap());
        let file = |text: &str| vec![Included::text("up.sql", text)];
        assert_ne!(
            rust_step(&up, Some(&down), &[]),
            rust_step(&up, Some(&edited), &[])
        );
        assert_ne!(
            rust_step(&up, None, &file("A")),
            rust_step(&up, None, &file("B"))
        );
        assert_eq!(
            rust_step(&up, None, &file("A;\r\nB;  \r\n")),
            rust_step(&up, None, &file("A;\nB;\n"))
        );
    }

    #[test]
    fn include_str_files_keep_the_checksum_they_had_and_other_includes_count() {
        let up = TokenStream::from_str("{ Ok(()) }").unwrap();
        // The form every `include_str!` checksum has had since checksums were SHA-256.
        let mut before = Sha256::new();
        before.update(b"rust\0up\0");
        before.update(canonical(&up).as_bytes());
        before.update(b"\0include\0up.sql\0A;");
        assert_eq!(
            rust_step(&up, None, &[Included::text("up.sql", "A;\r\n")]),
            render(before)
        );
        let of = |kind, content: &[u8]| {
            let file = Included {
                kind,
                label: "f".to_string(),
                content: content.to_vec(),
            };
            rust_step(&up, None, &[file])
        };
        assert_ne!(
            of(IncludeKind::Bytes, b"\x01\xff"),
            of(IncludeKind::Bytes, b"\x01\xfe")
        );
        assert_ne!(
            of(IncludeKind::Bytes, b"a\n"),
            of(IncludeKind::Bytes, b"a\r\n")
        );
        assert_ne!(
            of(IncludeKind::Rust, b"1 + 1"),
            of(IncludeKind::Rust, b"1 + 2")
        );
        assert_ne!(of(IncludeKind::Rust, b"x"), of(IncludeKind::Str, b"x"));
    }

    #[test]
    fn sql_files_ignore_line_endings_and_trailing_space_only() {
        assert_eq!(
            sql_step("CREATE TABLE t();\r\n", None),
            sql_step("CREATE TABLE t();  \n\n", None)
        );
        assert_ne!(
            sql_step("CREATE TABLE t();", None),
            sql_step("CREATE TABLE  t();", None)
        );
        assert_ne!(sql_step("A", Some("B")), sql_step("A", Some("C")));
        assert_ne!(sql_step("A", None), sql_step("A", Some("")));
    }
}
