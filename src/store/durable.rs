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
//! `crate::fsroot`. The few path-taking functions left (`sync_dir`,
//! `rename_no_replace`) serve the data directory, which only the node writes.

use std::fs;
use std::io;
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
    sync_opened(&dir.open_entry(relative)?)
}

/// Flushes an open file, or every file and directory of an open tree.
pub fn sync_opened(opened: &Opened) -> io::Result<()> {
    match opened {
        Opened::File(file, _) => sync_file(file),
        Opened::Dir(tree, _) => sync_tree_of(tree),
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
    in_parallel(items, |(dir, path)| sync_in(dir, path))
}

/// Syncs every open file or tree using several threads; one result per item.
pub fn sync_all_opened_in_parallel(items: &[&Opened]) -> Vec<io::Result<()>> {
    in_parallel(items, |opened| sync_opened(opened))
}

/// Runs `sync` on every item, on up to [`PARALLEL_SYNCS`] threads.
fn in_parallel<T: Sync>(
    items: &[T],
    sync: impl Fn(&T) -> io::Result<()> + Sync,
) -> Vec<io::Result<()>> {
    if items.len() <= 1 {
        return items.iter().map(&sync).collect();
    }
    let per_thread = items.len().div_ceil(PARALLEL_SYNCS);
    let sync = &sync;
    std::thread::scope(|scope| {
        let workers: Vec<_> = items
            .chunks(per_thread)
            .map(|chunk| scope.spawn(move || chunk.iter().map(sync).collect::<Vec<_>>()))
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

/// Removes a file or a whole tree of the data directory or a test's scratch
/// space (never of staging, stores or drop-boxes: see `remove_in`); a missing
/// path is not an error.
#[cfg(test)]
pub fn remove_path(path: &Path) -> io::Result<()> {
    let result = match fs::symlink_metadata(path) {
        Ok(metadata) if metadata.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) => Err(e),
    };
    match result {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
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
    fn creates_nested_directories_and_refuses_links() {
        let dir = tempfile::tempdir().unwrap();
        let root = Dir::open_trusted(dir.path()).unwrap();
        create_dirs_in(&root, Path::new("x/y/z")).unwrap();
        assert!(dir.path().join("x/y/z").is_dir());
        create_dirs_in(&root, Path::new("x/y")).unwrap();
        std::os::unix::fs::symlink(dir.path().join("x"), dir.path().join("l")).unwrap();
        let error = create_dirs_in(&root, Path::new("l/y/w")).unwrap_err();
        assert!(crate::fsroot::refusal(&error).is_some(), "{error}");
        assert!(!dir.path().join("x/y/w").exists());
    }
}
