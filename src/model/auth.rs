//! Authorisation levels of the Librarian v2 protocol, ordered from least to most trusted.

use serde::{Deserialize, Serialize};

/// What an account may do. A route is allowed when the caller's level is at least the
/// route's level. On the wire each level is its integer value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "i64")]
pub enum AuthLevel {
    /// Unauthenticated, or authenticated with wrong credentials.
    None,
    /// May search and validate.
    ReadOnly,
    /// May report transfer progress (peer librarians calling back).
    Callback,
    /// May upload new files.
    ReadAppend,
    /// May change files.
    ReadWrite,
    /// May administer users, stores and peers.
    Admin,
}

impl AuthLevel {
    /// Every level, in order.
    pub const ALL: [AuthLevel; 6] = [
        AuthLevel::None,
        AuthLevel::ReadOnly,
        AuthLevel::Callback,
        AuthLevel::ReadAppend,
        AuthLevel::ReadWrite,
        AuthLevel::Admin,
    ];

    /// The integer the protocol uses for this level.
    pub fn wire_value(self) -> i64 {
        match self {
            AuthLevel::None => 0,
            AuthLevel::ReadOnly => 1,
            AuthLevel::Callback => 2,
            AuthLevel::ReadAppend => 3,
            AuthLevel::ReadWrite => 4,
            AuthLevel::Admin => 100,
        }
    }

    /// The lower-case name used by quire's CLI (`readonly`, `admin`, ...).
    pub fn name(self) -> &'static str {
        match self {
            AuthLevel::None => "none",
            AuthLevel::ReadOnly => "readonly",
            AuthLevel::Callback => "callback",
            AuthLevel::ReadAppend => "readappend",
            AuthLevel::ReadWrite => "readwrite",
            AuthLevel::Admin => "admin",
        }
    }

    /// Parses a level given by name (any case) or by its protocol integer.
    pub fn parse(text: &str) -> Option<AuthLevel> {
        let lower = text.trim().to_ascii_lowercase();
        AuthLevel::ALL
            .into_iter()
            .find(|level| level.name() == lower || level.wire_value().to_string() == lower)
    }
}

impl TryFrom<i64> for AuthLevel {
    type Error = String;
    fn try_from(value: i64) -> Result<Self, Self::Error> {
        AuthLevel::ALL
            .into_iter()
            .find(|level| level.wire_value() == value)
            .ok_or_else(|| format!("{value} is not an auth level (0, 1, 2, 3, 4 or 100)"))
    }
}

impl From<AuthLevel> for i64 {
    fn from(level: AuthLevel) -> i64 {
        level.wire_value()
    }
}

impl std::fmt::Display for AuthLevel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_are_ordered_and_round_trip() {
        assert!(AuthLevel::Admin > AuthLevel::ReadWrite);
        assert!(AuthLevel::Callback < AuthLevel::ReadAppend);
        for level in AuthLevel::ALL {
            assert_eq!(AuthLevel::try_from(level.wire_value()), Ok(level));
            assert_eq!(AuthLevel::parse(level.name()), Some(level));
        }
        assert_eq!(AuthLevel::parse("100"), Some(AuthLevel::Admin));
        assert!(AuthLevel::try_from(7).is_err());
    }
}
