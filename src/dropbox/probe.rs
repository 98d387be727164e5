//! Asking the kernel whether anyone has a file open for writing: a read lease
//! (`F_SETLEASE`) is granted only when nobody does. Used for files found in a
//! directory that appeared while watched, whose events were missed because they
//! were made before the directory's watch was in place: nobody writing means
//! their writer closed them, which is what a close-after-write event would have
//! said.
//!
//! The lease is given back at once. A writer opening the file in between is
//! delayed by those microseconds and the kernel tells us with SIGURG, whose
//! default action is to ignore it (the default SIGIO would end the process).
//! Leases need a local filesystem and a file we own; otherwise the answer is
//! "unknown" and the settle rule decides.

use std::os::fd::AsRawFd;
use std::path::Path;

use crate::fsroot::Dir;

/// `fcntl` command choosing the signal that announces a lease break (Linux's
/// value on every architecture; the libc crate does not name it).
const F_SETSIG: libc::c_int = 10;

/// Who has a file open for writing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Writers {
    None,
    Some,
    Unknown,
}

/// Whether anyone has the regular file `relative` (beneath the drop-box `dir`)
/// open for writing right now.
pub fn writers(dir: &Dir, relative: &Path) -> Writers {
    let Ok((fd, _)) = dir.open_file(relative) else {
        return Writers::Unknown;
    };
    let raw = fd.as_raw_fd();
    // SAFETY: fcntl on a descriptor we own, with integer arguments only; the
    // descriptor stays open for the duration (it closes when `fd` drops).
    unsafe {
        if libc::fcntl(raw, F_SETSIG, libc::SIGURG) != 0 {
            return Writers::Unknown;
        }
        if libc::fcntl(raw, libc::F_SETLEASE, libc::F_RDLCK) == 0 {
            libc::fcntl(raw, libc::F_SETLEASE, libc::F_UNLCK);
            return Writers::None;
        }
    }
    match std::io::Error::last_os_error().raw_os_error() {
        Some(libc::EAGAIN) => Writers::Some,
        _ => Writers::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn a_file_open_for_writing_has_writers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let root = Dir::open_trusted(dir.path()).unwrap();
        let name = Path::new("f");
        let mut file = std::fs::File::create(&path).unwrap();
        file.write_all(b"partial").unwrap();
        assert_eq!(writers(&root, name), Writers::Some);
        drop(file);
        assert_eq!(writers(&root, name), Writers::None);
        let _reader = std::fs::File::open(&path).unwrap();
        assert_eq!(writers(&root, name), Writers::None, "readers do not count");
    }
}
