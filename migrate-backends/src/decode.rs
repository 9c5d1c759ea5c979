//! Column values as portable [`Value`]s, for [`Conn::query`](migrate_core::conn::Conn::query).
//!
//! A data migration reads rows and often writes them back (`migrate::data::literal`), so a value
//! must come back exactly: an exact number that is not an integer within `i64` is kept as its
//! digits ([`Value::Numeric`]), and a value is only parsed as a number when its column holds
//! numbers.

use migrate_core::conn::Value;
use migrate_core::error::{Error, Result};
use sqlx::{Column, ColumnIndex, Decode, Row as _, Type, TypeInfo, ValueRef};

/// Decodes one column into a portable [`Value`], trying the common types in turn.
pub(crate) fn decode_value<DB>(row: &DB::Row, index: usize) -> Result<Value>
where
    DB: sqlx::Database,
    usize: ColumnIndex<DB::Row>,
    for<'r> i64: Decode<'r, DB> + Type<DB>,
    for<'r> i32: Decode<'r, DB> + Type<DB>,
    for<'r> i16: Decode<'r, DB> + Type<DB>,
    for<'r> bool: Decode<'r, DB> + Type<DB>,
    for<'r> f64: Decode<'r, DB> + Type<DB>,
    for<'r> String: Decode<'r, DB> + Type<DB>,
    for<'r> Vec<u8>: Decode<'r, DB> + Type<DB>,
{
    let raw = row.try_get_raw(index)?;
    if raw.is_null() {
        return Ok(Value::Null);
    }
    if let Ok(v) = row.try_get::<i64, _>(index) {
        return Ok(Value::Int(v));
    }
    if let Ok(v) = row.try_get::<i32, _>(index) {
        return Ok(Value::Int(v.into()));
    }
    if let Ok(v) = row.try_get::<i16, _>(index) {
        return Ok(Value::Int(v.into()));
    }
    // A PostgreSQL BOOLEAN: SQLite's integers and MySQL's (its booleans are integers, which
    // sqlx would also read as `bool`) are taken above, MySQL's unsigned ones by its driver.
    if let Ok(v) = row.try_get::<bool, _>(index) {
        return Ok(Value::Bool(v));
    }
    if let Ok(v) = row.try_get::<f64, _>(index) {
        return Ok(Value::Float(v));
    }
    if let Ok(v) = row.try_get::<String, _>(index) {
        return Ok(Value::Text(v));
    }
    if let Ok(v) = row.try_get::<Vec<u8>, _>(index) {
        return Ok(Value::Bytes(v));
    }
    // Types without a portable decoder: `Conn::query` runs over the text protocol (PostgreSQL
    // simple queries, MySQL COM_QUERY), so the value is its text.
    let column = &row.columns()[index];
    if let Ok(text) = row.try_get_unchecked::<String, _>(index) {
        return Ok(from_text(column.type_info().name(), text));
    }
    Err(Error::msg(format!(
        "column `{}` has type {}, which Conn::query does not decode; cast it in SQL, or use the typed connection (migrate::ConnExt)",
        column.name(),
        column.type_info().name()
    )))
}

/// A value of a column of type `type_name` that no typed decoder took, from its `text`.
///
/// An exact number (`NUMERIC`, `DECIMAL`, an `OID`) is an [`Int`](Value::Int) when it is one
/// within `i64`, and a [`Numeric`](Value::Numeric) of its digits otherwise (`12.50`, or thirty
/// digits, which a float would round). A floating-point one (`FLOAT4`) is a
/// [`Float`](Value::Float). Anything else stays text, even when it reads like a number: a
/// `JSONB` `7` or a timestamp's `infinity` written back as a number would not fit its column,
/// where a quoted literal does.
fn from_text(type_name: &str, text: String) -> Value {
    match type_name {
        "NUMERIC" | "DECIMAL" | "OID" => match text.parse::<i64>() {
            Ok(int) => Value::Int(int),
            // PostgreSQL's NUMERIC `NaN` and `Infinity` are no number literals.
            Err(_) if is_number_literal(&text) => Value::Numeric(text),
            Err(_) => Value::Text(text),
        },
        "FLOAT4" | "FLOAT8" | "FLOAT" | "DOUBLE" | "REAL" => match text.parse::<f64>() {
            Ok(float) => Value::Float(float),
            Err(_) => Value::Text(text),
        },
        _ => Value::Text(text),
    }
}

/// Whether `text` is an exact decimal number as NUMERIC and DECIMAL columns print one: an
/// optional sign, then digits with at most one point (`-12.50`, `.5`). No exponent: MySQL reads
/// `1e3` as a double, which would compare inexactly with a DECIMAL.
pub(crate) fn is_number_literal(text: &str) -> bool {
    let unsigned = text.strip_prefix(['-', '+']).unwrap_or(text);
    let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    let digits = |part: &str| part.bytes().all(|b| b.is_ascii_digit());
    !(whole.is_empty() && fraction.is_empty()) && digits(whole) && digits(fraction)
}

#[cfg(test)]
mod tests {
    use super::from_text;
    use migrate_core::conn::Value;

    #[test]
    fn exact_numbers_are_integers_only_when_they_are_exactly_one() {
        assert_eq!(from_text("NUMERIC", "-5".into()), Value::Int(-5));
        assert_eq!(
            from_text("DECIMAL", "12.50".into()),
            Value::Numeric("12.50".into())
        );
        let thirty = "123456789012345678901234567890";
        assert_eq!(
            from_text("NUMERIC", thirty.into()),
            Value::Numeric(thirty.into())
        );
        assert_eq!(
            from_text("NUMERIC", "NaN".into()),
            Value::Text("NaN".into())
        );
        assert_eq!(from_text("OID", "16384".into()), Value::Int(16384));
    }

    #[test]
    fn floats_are_floats_and_everything_else_stays_text() {
        assert_eq!(from_text("FLOAT4", "0.1".into()), Value::Float(0.1));
        assert_eq!(from_text("JSONB", "7".into()), Value::Text("7".into()));
        assert_eq!(
            from_text("TIMESTAMP", "infinity".into()),
            Value::Text("infinity".into())
        );
        assert_eq!(from_text("UUID", "1e5".into()), Value::Text("1e5".into()));
    }

    #[test]
    fn a_number_literal_is_a_sign_digits_and_a_point_and_nothing_else() {
        for yes in [
            "0",
            "-12.50",
            "+1",
            ".5",
            "5.",
            "123456789012345678901234567890",
        ] {
            assert!(super::is_number_literal(yes), "{yes}");
        }
        for no in [
            "",
            "-",
            ".",
            "1e300",
            "1.5E-7",
            "e5",
            "1.2.3",
            " 1",
            "1 ",
            "NaN",
            "Infinity",
            "1 OR 1=1",
            "0x1f",
            "1_000",
            "--1",
            "\u{661}\u{662}",
        ] {
            assert!(!super::is_number_literal(no), "{no}");
        }
    }
}
