//! Reading a SQL file at compile time: its `-- migrate: no-transaction` marker, its statements,
//! and its `{{...}}` templates.
//!
//! Statements are split on `;` outside of quotes (`'...'`, `"..."`, `` `...` ``), comments
//! (`-- ...`, `/* ... */`), PostgreSQL dollar quotes (`$$...$$`, `$tag$...$tag$`) and the
//! `BEGIN ... END` body of a trigger, function, procedure or event.

/// The marker, alone on the first line, that runs a file outside a transaction.
pub(crate) const NO_TRANSACTION: &str = "-- migrate: no-transaction";

/// Whether the file's first line is the no-transaction marker.
pub(crate) fn no_transaction(sql: &str) -> bool {
    sql.lines()
        .next()
        .is_some_and(|line| line.trim().eq_ignore_ascii_case(NO_TRANSACTION))
}

/// What is wrong with the file `shown` (text `sql`; `fresh` for a `.fresh.sql`), each as a
/// message naming it: a `mysql` client command, an unknown template, a statement that controls
/// its own transaction, no statement at all, and a marker line that is not the one marker.
pub(crate) fn problems(shown: &str, sql: &str, fresh: bool) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(statement) = client_command(sql) {
        out.push(format!("`{shown}` uses `{}`, a command of the `mysql` client that servers do not know; write the routine with plain `;`: a `BEGIN ... END` body stays in its statement", statement.lines().next().unwrap_or_default()));
    }
    for unknown in unknown_placeholders(sql) {
        out.push(format!("`{shown}` uses the unknown template `{unknown}`; the templates are {{{{tables.NAME}}}} and {{{{schema}}}}, and `\\{{{{` writes a literal `{{{{`"));
    }
    if let Some(statement) = transaction_control(sql) {
        out.push(format!("`{shown}` controls its own transaction (`{}`): every file runs in one transaction already (or, with `{NO_TRANSACTION}` on its first line, statement by statement outside one); remove it", statement.lines().next().unwrap_or_default()));
    }
    if statements(sql).is_empty() {
        // A scaffolded file not written yet would be recorded as applied, and its real SQL
        // then refused as an edit; a file of lone CR line endings reads as one comment.
        out.push(format!("`{shown}` holds no statement, only comments and blank lines (or lone CR line endings, which read as one comment line): write the migration, or `SELECT 1;` for a step that does nothing on purpose (a step already applied then reads as edited: `accept-checksums` it once)"));
    }
    for (n, line) in sql.lines().enumerate() {
        let Some(comment) = line.trim().strip_prefix("--") else {
            continue;
        };
        // A marker meant, not a comment that begins "Migrate: copy the old rows": the word
        // `migrate:` and, after it, a transaction.
        let comment = comment.trim_start();
        let names_migrate = comment
            .get(..8)
            .is_some_and(|word| word.eq_ignore_ascii_case("migrate:"));
        let about_transactions = comment
            .get(8..)
            .is_some_and(|rest| rest.to_ascii_lowercase().contains("transaction"));
        if !names_migrate || !about_transactions {
            continue;
        }
        let the_marker = line.trim().eq_ignore_ascii_case(NO_TRANSACTION);
        if n == 0 && the_marker && fresh {
            out.push(format!("`{shown}` is a fresh install, which runs as its up and down say: put `{NO_TRANSACTION}` on the up (or the down) instead"));
        } else if !(n == 0 && the_marker) {
            out.push(format!("`{shown}` line {}: `{}` is not a marker: only `{NO_TRANSACTION}`, alone on the first line, is one (a step already applied reads as edited after the fix: `accept-checksums` it once)", n + 1, line.trim()));
        }
    }
    out
}

/// The statements of `sql`, each without its `;`; statements holding nothing but comments and
/// whitespace are left out. The body of a trigger, function, procedure or event
/// (`BEGIN ... END`, PostgreSQL's `BEGIN ATOMIC ... END`) stays in its statement.
pub(crate) fn statements(sql: &str) -> Vec<String> {
    let bytes = sql.as_bytes();
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    let mut meaningful = false;
    let mut body = RoutineBody::default();
    while i < bytes.len() {
        let b = bytes[i];
        let skip_to = match b {
            b'\'' | b'"' | b'`' => Some(closing_quote(bytes, i, b)),
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                Some(sql[i..].find('\n').map_or(bytes.len(), |n| i + n + 1))
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => Some(
                sql[i + 2..]
                    .find("*/")
                    .map_or(bytes.len(), |n| i + 2 + n + 2),
            ),
            b'$' => dollar_quote_end(sql, i),
            _ if starts_word(bytes, i) => Some(body.read_word(sql, i)),
            _ => None,
        };
        match skip_to {
            Some(end) => {
                // A comment is not a statement, but MySQL's executable comments (`/*! ... */`,
                // MariaDB's `/*M! ... */`) run.
                let executable =
                    b == b'/' && (sql[i..].starts_with("/*!") || sql[i..].starts_with("/*M!"));
                if !matches!(b, b'-' | b'/') || executable {
                    meaningful = true;
                }
                i = end.max(i + 1);
            }
            None if b == b';' && !body.inside() => {
                if meaningful {
                    out.push(sql[start..i].trim().to_string());
                }
                start = i + 1;
                meaningful = false;
                body = RoutineBody::default();
                i += 1;
            }
            None => {
                if !b.is_ascii_whitespace() {
                    meaningful = true;
                }
                i += 1;
            }
        }
    }
    if meaningful {
        out.push(sql[start..].trim().to_string());
    }
    out
}

/// Where a statement stands with respect to a routine's body, read word by word. A `CREATE`
/// whose object is a `TRIGGER`, `FUNCTION`, `PROCEDURE` or `EVENT` (the first word after
/// `CREATE` that is not `OR REPLACE`, `TEMPORARY`, `AGGREGATE`, `CONSTRAINT`, `DEFINER = ...`
/// or `SQL SECURITY ...`) counts `BEGIN`/`CASE` against `END` (MySQL's `END IF`, `END LOOP`,
/// `END WHILE`, `END REPEAT` and MariaDB's `END FOR` close what was not counted; a word after
/// a `.` is a column, as in `NEW.end`), and a `;` inside does not end the statement.
#[derive(Debug, Default)]
struct RoutineBody {
    /// Words read in this statement.
    words: usize,
    creates: bool,
    /// The object the `CREATE` makes is known.
    decided: bool,
    routine: bool,
    depth: usize,
}

/// Words between `CREATE` and the kind of object it makes.
const CREATE_MODIFIERS: [&str; 10] = [
    "OR",
    "REPLACE",
    "TEMP",
    "TEMPORARY",
    "AGGREGATE",
    "CONSTRAINT",
    "DEFINER",
    "CURRENT_USER",
    "SQL",
    "SECURITY",
];

impl RoutineBody {
    fn inside(&self) -> bool {
        self.depth > 0
    }

    /// Reads the word at `at`, returning the index past it (and past the word after an
    /// `END` that it closes).
    fn read_word(&mut self, sql: &str, at: usize) -> usize {
        let end = word_end(sql.as_bytes(), at);
        let word = &sql[at..end];
        let is = |w: &str| word.eq_ignore_ascii_case(w);
        self.words += 1;
        if self.words == 1 {
            self.creates = is("CREATE");
            return end;
        }
        if !self.creates {
            return end;
        }
        let before = sql[..at].trim_end().bytes().next_back();
        if !self.decided {
            // `DEFINER = user@host`, `SQL SECURITY INVOKER`: parts of the head, not its object.
            let part_of_modifier = matches!(before, Some(b'=' | b'@'))
                || CREATE_MODIFIERS.iter().any(|w| is(w))
                || ["INVOKER"].iter().any(|w| is(w));
            if !part_of_modifier {
                self.decided = true;
                self.routine = ["TRIGGER", "FUNCTION", "PROCEDURE", "EVENT"]
                    .iter()
                    .any(|w| is(w));
            }
            return end;
        }
        if !self.routine || before == Some(b'.') {
            return end;
        }
        if is("BEGIN") || is("CASE") {
            self.depth += 1;
        } else if is("END") {
            let next_at = end + sql[end..].len() - sql[end..].trim_start().len();
            let next_end = word_end(sql.as_bytes(), next_at);
            let next = &sql[next_at..next_end];
            let next_is = |w: &str| next.eq_ignore_ascii_case(w);
            if ["IF", "LOOP", "WHILE", "REPEAT", "FOR"]
                .iter()
                .any(|w| next_is(w))
            {
                return next_end;
            }
            self.depth = self.depth.saturating_sub(1);
            if next_is("CASE") {
                return next_end;
            }
        }
        end
    }
}

/// Whether a word (a keyword or a bare name) starts at `i`.
fn starts_word(bytes: &[u8], i: usize) -> bool {
    let is_word_byte = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'$';
    (bytes[i].is_ascii_alphabetic() || bytes[i] == b'_')
        && (i == 0 || !is_word_byte(bytes[i - 1]) && bytes[i - 1] < 0x80)
}

/// The index just past the word starting at `at`.
fn word_end(bytes: &[u8], at: usize) -> usize {
    let mut end = at;
    while end < bytes.len()
        && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_' || bytes[end] == b'$')
    {
        end += 1;
    }
    end
}

/// The index just past the quote that closes the one at `open` (a doubled quote is escaped).
fn closing_quote(bytes: &[u8], open: usize, quote: u8) -> usize {
    let mut i = open + 1;
    while i < bytes.len() {
        if bytes[i] == quote {
            if bytes.get(i + 1) == Some(&quote) {
                i += 2;
                continue;
            }
            return i + 1;
        }
        i += 1;
    }
    bytes.len()
}

/// For a `$tag$` opening at `open`, the index just past its closing `$tag$`.
fn dollar_quote_end(sql: &str, open: usize) -> Option<usize> {
    let rest = &sql[open + 1..];
    let tag_len = rest.find('$')?;
    let tag = &rest[..tag_len];
    if !tag.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        || tag.starts_with(|c: char| c.is_ascii_digit())
    {
        return None;
    }
    let delimiter = format!("${tag}$");
    let body_start = open + delimiter.len();
    sql[body_start..]
        .find(&delimiter)
        .map(|n| body_start + n + delimiter.len())
        .or(Some(sql.len()))
}

/// The first statement of `sql` that opens or closes a transaction itself, if any: every
/// file already runs in one (or, marked, outside one).
pub(crate) fn transaction_control(sql: &str) -> Option<String> {
    statements(sql).into_iter().find(|statement| {
        let code: String = statement
            .lines()
            .filter(|l| !l.trim_start().starts_with("--"))
            .collect::<Vec<_>>()
            .join(" ");
        let first = code
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_ascii_uppercase();
        let second = code
            .split_whitespace()
            .nth(1)
            .unwrap_or_default()
            .to_ascii_uppercase();
        matches!(first.as_str(), "BEGIN" | "COMMIT" | "ROLLBACK" | "END")
            && !matches!(second.as_str(), "ATOMIC")
            || first == "START" && second == "TRANSACTION"
    })
}

/// The first statement that is a command of the `mysql` client (`DELIMITER`), which no server
/// knows: a routine's body needs none here.
pub(crate) fn client_command(sql: &str) -> Option<String> {
    statements(sql).into_iter().find(|statement| {
        statement
            .lines()
            .map(str::trim_start)
            .find(|line| !line.is_empty() && !line.starts_with("--"))
            .and_then(|line| line.split_whitespace().next())
            .is_some_and(|word| word.eq_ignore_ascii_case("DELIMITER"))
    })
}

/// The `{{...}}` templates of `sql` that are neither `{{tables.NAME}}` nor `{{schema}}` (an
/// escaped `\{{` is not a template).
pub(crate) fn unknown_placeholders(sql: &str) -> Vec<String> {
    let mut unknown = Vec::new();
    let mut rest = sql;
    while let Some(start) = rest.find("{{") {
        let escaped = rest[..start].ends_with('\\');
        let after = &rest[start + 2..];
        if escaped {
            rest = after;
            continue;
        }
        let Some(end) = after.find("}}") else {
            unknown.push(format!("{{{{{}", after.lines().next().unwrap_or_default()));
            break;
        };
        let key = after[..end].trim();
        // What the renderer accepts at run time: a table name of 1 to 63 bytes, without NUL.
        let known = key == "schema"
            || key.strip_prefix("tables.").is_some_and(|t| {
                !t.is_empty() && t.len() <= 63 && !t.contains('\0') && !t.contains("{{")
            });
        if !known {
            unknown.push(format!("{{{{{}}}}}", &after[..end]));
        }
        rest = &after[end + 2..];
    }
    unknown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_outside_quotes_comments_and_dollar_quotes() {
        let sql = "-- migrate: no-transaction\nCREATE TABLE a (x TEXT DEFAULT ';');\n\
                   /* one; */ INSERT INTO a VALUES ('it''s; fine');\n\
                   CREATE FUNCTION f() RETURNS int AS $body$ SELECT 1; $body$ LANGUAGE sql;\n\
                   -- only a comment;\n  ;\nCREATE INDEX CONCURRENTLY i ON a (x)";
        let got = statements(sql);
        assert_eq!(got.len(), 4, "{got:#?}");
        assert!(got[0].ends_with("DEFAULT ';')"), "{got:#?}");
        assert!(got[2].contains("$body$ SELECT 1; $body$"), "{got:#?}");
        assert_eq!(got[3], "CREATE INDEX CONCURRENTLY i ON a (x)");
        assert!(no_transaction(sql));
        assert!(!no_transaction(
            "CREATE TABLE a ();\n-- migrate: no-transaction"
        ));
    }

    #[test]
    fn finds_transaction_control_and_unknown_templates() {
        assert!(transaction_control("BEGIN;\nCREATE TABLE a ();\nCOMMIT;").is_some());
        // Control words inside quotes are text: these only pass if the split respects quotes.
        assert!(transaction_control("INSERT INTO t VALUES ('x; COMMIT; y');").is_none());
        assert!(transaction_control(
            "CREATE FUNCTION f() RETURNS int AS $$ BEGIN RETURN 1; END; $$ LANGUAGE plpgsql;"
        )
        .is_none());
        assert_eq!(
            unknown_placeholders("SELECT {{tables.a}}, {{ schema }}, {{table.b}}, '\\{{json}}'"),
            ["{{table.b}}"]
        );
        assert_eq!(unknown_placeholders("x {{tables.}}"), ["{{tables.}}"]);
        let long = format!("{{{{tables.{}}}}}", "t".repeat(64));
        assert_eq!(unknown_placeholders(&long), std::slice::from_ref(&long));
        assert!(unknown_placeholders(&format!("{{{{tables.{}}}}}", "t".repeat(63))).is_empty());
    }

    #[test]
    fn a_routine_body_stays_in_its_statement() {
        let sqlite = "CREATE TABLE t (id INT, begin_at INT);\n\
                      CREATE TRIGGER trg AFTER INSERT ON t FOR EACH ROW\nBEGIN\n\
                      UPDATE t SET id = CASE WHEN NEW.id = 1 THEN 2 ELSE 3 END;\n\
                      UPDATE t SET begin_at = 'end;';\nEND;\nCREATE INDEX i ON t (id);";
        let got = statements(sqlite);
        assert_eq!(got.len(), 3, "{got:#?}");
        assert!(
            got[1].starts_with("CREATE TRIGGER") && got[1].ends_with("END"),
            "{got:#?}"
        );
        let mysql = "CREATE DEFINER=`a`@`%` PROCEDURE p(IN n INT)\nBEGIN\n\
                     DECLARE i INT DEFAULT 0;\nWHILE i < n DO\nIF i > 0 THEN SET i = i + 1; END IF;\n\
                     SET i = i + 1;\nEND WHILE;\nlbl: LOOP LEAVE lbl; END LOOP;\n\
                     REPEAT SET i = i - 1; UNTIL i = 0 END REPEAT;\n\
                     CASE n WHEN 0 THEN SET i = 0; ELSE BEGIN END; END CASE;\nEND;\nSELECT 1;";
        let got = statements(mysql);
        assert_eq!(got.len(), 2, "{got:#?}");
        assert_eq!(got[1], "SELECT 1");
        let postgres = "CREATE OR REPLACE FUNCTION f() RETURNS int LANGUAGE sql\n\
                        BEGIN ATOMIC SELECT 1; SELECT 2; END;\nSELECT f();";
        assert_eq!(statements(postgres).len(), 2, "{:#?}", statements(postgres));
        for sql in [sqlite, mysql, postgres] {
            assert_eq!(transaction_control(sql), None, "{sql}");
        }
        // Outside a routine, BEGIN, END and a column named `begin` are what they were, even
        // in a statement that names a table `event` or `trigger`.
        assert_eq!(statements("CREATE TABLE t (begin INT); SELECT 1;").len(), 2);
        assert_eq!(
            statements(
                "CREATE INDEX CONCURRENTLY a ON event (begin);\n\
                 CREATE INDEX CONCURRENTLY b ON trigger (x);"
            )
            .len(),
            2
        );
        // MariaDB's FOR loop, columns named `end` and `begin`, DEFINER = CURRENT_USER().
        let mariadb = "CREATE DEFINER = CURRENT_USER() PROCEDURE p() SQL SECURITY INVOKER\n\
                       BEGIN\nFOR i IN 1..3 DO SELECT i; END FOR;\n\
                       UPDATE booking b SET b.end = NOW(), b.begin = NOW();\nEND;\n\
                       CREATE TRIGGER t BEFORE INSERT ON booking FOR EACH ROW\n\
                       BEGIN SET NEW.end = NEW.begin; END;\nSELECT 2;";
        let got = statements(mariadb);
        assert_eq!(got.len(), 3, "{got:#?}");
        assert_eq!(transaction_control(mariadb), None);
        assert!(transaction_control("CREATE TABLE t (x INT);\nBEGIN;\nCOMMIT;").is_some());
        assert!(transaction_control("END;").is_some());
    }

    #[test]
    fn finds_the_mysql_clients_delimiter_command() {
        let sql = "DELIMITER $$\nCREATE PROCEDURE p() BEGIN SELECT 1; END $$\nDELIMITER ;";
        assert!(client_command(sql).is_some_and(|s| s.starts_with("DELIMITER")));
        assert_eq!(client_command("CREATE TABLE delimiter (x INT);"), None);
    }

    #[test]
    fn problems_name_files_without_statements_and_stray_markers() {
        let said = |sql: &str, fresh: bool| problems("f.sql", sql, fresh).join("\n");
        assert!(said("-- to do\n\n/* later */\n", false).contains("holds no statement"));
        assert!(said("-- header\rCREATE TABLE a (x INT);\r", false).contains("holds no statement"));
        assert!(said("SELECT 1;", false).is_empty());
        assert!(said(
            "-- migrate: no-transaction\nCREATE INDEX i ON t (a);",
            false
        )
        .is_empty());
        for stray in [
            "-- licence\n-- migrate: no-transaction\nSELECT 1;",
            "--migrate:no-transaction\nSELECT 1;",
            "-- migrate: no-transaction (for CONCURRENTLY)\nSELECT 1;",
        ] {
            assert!(said(stray, false).contains("is not a marker"), "{stray}");
        }
        assert!(said("-- migrate: no-transaction\nSELECT 1;", true).contains("is a fresh install"));
        // MySQL's executable comments are statements.
        assert!(said("/*!40101 SET NAMES utf8mb4 */;", false).is_empty());
        // Comments that begin with the word, about something else, are comments.
        assert!(said("-- Migrate: copy the old rows\nSELECT 1;", false).is_empty());
        assert!(said("-- migrate: what this migration does\nSELECT 1;", false).is_empty());
        assert!(said("SELECT '{{tables.{{schema}}}}';", false).contains("unknown template"));
    }
}
