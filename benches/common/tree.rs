//! Source trees of many small files for the benchmarks: writing one, checking there is
//! room for its copies, counting what a run produced.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::{PAIRS_VAR, RandomBytes, Scratch, env_count};

/// Files per subdirectory of a source tree (`dNNN/fNNNNNN`).
pub const FILES_PER_DIR: u64 = 1000;

/// `dNNN/fNNNNNN`: where file `index` lives in a tree.
pub fn relative_name(index: u64) -> String {
    format!("d{:03}/f{index:06}", index / FILES_PER_DIR)
}

/// Writes `files` files of `size` random bytes under `root` (see [`relative_name`]),
/// and syncs them.
pub fn write_random_tree(root: &Path, files: u64, size: u64) {
    let started = Instant::now();
    let mut random = RandomBytes::new();
    let mut buffer = vec![0u8; size as usize];
    for index in 0..files {
        let path = root.join(relative_name(index));
        if index % FILES_PER_DIR == 0 {
            fs::create_dir_all(path.parent().expect("a parent"))
                .expect("creating a source directory");
        }
        random.fill(&mut buffer);
        fs::write(&path, &buffer).expect("writing a source file");
    }
    rustix::fs::sync();
    println!(
        "source: {} ({files} files of {size} random bytes) written and synced in {:.1} s",
        root.display(),
        started.elapsed().as_secs_f64()
    );
}

/// Fails early unless the filesystem has room for `copies` copies of the tree (every
/// output of every pair, plus the source) with a quarter of its free space to spare.
pub fn check_space(root: &Path, files: u64, size: u64, copies: u64) {
    let stat = rustix::fs::statvfs(root).expect("statvfs of the scratch directory");
    let block = stat.f_frsize.max(1);
    let bytes = copies * files * size.div_ceil(block).max(1) * block;
    let inodes = copies * files;
    let free_bytes = stat.f_bavail * block;
    println!(
        "outputs: kept until the end (about {} MiB and {inodes} inodes; {} MiB and {} \
         inodes free)",
        bytes >> 20,
        free_bytes >> 20,
        stat.f_favail
    );
    if bytes > free_bytes / 4 * 3 || inodes > stat.f_favail / 4 * 3 {
        panic!("not enough free space for {copies} copies of the tree; lower QUIRE_BENCH_PAIRS");
    }
}

/// The records a run that stored the tree at `source` under `prefix` (so file
/// `index` as `prefix/dNNN/fNNNNNN`) must have made between `since` and `until`,
/// with a sample of their checksums to compare with the source.
pub fn expected_tree_records(
    source: &Path,
    prefix: &str,
    files: u64,
    since: quire::model::Timestamp,
    until: quire::model::Timestamp,
) -> super::api::ExpectedRecords {
    super::api::ExpectedRecords {
        since,
        until,
        names: (0..files)
            .map(|i| format!("{prefix}/{}", relative_name(i)))
            .collect(),
        samples: super::api::sample_indexes(files, SAMPLES)
            .into_iter()
            .map(|i| {
                (
                    format!("{prefix}/{}", relative_name(i)),
                    source.join(relative_name(i)),
                )
            })
            .collect(),
    }
}

/// Checksums compared with the source per checked run.
pub const SAMPLES: u64 = 32;

/// Counts the regular files under `path`.
pub fn count_files(path: &Path) -> u64 {
    walkdir::WalkDir::new(path)
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_file())
        .count() as u64
}

/// Settings from `QUIRE_BENCH_FILES`.
pub const FILES_VAR: &str = "QUIRE_BENCH_FILES";
/// Settings from `QUIRE_BENCH_FILE_SIZE`.
pub const FILE_SIZE_VAR: &str = "QUIRE_BENCH_FILE_SIZE";

/// A many-small-files benchmark's setting up: its settings, its scratch directory
/// and its synced random source tree.
pub struct SmallFiles {
    pub files: u64,
    pub file_size: u64,
    pub pairs: u64,
    pub scratch: Scratch,
    pub source: PathBuf,
}

impl SmallFiles {
    /// Reads the settings (10,000 files of 4 KiB and 5 pairs by default), prints the
    /// header, checks there is room for `outputs_per_pair` copies per pair, and
    /// writes the source tree.
    pub fn prepare(title: &str, outputs_per_pair: u64) -> SmallFiles {
        let files = env_count(FILES_VAR, 10_000).max(1);
        let file_size = env_count(FILE_SIZE_VAR, 4096);
        let pairs = env_count(PAIRS_VAR, 5).max(1);
        let scratch = Scratch::new();
        super::print_header(title, &scratch);
        println!(
            "settings: {files} files ({FILES_VAR}) of {file_size} bytes ({FILE_SIZE_VAR}), \
             {FILES_PER_DIR} per directory, {pairs} pairs ({PAIRS_VAR})"
        );
        check_space(
            scratch.path(),
            files,
            file_size,
            outputs_per_pair * pairs + 1,
        );
        let source = scratch.path().join("source");
        write_random_tree(&source, files, file_size);
        SmallFiles {
            files,
            file_size,
            pairs,
            scratch,
            source,
        }
    }
}
