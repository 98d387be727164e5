//! Source trees of many small files for the benchmarks: writing one, checking there is
//! room for its copies, counting what a run produced.

use std::fs;
use std::path::Path;
use std::time::Instant;

use super::RandomBytes;

/// Files per subdirectory of a source tree (`dNNN/fNNNNNN`).
pub const FILES_PER_DIR: u64 = 1000;

/// Writes `files` files of `size` random bytes under `root`, `FILES_PER_DIR` per
/// subdirectory, and syncs them.
pub fn write_random_tree(root: &Path, files: u64, size: u64) {
    let started = Instant::now();
    let mut random = RandomBytes::new();
    let mut buffer = vec![0u8; size as usize];
    for index in 0..files {
        let directory = root.join(format!("d{:03}", index / FILES_PER_DIR));
        if index % FILES_PER_DIR == 0 {
            fs::create_dir_all(&directory).expect("creating a source directory");
        }
        random.fill(&mut buffer);
        fs::write(directory.join(format!("f{index:06}")), &buffer).expect("writing a source file");
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

/// Counts the regular files under `path`.
pub fn count_files(path: &Path) -> u64 {
    walkdir::WalkDir::new(path)
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_file())
        .count() as u64
}
