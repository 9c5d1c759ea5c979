//! Wall-clock timestamps stored as microseconds since the Unix epoch, printed as RFC 3339 UTC.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

/// A UTC instant with microsecond precision, as the tracking tables store it.
///
/// ```
/// use migrate_core::time::Timestamp;
/// let t = Timestamp::from_micros(1_764_000_000_123_456);
/// assert_eq!(t.to_string(), "2025-11-24T16:00:00.123456Z");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

/// Serialized as its RFC 3339 text, the same as it displays.
#[cfg(feature = "serde")]
impl serde::Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// A duration as fractional milliseconds, the unit every JSON report uses.
#[cfg(feature = "serde")]
pub(crate) fn serialize_millis<S: serde::Serializer>(
    duration: &std::time::Duration,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_f64(duration.as_secs_f64() * 1_000.0)
}

/// [`serialize_millis`] for a duration that may be absent (`null`).
#[cfg(feature = "serde")]
pub(crate) fn serialize_optional_millis<S: serde::Serializer>(
    duration: &Option<std::time::Duration>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match duration {
        Some(d) => serialize_millis(d, serializer),
        None => serializer.serialize_none(),
    }
}

impl Timestamp {
    /// The current time.
    pub fn now() -> Self {
        let micros = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX));
        Timestamp(micros)
    }

    /// From microseconds since the Unix epoch.
    pub fn from_micros(micros: i64) -> Self {
        Timestamp(micros)
    }

    /// Microseconds since the Unix epoch.
    pub fn as_micros(self) -> i64 {
        self.0
    }
}

impl fmt::Display for Timestamp {
    /// RFC 3339 in UTC with microseconds: `2025-11-24T16:00:00.123456Z`. An instant outside the
    /// calendar's range prints as its microseconds.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let nanos = i128::from(self.0) * 1_000;
        match time::OffsetDateTime::from_unix_timestamp_nanos(nanos) {
            Ok(t) => write!(
                f,
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute(),
                t.second(),
                t.microsecond()
            ),
            Err(_) => write!(f, "{}µs since 1970-01-01T00:00:00Z", self.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(
            Timestamp::from_micros(0).to_string(),
            "1970-01-01T00:00:00.000000Z"
        );
        assert_eq!(
            Timestamp::from_micros(951_782_400_000_000).to_string(),
            "2000-02-29T00:00:00.000000Z"
        );
        assert_eq!(
            Timestamp::from_micros(-1).to_string(),
            "1969-12-31T23:59:59.999999Z"
        );
        assert!(Timestamp::from_micros(i64::MAX).to_string().contains("µs"));
    }
}
