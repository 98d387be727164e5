//! The `local` provider: copy each file into the staging directory that the
//! destination named, on a filesystem this host shares with it (the destination
//! lists this host in the provider's `hostnames`).
//!
//! The destination's path is as untrusted as a client's: it must be absolute and
//! is reached from `/` symlink-free (a link anywhere on it is refused, never
//! followed); the file itself must be a regular file with no other names, or
//! absent. Bytes are hashed as they are copied and synced before the copy counts.

use std::io::{self, Read, Write};
use std::path::{Component, Path};

use blake3::Hasher;

use super::{FileOutcome, Outbound};
use crate::fsroot::Dir;
use crate::store::durable::sync_file;

/// Bytes read and written at a time.
const CHUNK: usize = 1 << 20;

/// Copies every file of a batch; each file's outcome, in order.
pub fn send(files: Vec<Outbound>) -> Vec<(usize, FileOutcome)> {
    files
        .into_iter()
        .map(|file| {
            let index = file.index;
            let outcome = match copy_one(file) {
                Ok(outcome) => outcome,
                Err(error) => FileOutcome::Refused(error),
            };
            (index, outcome)
        })
        .collect()
}

fn copy_one(file: Outbound) -> Result<FileOutcome, String> {
    let target = Path::new(&file.staging_location);
    let (parent, name) = split_target(target)?;
    let cannot = |what: &str, e: io::Error| format!("cannot {what} {}: {e}", target.display());
    let root = Dir::open_trusted(Path::new("/")).map_err(|e| cannot("reach", e))?;
    let directory = root
        .open_dir(parent)
        .map_err(|e| cannot("open the staging directory of", e))?;
    let (mut output, _) = directory
        .open_for_writing(name, 0o644)
        .map_err(|e| cannot("create", e))?;
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
        fs::write(&target, b"partial and longer than nothing").unwrap();
        let outcome = send(vec![outbound(&source, &target)]);
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
        let outcome = send(vec![outbound(&source, &dir.path().join("staging/f"))]);
        assert!(
            matches!(&outcome[0].1, FileOutcome::Refused(reason) if reason.contains("link")),
            "{outcome:?}"
        );
        assert!(!elsewhere.join("f").exists());
    }

    #[test]
    fn a_relative_or_dotted_location_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("source");
        fs::write(&source, b"bytes").unwrap();
        for location in ["staging/f", "/tmp/../etc/f"] {
            let outcome = send(vec![outbound(&source, Path::new(location))]);
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
        assert_eq!(send(vec![file]), vec![(0, FileOutcome::SourceDiffers)]);
    }
}
