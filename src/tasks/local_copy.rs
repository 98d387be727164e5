//! One crash-safe, verified copy of a committed file onto another local store (a
//! SneakerNet drive): copy into the store's staging while hashing what is read, make
//! it durable, evict it from the page cache and hash it again from the medium, then
//! rename it into `<root>/<name>` without replacing anything.
//!
//! Invariant: `<root>/<name>` only ever receives bytes that were read back from the
//! store after they were synced and matched the source's recorded size and BLAKE3.
//! A crash at any point leaves either nothing at the target (the staging directory
//! is removed by recovery) or verified bytes there without a record, which the next
//! copy of the same file adopts after hashing them.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::checksum::{Digests, copy_and_digest, digest_path};
use crate::store::Store;

/// What the copy must hold: the source record's size and BLAKE3.
#[derive(Debug, Clone, Copy)]
pub struct Expected {
    pub size: u64,
    pub blake3: [u8; 32],
}

impl Expected {
    fn matches(&self, digests: &Digests) -> bool {
        digests.size == self.size && digests.blake3() == self.blake3
    }
}

/// A finished copy.
#[derive(Debug)]
pub struct Copied {
    pub target: PathBuf,
    /// The target already held these very bytes (an earlier copy interrupted after
    /// its rename); nothing was written.
    pub adopted: bool,
}

/// Why a copy was not made. Nothing is left at the target in any case.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// The source's bytes differ from its record: a corrupt source is never copied.
    #[error("the source {path} does not match its record (size {size}, BLAKE3 differs)")]
    SourceDiffers {
        path: String,
        size: u64,
        blake3: [u8; 32],
    },
    /// What was read back from the drive differs from what was written.
    #[error("the copy read back from {store} differs from the source; the drive may be failing")]
    ReadBackDiffers { store: String },
    /// Something else lives at the target path.
    #[error("{path} already exists on the store with other contents; it was left alone")]
    NameTaken { path: String },
    #[error("{0}")]
    Io(#[from] io::Error),
}

/// Removes a staging directory when dropped, whatever happened to the copy.
struct StagingGuard<'a> {
    store: &'a Store,
    name: String,
}

impl Drop for StagingGuard<'_> {
    fn drop(&mut self) {
        if let Err(error) = self.store.remove_staging(&self.name) {
            // Recovery removes it at the next start.
            tracing::debug!(store = %self.store.name, %error, "cannot remove clone staging");
        }
    }
}

/// Copies `source` (a file or a directory) to `<target root>/<name>`, verified.
pub fn copy_verified(
    source: &Path,
    target: &Store,
    name: &str,
    expected: Expected,
) -> Result<Copied, CopyError> {
    let destination = target.file_path(name);
    if fs::symlink_metadata(&destination).is_ok() {
        return adopt_existing(&destination, expected);
    }
    let staging = StagingGuard {
        name: target.create_staging()?,
        store: target,
    };
    let base_name = Path::new(name).file_name().unwrap_or(name.as_ref());
    let staged = target.staging.join(&staging.name).join(base_name);
    // Every file is synced by the copy, so eviction below drops clean pages.
    let copied = copy_and_digest(source, &staged, &[])?;
    if !expected.matches(&copied) {
        return Err(CopyError::SourceDiffers {
            path: source.display().to_string(),
            size: copied.size,
            blake3: copied.blake3(),
        });
    }
    evict_from_cache(&staged);
    if !expected.matches(&digest_path(&staged, &[])?) {
        return Err(CopyError::ReadBackDiffers {
            store: target.name.clone(),
        });
    }
    match target.commit(&staged, name) {
        Ok(path) => Ok(Copied {
            target: path,
            adopted: false,
        }),
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {
            adopt_existing(&destination, expected)
        }
        Err(error) => Err(error.into()),
    }
}

/// Accepts bytes already at the target if they are exactly the expected ones.
fn adopt_existing(destination: &Path, expected: Expected) -> Result<Copied, CopyError> {
    match digest_path(destination, &[]) {
        Ok(found) if expected.matches(&found) => Ok(Copied {
            target: destination.to_path_buf(),
            adopted: true,
        }),
        _ => Err(CopyError::NameTaken {
            path: destination.display().to_string(),
        }),
    }
}

/// Asks the kernel to drop the cached pages of every file under `path`, so that
/// the next read comes from the medium. The pages are clean (synced), so nothing
/// is lost; where the hint is ignored the read-back still compares what the
/// filesystem returns.
fn evict_from_cache(path: &Path) {
    for entry in walkdir::WalkDir::new(path).into_iter().flatten() {
        if entry.file_type().is_file()
            && let Ok(file) = fs::File::open(entry.path())
        {
            let _ = rustix::fs::fadvise(&file, 0, None, rustix::fs::Advice::DontNeed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::StoreConfig;

    fn drive(dir: &Path) -> Store {
        let config = StoreConfig {
            name: "drive".into(),
            path: dir.join("drive"),
            staging_path: None,
            ingestable: false,
            report_full_fraction: 1.0,
            enabled: true,
            group_write_after_stage: false,
            own_after_commit: false,
            readonly_after_commit: true,
        };
        let root = dir.join("drive");
        let store = Store::new(2, &config, root.clone(), root.join(".quire-staging"), true);
        store.prepare().unwrap();
        store
    }

    fn expected_of(path: &Path) -> Expected {
        let digests = digest_path(path, &[]).unwrap();
        Expected {
            size: digests.size,
            blake3: digests.blake3(),
        }
    }

    #[test]
    fn copies_verify_adopt_and_refuse() {
        let dir = tempfile::tempdir().unwrap();
        let store = drive(dir.path());
        let source = dir.path().join("source.dat");
        fs::write(&source, vec![5u8; 300_000]).unwrap();
        let expected = expected_of(&source);

        let copied = copy_verified(&source, &store, "a/b/source.dat", expected).unwrap();
        assert!(!copied.adopted);
        assert_eq!(
            fs::read(&copied.target).unwrap(),
            fs::read(&source).unwrap()
        );
        assert_eq!(
            store.staging_names().unwrap().len(),
            0,
            "staging is removed"
        );

        let again = copy_verified(&source, &store, "a/b/source.dat", expected).unwrap();
        assert!(again.adopted, "identical bytes already there are adopted");

        let other = dir.path().join("other.dat");
        fs::write(&other, b"different").unwrap();
        let taken = copy_verified(&other, &store, "a/b/source.dat", expected_of(&other));
        assert!(
            matches!(taken, Err(CopyError::NameTaken { .. })),
            "{taken:?}"
        );
        assert_eq!(
            fs::read(&copied.target).unwrap(),
            fs::read(&source).unwrap()
        );

        let wrong = Expected {
            size: expected.size,
            blake3: [0; 32],
        };
        let refused = copy_verified(&source, &store, "c/source.dat", wrong);
        assert!(
            matches!(refused, Err(CopyError::SourceDiffers { .. })),
            "{refused:?}"
        );
        assert!(!store.file_path("c/source.dat").exists());
        assert_eq!(store.staging_names().unwrap().len(), 0);
    }

    #[test]
    fn directories_are_copied_whole() {
        let dir = tempfile::tempdir().unwrap();
        let store = drive(dir.path());
        let source = dir.path().join("tree");
        fs::create_dir_all(source.join("sub")).unwrap();
        fs::write(source.join("sub/x"), b"x").unwrap();
        fs::write(source.join("y"), b"y").unwrap();
        let copied = copy_verified(&source, &store, "obs/tree", expected_of(&source)).unwrap();
        assert_eq!(fs::read(copied.target.join("sub/x")).unwrap(), b"x");
        assert_eq!(fs::read(copied.target.join("y")).unwrap(), b"y");
    }
}
