//! What a copy looks like on disk, read without reading its bytes: the check that
//! decides whether an earlier hash of the copy may be reused.
//!
//! Symbolic links are never followed: a link inside a directory copy counts by its
//! own metadata, and a copy whose path is itself a link is described as the link.

use std::fs::Metadata;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::model::CopyStat;

fn modified_ns(metadata: &Metadata) -> i64 {
    metadata
        .mtime()
        .saturating_mul(1_000_000_000)
        .saturating_add(metadata.mtime_nsec())
}

/// The stat of the copy at `path` (a file, or a directory by the directory rule).
/// Fails when the copy is missing or cannot be listed.
pub fn copy_stat(path: &Path) -> io::Result<CopyStat> {
    let metadata = path.symlink_metadata()?;
    if !metadata.is_dir() {
        return Ok(CopyStat {
            size: metadata.len(),
            modified_ns: modified_ns(&metadata),
            inode: metadata.ino(),
            entries: [0; 16],
        });
    }
    let mut size = 0u64;
    let mut newest = modified_ns(&metadata);
    let mut digest = blake3::Hasher::new();
    for entry in walkdir::WalkDir::new(path).sort_by_file_name().min_depth(1) {
        let entry = entry.map_err(io::Error::other)?;
        let metadata = entry.metadata().map_err(io::Error::other)?;
        let relative = entry.path().strip_prefix(path).unwrap_or(entry.path());
        if metadata.is_file() {
            size += metadata.len();
        }
        newest = newest.max(modified_ns(&metadata));
        let kind = if metadata.is_dir() {
            b'd'
        } else if metadata.is_file() {
            b'f'
        } else {
            b'o'
        };
        digest.update(relative.as_os_str().as_encoded_bytes());
        digest.update(&[0, kind]);
        digest.update(&metadata.ino().to_le_bytes());
        digest.update(&metadata.len().to_le_bytes());
        digest.update(&modified_ns(&metadata).to_le_bytes());
    }
    let mut entries = [0u8; 16];
    entries.copy_from_slice(&digest.finalize().as_bytes()[..16]);
    Ok(CopyStat {
        size,
        modified_ns: newest,
        inode: metadata.ino(),
        entries,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::time::{Duration, SystemTime};

    fn set_mtime(path: &Path, when: SystemTime) {
        fs::File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(when)
            .unwrap();
    }

    #[test]
    fn a_file_changes_its_stat_on_a_write_even_with_its_mtime_restored_elsewhere() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        fs::write(&path, b"abc").unwrap();
        let when = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        set_mtime(&path, when);
        let before = copy_stat(&path).unwrap();
        assert_eq!(before.size, 3);
        assert_eq!(before.modified_ns, 1_700_000_000_000_000_000);
        assert_eq!(copy_stat(&path).unwrap(), before, "stable while untouched");

        fs::write(&path, b"abd").unwrap();
        assert_ne!(copy_stat(&path).unwrap(), before, "a write moves the mtime");
        set_mtime(&path, when);
        assert_eq!(
            copy_stat(&path).unwrap(),
            before,
            "same size, same mtime, same inode: a stat cannot see this change"
        );
        fs::write(dir.path().join("g"), b"abd").unwrap();
        set_mtime(&dir.path().join("g"), when);
        fs::rename(dir.path().join("g"), &path).unwrap();
        assert_ne!(copy_stat(&path).unwrap(), before, "a replaced file is new");
        fs::remove_file(&path).unwrap();
        assert!(copy_stat(&path).is_err(), "a missing copy has no stat");
    }

    #[test]
    fn a_directory_changes_its_stat_when_any_entry_changes() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("d");
        fs::create_dir_all(root.join("x")).unwrap();
        fs::write(root.join("x/one"), b"one").unwrap();
        fs::write(root.join("two"), b"two!").unwrap();
        let when = SystemTime::UNIX_EPOCH + Duration::from_secs(1_600_000_000);
        set_mtime(&root.join("x/one"), when);
        let before = copy_stat(&root).unwrap();
        assert_eq!(before.size, 7);

        // An older mtime on one file leaves the newest mtime and the size alone.
        set_mtime(&root.join("x/one"), when - Duration::from_secs(60));
        let after = copy_stat(&root).unwrap();
        assert_eq!(
            (after.size, after.modified_ns),
            (before.size, before.modified_ns)
        );
        assert_ne!(after, before);
    }
}
