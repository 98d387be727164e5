//! The `local` provider: copy each file into the staging directory that the
//! destination named, on a filesystem this host shares with it (the destination
//! lists this host in the provider's `hostnames`).
//!
//! The destination's path is as untrusted as a client's: it must be absolute,
//! plain, under one of the operator's `local_send_roots` and outside this node's
//! own stores and data directory, and is reached from `/` symlink-free (a link
//! anywhere on it is refused, never followed); the file itself must be absent, or
//! a regular file with one name holding a beginning of the very bytes being sent
//! (an earlier, interrupted copy): nothing else is ever overwritten. Bytes are
//! hashed as they are copied and synced before the copy counts.

use std::io::{self, Read, Write};
use std::path::{Component, Path, PathBuf};

use blake3::Hasher;

use super::{FileOutcome, Outbound};
use crate::fsroot::Dir;
use crate::store::durable::sync_file;

/// Bytes read and written at a time.
const CHUNK: usize = 1 << 20;

/// Where the `local` provider may write: under `allowed`, never under `own`.
#[derive(Debug, Clone)]
pub struct Bounds {
    pub allowed: Vec<PathBuf>,
    pub own: Vec<PathBuf>,
}

impl Bounds {
    /// The bounds of `node`: its `local_send_roots`, and its data directory and
    /// every store's root and staging area as its own.
    pub fn of(node: &crate::node::Node) -> Bounds {
        let mut own = vec![node.config.data_dir.clone()];
        for store in node.stores.all() {
            own.push(store.root.clone());
            own.push(store.staging.clone());
        }
        Bounds {
            allowed: node.config.local_send_roots.clone(),
            own,
        }
    }

    /// Whether `target` (absolute and plain) is a place this node may write.
    pub fn permit(&self, target: &Path) -> Result<(), String> {
        if let Some(own) = self.own.iter().find(|own| target.starts_with(own)) {
            return Err(format!(
                "the destination's staging location {} is inside this node's own {}; \
                 refused",
                target.display(),
                own.display()
            ));
        }
        if !self.allowed.iter().any(|root| target.starts_with(root)) {
            return Err(format!(
                "the destination's staging location {} is not under local_send_roots {:?}; \
                 add its staging directory there if this host shares its filesystem",
                target.display(),
                self.allowed
            ));
        }
        Ok(())
    }
}

/// Copies every file of a batch; each file's outcome, in order.
pub fn send(files: Vec<Outbound>, bounds: &Bounds) -> Vec<(usize, FileOutcome)> {
    files
        .into_iter()
        .map(|file| {
            let index = file.index;
            let outcome = match copy_one(file, bounds) {
                Ok(outcome) => outcome,
                Err(error) => FileOutcome::Refused(error),
            };
            (index, outcome)
        })
        .collect()
}

fn copy_one(file: Outbound, bounds: &Bounds) -> Result<FileOutcome, String> {
    let target = Path::new(&file.staging_location);
    let (parent, name) = split_target(target)?;
    bounds.permit(target)?;
    let cannot = |what: &str, e: io::Error| format!("cannot {what} {}: {e}", target.display());
    let root = Dir::open_trusted(Path::new("/")).map_err(|e| cannot("reach", e))?;
    let directory = root
        .open_dir(parent)
        .map_err(|e| cannot("open the staging directory of", e))?;
    let (mut output, meta) = directory
        .open_for_writing(name, 0o644)
        .map_err(|e| cannot("create", e))?;
    if meta.size > 0 && !holds_a_beginning_of(&output, &file.source, meta.size, file.size) {
        return Err(format!(
            "{} already exists with other bytes; it was left alone",
            target.display()
        ));
    }
    output.set_len(0).map_err(|e| cannot("empty", e))?;
    let mut input = file.source;
    let mut hasher = Hasher::new();
    let mut buffer = vec![0u8; CHUNK];
    let mut copied = 0u64;
    loop {
        let n = input
            .read(&mut buffer)
            .map_err(|e| format!("cannot read {}: {e}", file.file_name))?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
        output
            .write_all(&buffer[..n])
            .map_err(|e| cannot("write", e))?;
        copied += n as u64;
    }
    if copied != file.size || *hasher.finalize().as_bytes() != file.blake3 {
        return Ok(FileOutcome::SourceDiffers);
    }
    sync_file(&output).map_err(|e| cannot("sync", e))?;
    Ok(FileOutcome::Moved { sent: copied })
}

/// Whether the `length` bytes of `existing` are the beginning of `source`
/// (`size` bytes): an earlier copy of the same file, interrupted.
fn holds_a_beginning_of(
    existing: &std::fs::File,
    source: &std::fs::File,
    length: u64,
    size: u64,
) -> bool {
    use std::os::unix::fs::FileExt;
    if length > size {
        return false;
    }
    let (mut ours, mut theirs) = (vec![0u8; CHUNK], vec![0u8; CHUNK]);
    let mut position = 0u64;
    while position < length {
        let wanted = CHUNK.min((length - position) as usize);
        let read = |file: &std::fs::File, buffer: &mut [u8]| file.read_exact_at(buffer, position);
        if read(source, &mut ours[..wanted]).is_err()
            || read(existing, &mut theirs[..wanted]).is_err()
            || ours[..wanted] != theirs[..wanted]
        {
            return false;
        }
        position += wanted as u64;
    }
    true
}

/// The directory (relative to `/`) and the name of an absolute, plain target path.
fn split_target(target: &Path) -> Result<(&Path, &Path), String> {
    let plain = target.is_absolute()
        && target
            .components()
            .all(|c| matches!(c, Component::RootDir | Component::Normal(_)));
    let (Some(parent), Some(name)) = (target.parent(), target.file_name()) else {
        return Err(format!(
            "the destination's staging location {} names no file",
            target.display()
        ));
    };
    if !plain {
        return Err(format!(
            "the destination's staging location {} is not an absolute path without . or ..",
            target.display()
        ));
    }
    let parent = parent.strip_prefix("/").unwrap_or(parent);
    Ok((parent, Path::new(name)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn anywhere() -> Bounds {
        Bounds {
            allowed: vec![PathBuf::from("/")],
            own: Vec::new(),
        }
    }

    fn outbound(source: &Path, target: &Path) -> Outbound {
        let bytes = fs::read(source).unwrap();
        Outbound {
            index: 0,
            file_name: "f".into(),
            source: fs::File::open(source).unwrap(),
            size: bytes.len() as u64,
            blake3: *blake3::hash(&bytes).as_bytes(),
            destination_transfer_id: 1,
            staging_location: target.display().to_string(),
        }
    }

    #[test]
    fn a_file_is_copied_into_the_named_staging_and_replaces_a_partial_copy() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("source");
        fs::write(&source, vec![7u8; 3 << 20]).unwrap();
        fs::create_dir(dir.path().join("staging")).unwrap();
        let target = dir.path().join("staging/f");
        fs::write(&target, vec![7u8; 1000]).unwrap();
        let outcome = send(vec![outbound(&source, &target)], &anywhere());
        assert_eq!(outcome, vec![(0, FileOutcome::Moved { sent: 3 << 20 })]);
        assert_eq!(fs::read(&target).unwrap(), fs::read(&source).unwrap());
    }

    #[test]
    fn a_link_on_the_way_to_the_staging_is_refused_and_nothing_is_written_through_it() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("source");
        fs::write(&source, b"bytes").unwrap();
        let elsewhere = dir.path().join("elsewhere");
        fs::create_dir(&elsewhere).unwrap();
        std::os::unix::fs::symlink(&elsewhere, dir.path().join("staging")).unwrap();
        let outcome = send(
            vec![outbound(&source, &dir.path().join("staging/f"))],
            &anywhere(),
        );
        assert!(
            matches!(&outcome[0].1, FileOutcome::Refused(reason) if reason.contains("link")),
            "{outcome:?}"
        );
        assert!(!elsewhere.join("f").exists());
    }

    #[test]
    fn other_bytes_at_the_target_and_places_outside_the_roots_are_never_written() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("source");
        fs::write(&source, b"the bytes sent").unwrap();
        fs::create_dir(dir.path().join("staging")).unwrap();
        let target = dir.path().join("staging/f");
        fs::write(&target, b"precious").unwrap();
        let outcome = send(vec![outbound(&source, &target)], &anywhere());
        assert!(matches!(&outcome[0].1, FileOutcome::Refused(r) if r.contains("other bytes")));
        assert_eq!(fs::read(&target).unwrap(), b"precious");
        let own = Bounds {
            allowed: vec![dir.path().to_path_buf()],
            own: vec![dir.path().join("staging")],
        };
        let fresh = dir.path().join("staging/g");
        let outcome = send(vec![outbound(&source, &fresh)], &own);
        assert!(matches!(&outcome[0].1, FileOutcome::Refused(r) if r.contains("own")));
        let elsewhere = Bounds {
            allowed: vec![dir.path().join("shared")],
            own: Vec::new(),
        };
        let outcome = send(vec![outbound(&source, &fresh)], &elsewhere);
        assert!(matches!(&outcome[0].1, FileOutcome::Refused(r) if r.contains("local_send_roots")));
        assert!(!fresh.exists());
    }

    #[test]
    fn a_relative_or_dotted_location_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("source");
        fs::write(&source, b"bytes").unwrap();
        for location in ["staging/f", "/tmp/../etc/f"] {
            let outcome = send(vec![outbound(&source, Path::new(location))], &anywhere());
            assert!(
                matches!(&outcome[0].1, FileOutcome::Refused(_)),
                "{location}: {outcome:?}"
            );
        }
    }

    #[test]
    fn a_source_that_differs_from_its_record_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("source");
        fs::write(&source, b"bytes").unwrap();
        fs::create_dir(dir.path().join("staging")).unwrap();
        let mut file = outbound(&source, &dir.path().join("staging/f"));
        file.blake3 = [0; 32];
        assert_eq!(
            send(vec![file], &anywhere()),
            vec![(0, FileOutcome::SourceDiffers)]
        );
    }
}
