//! The peer key as a running node holds it: loaded at start-up, or, when its file
//! was missing, loaded on first use once the operator restores the file.
//!
//! Invariant: a new key is generated only while no stored peer has credentials
//! sealed (the caller says so), so restoring the original key file always works.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use super::peer_key::{PeerKey, PeerKeyError};

/// The node's peer key, or where it should be.
#[derive(Debug)]
pub struct PeerKeyring {
    path: PathBuf,
    key: OnceLock<PeerKey>,
}

impl PeerKeyring {
    /// A keyring holding `key`.
    pub fn loaded(key: PeerKey) -> PeerKeyring {
        let keyring = PeerKeyring::missing(key.path());
        let _ = keyring.key.set(key);
        keyring
    }

    /// A keyring whose file at `path` is missing for now.
    pub fn missing(path: &Path) -> PeerKeyring {
        PeerKeyring {
            path: path.to_path_buf(),
            key: OnceLock::new(),
        }
    }

    /// Where the key file is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the key is in memory.
    pub fn is_loaded(&self) -> bool {
        self.key.get().is_some()
    }

    /// The key, reading its file now if it was missing before.
    pub fn key(&self) -> Result<&PeerKey, PeerKeyError> {
        if let Some(key) = self.key.get() {
            return Ok(key);
        }
        let loaded = PeerKey::load(&self.path)?;
        Ok(self.key.get_or_init(|| loaded))
    }

    /// The key to seal new credentials with. When the file is missing and
    /// `sealed_peers_exist` is false, nothing sealed can be lost, so a new key is
    /// generated; otherwise the missing file is an error that says what to do.
    pub fn key_for_sealing(&self, sealed_peers_exist: bool) -> Result<&PeerKey, PeerKeyError> {
        match self.key() {
            Err(PeerKeyError::Missing { .. }) if !sealed_peers_exist => {
                let created = PeerKey::create(&self.path)?;
                tracing::info!(path = %self.path.display(), "generated a new peer key file");
                Ok(self.key.get_or_init(|| created))
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_restored_file_is_picked_up_and_a_key_is_generated_only_when_nothing_is_sealed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("peer-secret.key");
        let keyring = PeerKeyring::missing(&path);
        assert!(matches!(keyring.key(), Err(PeerKeyError::Missing { .. })));
        assert!(matches!(
            keyring.key_for_sealing(true),
            Err(PeerKeyError::Missing { .. })
        ));
        assert!(
            !path.exists(),
            "no key is generated while sealed peers exist"
        );

        let original = PeerKey::create(&path).unwrap();
        assert_eq!(keyring.key().unwrap().id(), original.id());

        let empty = PeerKeyring::missing(&dir.path().join("other.key"));
        let generated = empty.key_for_sealing(false).unwrap();
        assert!(empty.path().exists());
        assert_ne!(generated.id(), original.id());
    }
}
