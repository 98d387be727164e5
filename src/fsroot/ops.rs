//! Opening, creating, renaming, linking, removing and looking at names beneath a
//! [`Dir`], each resolved symlink-free.

use std::ffi::OsString;
use std::fs;
use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rustix::fs::{AtFlags, Mode, OFlags, RenameFlags};

use super::open::{open_beneath, parent_of};
use super::{Dir, Kind, Meta, Refusal, components, file_from, kind_words};

/// An entry opened for reading: a regular file or a directory.
#[derive(Debug)]
pub enum Opened {
    File(fs::File, Meta),
    Dir(Dir, Meta),
}

impl Opened {
    pub fn meta(&self) -> &Meta {
        match self {
            Opened::File(_, meta) | Opened::Dir(_, meta) => meta,
        }
    }

    /// A second handle on the same entry (a file's handle shares its offset).
    pub fn try_clone(&self) -> io::Result<Opened> {
        Ok(match self {
            Opened::File(file, meta) => Opened::File(file.try_clone()?, *meta),
            Opened::Dir(dir, meta) => Opened::Dir(dir.try_clone()?, *meta),
        })
    }

    /// What the entry is now (`fstat` of the handle).
    pub fn meta_now(&self) -> io::Result<Meta> {
        match self {
            Opened::File(file, _) => Meta::of(file),
            Opened::Dir(dir, _) => dir.meta(),
        }
    }
}

/// Flags of every read-only open of an entry: never blocks on a FIFO, never
/// becomes a controlling terminal.
fn read_flags() -> OFlags {
    OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY
}

fn wrong_kind(path: std::path::PathBuf, found: Kind, expected: &'static str) -> io::Error {
    Refusal::WrongKind {
        path,
        what: kind_words(found),
        expected,
    }
    .into_io()
}

impl Dir {
    /// Opens the directory `relative` (empty: this one again).
    pub fn open_dir(&self, relative: &Path) -> io::Result<Dir> {
        if components(relative, true)?.is_empty() {
            return self.try_clone();
        }
        let flags = OFlags::RDONLY | OFlags::DIRECTORY;
        let fd = open_beneath(self, relative, flags, Mode::empty()).map_err(|e| {
            if e.raw_os_error() == Some(libc::ENOTDIR) {
                let shown = self.display_path(relative);
                match self.stat(relative).map_or(Kind::Special, |m| m.kind) {
                    Kind::Symlink => Refusal::Symlink(shown).into_io(),
                    found => wrong_kind(shown, found, "a directory"),
                }
            } else {
                e
            }
        })?;
        Ok(Dir {
            fd,
            path: self.display_path(relative),
        })
    }

    /// Opens the regular file `relative` for reading.
    pub fn open_file(&self, relative: &Path) -> io::Result<(fs::File, Meta)> {
        match self.open_entry(relative)? {
            Opened::File(file, meta) => Ok((file, meta)),
            Opened::Dir(_, meta) => Err(wrong_kind(
                self.display_path(relative),
                meta.kind,
                "a regular file",
            )),
        }
    }

    /// Opens `relative`, a regular file or a directory, for reading; anything
    /// else is refused (a FIFO is opened without waiting for a writer, then
    /// refused).
    pub fn open_entry(&self, relative: &Path) -> io::Result<Opened> {
        if components(relative, true)?.is_empty() {
            let dir = self.try_clone()?;
            let meta = dir.meta()?;
            return Ok(Opened::Dir(dir, meta));
        }
        let fd = open_beneath(self, relative, read_flags(), Mode::empty())?;
        let meta = Meta::of(&fd)?;
        match meta.kind {
            Kind::File => {
                // Reads of a regular file never block; clear the flag anyway so that
                // the descriptor behaves as any other.
                rustix::fs::fcntl_setfl(&fd, OFlags::empty())?;
                Ok(Opened::File(file_from(fd), meta))
            }
            Kind::Dir => Ok(Opened::Dir(
                Dir {
                    fd,
                    path: self.display_path(relative),
                },
                meta,
            )),
            other => Err(wrong_kind(
                self.display_path(relative),
                other,
                "a regular file or a directory",
            )),
        }
    }

    /// Opens the regular file `relative` for writing (and reading back what it
    /// holds), creating it (with `mode`) if missing. A file with other names is
    /// refused: writing it would write them too.
    pub fn open_for_writing(&self, relative: &Path, mode: u32) -> io::Result<(fs::File, Meta)> {
        let flags = OFlags::RDWR | OFlags::CREATE | OFlags::NONBLOCK | OFlags::NOCTTY;
        let fd = open_beneath(self, relative, flags, Mode::from_raw_mode(mode))?;
        let meta = Meta::of(&fd)?;
        if meta.kind != Kind::File {
            return Err(wrong_kind(
                self.display_path(relative),
                meta.kind,
                "a regular file",
            ));
        }
        if meta.nlink > 1 {
            return Err(Refusal::HardLinked {
                path: self.display_path(relative),
                nlink: meta.nlink,
            }
            .into_io());
        }
        rustix::fs::fcntl_setfl(&fd, OFlags::empty())?;
        Ok((file_from(fd), meta))
    }

    /// Creates the new regular file `relative` (`AlreadyExists` if the name is
    /// taken, by anything, a link included) and opens it for writing.
    pub fn create_file(&self, relative: &Path, mode: u32) -> io::Result<fs::File> {
        let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL;
        let fd = open_beneath(self, relative, flags, Mode::from_raw_mode(mode))?;
        Ok(file_from(fd))
    }

    /// Opens a new unnamed file (`O_TMPFILE`) in the directory `relative` (empty:
    /// this one), to be named later by [`Dir::link_file`].
    pub fn create_unnamed(&self, relative: &Path, mode: u32) -> io::Result<fs::File> {
        let flags = OFlags::TMPFILE | OFlags::WRONLY;
        let mode = Mode::from_raw_mode(mode);
        let fd = if components(relative, true)?.is_empty() {
            rustix::fs::openat(self, ".", flags | OFlags::CLOEXEC, mode)?
        } else {
            open_beneath(self, relative, flags, mode)?
        };
        Ok(file_from(fd))
    }

    /// Creates the directory `relative` (its parent must exist) with `mode`
    /// (less the umask).
    pub fn create_dir(&self, relative: &Path, mode: u32) -> io::Result<()> {
        let (parent, name) = parent_of(self, relative)?;
        rustix::fs::mkdirat(parent.dir(), name, Mode::from_raw_mode(mode)).map_err(io::Error::from)
    }

    /// What the name `relative` is (a link is described, not followed; the
    /// directories on the way are resolved symlink-free). Empty: this directory.
    pub fn stat(&self, relative: &Path) -> io::Result<Meta> {
        if components(relative, true)?.is_empty() {
            return self.meta();
        }
        let (parent, name) = parent_of(self, relative)?;
        let stat = rustix::fs::statat(parent.dir(), name, AtFlags::SYMLINK_NOFOLLOW)?;
        Ok(Meta::from_stat(&stat))
    }

    /// Like [`Dir::stat`], with `None` for a name that does not exist (or whose
    /// directory does not).
    pub fn try_stat(&self, relative: &Path) -> io::Result<Option<Meta>> {
        match self.stat(relative) {
            Ok(meta) => Ok(Some(meta)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Every name in this directory (`.` and `..` left out), with what it is.
    pub fn entries(&self) -> io::Result<Vec<(OsString, Kind)>> {
        let mut reader = rustix::fs::Dir::read_from(self)?;
        let mut entries = Vec::new();
        while let Some(entry) = reader.read() {
            let entry = entry?;
            let name = entry.file_name().to_bytes();
            if name == b"." || name == b".." {
                continue;
            }
            let name = OsString::from(std::ffi::OsStr::from_bytes(name));
            let kind = match entry.file_type() {
                rustix::fs::FileType::RegularFile => Kind::File,
                rustix::fs::FileType::Directory => Kind::Dir,
                rustix::fs::FileType::Symlink => Kind::Symlink,
                rustix::fs::FileType::Unknown => {
                    let stat = rustix::fs::statat(self, &name, AtFlags::SYMLINK_NOFOLLOW)?;
                    Meta::from_stat(&stat).kind
                }
                _ => Kind::Special,
            };
            entries.push((name, kind));
        }
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(entries)
    }

    /// Renames `from` (beneath this directory) to `to` beneath `to_dir`, unless
    /// `to` exists (then `AlreadyExists`). Whatever is at `from`, link or not, is
    /// moved as it is, never followed.
    pub fn rename_no_replace(&self, from: &Path, to_dir: &Dir, to: &Path) -> io::Result<()> {
        let (from_parent, from_name) = parent_of(self, from)?;
        let (to_parent, to_name) = parent_of(to_dir, to)?;
        rustix::fs::renameat_with(
            from_parent.dir(),
            from_name,
            to_parent.dir(),
            to_name,
            RenameFlags::NOREPLACE,
        )
        .map_err(io::Error::from)
    }

    /// Gives the inode behind `file` (an unnamed file, or one opened elsewhere) the
    /// name `relative`, unless it is taken (then `AlreadyExists`).
    pub fn link_file(&self, file: &fs::File, relative: &Path) -> io::Result<()> {
        let (parent, name) = parent_of(self, relative)?;
        // The descriptor's own entry in /proc: the kernel links the very inode
        // (linking by descriptor alone, AT_EMPTY_PATH, needs a capability).
        let own = format!("/proc/self/fd/{}", file.as_fd().as_raw_fd());
        rustix::fs::linkat(
            rustix::fs::CWD,
            own.as_str(),
            parent.dir(),
            name,
            AtFlags::SYMLINK_FOLLOW,
        )
        .map_err(io::Error::from)
    }

    /// Removes the name `relative` of anything but a directory (a link is removed
    /// itself).
    pub fn unlink(&self, relative: &Path) -> io::Result<()> {
        let (parent, name) = parent_of(self, relative)?;
        rustix::fs::unlinkat(parent.dir(), name, AtFlags::empty()).map_err(io::Error::from)
    }

    /// Removes the empty directory `relative`.
    pub fn remove_dir(&self, relative: &Path) -> io::Result<()> {
        let (parent, name) = parent_of(self, relative)?;
        rustix::fs::unlinkat(parent.dir(), name, AtFlags::REMOVEDIR).map_err(io::Error::from)
    }

    /// Sets the permission bits of the directory `relative` (a directory only:
    /// the mode of a link is never changed through it).
    pub fn set_dir_mode(&self, relative: &Path, mode: u32) -> io::Result<()> {
        let dir = self.open_dir(relative)?;
        rustix::fs::fchmod(&dir, Mode::from_raw_mode(mode)).map_err(io::Error::from)
    }

    /// Opens the parent of `relative` and gives its last component.
    pub fn parent_and_name<'a>(&self, relative: &'a Path) -> io::Result<(Dir, &'a Path)> {
        let parts = components(relative, false)?;
        let name = Path::new(*parts.last().expect("at least one component"));
        let parent: std::path::PathBuf = parts[..parts.len() - 1].iter().collect();
        Ok((self.open_dir(&parent)?, name))
    }
}
