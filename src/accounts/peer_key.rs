//! The key that seals peer credentials: 32 random bytes in a file outside the
//! database (`peer-secret.key`), and XChaCha20-Poly1305 sealing bound to the peer's
//! name.
//!
//! Invariants: the key is never logged, printed or stored in the database; a sealed
//! authenticator opens only with the key and the peer name it was sealed with, so a
//! wrong key or a damaged record is an error, never garbage credentials; the key
//! file is created exclusively (never replacing one) with mode 0600 and is durable
//! before it is used.

use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::{Key, KeyInit, XChaCha20Poly1305, XNonce};
use rand::RngExt;

use crate::store::durable::{rename_no_replace, sync_dir};

/// Layout version of a sealed authenticator: `[version][key id (8)][nonce (24)]
/// [ciphertext + tag]`.
const SEALED_VERSION: u8 = 1;
/// Bytes of the key identifier stored with each sealed authenticator.
const KEY_ID_LEN: usize = 8;
const NONCE_LEN: usize = 24;
const KEY_LEN: usize = 32;
/// Context string of the key identifier (a one-way function of the key).
const KEY_ID_CONTEXT: &str = "quire peer-secret.key identifier v1";

/// Why the peer key or a sealed credential could not be used.
#[derive(Debug, thiserror::Error)]
pub enum PeerKeyError {
    #[error(
        "the peer key file {path} is missing, so the credentials of known peers cannot \
         be unsealed; restore it from a backup (no restart needed), or remove and re-add \
         the peers with their passwords"
    )]
    Missing { path: PathBuf },
    #[error("cannot use the peer key file {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error(
        "the peer key file {path} is not a quire peer key ({problem}); restore the right \
         file, or, if no peer was ever added, delete it and restart to generate a new one"
    )]
    Malformed { path: PathBuf, problem: String },
    #[error(
        "the credentials of peer '{peer}' were sealed with another key (id {sealed_with}) \
         than the one in {path} (id {current}); restore the key file they were sealed \
         with, or remove and re-add the peer with its password"
    )]
    WrongKey {
        peer: String,
        path: PathBuf,
        sealed_with: String,
        current: String,
    },
    #[error(
        "the stored credentials of peer '{peer}' are damaged ({problem}); remove and \
         re-add the peer with its password"
    )]
    Damaged { peer: String, problem: String },
}

/// The 32-byte key, held only in memory as a ready cipher. `Debug` shows its
/// identifier, never the key.
pub struct PeerKey {
    cipher: XChaCha20Poly1305,
    id: [u8; KEY_ID_LEN],
    path: PathBuf,
}

impl fmt::Debug for PeerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PeerKey")
            .field("id", &hex::encode(self.id))
            .field("path", &self.path)
            .finish()
    }
}

impl PeerKey {
    fn from_bytes(mut bytes: [u8; KEY_LEN], path: &Path) -> PeerKey {
        let derived = blake3::derive_key(KEY_ID_CONTEXT, &bytes);
        let mut id = [0u8; KEY_ID_LEN];
        id.copy_from_slice(&derived[..KEY_ID_LEN]);
        let cipher = XChaCha20Poly1305::new(&Key::from(bytes));
        bytes.fill(0);
        PeerKey {
            cipher,
            id,
            path: path.to_path_buf(),
        }
    }

    /// Reads the key file at `path` (64 hex digits and a newline).
    pub fn load(path: &Path) -> Result<PeerKey, PeerKeyError> {
        let text = fs::read_to_string(path).map_err(|source| match source.kind() {
            io::ErrorKind::NotFound => PeerKeyError::Missing {
                path: path.to_path_buf(),
            },
            _ => PeerKeyError::Io {
                path: path.to_path_buf(),
                source,
            },
        })?;
        let malformed = |problem: &str| PeerKeyError::Malformed {
            path: path.to_path_buf(),
            problem: problem.to_string(),
        };
        let digits = text.trim_end_matches('\n');
        if digits.len() != 2 * KEY_LEN {
            return Err(malformed(&format!(
                "{} characters where {} hex digits were expected",
                digits.len(),
                2 * KEY_LEN
            )));
        }
        let mut bytes = [0u8; KEY_LEN];
        hex::decode_to_slice(digits, &mut bytes).map_err(|_| malformed("not hex digits"))?;
        Ok(PeerKey::from_bytes(bytes, path))
    }

    /// Generates a new key and writes it to `path`, which must not exist: the key is
    /// written to a temporary file, synced, renamed into place without replacing
    /// anything, and the directory is synced. If another process created the file
    /// first, that key is loaded instead.
    pub fn create(path: &Path) -> Result<PeerKey, PeerKeyError> {
        let io_error = |source| PeerKeyError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut bytes = [0u8; KEY_LEN];
        rand::rng().fill(&mut bytes);
        let mut text = hex::encode(bytes);
        text.push('\n');
        let directory = path.parent().unwrap_or(Path::new("."));
        let temporary = directory.join(format!(
            ".{}.{}-{:016x}.tmp",
            path.file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default(),
            std::process::id(),
            rand::rng().random::<u64>()
        ));
        let written = write_new_private(&temporary, text.as_bytes());
        text.replace_range(.., &"0".repeat(text.len()));
        if let Err(error) = written {
            let _ = fs::remove_file(&temporary);
            return Err(io_error(error));
        }
        match rename_no_replace(&temporary, path) {
            Ok(()) => {}
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {
                let _ = fs::remove_file(&temporary);
                bytes.fill(0);
                return PeerKey::load(path);
            }
            Err(error) => {
                let _ = fs::remove_file(&temporary);
                return Err(io_error(error));
            }
        }
        sync_dir(directory).map_err(io_error)?;
        Ok(PeerKey::from_bytes(bytes, path))
    }

    /// The key's public identifier (hex), recorded with everything it seals.
    pub fn id(&self) -> String {
        hex::encode(self.id)
    }

    /// The file the key came from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Seals `secret` for the peer `peer` (a fresh random nonce each time).
    pub fn seal(&self, peer: &str, secret: &str) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill(&mut nonce);
        let ciphertext = self
            .cipher
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: secret.as_bytes(),
                    aad: peer.as_bytes(),
                },
            )
            .expect("XChaCha20-Poly1305 seals any message of realistic size");
        let mut sealed = Vec::with_capacity(1 + KEY_ID_LEN + NONCE_LEN + ciphertext.len());
        sealed.push(SEALED_VERSION);
        sealed.extend_from_slice(&self.id);
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&ciphertext);
        sealed
    }

    /// Opens what [`PeerKey::seal`] sealed for `peer`.
    pub fn unseal(&self, peer: &str, sealed: &[u8]) -> Result<String, PeerKeyError> {
        let damaged = |problem: &str| PeerKeyError::Damaged {
            peer: peer.to_string(),
            problem: problem.to_string(),
        };
        let (&version, rest) = sealed
            .split_first()
            .ok_or_else(|| damaged("no sealed credentials recorded"))?;
        if version != SEALED_VERSION {
            return Err(damaged(&format!("unknown sealing version {version}")));
        }
        if rest.len() < KEY_ID_LEN + NONCE_LEN {
            return Err(damaged("record too short"));
        }
        let (id, rest) = rest.split_at(KEY_ID_LEN);
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        if id != self.id {
            return Err(PeerKeyError::WrongKey {
                peer: peer.to_string(),
                path: self.path.clone(),
                sealed_with: hex::encode(id),
                current: self.id(),
            });
        }
        let mut nonce_bytes = [0u8; NONCE_LEN];
        nonce_bytes.copy_from_slice(nonce);
        let plain = self
            .cipher
            .decrypt(
                &XNonce::from(nonce_bytes),
                Payload {
                    msg: ciphertext,
                    aad: peer.as_bytes(),
                },
            )
            .map_err(|_| damaged("authentication failed"))?;
        String::from_utf8(plain).map_err(|_| damaged("not UTF-8"))
    }
}

/// Creates `path` (which must not exist) with mode 0600, writes `bytes` and syncs.
fn write_new_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    // The umask may only remove bits; make sure no group or other bit survives.
    file.set_permissions(fs::Permissions::from_mode(0o600))?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Whether the key file can be read by anyone but its owner.
pub fn key_file_is_exposed(path: &Path) -> bool {
    fs::metadata(path)
        .map(|m| m.permissions().mode() & 0o077 != 0)
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_and_unseals_only_for_the_same_peer_and_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("peer-secret.key");
        let key = PeerKey::create(&path).unwrap();
        let sealed = key.seal("site-b", "site-a:s3cret:with:colons");
        assert!(
            !sealed
                .windows(b"s3cret".len())
                .any(|window| window == b"s3cret")
        );
        assert_eq!(
            key.unseal("site-b", &sealed).unwrap(),
            "site-a:s3cret:with:colons"
        );
        // Bound to the peer's name: a record copied to another peer does not open.
        assert!(matches!(
            key.unseal("site-c", &sealed),
            Err(PeerKeyError::Damaged { .. })
        ));
        // A flipped bit is detected, never returned as credentials.
        let mut flipped = sealed.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert!(key.unseal("site-b", &flipped).is_err());
        // The same file loads the same key.
        let again = PeerKey::load(&path).unwrap();
        assert_eq!(again.id(), key.id());
        assert!(again.unseal("site-b", &sealed).is_ok());
    }

    #[test]
    fn another_key_is_named_as_such() {
        let dir = tempfile::tempdir().unwrap();
        let first = PeerKey::create(&dir.path().join("a.key")).unwrap();
        let second = PeerKey::create(&dir.path().join("b.key")).unwrap();
        let sealed = first.seal("site-b", "u:p");
        let error = second.unseal("site-b", &sealed).unwrap_err();
        assert!(matches!(error, PeerKeyError::WrongKey { .. }), "{error}");
        assert!(error.to_string().contains(&first.id()), "{error}");
    }

    #[test]
    fn key_file_is_private_never_replaced_and_checked_on_load() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("peer-secret.key");
        let key = PeerKey::create(&path).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(!key_file_is_exposed(&path));
        // A second create finds the file and loads it rather than replacing it.
        let again = PeerKey::create(&path).unwrap();
        assert_eq!(again.id(), key.id());
        let leftovers = fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(leftovers, 1, "no temporary file is left behind");
        assert!(!format!("{key:?}").contains(&fs::read_to_string(&path).unwrap()[..16]));

        fs::write(&path, "short\n").unwrap();
        assert!(matches!(
            PeerKey::load(&path),
            Err(PeerKeyError::Malformed { .. })
        ));
        fs::remove_file(&path).unwrap();
        assert!(matches!(
            PeerKey::load(&path),
            Err(PeerKeyError::Missing { .. })
        ));
    }
}
