//! [`Tally`]: what the rows of a data migration became.

use std::collections::BTreeMap;
use std::fmt;

/// Rows moved, skipped and refused, the last two per reason. Kept in the checkpoint, so that
/// a resumed run ends with the counts of the whole job.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    moved: u64,
    skipped: BTreeMap<String, u64>,
    refused: BTreeMap<String, u64>,
}

impl Tally {
    /// Counts `rows` rows as moved.
    pub fn moved(&mut self, rows: u64) {
        self.moved = self.moved.saturating_add(rows);
    }

    /// Counts one row as skipped (left as it is on purpose: a newer row exists, say).
    pub fn skipped(&mut self, reason: impl Into<String>) {
        add(&mut self.skipped, reason.into(), 1);
    }

    /// Counts one row as refused (it cannot be moved: its data is broken, say).
    pub fn refused(&mut self, reason: impl Into<String>) {
        add(&mut self.refused, reason.into(), 1);
    }

    /// Counts `rows` rows as refused for `reason`.
    pub fn refused_many(&mut self, reason: impl Into<String>, rows: u64) {
        if rows > 0 {
            add(&mut self.refused, reason.into(), rows);
        }
    }

    /// How many rows were moved.
    pub fn moved_count(&self) -> u64 {
        self.moved
    }

    /// Skipped rows per reason.
    pub fn skipped_by_reason(&self) -> &BTreeMap<String, u64> {
        &self.skipped
    }

    /// Refused rows per reason.
    pub fn refused_by_reason(&self) -> &BTreeMap<String, u64> {
        &self.refused
    }

    /// All skipped rows.
    pub fn skipped_count(&self) -> u64 {
        self.skipped
            .values()
            .fold(0, |sum, n| sum.saturating_add(*n))
    }

    /// All refused rows.
    pub fn refused_count(&self) -> u64 {
        self.refused
            .values()
            .fold(0, |sum, n| sum.saturating_add(*n))
    }

    /// Every row counted.
    pub fn total(&self) -> u64 {
        self.moved
            .saturating_add(self.skipped_count())
            .saturating_add(self.refused_count())
    }

    /// The checkpoint's text form: one `kind\tcount\treason` line per entry.
    pub(crate) fn encode(&self) -> String {
        let mut out = format!("moved\t{}\t\n", self.moved);
        for (kind, map) in [("skipped", &self.skipped), ("refused", &self.refused)] {
            for (reason, count) in map {
                out.push_str(&format!("{kind}\t{count}\t{reason}\n"));
            }
        }
        out
    }

    /// Reads [`encode`](Self::encode)'s form; `None` when it is not that.
    pub(crate) fn decode(text: &str) -> Option<Tally> {
        let mut tally = Tally::default();
        for line in text.lines().filter(|l| !l.is_empty()) {
            let mut parts = line.splitn(3, '\t');
            let (kind, count, reason) = (parts.next()?, parts.next()?, parts.next()?);
            let count: u64 = count.parse().ok()?;
            match kind {
                "moved" => tally.moved = count,
                "skipped" => add(&mut tally.skipped, reason.to_string(), count),
                "refused" => add(&mut tally.refused, reason.to_string(), count),
                _ => return None,
            }
        }
        Some(tally)
    }
}

/// Adds `rows` to `reason`'s count. Counts saturate: a checkpoint is text in the database, and
/// no count read from it may overflow. A reason is kept as its checkpoint line can hold it
/// (tabs and line breaks as spaces; a NUL, which PostgreSQL's text refuses, as U+FFFD),
/// so that a resumed job adds to the same entry.
fn add(counts: &mut BTreeMap<String, u64>, reason: String, rows: u64) {
    let reason = if reason.contains(['\t', '\n', '\r', '\0']) {
        reason
            .replace(['\t', '\n', '\r'], " ")
            .replace('\0', "\u{fffd}")
    } else {
        reason
    };
    let count = counts.entry(reason).or_default();
    *count = count.saturating_add(rows);
}

impl fmt::Display for Tally {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} moved, {} skipped, {} refused",
            self.moved,
            self.skipped_count(),
            self.refused_count()
        )?;
        for (kind, map) in [("skipped", &self.skipped), ("refused", &self.refused)] {
            for (reason, count) in map {
                write!(f, "; {count} {kind}: {reason}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tally_survives_its_checkpoint_form() {
        let mut tally = Tally::default();
        tally.moved(41);
        tally.skipped("a newer row exists");
        tally.refused("runs is not JSON");
        tally.refused("runs is not JSON");
        tally.refused("tab\there");
        tally.refused("line\r\nend\r");
        let mut back = Tally::decode(&tally.encode()).unwrap();
        // A resumed job adds to the entries it read back, not to new ones.
        back.refused("tab\there");
        tally.refused("tab\there");
        assert_eq!(back.moved_count(), 41);
        assert_eq!(back.skipped_count(), 1);
        assert_eq!(back.refused_by_reason()["runs is not JSON"], 2);
        assert_eq!(back.refused_by_reason()["tab here"], 2);
        assert_eq!(back.refused_by_reason()["line  end "], 1);
        assert_eq!(back.total(), 47);
        assert_eq!(back, tally, "one entry per reason, read back or not");
        assert_eq!(
            tally.to_string(),
            "41 moved, 1 skipped, 5 refused; 1 skipped: a newer row exists; 1 refused: line  end ; 2 refused: runs is not JSON; 2 refused: tab here"
        );
        assert_eq!(Tally::decode("nonsense"), None);
    }

    #[test]
    fn a_nul_in_a_reason_is_kept_as_a_replacement_character() {
        // PostgreSQL's text refuses a NUL: every checkpoint of the job would fail.
        let mut tally = Tally::default();
        tally.refused("bad\0byte");
        assert!(!tally.encode().contains('\0'));
        let back = Tally::decode(&tally.encode()).unwrap();
        assert_eq!(back.refused_by_reason()["bad\u{fffd}byte"], 1);
    }

    #[test]
    fn counts_read_from_a_checkpoint_saturate_instead_of_overflowing() {
        let max = u64::MAX;
        let text = format!(
            "moved\t{max}\t\nskipped\t{max}\ta\nskipped\t{max}\ta\nrefused\t{max}\tb\nrefused\t1\tc\n"
        );
        let tally = Tally::decode(&text).expect("the checkpoint form");
        assert_eq!(tally.skipped_by_reason()["a"], max);
        assert_eq!(tally.refused_count(), max);
        assert_eq!(tally.total(), max);
        let mut more = tally.clone();
        more.moved(1);
        more.refused_many("b", 5);
        assert_eq!(more.moved_count(), max);
        assert!(more.to_string().starts_with(&format!("{max} moved")));
    }
}
