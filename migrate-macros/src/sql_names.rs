//! The file names `sql_dir!` recognises, and the versions they map to.
//!
//! | file name | version |
//! |---|---|
//! | `001_create_users.sql` (a number) | 1.0.0 |
//! | `V1__init.sql`, `V1_2__add.sql`, `V1_2_3__fix.sql` (Flyway) | 1.0.0, 1.2.0, 1.2.3 |
//! | `20251025120000_add.sql`, `20251025_120000_add.sql` (a timestamp) | 20251025120000.0.0 |
//! | `2.3.0_add_state.sql` (semver) | 2.3.0 |
//!
//! `<stem>.down.sql` is the down of `<stem>.sql`, and `<stem>.fresh.sql` creates its table
//! directly at its version (for `MigrationManager::install_fresh`).

use semver::Version;

/// How a file's version is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Style {
    /// `001_...`: a sequence number, checked for gaps.
    Numbered {
        /// How many digits, for naming the missing file in a gap error and for scaffolding.
        width: usize,
    },
    /// `V1_2__...`.
    Flyway,
    /// `20251025120000_...`.
    Timestamp,
    /// `2.3.0_...`.
    Semver,
}

/// One recognised file name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Parsed {
    /// The name without `.sql` and `.down`: the step's name in the history.
    pub(crate) stem: String,
    pub(crate) version: Version,
    pub(crate) style: Style,
    pub(crate) down: bool,
    /// `<stem>.fresh.sql`: the table created directly at this version.
    pub(crate) fresh: bool,
}

/// Parses a file name; `Err` says why it matches no pattern.
pub(crate) fn parse(file: &str) -> Result<Parsed, String> {
    let Some(base) = file.strip_suffix(".sql") else {
        return Err("it does not end in `.sql`".into());
    };
    let (stem, down, fresh) = match (base.strip_suffix(".down"), base.strip_suffix(".fresh")) {
        (Some(stem), _) => (stem, true, false),
        (None, Some(stem)) => (stem, false, true),
        (None, None) => (base, false, false),
    };
    let (version, style) = version_of(stem)?;
    Ok(Parsed {
        stem: stem.to_string(),
        version,
        style,
        down,
        fresh,
    })
}

fn digits(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit())
}

fn number(text: &str) -> Result<u64, String> {
    text.parse::<u64>()
        .map_err(|_| format!("`{text}` is too large a number for a version"))
}

fn described(desc: &str) -> Result<(), String> {
    if desc.trim().is_empty() {
        Err("the description after the version is empty".into())
    } else {
        Ok(())
    }
}

fn version_of(stem: &str) -> Result<(Version, Style), String> {
    const EXPECTED: &str = "expected `001_name.sql`, `V1__name.sql`, `V1_2__name.sql`, \
                            `20251025120000_name.sql` or `2.3.0_name.sql`";
    if let Some(rest) = stem.strip_prefix('V') {
        if let Some((parts, desc)) = rest.split_once("__") {
            let parts: Vec<&str> = parts.split('_').collect();
            if parts.len() <= 3 && parts.iter().all(|p| digits(p)) {
                described(desc)?;
                let n = |i: usize| parts.get(i).map_or(Ok(0), |p| number(p));
                return Ok((Version::new(n(0)?, n(1)?, n(2)?), Style::Flyway));
            }
        }
        return Err(format!(
            "`V...` names are Flyway's, `V<major>[_<minor>[_<patch>]]__<name>`; {EXPECTED}"
        ));
    }
    let Some((head, desc)) = stem.split_once('_') else {
        return Err(format!(
            "no `_` between the version and the name; {EXPECTED}"
        ));
    };
    if head.contains('.') {
        let max = crate::args::MAX_TRACKED_NAME_CHARS;
        if head.chars().count() > max {
            return Err(format!(
                "its version is longer than the {max} characters the tracking tables keep"
            ));
        }
        let version = Version::parse(head).map_err(|e| format!("`{head}` is not semver: {e}"))?;
        described(desc)?;
        return Ok((version, Style::Semver));
    }
    if !digits(head) {
        return Err(format!("`{head}` is not a version; {EXPECTED}"));
    }
    // pgdbm's `20251025_120000_name`: a date, then a time.
    if head.len() == 8 {
        if let Some((time, desc)) = desc.split_once('_') {
            if time.len() == 6 && digits(time) {
                described(desc)?;
                let stamp = number(&format!("{head}{time}"))?;
                return Ok((Version::new(stamp, 0, 0), Style::Timestamp));
            }
        }
        // A date alone would be read as a sequence number, which must have no gap: the second
        // file, a day later, would be refused as a gap of a million numbers, or the files of
        // consecutive days pass until the first that is not.
        if looks_like_a_date(head) {
            return Err(format!(
                "`{head}` is a date without a time; write a timestamp (`{head}_120000_…` or \
                 `{head}120000_…`), or number the files (`001_…`)"
            ));
        }
    }
    described(desc)?;
    let value = number(head)?;
    if head.len() >= 12 {
        Ok((Version::new(value, 0, 0), Style::Timestamp))
    } else {
        Ok((
            Version::new(value, 0, 0),
            Style::Numbered { width: head.len() },
        ))
    }
}

/// Whether eight digits read as a date from 1900 to 2099 (`yyyymmdd`).
fn looks_like_a_date(head: &str) -> bool {
    let part = |range: std::ops::Range<usize>| head.get(range).and_then(|p| p.parse::<u32>().ok());
    matches!(
        (part(0..4), part(4..6), part(6..8)),
        (Some(1900..=2099), Some(1..=12), Some(1..=31))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(file: &str) -> String {
        parse(file)
            .map(|p| p.version.to_string())
            .unwrap_or_else(|e| format!("error: {e}"))
    }

    #[test]
    fn every_style_maps_to_its_version() {
        assert_eq!(v("001_create_users.sql"), "1.0.0");
        assert_eq!(v("V1__init.sql"), "1.0.0");
        assert_eq!(v("V1_2__add.sql"), "1.2.0");
        assert_eq!(v("V1_2_3__fix.sql"), "1.2.3");
        assert_eq!(v("20251025120000_add.sql"), "20251025120000.0.0");
        assert_eq!(v("20251025_120000_add_users.sql"), "20251025120000.0.0");
        assert_eq!(v("2.3.0_add_state.sql"), "2.3.0");
        let down = parse("001_create_users.down.sql").unwrap();
        assert!(down.down && !down.fresh && down.stem == "001_create_users");
        let fresh = parse("2.3.0_add_state.fresh.sql").unwrap();
        assert!(fresh.fresh && !fresh.down && fresh.stem == "2.3.0_add_state");
        assert_eq!(
            parse("012_x.sql").unwrap().style,
            Style::Numbered { width: 3 }
        );
    }

    #[test]
    fn other_names_say_why() {
        for bad in [
            "create_users.sql",
            "001.sql",
            "001_.sql",
            "V1_x__a.sql",
            "Vfoo.sql",
            "2.x.0_a.sql",
            "001_a.txt",
            "20251025_add_users.sql",
        ] {
            assert!(v(bad).starts_with("error: "), "{bad}: {}", v(bad));
        }
        assert!(v("20251025_add_users.sql").contains("a date without a time"));
        // Eight digits that are no date stay a sequence number.
        assert_eq!(v("00000012_a.sql"), "12.0.0");
        // A version longer than the tracking tables keep (a long pre-release).
        let long = format!("1.0.0-{}_a.sql", "x".repeat(190));
        assert!(
            v(&long).contains("longer than the 191 characters"),
            "{}",
            v(&long)
        );
        assert!(v(&format!("1.0.0-{}_a.sql", "x".repeat(185))).starts_with("1.0.0-"));
    }
}
