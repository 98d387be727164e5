//! Crash-safe, verified copies of committed files onto another local store (a
//! SneakerNet drive): copy into the store's staging while hashing what is read, make
//! the copies durable, evict them from the page cache and hash them again from the
//! medium, then rename each into `<root>/<name>` without replacing anything.
//!
//! Invariant: `<root>/<name>` only ever receives bytes that were read back from the
//! store after they were synced and matched the source's recorded size and BLAKE3.
//! A crash at any point leaves either nothing at the target (the staging directory
//! is removed by recovery) or verified bytes there without a record, which the next
//! copy of the same file adopts after hashing them.

mod staged;

use std::io;
use std::path::{Path, PathBuf};

use crate::checksum::{Digests, digest_in};
use crate::fsroot::Dir;
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

/// One file to copy.
#[derive(Debug, Clone)]
pub struct CopyItem {
    /// The root of the store holding its committed bytes.
    pub source_root: PathBuf,
    /// Its committed bytes (a file or a directory), relative to `source_root`.
    pub source: PathBuf,
    /// Its name: the copy goes to `<target root>/<name>`.
    pub name: String,
    pub expected: Expected,
}

/// Copies every item to `target`, verified; one result per item, in order. The
/// batch shares one staging directory and its durability costs (one filesystem sync
/// for many small files), so a copy costs little more than its bytes.
pub fn copy_verified(target: &Store, items: &[CopyItem]) -> Vec<Result<Copied, CopyError>> {
    let root = match target.root_dir() {
        Ok(root) => root,
        Err(error) => {
            return items
                .iter()
                .map(|_| {
                    Err(CopyError::Io(io::Error::new(
                        error.kind(),
                        error.to_string(),
                    )))
                })
                .collect();
        }
    };
    let mut results: Vec<Option<Result<Copied, CopyError>>> = items
        .iter()
        .map(|item| {
            // Anything at the name (a link included), or a link on the way to it,
            // is either the very copy expected or in the way.
            let name = Path::new(&item.name);
            let there = !matches!(root.try_stat(name), Ok(None));
            there.then(|| adopt_existing(target, &root, &item.name, item.expected))
        })
        .collect();
    let to_copy: Vec<usize> = (0..items.len()).filter(|i| results[*i].is_none()).collect();
    if !to_copy.is_empty() {
        match target.create_staging() {
            Ok(name) => {
                let staging = StagingGuard {
                    name,
                    store: target,
                };
                for (index, result) in staged::copy_staged(&staging, items, &to_copy) {
                    results[index] = Some(result);
                }
            }
            Err(error) => {
                for index in to_copy {
                    results[index] = Some(Err(CopyError::Io(io::Error::new(
                        error.kind(),
                        error.to_string(),
                    ))));
                }
            }
        }
    }
    results
        .into_iter()
        .map(|r| r.expect("every item has a result"))
        .collect()
}

/// Accepts bytes already at `<root>/<name>` if they are exactly the expected
/// ones (read symlink-free: a link there is in the way, never followed).
fn adopt_existing(
    target: &Store,
    root: &Dir,
    name: &str,
    expected: Expected,
) -> Result<Copied, CopyError> {
    let destination = target.file_path(name);
    match digest_in(root, Path::new(name), &[]) {
        Ok(found) if expected.matches(&found) => Ok(Copied {
            target: destination,
            adopted: true,
        }),
        _ => Err(CopyError::NameTaken {
            path: destination.display().to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use std::fs;

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
        let digests = crate::checksum::digest_path(path, &[]).unwrap();
        Expected {
            size: digests.size,
            blake3: digests.blake3(),
        }
    }

    fn copy_one(
        source: &Path,
        store: &Store,
        name: &str,
        expected: Expected,
    ) -> Result<Copied, CopyError> {
        let item = CopyItem {
            source_root: source.parent().unwrap().to_path_buf(),
            source: source.file_name().unwrap().into(),
            name: name.into(),
            expected,
        };
        copy_verified(store, &[item]).pop().unwrap()
    }

    #[test]
    fn copies_verify_adopt_and_refuse() {
        let dir = tempfile::tempdir().unwrap();
        let store = drive(dir.path());
        let source = dir.path().join("source.dat");
        fs::write(&source, vec![5u8; 300_000]).unwrap();
        let expected = expected_of(&source);

        let copied = copy_one(&source, &store, "a/b/source.dat", expected).unwrap();
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

        let again = copy_one(&source, &store, "a/b/source.dat", expected).unwrap();
        assert!(again.adopted, "identical bytes already there are adopted");

        let other = dir.path().join("other.dat");
        fs::write(&other, b"different").unwrap();
        let taken = copy_one(&other, &store, "a/b/source.dat", expected_of(&other));
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
        let refused = copy_one(&source, &store, "c/source.dat", wrong);
        assert!(
            matches!(refused, Err(CopyError::SourceDiffers { .. })),
            "{refused:?}"
        );
        assert!(!store.file_path("c/source.dat").exists());
        assert_eq!(store.staging_names().unwrap().len(), 0);
    }

    #[test]
    fn a_batch_shares_one_sync_and_reports_each_item() {
        let dir = tempfile::tempdir().unwrap();
        let store = drive(dir.path());
        let mut items = Vec::new();
        for i in 0..40u8 {
            let source = dir.path().join(format!("s{i}"));
            fs::write(&source, vec![i; 1000 + i as usize]).unwrap();
            let mut expected = expected_of(&source);
            if i == 7 {
                expected.blake3 = [1; 32];
            }
            items.push(CopyItem {
                source_root: dir.path().to_path_buf(),
                source: source.file_name().unwrap().into(),
                name: format!("batch/same-name-{}/f", i % 2),
                expected,
            });
        }
        items[5].name = "batch/five".into();
        let results = copy_verified(&store, &items);
        assert_eq!(results.len(), 40);
        assert!(results[5].as_ref().is_ok_and(|c| !c.adopted));
        assert!(matches!(results[7], Err(CopyError::SourceDiffers { .. })));
        // Names 0 and 1 are taken by the first of each parity; the rest collide.
        assert!(results[0].is_ok() && results[1].is_ok());
        assert!(matches!(results[2], Err(CopyError::NameTaken { .. })));
        assert_eq!(
            fs::read(store.file_path("batch/five")).unwrap(),
            vec![5u8; 1005]
        );
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
        let copied = copy_one(&source, &store, "obs/tree", expected_of(&source)).unwrap();
        assert_eq!(fs::read(copied.target.join("sub/x")).unwrap(), b"x");
        assert_eq!(fs::read(copied.target.join("y")).unwrap(), b"y");
    }
}
