//! Points in time, stored as microseconds since the Unix epoch (UTC) and written on
//! the wire as ISO 8601 without a time zone, as the Librarian v2 protocol does.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A UTC instant with microsecond resolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(i64);

impl Timestamp {
    /// The instant `micros` microseconds after the Unix epoch.
    pub const fn from_micros(micros: i64) -> Timestamp {
        Timestamp(micros)
    }

    /// Microseconds since the Unix epoch.
    pub const fn as_micros(self) -> i64 {
        self.0
    }

    /// The current wall-clock time.
    pub fn now() -> Timestamp {
        Timestamp(Utc::now().timestamp_micros())
    }

    /// This instant moved by `micros` (negative moves back), saturating.
    pub fn plus_micros(self, micros: i64) -> Timestamp {
        Timestamp(self.0.saturating_add(micros))
    }

    /// The instant `days` days (fractions allowed) before now: the cut-off of a
    /// task's `age_in_days`.
    pub fn days_ago(days: f64) -> Timestamp {
        Timestamp::now().plus_micros(-((days * 86_400e6) as i64))
    }

    /// Key form for ordered indexes: the epoch maps to `2^63`, so that the unsigned
    /// order of keys is the order of instants, including ones before 1970.
    pub fn index_key(self) -> u64 {
        (self.0 as u64) ^ (1 << 63)
    }

    /// The protocol's text form: `2026-11-22T06:34:31.722255`.
    pub fn to_wire(self) -> String {
        self.naive().format("%Y-%m-%dT%H:%M:%S%.6f").to_string()
    }

    fn naive(self) -> NaiveDateTime {
        DateTime::<Utc>::from_timestamp_micros(self.0)
            .unwrap_or_default()
            .naive_utc()
    }

    /// Parses ISO 8601 / RFC 3339 text. A value without a zone is taken as UTC; one with
    /// a zone is converted to UTC. A bare date means midnight.
    pub fn parse(text: &str) -> Result<Timestamp, String> {
        let text = text.trim();
        if let Ok(zoned) = DateTime::parse_from_rfc3339(text) {
            return Ok(Timestamp(zoned.with_timezone(&Utc).timestamp_micros()));
        }
        for format in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
            if let Ok(naive) = NaiveDateTime::parse_from_str(text, format) {
                return Ok(Timestamp(naive.and_utc().timestamp_micros()));
            }
        }
        for format in ["%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%d %H:%M:%S%.f%:z"] {
            if let Ok(zoned) = DateTime::parse_from_str(text, format) {
                return Ok(Timestamp(zoned.with_timezone(&Utc).timestamp_micros()));
            }
        }
        if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
            let midnight = date.and_hms_opt(0, 0, 0).unwrap_or_default();
            return Ok(Timestamp(midnight.and_utc().timestamp_micros()));
        }
        Err(format!(
            "'{text}' is not a date-time; use ISO 8601, e.g. 2026-11-22T06:34:31"
        ))
    }
}

impl std::fmt::Display for Timestamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_wire())
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.serialize_str(&self.to_wire())
        } else {
            serializer.serialize_i64(self.0)
        }
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if deserializer.is_human_readable() {
            let text = String::deserialize(deserializer)?;
            Timestamp::parse(&text).map_err(serde::de::Error::custom)
        } else {
            i64::deserialize(deserializer).map(Timestamp)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_form_round_trips() {
        let t = Timestamp::parse("2026-11-22T06:34:31.722255").unwrap();
        assert_eq!(t.to_wire(), "2026-11-22T06:34:31.722255");
        assert_eq!(Timestamp::parse(&t.to_wire()).unwrap(), t);
    }

    #[test]
    fn zones_are_converted_to_utc() {
        let zoned = Timestamp::parse("2026-11-22T08:34:31+02:00").unwrap();
        let plain = Timestamp::parse("2026-11-22T06:34:31").unwrap();
        assert_eq!(zoned, plain);
        assert_eq!(Timestamp::parse("2026-11-22T06:34:31Z").unwrap(), plain);
        assert_eq!(
            Timestamp::parse("2026-11-22").unwrap().to_wire(),
            "2026-11-22T00:00:00.000000"
        );
        assert!(Timestamp::parse("yesterday").is_err());
    }

    #[test]
    fn index_keys_keep_order_across_the_epoch() {
        let before = Timestamp::from_micros(-5);
        let after = Timestamp::from_micros(5);
        assert!(before.index_key() < Timestamp::from_micros(0).index_key());
        assert!(Timestamp::from_micros(0).index_key() < after.index_key());
    }
}
