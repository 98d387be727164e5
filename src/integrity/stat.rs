//! What a copy looks like on disk, read without reading its bytes: the check that
//! decides whether an earlier hash of the copy may be reused.
//!
//! Symbolic links are never followed: a link inside a directory copy counts by its
//! own metadata, a copy whose path is itself a link is described as the link, and
//! a copy reached through a linked directory has no stat.

use std::io;
use std::path::Path;

use crate::fsroot::{Dir, Kind, Meta, Visit};
use crate::model::CopyStat;

fn modified_ns(metadata: &Meta) -> i64 {
    metadata
        .mtime
        .0
        .saturating_mul(1_000_000_000)
        .saturating_add(metadata.mtime.1)
}

/// The stat of the copy at `relative` beneath `dir` (a file, or a directory by
/// the directory rule), reached symlink-free. Fails when the copy is missing,
/// reached through a link, or cannot be listed.
pub fn copy_stat_in(dir: &Dir, relative: &Path) -> io::Result<CopyStat> {
    let metadata = dir.stat(relative)?;
    if metadata.kind != Kind::Dir {
        return Ok(CopyStat {
            size: metadata.size,
            modified_ns: modified_ns(&metadata),
            inode: metadata.inode,
            entries: [0; 16],
        });
    }
    let tree = dir.open_dir(relative)?;
    let mut size = 0u64;
    let mut newest = modified_ns(&metadata);
    let mut digest = blake3::Hasher::new();
    let mut failure = None;
    tree.walk(&mut |entry| {
        let metadata = match entry.meta() {
            Ok(metadata) => metadata,
            Err(error) => {
                failure = Some(error);
                return Visit::Stop;
            }
        };
        if metadata.kind == Kind::File {
            size += metadata.size;
        }
        newest = newest.max(modified_ns(&metadata));
        let kind = match metadata.kind {
            Kind::Dir => b'd',
            Kind::File => b'f',
            _ => b'o',
        };
        digest.update(entry.relative.as_os_str().as_encoded_bytes());
        digest.update(&[0, kind]);
        digest.update(&metadata.inode.to_le_bytes());
        digest.update(&metadata.size.to_le_bytes());
        digest.update(&modified_ns(&metadata).to_le_bytes());
        Visit::Continue
    })?;
    if let Some(error) = failure {
        return Err(error);
    }
    let mut entries = [0u8; 16];
    entries.copy_from_slice(&digest.finalize().as_bytes()[..16]);
    Ok(CopyStat {
        size,
        modified_ns: newest,
        inode: metadata.inode,
        entries,
    })
}

/// The stat of the copy at the absolute `path`, its parent taken as the root
/// (tests only: the node reaches copies from their store's root).
#[cfg(test)]
pub fn copy_stat(path: &Path) -> io::Result<CopyStat> {
    let parent = Dir::open_trusted(path.parent().expect("a parent"))?;
    copy_stat_in(&parent, Path::new(path.file_name().expect("a name")))
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
