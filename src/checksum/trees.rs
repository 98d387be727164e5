//! Hashing and copying files and trees reached through `crate::fsroot` (staging,
//! stores, drives), in one pass, by the directory rule for trees.
//!
//! Invariant: only regular files and directories are read; a symbolic link, FIFO,
//! socket or device anywhere in a tree fails the whole hash or copy (nothing
//! behind a link is ever read, so no digest of it can be reported).

use std::fs;
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::path::Path;

use super::digester::{Digester, Digests};
use super::files::{DirectoryRule, digest_blake3_parallel, digest_open_file, pump};
use crate::fsroot::{Dir, Kind, Opened, Refusal, Visit, kind_words};
use crate::model::Algorithm;

/// Files at least this large are hashed with BLAKE3 on all cores when BLAKE3 is
/// the only hash wanted.
const PARALLEL_BLAKE3_BYTES: u64 = 64 << 20;

/// Hashes the file or tree `relative` beneath `dir` with `algorithms` (plus
/// BLAKE3).
pub fn digest_in(dir: &Dir, relative: &Path, algorithms: &[Algorithm]) -> io::Result<Digests> {
    digest_opened(dir.open_entry(relative)?, algorithms)
}

/// Hashes an entry already opened: a regular file, or a tree by the directory
/// rule.
pub fn digest_opened(opened: Opened, algorithms: &[Algorithm]) -> io::Result<Digests> {
    match opened {
        Opened::File(file, meta) => digest_regular(file, meta.size, algorithms),
        Opened::Dir(tree, _) => {
            let mut rule = DirectoryRule::new(algorithms);
            each_file(&tree, &mut |parent, name, _| {
                let (file, meta) = parent.open_file(name)?;
                rule.add(&digest_regular(file, meta.size, algorithms)?);
                Ok(())
            })?;
            Ok(rule.finish())
        }
    }
}

/// Hashes one open regular file of `size` bytes.
fn digest_regular(file: fs::File, size: u64, algorithms: &[Algorithm]) -> io::Result<Digests> {
    if size >= PARALLEL_BLAKE3_BYTES && algorithms.iter().all(|a| *a == Algorithm::Blake3) {
        // The descriptor's own entry: the very file opened, mapped.
        let own = format!("/proc/self/fd/{}", file.as_raw_fd());
        return digest_blake3_parallel(Path::new(&own), size);
    }
    digest_open_file(file, algorithms)
}

/// Calls `per_file` with (directory, name, path from the top) for every regular
/// file of `tree`; fails on the first link or special file.
fn each_file(
    tree: &Dir,
    per_file: &mut dyn FnMut(&Dir, &Path, &Path) -> io::Result<()>,
) -> io::Result<()> {
    let mut failure = None;
    tree.walk(&mut |entry| {
        let result = match entry.kind {
            Kind::Dir => Ok(()),
            Kind::File => per_file(entry.parent, entry.name, entry.relative),
            other => Err(not_allowed(tree, entry.relative, other)),
        };
        match result {
            Ok(()) => Visit::Continue,
            Err(error) => {
                failure = Some(error);
                Visit::Stop
            }
        }
    })?;
    failure.map_or(Ok(()), Err)
}

fn not_allowed(tree: &Dir, relative: &Path, kind: Kind) -> io::Error {
    Refusal::WrongKind {
        path: tree.display_path(relative),
        what: kind_words(kind),
        expected: "a regular file or a directory",
    }
    .into_io()
}

/// Who makes a copy's bytes durable.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum CopySync {
    /// Each file is synced as soon as it is written.
    EachFile,
    /// The caller syncs later.
    Caller,
}

/// Copies the file or tree `from` (beneath `from_dir`) to `to` (beneath
/// `to_dir`, which must not exist), hashing in the same pass, telling `progress`
/// the length of every chunk written. Both sides are resolved symlink-free.
pub fn copy_in(
    from_dir: &Dir,
    from: &Path,
    to_dir: &Dir,
    to: &Path,
    algorithms: &[Algorithm],
    progress: &dyn Fn(u64),
    sync: CopySync,
) -> io::Result<Digests> {
    match from_dir.open_entry(from)? {
        Opened::File(input, meta) => {
            let output = to_dir.create_file(to, 0o666)?;
            copy_regular(input, meta.size, output, algorithms, progress, sync)
        }
        Opened::Dir(tree, _) => {
            to_dir.create_dir(to, 0o777)?;
            let destination = to_dir.open_dir(to)?;
            let mut rule = DirectoryRule::new(algorithms);
            let mut failure = None;
            tree.walk(&mut |entry| {
                let result = match entry.kind {
                    Kind::Dir => destination.create_dir(entry.relative, 0o777),
                    Kind::File => entry
                        .parent
                        .open_file(entry.name)
                        .and_then(|(input, meta)| {
                            let output = destination.create_file(entry.relative, 0o666)?;
                            let digests =
                                copy_regular(input, meta.size, output, algorithms, progress, sync)?;
                            rule.add(&digests);
                            Ok(())
                        }),
                    other => Err(not_allowed(&tree, entry.relative, other)),
                };
                match result {
                    Ok(()) => Visit::Continue,
                    Err(error) => {
                        failure = Some(error);
                        Visit::Stop
                    }
                }
            })?;
            match failure {
                Some(error) => Err(error),
                None => Ok(rule.finish()),
            }
        }
    }
}

/// Copies one open regular file into `output`, hashing as it goes.
fn copy_regular(
    input: fs::File,
    size: u64,
    mut output: fs::File,
    algorithms: &[Algorithm],
    progress: &dyn Fn(u64),
    sync: CopySync,
) -> io::Result<Digests> {
    let mut digester = Digester::new(algorithms, Some(size));
    pump(input, size, &mut digester, |chunk| {
        output.write_all(chunk)?;
        progress(chunk.len() as u64);
        Ok(())
    })?;
    if sync == CopySync::EachFile {
        output.sync_all()?;
    }
    Ok(digester.finish())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;
    use crate::checksum::digest_path;
    use crate::fsroot::refusal;

    #[test]
    fn trees_hash_and_copy_as_by_path_and_refuse_links() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        fs::create_dir_all(root.join("t/sub/empty")).unwrap();
        fs::write(root.join("t/a"), b"a").unwrap();
        fs::write(root.join("t/sub/b"), vec![3u8; 300_000]).unwrap();
        let handle = Dir::open_trusted(&root).unwrap();
        let by_path = digest_path(&root.join("t"), &[Algorithm::Md5]).unwrap();
        assert_eq!(
            digest_in(&handle, Path::new("t"), &[Algorithm::Md5]).unwrap(),
            by_path
        );
        let copied = copy_in(
            &handle,
            Path::new("t"),
            &handle,
            Path::new("u"),
            &[Algorithm::Md5],
            &|_| {},
            CopySync::Caller,
        )
        .unwrap();
        assert_eq!(copied, by_path);
        assert_eq!(fs::read(root.join("u/sub/b")).unwrap(), vec![3u8; 300_000]);

        fs::write(dir.path().join("secret"), b"secret").unwrap();
        symlink(dir.path().join("secret"), root.join("t/sub/link")).unwrap();
        let error = digest_in(&handle, Path::new("t"), &[Algorithm::Md5]).unwrap_err();
        assert!(refusal(&error).is_some(), "{error}");
        let error = copy_in(
            &handle,
            Path::new("t"),
            &handle,
            Path::new("v"),
            &[],
            &|_| {},
            CopySync::Caller,
        )
        .unwrap_err();
        assert!(refusal(&error).is_some(), "{error}");
        symlink(dir.path().join("secret"), root.join("s")).unwrap();
        assert!(digest_in(&handle, Path::new("s"), &[]).is_err());
    }
}
