//! The state rows packed into one text value: SQLite's `read_state` returns
//! `json_group_array(json_array(<the eight state columns>))`, so that the "already up to date"
//! check is one short statement and one hand-off to SQLite's thread, not one per table.
//!
//! The decoder reads exactly what `json_array` writes: an array of arrays whose items are
//! strings, numbers or `null`. Anything else is corrupt, and the executor then reads the rows
//! one by one (which names the bad value).

use crate::portable::STATE_READ_COLUMNS;
use crate::rows::{corrupt, state_of, StateFields};
use migrate_core::backend::StateRow;
use migrate_core::error::Result;

/// Decodes the packed state (an empty text is no rows: the table is empty or missing).
pub(crate) fn unpack(packed: &str) -> Result<Vec<StateRow>> {
    let mut json = Json {
        rest: packed.trim_start(),
    };
    if json.rest.is_empty() {
        return Ok(Vec::new());
    }
    let mut rows = Vec::new();
    json.expect('[')?;
    if !json.eat(']') {
        loop {
            rows.push(row(&mut json)?);
            if json.eat(']') {
                break;
            }
            json.expect(',')?;
        }
    }
    if !json.rest.trim_start().is_empty() {
        return Err(corrupt("packed state", json.rest));
    }
    Ok(rows)
}

fn row(json: &mut Json<'_>) -> Result<StateRow> {
    json.expect('[')?;
    let mut fields: Vec<Option<String>> = Vec::with_capacity(STATE_READ_COLUMNS.len());
    loop {
        fields.push(json.scalar()?);
        if json.eat(']') {
            break;
        }
        json.expect(',')?;
    }
    let [module, table, version, checksum, dirty_version, dirty_name, dirty_direction, dirty_since]: [Option<String>; 8] =
        fields
            .try_into()
            .map_err(|_| corrupt("packed state row", json.rest))?;
    let dirty_since = match dirty_since {
        Some(text) => Some(
            text.parse::<i64>()
                .map_err(|_| corrupt("dirty_since", &text))?,
        ),
        None => None,
    };
    state_of(StateFields {
        module: module.unwrap_or_default(),
        table: table.unwrap_or_default(),
        version,
        checksum,
        dirty_version,
        dirty_name,
        dirty_direction,
        dirty_since,
    })
}

/// The unread rest of the JSON text.
struct Json<'a> {
    rest: &'a str,
}

impl Json<'_> {
    /// Skips white space, then `c` if it is next.
    fn eat(&mut self, c: char) -> bool {
        self.rest = self.rest.trim_start();
        match self.rest.strip_prefix(c) {
            Some(after) => {
                self.rest = after;
                true
            }
            None => false,
        }
    }

    fn expect(&mut self, c: char) -> Result<()> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(corrupt("packed state", self.rest))
        }
    }

    /// A string, a number (as its text) or `null`.
    fn scalar(&mut self) -> Result<Option<String>> {
        self.rest = self.rest.trim_start();
        if let Some(after) = self.rest.strip_prefix("null") {
            self.rest = after;
            return Ok(None);
        }
        if self.rest.starts_with('"') {
            return self.string().map(Some);
        }
        let end = self
            .rest
            .find(|c: char| !(c.is_ascii_digit() || matches!(c, '-' | '+' | '.' | 'e' | 'E')))
            .unwrap_or(self.rest.len());
        if end == 0 {
            return Err(corrupt("packed state", self.rest));
        }
        let (number, after) = self.rest.split_at(end);
        self.rest = after;
        Ok(Some(number.to_string()))
    }

    /// A JSON string, unescaped.
    fn string(&mut self) -> Result<String> {
        let text = self.rest;
        // Most values have no escape: copied in one piece.
        let body = text
            .strip_prefix('"')
            .ok_or_else(|| corrupt("packed state", text))?;
        if let Some(end) = body.find(['"', '\\']) {
            if let Some(after) = body[end..].strip_prefix('"') {
                self.rest = after;
                return Ok(body[..end].to_string());
            }
        }
        let mut out = String::new();
        let mut chars = text.char_indices().skip(1);
        while let Some((at, c)) = chars.next() {
            match c {
                '"' => {
                    self.rest = &text[at + 1..];
                    return Ok(out);
                }
                '\\' => {
                    let escaped = match chars.next().map(|(_, e)| e) {
                        Some('"') => '"',
                        Some('\\') => '\\',
                        Some('/') => '/',
                        Some('b') => '\u{8}',
                        Some('f') => '\u{c}',
                        Some('n') => '\n',
                        Some('r') => '\r',
                        Some('t') => '\t',
                        Some('u') => {
                            let high =
                                hex4(&mut chars).ok_or_else(|| corrupt("packed state", text))?;
                            let code = if (0xD800..0xDC00).contains(&high) {
                                let low = match (chars.next(), chars.next()) {
                                    (Some((_, '\\')), Some((_, 'u'))) => hex4(&mut chars),
                                    _ => None,
                                };
                                match low {
                                    Some(low) if (0xDC00..0xE000).contains(&low) => {
                                        0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)
                                    }
                                    _ => return Err(corrupt("packed state", text)),
                                }
                            } else {
                                high
                            };
                            char::from_u32(code).ok_or_else(|| corrupt("packed state", text))?
                        }
                        _ => return Err(corrupt("packed state", text)),
                    };
                    out.push(escaped);
                }
                c => out.push(c),
            }
        }
        Err(corrupt("packed state", text))
    }
}

/// Four hex digits of a `\u` escape.
fn hex4(chars: &mut impl Iterator<Item = (usize, char)>) -> Option<u32> {
    let mut code = 0;
    for _ in 0..4 {
        code = code * 16 + chars.next()?.1.to_digit(16)?;
    }
    Some(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_round_trip_with_any_text() {
        let packed = r#"[["app;","session","2.3.0","sha256:abcd",null,null,null,null],
            ["a\"b\\c\/\n\t\u00e9\ud83d\ude00\u0000", "t", null, null, null, null, null, null]]"#;
        let rows = unpack(packed).expect("valid");
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].module, "app;");
        assert_eq!(rows[0].version.as_deref(), Some("2.3.0"));
        assert_eq!(rows[0].checksum.as_deref(), Some("sha256:abcd"));
        assert!(rows[0].dirty.is_none());
        assert_eq!(rows[1].module, "a\"b\\c/\n\té😀\0");
        assert!(rows[1].version.is_none() && rows[1].checksum.is_none());
    }

    #[test]
    fn a_dirty_mark_and_numbers_are_read() {
        let packed = r#"[["m","t",null,null,"2.0.0","step","up",1234]]"#;
        let rows = unpack(packed).expect("valid");
        let mark = rows[0].dirty.as_ref().expect("dirty");
        assert_eq!(mark.version, "2.0.0");
        assert_eq!(mark.name, "step");
        // A version a hand edit stored as a number reads as its text.
        let rows = unpack(r#"[["m","t",2,null,null,null,null,null]]"#).expect("valid");
        assert_eq!(rows[0].version.as_deref(), Some("2"));
    }

    #[test]
    fn empty_and_corrupt_values() {
        assert!(unpack("").expect("no rows").is_empty());
        assert!(unpack("[]").expect("no rows").is_empty());
        for bad in [
            "[",
            "[[]]",
            r#"[["m","t"]]"#,
            r#"[["m","t",null,null,null,null,null,null,null]]"#,
            r#"[["m","t",null,null,null,null,null,"soon"]]"#,
            r#"[["m","t",null,null,"1.0.0",null,"sideways",1]]"#,
            r#"[["unterminated]]"#,
            r#"[["\ud83d","t",null,null,null,null,null,null]]"#,
            r#"[["\q","t",null,null,null,null,null,null]]"#,
            r#"[["m","t",true,null,null,null,null,null]]"#,
            r#"[] trailing"#,
        ] {
            assert!(unpack(bad).is_err(), "{bad} is corrupt");
        }
    }
}
