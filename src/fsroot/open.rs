//! Resolving a relative path beneath a directory without following any link:
//! `openat2` with `RESOLVE_NO_SYMLINKS | RESOLVE_BENEATH` where the kernel has it,
//! otherwise one `openat(O_NOFOLLOW | O_DIRECTORY)` per directory component.

use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::sync::atomic::{AtomicU8, Ordering};

use rustix::fs::{Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

use super::{Dir, components, explain};

/// Whether the kernel has `openat2`: 0 not known yet, 1 yes, 2 no.
static OPENAT2: AtomicU8 = AtomicU8::new(0);

/// How often a resolution the kernel asks to retry (a rename raced it) is tried.
const RETRIES: usize = 16;

/// Opens `relative` beneath `dir` with `flags` (`O_NOFOLLOW` and `O_CLOEXEC` are
/// added), following no link anywhere on the way.
pub(super) fn open_beneath(
    dir: &Dir,
    relative: &Path,
    flags: OFlags,
    mode: Mode,
) -> io::Result<OwnedFd> {
    let parts = components(relative, false)?;
    let with_openat2 = OPENAT2.load(Ordering::Relaxed) != 2;
    match open_parts(dir.as_fd(), &parts, flags, mode, with_openat2) {
        Err(Errno::NOSYS) if with_openat2 => {
            OPENAT2.store(2, Ordering::Relaxed);
            open_parts(dir.as_fd(), &parts, flags, mode, false)
        }
        other => {
            if with_openat2 && other.is_ok() {
                OPENAT2.store(1, Ordering::Relaxed);
            }
            other
        }
    }
    .map_err(|e| explain(e, || dir.display_path(relative)))
}

/// Opens the path made of `parts` beneath `start`, by `openat2` or by a walk.
pub(super) fn open_parts(
    start: BorrowedFd<'_>,
    parts: &[&OsStr],
    flags: OFlags,
    mode: Mode,
    with_openat2: bool,
) -> Result<OwnedFd, Errno> {
    let flags = flags | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    if with_openat2 {
        let joined: std::path::PathBuf = parts.iter().collect();
        let resolve =
            ResolveFlags::NO_SYMLINKS | ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS;
        let mut tries = 0;
        loop {
            match rustix::fs::openat2(start, &joined, flags, mode, resolve) {
                Err(Errno::AGAIN) if tries < RETRIES => tries += 1,
                other => return other,
            }
        }
    }
    let (last, parents) = parts.split_last().expect("at least one component");
    let mut current: Option<OwnedFd> = None;
    for part in parents {
        let at = current.as_ref().map_or(start, |fd| fd.as_fd());
        let next = rustix::fs::openat(
            at,
            *part,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        );
        let next = match next {
            // O_NOFOLLOW | O_DIRECTORY on a link says "not a directory": say it
            // was a link, as openat2 does.
            Err(Errno::NOTDIR) => {
                let stat = rustix::fs::statat(at, *part, rustix::fs::AtFlags::SYMLINK_NOFOLLOW)?;
                let kind = rustix::fs::FileType::from_raw_mode(stat.st_mode as _);
                return Err(if kind == rustix::fs::FileType::Symlink {
                    Errno::LOOP
                } else {
                    Errno::NOTDIR
                });
            }
            other => other?,
        };
        current = Some(next);
    }
    let at = current.as_ref().map_or(start, |fd| fd.as_fd());
    rustix::fs::openat(at, *last, flags, mode)
}

/// The directory holding the last component of a path: the directory itself, or
/// one opened beneath it.
pub(super) enum Parent<'a> {
    Same(&'a Dir),
    Opened(Dir),
}

impl Parent<'_> {
    pub(super) fn dir(&self) -> &Dir {
        match self {
            Parent::Same(dir) => dir,
            Parent::Opened(dir) => dir,
        }
    }
}

/// The parent directory of `relative` (opened symlink-free) and its last
/// component.
pub(super) fn parent_of<'a>(
    dir: &'a Dir,
    relative: &'a Path,
) -> io::Result<(Parent<'a>, &'a OsStr)> {
    let parts = components(relative, false)?;
    let (last, parents) = parts.split_last().expect("at least one component");
    if parents.is_empty() {
        return Ok((Parent::Same(dir), last));
    }
    let parent_path: std::path::PathBuf = parents.iter().collect();
    let parent = dir.open_dir(&parent_path)?;
    Ok((Parent::Opened(parent), last))
}

#[cfg(test)]
pub(super) fn open_by_walk(dir: &Dir, relative: &Path, flags: OFlags) -> io::Result<OwnedFd> {
    let parts = components(relative, false)?;
    open_parts(dir.as_fd(), &parts, flags, Mode::empty(), false)
        .map_err(|e| explain(e, || dir.display_path(relative)))
}
