//! One incremental hasher per supported algorithm, behind a single enum.

use md5::Digest;

use crate::model::{Algorithm, Checksum};

/// An incremental hash computation of one algorithm.
pub enum Hasher {
    Md5(md5::Md5),
    Xxh3(Box<xxhash_rust::xxh3::Xxh3>),
    Sha1(sha1::Sha1),
    Sha256(sha2::Sha256),
    Sha512(sha2::Sha512),
    Blake3(Box<blake3::Hasher>),
}

impl Hasher {
    /// A fresh hasher for `algorithm`.
    pub fn new(algorithm: Algorithm) -> Hasher {
        match algorithm {
            Algorithm::Md5 => Hasher::Md5(md5::Md5::new()),
            Algorithm::Xxh3 => Hasher::Xxh3(Box::new(xxhash_rust::xxh3::Xxh3::new())),
            Algorithm::Sha1 => Hasher::Sha1(sha1::Sha1::new()),
            Algorithm::Sha256 => Hasher::Sha256(sha2::Sha256::new()),
            Algorithm::Sha512 => Hasher::Sha512(sha2::Sha512::new()),
            Algorithm::Blake3 => Hasher::Blake3(Box::new(blake3::Hasher::new())),
        }
    }

    /// The algorithm this hasher computes.
    pub fn algorithm(&self) -> Algorithm {
        match self {
            Hasher::Md5(_) => Algorithm::Md5,
            Hasher::Xxh3(_) => Algorithm::Xxh3,
            Hasher::Sha1(_) => Algorithm::Sha1,
            Hasher::Sha256(_) => Algorithm::Sha256,
            Hasher::Sha512(_) => Algorithm::Sha512,
            Hasher::Blake3(_) => Algorithm::Blake3,
        }
    }

    /// Whether this algorithm is slow enough (well under the speed of a page-cache
    /// read) to deserve a thread of its own on large inputs.
    pub fn is_slow(algorithm: Algorithm) -> bool {
        !matches!(algorithm, Algorithm::Blake3 | Algorithm::Xxh3)
    }

    /// Feeds more bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        match self {
            Hasher::Md5(h) => h.update(bytes),
            Hasher::Xxh3(h) => h.update(bytes),
            Hasher::Sha1(h) => h.update(bytes),
            Hasher::Sha256(h) => h.update(bytes),
            Hasher::Sha512(h) => h.update(bytes),
            Hasher::Blake3(h) => {
                h.update(bytes);
            }
        }
    }

    /// The digest of everything fed so far.
    pub fn finish(self) -> Checksum {
        let algorithm = self.algorithm();
        let digest = match self {
            Hasher::Md5(h) => h.finalize().to_vec(),
            Hasher::Xxh3(h) => h.digest128().to_be_bytes().to_vec(),
            Hasher::Sha1(h) => h.finalize().to_vec(),
            Hasher::Sha256(h) => h.finalize().to_vec(),
            Hasher::Sha512(h) => h.finalize().to_vec(),
            Hasher::Blake3(h) => h.finalize().as_bytes().to_vec(),
        };
        Checksum::new(algorithm, digest)
    }
}

/// Hashes a byte slice in one call.
pub fn hash_bytes(algorithm: Algorithm, bytes: &[u8]) -> Checksum {
    let mut hasher = Hasher::new(algorithm);
    hasher.update(bytes);
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_answers_for_abc() {
        let expected = [
            (Algorithm::Md5, "900150983cd24fb0d6963f7d28e17f72"),
            (Algorithm::Xxh3, "06b05ab6733a618578af5f94892f3950"),
            (Algorithm::Sha1, "a9993e364706816aba3e25717850c26c9cd0d89d"),
            (
                Algorithm::Sha256,
                "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
            ),
            (
                Algorithm::Blake3,
                "6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85",
            ),
        ];
        for (algorithm, hex) in expected {
            assert_eq!(hash_bytes(algorithm, b"abc").hex(), hex, "{algorithm}");
        }
        assert!(
            hash_bytes(Algorithm::Sha512, b"abc")
                .hex()
                .starts_with("ddaf35a1")
        );
    }
}
