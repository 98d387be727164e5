//! The only way to touch staging, stores and drop-boxes: every path operation under
//! them goes through here.
//!
//! The rule: a path under one of those trees is never handed to the kernel whole.
//! It is resolved from a directory descriptor ([`Dir`]) one component at a time,
//! and resolution fails on the first symbolic link it meets, in any component
//! (`openat2` with `RESOLVE_NO_SYMLINKS | RESOLVE_BENEATH`, or a walk that opens each
//! component with `O_NOFOLLOW | O_DIRECTORY` where the kernel lacks `openat2`).
//! Renames, links, removals and creations act on a name inside a directory opened
//! that way. Regular files are opened without following links and without
//! blocking (a FIFO planted in place of a file does not hang the node), and their
//! type is checked on the open descriptor, which is what every later step reads,
//! hashes, links or writes.
//!
//! Clients (the `local` upload provider), instrument accounts (drop-boxes), local
//! users (store directories) and carried drives may all put symbolic links, FIFOs
//! and hard links where the node expects files and directories, and change them
//! between two looks. Only the roots themselves ([`Dir::open_trusted`]) come from
//! the operator's configuration and are opened as configured.
//!
//! Nothing here records durability: `store::durable` wraps the operations of the
//! commit paths (fsync, rename, link, mkdir, unlink) so that test builds can record
//! them.
//!
//! Deliberate exceptions, each because the path is not under those trees or is
//! not acted on:
//! - the roots themselves: `Store::available`, `prepare` and `space` (`statvfs`),
//!   start-up's creation and canonicalisation of configured directories, and the
//!   drop-box's check that its directory is back, act on the configured paths;
//! - `/proc/self/fd/N` of a descriptor opened here (linking an open file,
//!   hashing a large one over a memory map, watching a drop-box directory): the
//!   kernel resolves it to that very inode;
//! - the data directory (database, keys, `admin-password`), which only the node
//!   writes, and the client's own files (the CLI's local copies and hashes);
//! - test builds: the durability recorder and the power-loss replay read their
//!   scratch trees by path.

mod open;
mod ops;
mod tree;

use std::ffi::OsStr;
use std::fmt;
use std::fs;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

pub use ops::Opened;
pub use tree::{Visit, WalkEntry};

/// A directory opened symlink-free (or a root opened as configured). Everything
/// below it is reached through it.
pub struct Dir {
    fd: OwnedFd,
    /// Where the directory was found when it was opened: for messages and the
    /// durability records only, never opened again by this path.
    path: PathBuf,
}

impl fmt::Debug for Dir {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Dir({})", self.path.display())
    }
}

impl AsFd for Dir {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// What a name is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
    Symlink,
    /// A FIFO, socket or device.
    Special,
}

/// What `lstat` says of a name (or `fstat` of a descriptor).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    pub kind: Kind,
    pub device: u64,
    pub inode: u64,
    pub size: u64,
    pub mode: u32,
    pub nlink: u64,
    pub uid: u32,
    /// Seconds and nanoseconds.
    pub mtime: (i64, i64),
    /// Changes with every write and metadata change, and cannot be set by a user.
    pub ctime: (i64, i64),
}

impl Meta {
    fn from_stat(stat: &rustix::fs::Stat) -> Meta {
        let file_type = rustix::fs::FileType::from_raw_mode(stat.st_mode as _);
        let kind = match file_type {
            rustix::fs::FileType::RegularFile => Kind::File,
            rustix::fs::FileType::Directory => Kind::Dir,
            rustix::fs::FileType::Symlink => Kind::Symlink,
            _ => Kind::Special,
        };
        #[allow(clippy::unnecessary_cast)]
        Meta {
            kind,
            device: stat.st_dev as u64,
            inode: stat.st_ino as u64,
            size: stat.st_size as u64,
            mode: stat.st_mode as u32,
            nlink: stat.st_nlink as u64,
            uid: stat.st_uid as u32,
            mtime: (stat.st_mtime as i64, stat.st_mtime_nsec as i64),
            ctime: (stat.st_ctime as i64, stat.st_ctime_nsec as i64),
        }
    }

    /// What an open descriptor is.
    pub fn of(fd: impl AsFd) -> io::Result<Meta> {
        Ok(Meta::from_stat(&rustix::fs::fstat(fd)?))
    }

    /// The inode: device and number.
    pub fn identity(&self) -> (u64, u64) {
        (self.device, self.inode)
    }
}

/// Why a path was refused rather than followed or opened.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// A symbolic link on the path or at its end.
    #[error(
        "{0} is, or passes through, a symbolic link; links are never followed under staging, stores and drop-boxes"
    )]
    Symlink(PathBuf),
    /// A FIFO, socket or device, or a directory where a file was expected (or the
    /// other way round).
    #[error("{path} is {what}, not {expected}")]
    WrongKind {
        path: PathBuf,
        what: &'static str,
        expected: &'static str,
    },
    /// A file with other names, which could be written through one of them.
    #[error("{path} has {nlink} hard links; only a file with one name is accepted")]
    HardLinked { path: PathBuf, nlink: u64 },
    /// `..`, an absolute path, or an empty name.
    #[error("{0} is not a plain relative path")]
    NotBeneath(PathBuf),
}

impl Refusal {
    /// The refusal as an I/O error (kind `InvalidInput`), found again by
    /// [`refusal`].
    pub fn into_io(self) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidInput, self)
    }
}

/// The refusal inside an error this module returned, if it is one.
pub fn refusal(error: &io::Error) -> Option<&Refusal> {
    error.get_ref()?.downcast_ref::<Refusal>()
}

/// What a kind of entry is, in words.
pub fn kind_words(kind: Kind) -> &'static str {
    match kind {
        Kind::File => "a regular file",
        Kind::Dir => "a directory",
        Kind::Symlink => "a symbolic link",
        Kind::Special => "a FIFO, socket or device",
    }
}

impl Dir {
    /// Opens a root from the operator's configuration (a store root, a staging
    /// area, a drop-box, a drive's mount point): the configured path is followed
    /// as the operator wrote it, links included. Everything below it is not.
    pub fn open_trusted(path: &Path) -> io::Result<Dir> {
        let flags = rustix::fs::OFlags::RDONLY
            | rustix::fs::OFlags::DIRECTORY
            | rustix::fs::OFlags::CLOEXEC;
        let fd = rustix::fs::open(path, flags, rustix::fs::Mode::empty())?;
        Ok(Dir {
            fd,
            path: path.to_path_buf(),
        })
    }

    /// Where the directory was when it was opened (for messages and records).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `relative` shown under this directory's path (for messages and records).
    pub fn display_path(&self, relative: &Path) -> PathBuf {
        if relative.as_os_str().is_empty() {
            self.path.clone()
        } else {
            self.path.join(relative)
        }
    }

    /// A second handle on the same directory.
    pub fn try_clone(&self) -> io::Result<Dir> {
        Ok(Dir {
            fd: self.fd.try_clone()?,
            path: self.path.clone(),
        })
    }

    /// What the directory itself is.
    pub fn meta(&self) -> io::Result<Meta> {
        Meta::of(&self.fd)
    }

    /// Flushes the directory's entries to disk (not recorded: see
    /// `store::durable`).
    pub fn fsync(&self) -> io::Result<()> {
        rustix::fs::fsync(&self.fd).map_err(io::Error::from)
    }
}

/// The normal components of a relative path, or a refusal for `..`, a root, or
/// (unless `empty_ok`) nothing at all.
fn components(relative: &Path, empty_ok: bool) -> io::Result<Vec<&OsStr>> {
    let mut parts = Vec::new();
    for component in relative.components() {
        match component {
            Component::Normal(part) => parts.push(part),
            Component::CurDir => {}
            _ => return Err(Refusal::NotBeneath(relative.to_path_buf()).into_io()),
        }
    }
    if parts.is_empty() && !empty_ok {
        return Err(Refusal::NotBeneath(relative.to_path_buf()).into_io());
    }
    Ok(parts)
}

/// Turns the kernel's answers to a symlink-free resolution into refusals that say
/// what happened.
fn explain(error: rustix::io::Errno, shown: impl FnOnce() -> PathBuf) -> io::Error {
    match error {
        rustix::io::Errno::LOOP | rustix::io::Errno::XDEV => Refusal::Symlink(shown()).into_io(),
        other => io::Error::from(other),
    }
}

/// Converts an open descriptor of a regular file into a `File`.
fn file_from(fd: OwnedFd) -> fs::File {
    fs::File::from(fd)
}

#[cfg(test)]
mod tests;
