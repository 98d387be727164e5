//! Checksum values in the protocol's `alg:::hex` form.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The hash functions a checksum may use. Serialized as its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Algorithm {
    Md5,
    /// XXH3 with a 128-bit result.
    Xxh3,
    Sha1,
    Sha256,
    Sha512,
    Blake3,
}

impl Algorithm {
    /// Every supported algorithm.
    pub const ALL: [Algorithm; 6] = [
        Algorithm::Md5,
        Algorithm::Xxh3,
        Algorithm::Sha1,
        Algorithm::Sha256,
        Algorithm::Sha512,
        Algorithm::Blake3,
    ];

    /// The prefix used before `:::`.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Md5 => "md5",
            Algorithm::Xxh3 => "xxh3",
            Algorithm::Sha1 => "sha1",
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
            Algorithm::Blake3 => "blake3",
        }
    }

    /// Length of a digest in bytes.
    pub fn digest_len(self) -> usize {
        match self {
            Algorithm::Md5 | Algorithm::Xxh3 => 16,
            Algorithm::Sha1 => 20,
            Algorithm::Sha256 | Algorithm::Blake3 => 32,
            Algorithm::Sha512 => 64,
        }
    }

    /// Parses an algorithm name (any case).
    pub fn parse(name: &str) -> Option<Algorithm> {
        let lower = name.trim().to_ascii_lowercase();
        Algorithm::ALL.into_iter().find(|alg| alg.name() == lower)
    }
}

impl std::fmt::Display for Algorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A digest together with the algorithm that produced it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Checksum {
    pub algorithm: Algorithm,
    pub digest: Vec<u8>,
}

/// Why a checksum string could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChecksumParseError {
    #[error("unknown checksum algorithm '{0}' (use md5, xxh3, sha1, sha256, sha512 or blake3)")]
    UnknownAlgorithm(String),
    #[error("checksum digest '{0}' is not hexadecimal")]
    NotHex(String),
    #[error("a {algorithm} digest has {expected} hex digits, '{digest}' has {found}")]
    WrongLength {
        algorithm: Algorithm,
        digest: String,
        expected: usize,
        found: usize,
    },
}

impl Checksum {
    /// Builds a checksum from raw digest bytes.
    pub fn new(algorithm: Algorithm, digest: Vec<u8>) -> Checksum {
        Checksum { algorithm, digest }
    }

    /// Parses `alg:::hex`; text without a prefix is an md5 digest.
    pub fn parse(text: &str) -> Result<Checksum, ChecksumParseError> {
        let text = text.trim();
        let (algorithm, hex_digits) = match text.split_once(":::") {
            Some((name, hex_digits)) => (
                Algorithm::parse(name)
                    .ok_or_else(|| ChecksumParseError::UnknownAlgorithm(name.to_string()))?,
                hex_digits,
            ),
            None => (Algorithm::Md5, text),
        };
        let digest =
            hex::decode(hex_digits).map_err(|_| ChecksumParseError::NotHex(hex_digits.into()))?;
        if digest.len() != algorithm.digest_len() {
            return Err(ChecksumParseError::WrongLength {
                algorithm,
                digest: hex_digits.to_string(),
                expected: algorithm.digest_len() * 2,
                found: hex_digits.len(),
            });
        }
        Ok(Checksum { algorithm, digest })
    }

    /// The digest as lower-case hex, without the algorithm prefix.
    pub fn hex(&self) -> String {
        hex::encode(&self.digest)
    }

    /// Whether two checksums describe the same bytes. Checksums of different
    /// algorithms cannot be compared, which is an error rather than a mismatch.
    pub fn matches(&self, other: &Checksum) -> Result<bool, String> {
        if self.algorithm != other.algorithm {
            return Err(format!(
                "cannot compare a {} checksum with a {} checksum",
                self.algorithm, other.algorithm
            ));
        }
        Ok(self.digest == other.digest)
    }
}

impl std::fmt::Display for Checksum {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:::{}", self.algorithm, self.hex())
    }
}

impl std::str::FromStr for Checksum {
    type Err = ChecksumParseError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Checksum::parse(text)
    }
}

impl Serialize for Checksum {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Checksum {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Checksum::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_prefixed_and_bare_forms() {
        let c = Checksum::parse("sha1:::da39a3ee5e6b4b0d3255bfef95601890afd80709").unwrap();
        assert_eq!(c.algorithm, Algorithm::Sha1);
        assert_eq!(
            c.to_string(),
            "sha1:::da39a3ee5e6b4b0d3255bfef95601890afd80709"
        );
        let bare = Checksum::parse("d41d8cd98f00b204e9800998ecf8427e").unwrap();
        assert_eq!(bare.algorithm, Algorithm::Md5);
        assert_eq!(bare.to_string(), "md5:::d41d8cd98f00b204e9800998ecf8427e");
    }

    #[test]
    fn rejects_bad_text() {
        assert!(matches!(
            Checksum::parse("crc32:::00000000"),
            Err(ChecksumParseError::UnknownAlgorithm(_))
        ));
        assert!(matches!(
            Checksum::parse("md5:::zz"),
            Err(ChecksumParseError::NotHex(_))
        ));
        assert!(matches!(
            Checksum::parse("md5:::00"),
            Err(ChecksumParseError::WrongLength { .. })
        ));
    }

    #[test]
    fn different_algorithms_do_not_compare() {
        let md5 = Checksum::new(Algorithm::Md5, vec![0; 16]);
        let xxh = Checksum::new(Algorithm::Xxh3, vec![0; 16]);
        assert!(md5.matches(&xxh).is_err());
        assert_eq!(md5.matches(&md5.clone()), Ok(true));
    }
}
