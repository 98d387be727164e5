//! The primitives that make bytes durable before any record points at them: fsync of
//! files, trees and directories, directory creation that survives a crash, and a
//! rename that never replaces an existing file.

use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Asks the kernel to start writing a range of a file to disk now, without waiting,
/// so that a later fsync has little left to do. A hint only: failures are ignored.
pub fn start_writeback(file: &fs::File, offset: u64, length: u64) {
    use std::os::fd::AsRawFd;
    // SAFETY: sync_file_range only reads its integer arguments; an invalid range or
    // descriptor yields an error code, which is ignored because this is a hint.
    unsafe {
        libc::sync_file_range(
            file.as_raw_fd(),
            offset as libc::off64_t,
            length as libc::off64_t,
            libc::SYNC_FILE_RANGE_WRITE,
        );
    }
}

/// Flushes everything written to the filesystem holding `path` (data and entries
/// of every file) in one call: cheaper than one fsync per file for a batch.
pub fn sync_filesystem(path: &Path) -> io::Result<()> {
    let directory = fs::File::open(path)?;
    rustix::fs::syncfs(&directory).map_err(io::Error::from)
}

/// Flushes a directory's entries (creations, renames) to disk.
pub fn sync_dir(path: &Path) -> io::Result<()> {
    fs::File::open(path)?.sync_all()
}

/// Flushes a file, or every file and directory of a tree, to disk.
pub fn sync_tree(path: &Path) -> io::Result<()> {
    let metadata = fs::symlink_metadata(path)?;
    if !metadata.is_dir() {
        return fs::File::open(path)?.sync_all();
    }
    for entry in walkdir::WalkDir::new(path).contents_first(true) {
        let entry = entry.map_err(io::Error::other)?;
        if entry.file_type().is_file() || entry.file_type().is_dir() {
            fs::File::open(entry.path())?.sync_all()?;
        }
    }
    Ok(())
}

/// Most threads used to sync many items at once. Syncs mostly wait on the disk, and
/// the filesystem folds concurrent syncs into shared journal commits.
const PARALLEL_SYNCS: usize = 16;

/// Syncs every path (file or tree) using several threads; one result per path.
pub fn sync_all_parallel<'a>(paths: impl Iterator<Item = &'a Path>) -> Vec<io::Result<()>> {
    let paths: Vec<&Path> = paths.collect();
    if paths.len() <= 1 {
        return paths.into_iter().map(sync_tree).collect();
    }
    let per_thread = paths.len().div_ceil(PARALLEL_SYNCS);
    std::thread::scope(|scope| {
        let workers: Vec<_> = paths
            .chunks(per_thread)
            .map(|chunk| {
                scope.spawn(move || chunk.iter().map(|p| sync_tree(p)).collect::<Vec<_>>())
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|worker| worker.join().expect("sync thread panicked"))
            .collect()
    })
}

/// Creates `root/relative` and any missing parents, syncing each parent whose entry
/// list changed, so the new directories survive a crash.
pub fn create_dirs_durably(root: &Path, relative: &Path) -> io::Result<()> {
    let mut current = root.to_path_buf();
    for component in relative.components() {
        let parent = current.clone();
        current.push(component);
        match fs::create_dir(&current) {
            Ok(()) => sync_dir(&parent)?,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && current.is_dir() => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Renames `from` to `to` unless `to` exists (then `AlreadyExists`). Committed files
/// are never replaced.
pub fn rename_no_replace(from: &Path, to: &Path) -> io::Result<()> {
    rustix::fs::renameat_with(
        rustix::fs::CWD,
        from,
        rustix::fs::CWD,
        to,
        rustix::fs::RenameFlags::NOREPLACE,
    )
    .map_err(io::Error::from)
}

/// Removes a file or a whole tree; a missing path is not an error.
pub fn remove_path(path: &Path) -> io::Result<()> {
    let result = match fs::symlink_metadata(path) {
        Ok(metadata) if metadata.is_dir() => {
            make_tree_writable(path);
            fs::remove_dir_all(path)
        }
        Ok(_) => fs::remove_file(path),
        Err(e) => Err(e),
    };
    match result {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// Gives the owner write permission on every directory of a tree, so it can be
/// removed even if it was made read-only.
fn make_tree_writable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    for entry in walkdir::WalkDir::new(path).into_iter().flatten() {
        if entry.file_type().is_dir()
            && let Ok(metadata) = entry.metadata()
        {
            let mode = metadata.permissions().mode() | 0o700;
            let _ = fs::set_permissions(entry.path(), fs::Permissions::from_mode(mode));
        }
    }
}

/// Removes `target` if it is still the inode `device`/`inode`, and syncs its
/// directory. Returns whether something was removed.
pub fn take_back(target: &Path, device: u64, inode: u64) -> io::Result<bool> {
    match fs::symlink_metadata(target) {
        Ok(metadata) if metadata.dev() == device && metadata.ino() == inode => {
            fs::remove_file(target)?;
            if let Some(parent) = target.parent() {
                sync_dir(parent)?;
            }
            Ok(true)
        }
        Ok(_) => Ok(false),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(error) => Err(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rename_refuses_to_replace() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        fs::write(&a, b"new").unwrap();
        fs::write(&b, b"committed").unwrap();
        let error = rename_no_replace(&a, &b).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read(&b).unwrap(), b"committed");
        let c = dir.path().join("c");
        rename_no_replace(&a, &c).unwrap();
        assert_eq!(fs::read(&c).unwrap(), b"new");
    }

    #[test]
    fn creates_nested_directories() {
        let dir = tempfile::tempdir().unwrap();
        create_dirs_durably(dir.path(), Path::new("x/y/z")).unwrap();
        assert!(dir.path().join("x/y/z").is_dir());
        create_dirs_durably(dir.path(), Path::new("x/y")).unwrap();
    }
}
