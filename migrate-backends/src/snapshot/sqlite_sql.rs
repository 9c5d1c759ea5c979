//! What SQLite keeps only in a table's own `CREATE TABLE` text: CHECK constraints,
//! AUTOINCREMENT, column collations, generated-column expressions and the table options
//! (`WITHOUT ROWID`, `STRICT`). The text is tokenized and printed back in one canonical form
//! (lower case outside string literals, identifiers unquoted, one space between tokens), so a
//! rebuild that keeps the same definition, spelled differently, compares equal.

/// One token of SQL text, in its canonical spelling.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// A word or a quoted identifier, lower-cased and unquoted.
    Word(String),
    /// A string or blob literal, as written (quotes included).
    Literal(String),
    /// A number, an operator or other punctuation.
    Symbol(String),
}

impl Token {
    fn text(&self) -> &str {
        match self {
            Token::Word(s) | Token::Literal(s) | Token::Symbol(s) => s,
        }
    }

    fn is(&self, word: &str) -> bool {
        matches!(self, Token::Word(w) if w == word)
    }
}

/// Splits SQL into tokens, dropping comments and whitespace.
fn tokenize(sql: &str) -> Vec<Token> {
    let chars: Vec<char> = sql.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '-' && chars.get(i + 1) == Some(&'-') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && chars.get(i + 1) == Some(&'*') {
            i += 2;
            while i < chars.len() && !(chars[i] == '*' && chars.get(i + 1) == Some(&'/')) {
                i += 1;
            }
            i += 2;
        } else if c == '\'' {
            let start = i;
            i += 1;
            while i < chars.len() {
                if chars[i] == '\'' {
                    if chars.get(i + 1) == Some(&'\'') {
                        i += 2;
                        continue;
                    }
                    break;
                }
                i += 1;
            }
            i = (i + 1).min(chars.len());
            tokens.push(Token::Literal(chars[start..i].iter().collect()));
        } else if c == '"' || c == '`' || c == '[' {
            let close = if c == '[' { ']' } else { c };
            i += 1;
            let mut word = String::new();
            while i < chars.len() {
                if chars[i] == close {
                    if close != ']' && chars.get(i + 1) == Some(&close) {
                        word.push(close);
                        i += 2;
                        continue;
                    }
                    break;
                }
                word.push(chars[i]);
                i += 1;
            }
            i += 1;
            tokens.push(Token::Word(word.to_lowercase()));
        } else if c.is_alphanumeric() || c == '_' || c == '$' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '$')
            {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            if c.is_ascii_digit() {
                tokens.push(Token::Symbol(word.to_lowercase()));
            } else {
                tokens.push(Token::Word(word.to_lowercase()));
            }
        } else {
            let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
            let symbol = match two.as_str() {
                "<=" | ">=" | "<>" | "!=" | "==" | "||" | "<<" | ">>" => two,
                _ => c.to_string(),
            };
            i += symbol.chars().count();
            tokens.push(Token::Symbol(symbol));
        }
    }
    tokens
}

/// Tokens printed back with one space between them, none inside parentheses.
fn print(tokens: &[Token]) -> String {
    let mut out = String::new();
    for (i, token) in tokens.iter().enumerate() {
        let text = token.text();
        let needs_quotes = matches!(token, Token::Word(w)
            if w.is_empty() || !w.chars().all(|c| c.is_alphanumeric() || c == '_' || c == '$'));
        let after_open = i > 0 && tokens[i - 1].text() == "(";
        if i > 0 && !after_open && text != ")" && text != "," {
            out.push(' ');
        }
        if needs_quotes {
            out.push('"');
            out.push_str(&text.replace('"', "\"\""));
            out.push('"');
        } else {
            out.push_str(text);
        }
    }
    out
}

/// The index of the parenthesis that closes the one at `open`.
fn closing(tokens: &[Token], open: usize) -> Option<usize> {
    let mut depth = 0usize;
    for (i, token) in tokens.iter().enumerate().skip(open) {
        match token.text() {
            "(" if matches!(token, Token::Symbol(_)) => depth += 1,
            ")" if matches!(token, Token::Symbol(_)) => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

/// `tokens` split at the commas outside parentheses.
fn split_top_level(tokens: &[Token]) -> Vec<&[Token]> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0usize, 0usize);
    for (i, token) in tokens.iter().enumerate() {
        if let Token::Symbol(s) = token {
            match s.as_str() {
                "(" => depth += 1,
                ")" => depth = depth.saturating_sub(1),
                "," if depth == 0 => {
                    parts.push(&tokens[start..i]);
                    start = i + 1;
                }
                _ => {}
            }
        }
    }
    if start < tokens.len() {
        parts.push(&tokens[start..]);
    }
    parts
}

/// What a table's `CREATE TABLE` text says beyond what the pragmas report.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct TableText {
    /// `(column, "COLLATE x")`, `(column, "GENERATED AS (expr) STORED")`: suffixes of a
    /// column's type.
    pub column_suffixes: Vec<(String, String)>,
    /// CHECK constraints, keyed by their name or, when unnamed, by their text.
    pub checks: Vec<(String, String)>,
    /// The column declared `AUTOINCREMENT`, if any.
    pub autoincrement: Option<String>,
    /// `without rowid`, `strict`, in the order written.
    pub options: Vec<String>,
}

/// Reads the parts of a `CREATE TABLE` statement that the pragmas do not report.
pub(super) fn read_table(sql: &str) -> TableText {
    let tokens = tokenize(sql);
    let mut out = TableText::default();
    let Some(open) = tokens.iter().position(|t| t.text() == "(") else {
        return out;
    };
    let Some(close) = closing(&tokens, open) else {
        return out;
    };
    for option in split_top_level(&tokens[close + 1..]) {
        if !option.is_empty() {
            out.options.push(print(option));
        }
    }
    for element in split_top_level(&tokens[open + 1..close]) {
        let Some(first) = element.first() else {
            continue;
        };
        let table_constraint = ["constraint", "primary", "unique", "check", "foreign"]
            .iter()
            .any(|w| first.is(w));
        if table_constraint {
            for (name, check) in checks_in(element) {
                out.checks
                    .push((name.unwrap_or_else(|| check.clone()), check));
            }
            continue;
        }
        let column = first.text().to_string();
        read_column(&column, &element[1..], &mut out);
    }
    out
}

/// The column constraints of one column definition that the pragmas miss.
fn read_column(column: &str, tokens: &[Token], out: &mut TableText) {
    let mut i = 0;
    while i < tokens.len() {
        let token = &tokens[i];
        if token.is("collate") {
            if let Some(name) = tokens.get(i + 1) {
                out.column_suffixes
                    .push((column.to_string(), format!("COLLATE {}", name.text())));
            }
            i += 2;
            continue;
        }
        if token.is("autoincrement") {
            out.autoincrement = Some(column.to_string());
        }
        let generated = token.is("as") && tokens.get(i + 1).map(Token::text) == Some("(");
        if generated {
            if let Some(end) = closing(tokens, i + 1) {
                let stored = tokens.get(end + 1).is_some_and(|t| t.is("stored"));
                out.column_suffixes.push((
                    column.to_string(),
                    format!(
                        "GENERATED AS {} {}",
                        print(&tokens[i + 1..=end]),
                        if stored { "STORED" } else { "VIRTUAL" }
                    ),
                ));
                i = end + 1;
                continue;
            }
        }
        i += 1;
    }
    // An unnamed CHECK is keyed by what it says, wherever it is written: a rebuild may move
    // it between the column and the table, or reorder the table's.
    for (name, check) in checks_in(tokens) {
        out.checks
            .push((name.unwrap_or_else(|| check.clone()), check));
    }
}

/// Every `[CONSTRAINT name] CHECK (expr)` in `tokens`, as `(name, "CHECK (expr)")`.
fn checks_in(tokens: &[Token]) -> Vec<(Option<String>, String)> {
    let mut found = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        if tokens[i].is("check") && tokens.get(i + 1).map(Token::text) == Some("(") {
            if let Some(end) = closing(tokens, i + 1) {
                let name = (i >= 2 && tokens[i - 2].is("constraint"))
                    .then(|| tokens[i - 1].text().to_string());
                found.push((name, format!("CHECK {}", print(&tokens[i + 1..=end]))));
                i = end + 1;
                continue;
            }
        }
        i += 1;
    }
    found
}

/// SQL text in its canonical spelling (views and triggers).
pub(super) fn canonical(sql: &str) -> String {
    print(&tokenize(sql))
}

/// An index's definition from its `CREATE INDEX` text: what follows the table name (the keys
/// and any `WHERE` predicate), canonical.
pub(super) fn index_tail(sql: &str) -> Option<String> {
    let tokens = tokenize(sql);
    let on = tokens.iter().position(|t| t.is("on"))?;
    let open = on + tokens[on..].iter().position(|t| t.text() == "(")?;
    Some(print(&tokens[open..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rebuild_spelled_differently_reads_the_same() {
        let original = read_table(
            "CREATE TABLE item (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT COLLATE NOCASE, \
             price INT CHECK (price >= 0), doubled INT GENERATED ALWAYS AS (price*2) STORED, \
             CONSTRAINT named CHECK(length(name) > 0), CHECK (price < 1000)) STRICT",
        );
        let rebuilt = read_table(
            "CREATE TABLE \"item\" (\n  \"id\" integer primary key autoincrement,\n  [name] text collate nocase,\n  \
             price int,\n  doubled int generated always as ( price * 2 ) stored,\n  \
             check(price<1000), constraint \"named\" check (length( name )>0),\n  check(price>=0)\n) strict",
        );
        // The column's CHECK moved to the table, and the table's were reordered: the same.
        let sorted = |text: &TableText| {
            let mut checks = text.checks.clone();
            checks.sort();
            checks
        };
        assert_eq!(sorted(&original), sorted(&rebuilt));
        assert_eq!(original.column_suffixes, rebuilt.column_suffixes);
        assert_eq!(original.autoincrement, rebuilt.autoincrement);
        assert_eq!(original.options, rebuilt.options);
        assert_eq!(original.autoincrement.as_deref(), Some("id"));
        assert_eq!(
            original.checks,
            [
                (
                    "CHECK (price >= 0)".to_string(),
                    "CHECK (price >= 0)".to_string()
                ),
                ("named".to_string(), "CHECK (length (name) > 0)".to_string()),
                (
                    "CHECK (price < 1000)".to_string(),
                    "CHECK (price < 1000)".to_string()
                ),
            ]
        );
        assert_eq!(
            original.column_suffixes,
            [
                ("name".to_string(), "COLLATE nocase".to_string()),
                (
                    "doubled".to_string(),
                    "GENERATED AS (price * 2) STORED".to_string()
                ),
            ]
        );
        assert_eq!(original.options, ["strict"]);
    }

    #[test]
    fn a_changed_check_or_predicate_reads_differently() {
        let a = read_table("CREATE TABLE t (x INT CHECK (x > 0))");
        let b = read_table("CREATE TABLE t (x INT CHECK (x >= 0))");
        assert_ne!(a, b);
        assert_eq!(
            index_tail("CREATE INDEX i ON t (x) WHERE x > 0").as_deref(),
            Some("(x) where x > 0")
        );
        assert_ne!(
            index_tail("CREATE INDEX i ON t (x) WHERE x > 0"),
            index_tail("CREATE INDEX i ON t(x) WHERE x > 1")
        );
        assert_eq!(
            index_tail("CREATE UNIQUE INDEX i ON \"t\" ( \"x\" ) where x>0"),
            index_tail("create unique index i on t(x) WHERE x > 0")
        );
        // String literals keep their case.
        assert_ne!(
            read_table("CREATE TABLE t (s TEXT CHECK (s <> 'A'))"),
            read_table("CREATE TABLE t (s TEXT CHECK (s <> 'a'))")
        );
    }
}
