//! The primitives that make bytes durable before any record points at them: fsync of
//! files, trees and directories, directory creation that survives a crash, and a
//! rename or link that never replaces an existing file.
//!
//! Every fsync, syncfs, rename, link, mkdir and unlink of a commit path goes through
//! this file, so that test builds can record them in order (`record`) and replay
//! what a power loss would have left; release builds observe nothing (`observe` is
//! a set of empty inline functions there).
//!
//! Under staging, stores and drop-boxes every name is reached through a
//! [`Dir`](crate::fsroot::Dir) (the `*_in` functions), never by a path: see
//! `crate::fsroot`. The few path-taking functions left serve the data directory.

use std::fs;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::fsroot::{Dir, Kind, Opened};

#[cfg(test)]
pub mod record;
#[cfg(test)]
use record as observe;

/// What release builds observe: nothing.
#[cfg(not(test))]
mod observe {
    use std::fs;
    use std::path::Path;

    /// What a sync saw before it ran: nothing.
    pub struct Seen;

    #[inline(always)]
    pub fn before_sync_path(_: &Path) -> Seen {
        Seen
    }
    #[inline(always)]
    pub fn before_sync_file(_: &fs::File) -> Seen {
        Seen
    }
    #[inline(always)]
    pub fn before_sync_filesystem(_: &Path) -> Seen {
        Seen
    }
    #[inline(always)]
    pub fn synced(_: Seen) {}
    #[inline(always)]
    pub fn made_dir(_: &Path) {}
    #[inline(always)]
    pub fn renamed(_: &Path, _: &Path) {}
    #[inline(always)]
    pub fn linked(_: &fs::File, _: &Path) {}
    #[inline(always)]
    pub fn removed(_: &Path) {}
    #[inline(always)]
    pub fn evicted(_: &Path) {}
}

/// Flushes everything written to the filesystem holding `dir` (data and entries
/// of every file) in one call: cheaper than one fsync per file for a batch.
pub fn sync_filesystem_of(dir: &Dir) -> io::Result<()> {
    let seen = observe::before_sync_filesystem(dir.path());
    rustix::fs::syncfs(dir).map_err(io::Error::from)?;
    observe::synced(seen);
    Ok(())
}

/// Flushes a directory's entries (creations, renames) to disk.
pub fn sync_directory(dir: &Dir) -> io::Result<()> {
    let seen = observe::before_sync_path(dir.path());
    dir.fsync()?;
    observe::synced(seen);
    Ok(())
}

/// Flushes the file, or every file and directory of the tree, at `relative`.
pub fn sync_in(dir: &Dir, relative: &Path) -> io::Result<()> {
    match dir.open_entry(relative)? {
        Opened::File(file, _) => sync_file(&file),
        Opened::Dir(tree, _) => sync_tree_of(&tree),
    }
}

/// Flushes every file and directory of a tree, what it holds first.
fn sync_tree_of(tree: &Dir) -> io::Result<()> {
    for (name, kind) in tree.entries()? {
        match kind {
            Kind::File => sync_file(&tree.open_file(Path::new(&name))?.0)?,
            Kind::Dir => sync_tree_of(&tree.open_dir(Path::new(&name))?)?,
            // Links and special files hold no bytes of ours.
            Kind::Symlink | Kind::Special => {}
        }
    }
    sync_directory(tree)
}

/// Most threads used to sync many items at once. Syncs mostly wait on the disk, and
/// the filesystem folds concurrent syncs into shared journal commits.
const PARALLEL_SYNCS: usize = 16;

/// Syncs every item (a file or tree beneath its directory) using several
/// threads; one result per item.
pub fn sync_all_in_parallel(items: &[(&Dir, &Path)]) -> Vec<io::Result<()>> {
    if items.len() <= 1 {
        return items.iter().map(|(dir, path)| sync_in(dir, path)).collect();
    }
    let per_thread = items.len().div_ceil(PARALLEL_SYNCS);
    std::thread::scope(|scope| {
        let workers: Vec<_> = items
            .chunks(per_thread)
            .map(|chunk| {
                scope.spawn(move || {
                    chunk
                        .iter()
                        .map(|(dir, path)| sync_in(dir, path))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|worker| worker.join().expect("sync thread panicked"))
            .collect()
    })
}

/// Creates `relative` beneath `root` and any missing parents, syncing each parent
/// whose entry list changed, so the new directories survive a crash; returns the
/// directory, opened. A link anywhere on the way is refused, never followed.
pub fn create_dirs_in(root: &Dir, relative: &Path) -> io::Result<Dir> {
    let mut current = root.try_clone()?;
    for component in relative.components() {
        let name = Path::new(component.as_os_str());
        match make_dir_in(&current, name, 0o777) {
            Ok(()) => sync_directory(&current)?,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
        current = current.open_dir(name)?;
    }
    Ok(current)
}

/// Creates one directory (its parent must exist) with `mode` less the umask; not
/// durable by itself.
pub fn make_dir_in(dir: &Dir, relative: &Path, mode: u32) -> io::Result<()> {
    dir.create_dir(relative, mode)?;
    observe::made_dir(&dir.display_path(relative));
    Ok(())
}

/// Renames `from` (beneath `from_dir`) to `to` (beneath `to_dir`) unless `to`
/// exists (then `AlreadyExists`). Committed files are never replaced.
pub fn rename_in(from_dir: &Dir, from: &Path, to_dir: &Dir, to: &Path) -> io::Result<()> {
    from_dir.rename_no_replace(from, to_dir, to)?;
    observe::renamed(&from_dir.display_path(from), &to_dir.display_path(to));
    Ok(())
}

/// Gives the inode behind `file` (an unnamed file, or one opened elsewhere) the
/// name `to` beneath `dir`, unless it is taken (then `AlreadyExists`).
pub fn link_in(file: &fs::File, dir: &Dir, to: &Path) -> io::Result<()> {
    dir.link_file(file, to)?;
    observe::linked(file, &dir.display_path(to));
    Ok(())
}

/// Removes the name `relative` (not a directory); not durable by itself.
pub fn unlink_in(dir: &Dir, relative: &Path) -> io::Result<()> {
    dir.unlink(relative)?;
    observe::removed(&dir.display_path(relative));
    Ok(())
}

/// Removes a file or a whole tree, never following a link; a missing name is not
/// an error.
pub fn remove_in(dir: &Dir, relative: &Path) -> io::Result<()> {
    let result = dir.remove_tree(relative);
    if result.is_ok() {
        observe::removed(&dir.display_path(relative));
    }
    result.map(|_| ())
}

/// Removes `relative` if it is still the inode `device`/`inode`, and syncs its
/// directory. Returns whether something was removed.
pub fn take_back_in(dir: &Dir, relative: &Path, device: u64, inode: u64) -> io::Result<bool> {
    let (parent, name) = match dir.parent_and_name(relative) {
        Ok(found) => found,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(error) => return Err(error),
    };
    match parent.try_stat(name)? {
        Some(meta) if meta.identity() == (device, inode) => {
            unlink_in(&parent, name)?;
            sync_directory(&parent)?;
            Ok(true)
        }
        _ => Ok(false),
    }
}

/// Asks the kernel to drop the cached pages of every file at or under
/// `relative`, so that the next read comes from the medium. Only clean (synced)
/// pages are dropped; where the hint is ignored, a read still returns what the
/// filesystem holds.
pub fn drop_cached_pages_in(dir: &Dir, relative: &Path) {
    match dir.open_entry(relative) {
        Ok(Opened::File(file, _)) => evict(&file, &dir.display_path(relative)),
        Ok(Opened::Dir(tree, _)) => {
            let _ = tree.walk(&mut |entry| {
                if entry.kind == Kind::File
                    && let Ok((file, _)) = entry.parent.open_file(entry.name)
                {
                    evict(&file, &tree.display_path(entry.relative));
                }
                crate::fsroot::Visit::Continue
            });
        }
        Err(_) => {}
    }
}

fn evict(file: &fs::File, shown: &Path) {
    observe::evicted(shown);
    let _ = rustix::fs::fadvise(file, 0, None, rustix::fs::Advice::DontNeed);
}

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
    let seen = observe::before_sync_filesystem(path);
    rustix::fs::syncfs(&directory).map_err(io::Error::from)?;
    observe::synced(seen);
    Ok(())
}

/// Flushes a directory's entries (creations, renames) to disk.
pub fn sync_dir(path: &Path) -> io::Result<()> {
    sync_path(path)
}

/// Flushes the file or directory at `path` to disk.
fn sync_path(path: &Path) -> io::Result<()> {
    let file = fs::File::open(path)?;
    let seen = observe::before_sync_path(path);
    file.sync_all()?;
    observe::synced(seen);
    Ok(())
}

/// Flushes an open file's bytes to disk.
pub fn sync_file(file: &fs::File) -> io::Result<()> {
    let seen = observe::before_sync_file(file);
    file.sync_all()?;
    observe::synced(seen);
    Ok(())
}

/// Flushes a file, or every file and directory of a tree, to disk.
pub fn sync_tree(path: &Path) -> io::Result<()> {
    let metadata = fs::symlink_metadata(path)?;
    if !metadata.is_dir() {
        return sync_path(path);
    }
    for entry in walkdir::WalkDir::new(path).contents_first(true) {
        let entry = entry.map_err(io::Error::other)?;
        if entry.file_type().is_file() || entry.file_type().is_dir() {
            sync_path(entry.path())?;
        }
    }
    Ok(())
}

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
        match make_dir(&current) {
            Ok(()) => sync_dir(&parent)?,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && current.is_dir() => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Creates one directory (its parent must exist); not durable by itself.
pub fn make_dir(path: &Path) -> io::Result<()> {
    fs::create_dir(path)?;
    observe::made_dir(path);
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
    .map_err(io::Error::from)?;
    observe::renamed(from, to);
    Ok(())
}

/// Gives the inode behind `file` (an unnamed file, or one opened elsewhere) the
/// name `target`, unless `target` exists (then `AlreadyExists`).
pub fn link_no_replace(file: &fs::File, target: &Path) -> io::Result<()> {
    let own_fd = format!("/proc/self/fd/{}", file.as_raw_fd());
    rustix::fs::linkat(
        rustix::fs::CWD,
        own_fd.as_str(),
        rustix::fs::CWD,
        target,
        rustix::fs::AtFlags::SYMLINK_FOLLOW,
    )
    .map_err(io::Error::from)?;
    observe::linked(file, target);
    Ok(())
}

/// Removes the name `path` of a file; not durable by itself.
pub fn remove_file(path: &Path) -> io::Result<()> {
    fs::remove_file(path)?;
    observe::removed(path);
    Ok(())
}

/// Asks the kernel to drop the cached pages of every file under `path`, so that
/// the next read comes from the medium. Only clean (synced) pages are dropped;
/// where the hint is ignored, a read still returns what the filesystem holds.
pub fn drop_cached_pages(path: &Path) {
    for entry in walkdir::WalkDir::new(path).into_iter().flatten() {
        if entry.file_type().is_file()
            && let Ok(file) = fs::File::open(entry.path())
        {
            observe::evicted(entry.path());
            let _ = rustix::fs::fadvise(&file, 0, None, rustix::fs::Advice::DontNeed);
        }
    }
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
        other => {
            observe::removed(path);
            other
        }
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
            remove_file(target)?;
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
