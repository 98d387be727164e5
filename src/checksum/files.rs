//! Hashing and copying whole files and directories in one pass, including the
//! protocol's directory rule.

use std::fs;
use std::io::{self, Read, Write};
use std::path::Path;

use bytes::BytesMut;

use super::digester::{Digester, Digests};
use super::hasher::Hasher;
use crate::model::{Algorithm, Checksum};

/// Size of each read from disk.
const CHUNK_BYTES: usize = 1 << 20;
/// Files at least this large are hashed with BLAKE3 on all cores when BLAKE3 is the
/// only hash wanted.
const PARALLEL_BLAKE3_BYTES: u64 = 64 << 20;

/// BLAKE3 of a large file over a memory map, on every core.
pub(super) fn digest_blake3_parallel(path: &Path, size: u64) -> io::Result<Digests> {
    let mut hasher = blake3::Hasher::new();
    hasher.update_mmap_rayon(path)?;
    let digest = hasher.finalize().as_bytes().to_vec();
    Ok(Digests {
        size,
        checksums: vec![Checksum::new(Algorithm::Blake3, digest)],
    })
}

/// Hashes a file or directory at `path` with `algorithms` (plus BLAKE3).
pub fn digest_path(path: &Path, algorithms: &[Algorithm]) -> io::Result<Digests> {
    let metadata = fs::metadata(path)?;
    if metadata.is_dir() {
        digest_directory(path, algorithms, |file| digest_file(file, algorithms))
    } else {
        digest_file(path, algorithms)
    }
}

/// Hashes one regular file.
pub fn digest_file(path: &Path, algorithms: &[Algorithm]) -> io::Result<Digests> {
    let file = fs::File::open(path)?;
    let size = file.metadata()?.len();
    if size >= PARALLEL_BLAKE3_BYTES && algorithms.iter().all(|a| *a == Algorithm::Blake3) {
        return digest_blake3_parallel(path, size);
    }
    digest_open_file(file, algorithms)
}

/// Hashes a file that is already open, from its current position to its end.
pub fn digest_open_file(file: fs::File, algorithms: &[Algorithm]) -> io::Result<Digests> {
    let size = file.metadata()?.len();
    let mut digester = Digester::new(algorithms, Some(size));
    pump(file, size, &mut digester, |_| Ok(()))?;
    Ok(digester.finish())
}

/// Copies `source` (a file or a directory tree) to `destination`, which must not
/// exist, hashing in the same pass. Each written file is flushed to disk before this
/// returns; the caller makes the directory entries durable.
pub fn copy_and_digest(
    source: &Path,
    destination: &Path,
    algorithms: &[Algorithm],
) -> io::Result<Digests> {
    copy_tree(source, destination, algorithms, &|_| {}, Sync::EachFile)
}

/// Like [`copy_and_digest`], telling `progress` the length of every chunk written.
pub fn copy_and_digest_reporting(
    source: &Path,
    destination: &Path,
    algorithms: &[Algorithm],
    progress: &dyn Fn(u64),
) -> io::Result<Digests> {
    copy_tree(source, destination, algorithms, progress, Sync::EachFile)
}

/// Like [`copy_and_digest`], but leaves the copy unsynced: for callers that make
/// many copies durable at once (one filesystem sync).
pub fn copy_and_digest_unsynced(
    source: &Path,
    destination: &Path,
    algorithms: &[Algorithm],
) -> io::Result<Digests> {
    copy_tree(source, destination, algorithms, &|_| {}, Sync::Caller)
}

/// Who makes a copy's bytes durable.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Sync {
    /// Each file is synced as soon as it is written.
    EachFile,
    /// The caller syncs later.
    Caller,
}

fn copy_tree(
    source: &Path,
    destination: &Path,
    algorithms: &[Algorithm],
    progress: &dyn Fn(u64),
    sync: Sync,
) -> io::Result<Digests> {
    if fs::metadata(source)?.is_dir() {
        fs::create_dir(destination)?;
        digest_directory(source, algorithms, |file| {
            let relative = file.strip_prefix(source).map_err(io::Error::other)?;
            let target = destination.join(relative);
            if let Some(parent) = target.parent() {
                fs::create_dir_all(parent)?;
            }
            copy_file_reporting(file, &target, algorithms, progress, sync)
        })
    } else {
        copy_file_reporting(source, destination, algorithms, progress, sync)
    }
}

/// Copies one regular file to a new file at `destination`, hashing as it goes, and
/// syncs the copy.
pub fn copy_file_and_digest(
    source: &Path,
    destination: &Path,
    algorithms: &[Algorithm],
) -> io::Result<Digests> {
    copy_file_reporting(source, destination, algorithms, &|_| {}, Sync::EachFile)
}

fn copy_file_reporting(
    source: &Path,
    destination: &Path,
    algorithms: &[Algorithm],
    progress: &dyn Fn(u64),
    sync: Sync,
) -> io::Result<Digests> {
    let input = fs::File::open(source)?;
    let size = input.metadata()?.len();
    let mut output = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(destination)?;
    let mut digester = Digester::new(algorithms, Some(size));
    pump(input, size, &mut digester, |chunk| {
        output.write_all(chunk)?;
        progress(chunk.len() as u64);
        Ok(())
    })?;
    if sync == Sync::EachFile {
        output.sync_all()?;
    }
    Ok(digester.finish())
}

/// Reads `input` to its end in large chunks, handing each to `sink` and then to the
/// digester. `expected_size` only sizes the buffers (small files get small ones).
pub(super) fn pump(
    mut input: impl Read,
    expected_size: u64,
    digester: &mut Digester,
    mut sink: impl FnMut(&[u8]) -> io::Result<()>,
) -> io::Result<()> {
    // One byte more than expected, so that a file of the expected size is read in
    // one call that also reveals its end.
    let chunk_bytes = (expected_size as usize + 1).clamp(4096, CHUNK_BYTES);
    loop {
        let mut buffer = BytesMut::zeroed(chunk_bytes);
        let mut filled = 0;
        while filled < chunk_bytes {
            match input.read(&mut buffer[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        if filled == 0 {
            return Ok(());
        }
        buffer.truncate(filled);
        sink(&buffer)?;
        digester.update(buffer.freeze());
        if filled < chunk_bytes {
            return Ok(());
        }
    }
}

/// The directory rule: a directory's checksum hashes, with the same algorithm, the
/// sorted hex digests of its regular files (names and empty directories do not
/// count); its size is the sum of its files' sizes. `per_file` produces each file's
/// digests (hashing it, or copying and hashing it).
pub fn digest_directory(
    root: &Path,
    algorithms: &[Algorithm],
    mut per_file: impl FnMut(&Path) -> io::Result<Digests>,
) -> io::Result<Digests> {
    let mut rule = DirectoryRule::new(algorithms);
    for entry in walkdir::WalkDir::new(root).sort_by_file_name() {
        let entry = entry.map_err(io::Error::other)?;
        if !entry.file_type().is_file() {
            continue;
        }
        rule.add(&per_file(entry.path())?);
    }
    Ok(rule.finish())
}

/// The directory rule, fed one regular file's digests at a time (in any order).
pub(super) struct DirectoryRule {
    wanted: Vec<Algorithm>,
    hex_lists: Vec<Vec<String>>,
    size: u64,
}

impl DirectoryRule {
    pub(super) fn new(algorithms: &[Algorithm]) -> DirectoryRule {
        let mut wanted: Vec<Algorithm> = algorithms.to_vec();
        wanted.push(Algorithm::Blake3);
        wanted.sort();
        wanted.dedup();
        DirectoryRule {
            hex_lists: vec![Vec::new(); wanted.len()],
            wanted,
            size: 0,
        }
    }

    pub(super) fn add(&mut self, digests: &Digests) {
        self.size += digests.size;
        for (algorithm, list) in self.wanted.iter().zip(&mut self.hex_lists) {
            let checksum = digests.get(*algorithm).expect("every wanted algorithm");
            list.push(checksum.hex());
        }
    }

    pub(super) fn finish(self) -> Digests {
        let checksums = self
            .wanted
            .iter()
            .zip(self.hex_lists)
            .map(|(algorithm, mut list)| combine_hex_digests(*algorithm, &mut list))
            .collect();
        Digests {
            size: self.size,
            checksums,
        }
    }
}

/// Combines per-file hex digests into a directory checksum.
fn combine_hex_digests(algorithm: Algorithm, hex_digests: &mut [String]) -> Checksum {
    hex_digests.sort();
    let mut hasher = Hasher::new(algorithm);
    for hex_digest in hex_digests.iter() {
        hasher.update(hex_digest.as_bytes());
    }
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checksum::hasher::hash_bytes;

    #[test]
    fn directory_rule_ignores_names_and_empty_directories() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("d");
        fs::create_dir_all(root.join("sub/empty")).unwrap();
        fs::write(root.join("b.txt"), b"hello").unwrap();
        fs::write(root.join("sub/a.txt"), b"world!").unwrap();
        let digests = digest_path(&root, &[Algorithm::Md5]).unwrap();
        assert_eq!(digests.size, 11);
        let mut hexes = [
            hash_bytes(Algorithm::Md5, b"hello").hex(),
            hash_bytes(Algorithm::Md5, b"world!").hex(),
        ];
        hexes.sort();
        let expected = hash_bytes(Algorithm::Md5, hexes.concat().as_bytes());
        assert_eq!(digests.get(Algorithm::Md5), Some(&expected));

        let renamed = dir.path().join("e");
        fs::create_dir_all(renamed.join("x")).unwrap();
        fs::write(renamed.join("x/other-name"), b"world!").unwrap();
        fs::write(renamed.join("z"), b"hello").unwrap();
        assert_eq!(digest_path(&renamed, &[Algorithm::Md5]).unwrap(), digests);
    }

    #[test]
    fn copy_produces_identical_tree_and_digests() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("src");
        fs::create_dir_all(source.join("n")).unwrap();
        fs::write(source.join("n/f"), vec![7u8; 100_000]).unwrap();
        fs::write(source.join("g"), b"g").unwrap();
        let destination = dir.path().join("dst");
        let copied = copy_and_digest(&source, &destination, &[Algorithm::Sha1]).unwrap();
        assert_eq!(
            fs::read(destination.join("n/f")).unwrap(),
            vec![7u8; 100_000]
        );
        assert_eq!(
            copied,
            digest_path(&destination, &[Algorithm::Sha1]).unwrap()
        );
        assert_eq!(copied, digest_path(&source, &[Algorithm::Sha1]).unwrap());
    }
}
