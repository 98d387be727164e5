//! The first steps of a batch: open each ready file as it was when found complete,
//! and read its bytes once, hashing them, and copying them into an unnamed file in
//! the store when they cannot be linked there.
//!
//! Invariant: every later step works on the descriptor opened here, so the bytes
//! hashed, linked or copied are those of the very inode that was found complete.

use std::fs;
use std::io::{self, Write};
use std::path::PathBuf;

use super::Verdict;
use crate::checksum::{Digester, Digests};
use crate::config::AfterIngest;
use crate::dropbox::layout::Layout;
use crate::dropbox::problems::Problem;
use crate::dropbox::tracker::{Fingerprint, ReadyFile};
use crate::fsroot::{Dir, Kind, Refusal, refusal};
use crate::model::Algorithm;

/// Largest read when copying.
const CHUNK_BYTES: usize = 1 << 20;

/// A ready file, opened.
pub struct Opened {
    pub path: PathBuf,
    pub relative: PathBuf,
    pub name: String,
    pub file: fs::File,
    pub fingerprint: Fingerprint,
    /// Whether its inode may be linked into a store: the drop-box name goes away
    /// after ingest (`delete`), it has no other name, it belongs to the node's
    /// own user, and nobody else may write it. Then, once its drop-box name is
    /// removed, nothing outside the store reaches the stored inode (another
    /// account can neither write it nor, under `fs.protected_hardlinks`, link
    /// it). Anything else is copied.
    pub sole_and_ours: bool,
    /// Its permission bits.
    pub mode: u32,
}

/// The path of a ready file inside the drop-box, and the name it is recorded as.
pub fn name_of(layout: &Layout, ready: &ReadyFile) -> Result<(PathBuf, String), Verdict> {
    let relative = ready
        .path
        .strip_prefix(&layout.root)
        .map_err(|_| Verdict::Gone)?
        .to_path_buf();
    let name = layout
        .name_for(&relative)
        .map_err(|why| Verdict::Failed(Problem::BadName { why }, ready.fingerprint))?;
    Ok((relative, name))
}

/// Opens a ready file (at `relative`, recorded as `name`) symlink-free from the
/// drop-box directory `root`, checking that it is still what was found complete
/// (the same inode, unchanged). Links, FIFOs, sockets and devices are refused
/// without being opened. `euid`: the node's effective user.
pub fn open(
    layout: &Layout,
    root: &Dir,
    ready: &ReadyFile,
    (relative, name): (PathBuf, String),
    max_size: u64,
    euid: u32,
) -> Result<Opened, Verdict> {
    let failed = |problem| Verdict::Failed(problem, ready.fingerprint);
    if ready.fingerprint.kind != Kind::File {
        return Err(failed(Problem::NotRegular {
            what: not_regular(ready.fingerprint.kind),
        }));
    }
    let (file, metadata) = match root.open_file(&relative) {
        Ok(opened) => opened,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Err(Verdict::Gone),
        Err(error) => {
            return Err(failed(match refusal(&error) {
                Some(Refusal::Symlink(_)) => Problem::NotRegular {
                    what: "reached through a symbolic link, which is never followed",
                },
                Some(Refusal::WrongKind { .. }) => Problem::NotRegular {
                    what: "no longer a regular file",
                },
                _ => Problem::Unreadable {
                    error: error.to_string(),
                },
            }));
        }
    };
    let fingerprint = Fingerprint::of(&metadata);
    if fingerprint != ready.fingerprint {
        return Err(Verdict::NotReady(Some(fingerprint)));
    }
    if metadata.size > max_size {
        return Err(failed(Problem::TooLarge {
            size: metadata.size,
            max: max_size,
        }));
    }
    Ok(Opened {
        path: ready.path.clone(),
        relative,
        name,
        file,
        fingerprint,
        sole_and_ours: layout.config.after_ingest == AfterIngest::Delete
            && metadata.nlink == 1
            && metadata.uid == euid
            && metadata.mode & 0o022 == 0,
        mode: metadata.mode,
    })
}

/// What a file that is not regular is, as a problem says it.
pub fn not_regular(kind: Kind) -> &'static str {
    match kind {
        Kind::Symlink => "a symbolic link, which is never followed",
        Kind::Special => "a FIFO, socket or device, not a regular file",
        Kind::Dir => "a directory, not a regular file",
        Kind::File => "a regular file",
    }
}

/// Reads the file once (positioned reads: the descriptor's offset is untouched),
/// hashing it with `algorithms` (plus BLAKE3), and writes
/// the bytes to `copy` as well when given (then syncs nothing: the caller does).
/// A file whose length changed while it was read is reported as not ready.
pub fn read_once(
    opened: &Opened,
    algorithms: &[Algorithm],
    copy: Option<&mut fs::File>,
) -> Result<Digests, Verdict> {
    let unreadable = |error: io::Error| {
        Verdict::Failed(
            Problem::Unreadable {
                error: error.to_string(),
            },
            opened.fingerprint,
        )
    };
    let size = opened.fingerprint.size;
    let mut digester = Digester::new(algorithms, Some(size));
    // One byte more than expected, so that a file of the expected size is read in
    // one call that also shows its end.
    let mut buffer = vec![0u8; (size as usize + 1).clamp(4096, CHUNK_BYTES)];
    let mut output = copy;
    let mut offset = 0u64;
    loop {
        let read = match rustix::io::pread(&opened.file, &mut buffer, offset) {
            Ok(0) => break,
            Ok(read) => read,
            Err(rustix::io::Errno::INTR) => continue,
            Err(error) => return Err(unreadable(error.into())),
        };
        offset += read as u64;
        // A regular file reads short only at its end: a file of the expected size
        // costs one read. (Bytes appended later are seen by the checks after
        // placement and before removal, which compare the size again.)
        let at_end = read < buffer.len() && offset >= size;
        if let Some(out) = output.as_mut() {
            out.write_all(&buffer[..read]).map_err(|e| {
                Verdict::Failed(
                    Problem::Placement {
                        error: format!("cannot write the copy: {e}"),
                    },
                    opened.fingerprint,
                )
            })?;
        }
        digester.update_slice(&buffer[..read]);
        if at_end {
            break;
        }
    }
    let digests = digester.finish();
    if digests.size != size {
        return Err(Verdict::NotReady(None));
    }
    Ok(digests)
}
