//! `create_local_clone` (filling a SneakerNet drive) against the physical baseline
//! of copying the same stored files to a directory on the same filesystem, syncing
//! and hashing the copies: `sh -c 'cp -r SRC DST && sync && md5sum DST/*'`. quire
//! runs `quire tasks run fill-N` on a node whose task copies every file of its
//! `main` store onto drive store N, which is plugged in (its directory created)
//! just before the run. quire's copy is verified by reading it back after evicting
//! it from the page cache, so quire reads the medium where the baseline's md5sum
//! reads memory.
//!
//! Two variants, each on a node of its own: a few large files (QUIRE_BENCH_FILES,
//! default 4, totalling QUIRE_BENCH_SIZE, default 1G) and many small ones
//! (QUIRE_BENCH_SMALL_FILES, default 1000, of QUIRE_BENCH_SMALL_SIZE, default 64K;
//! 0 files skips it). Outputs stay until the end (see batch_upload.rs on ext4's
//! inode allocator after deletions).
//!
//! `cargo bench --bench local_clone`. Also QUIRE_BENCH_PAIRS (default 5),
//! QUIRE_BENCH_DIR (parent of the scratch directory).

// Each benchmark uses its own part of the shared helpers.
#[allow(dead_code)]
mod common;

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::measure::{Series, Work, print_summary, run_timed};
use common::node::Node;
use common::{PAIRS_VAR, QUIRE, RandomBytes, Scratch, env_count};

/// quire should reach this fraction of the baseline's throughput.
const TARGET: f64 = 0.8;
const FILES_VAR: &str = "QUIRE_BENCH_FILES";
const SIZE_VAR: &str = "QUIRE_BENCH_SIZE";
const SMALL_FILES_VAR: &str = "QUIRE_BENCH_SMALL_FILES";
const SMALL_SIZE_VAR: &str = "QUIRE_BENCH_SMALL_SIZE";
/// The prefix under which the files are uploaded.
const PREFIX: &str = "bench";

/// One variant: how many files of what size.
struct Variant {
    label: &'static str,
    files: u64,
    file_size: u64,
}

fn main() {
    let pairs = env_count(PAIRS_VAR, 5).max(1);
    let files = env_count(FILES_VAR, 4).max(1);
    let large = Variant {
        label: "large",
        files,
        file_size: (env_count(SIZE_VAR, 1 << 30) / files).max(1),
    };
    let small = Variant {
        label: "small",
        files: env_count(SMALL_FILES_VAR, 1000),
        file_size: env_count(SMALL_SIZE_VAR, 64 << 10).max(1),
    };
    let scratch = Scratch::new();
    common::print_header(
        "local_clone (create_local_clone onto a drive store)",
        &scratch,
    );
    println!(
        "settings: {pairs} pairs ({PAIRS_VAR}); large: {} files ({FILES_VAR}) of {} bytes \
         (total {SIZE_VAR}); small: {} files ({SMALL_FILES_VAR}) of {} bytes ({SMALL_SIZE_VAR})",
        large.files, large.file_size, small.files, small.file_size
    );
    for variant in [large, small] {
        if variant.files > 0 {
            run_variant(scratch.path(), &variant, pairs);
        }
    }
    println!("load average at end: {}", common::load_average());
    scratch.finish();
}

/// The node's configuration: `main`, one absent drive store per pair, and a task per
/// drive that copies everything of `main` onto it (its start-up run finds its drive
/// absent and copies nothing).
fn config(drives: &Path, pairs: u64) -> String {
    let mut text = String::from("[[stores]]\nname = \"main\"\npath = \"store\"\n");
    for pair in 1..=pairs {
        text.push_str(&format!(
            "[[stores]]\nname = \"drive-{pair}\"\npath = \"{}\"\ningestable = false\n",
            drives.join(format!("drive-{pair}")).display()
        ));
    }
    for pair in 1..=pairs {
        text.push_str(&format!(
            "[[tasks.create_local_clone]]\ntask_name = \"fill-{pair}\"\nevery = \"1000h\"\n\
             clone_from = \"main\"\nclone_to = \"drive-{pair}\"\nage_in_days = 1\n\
             files_per_run = 1000000\n"
        ));
    }
    text
}

fn run_variant(scratch: &Path, variant: &Variant, pairs: u64) {
    println!(
        "== variant {}: {} files of {} bytes",
        variant.label, variant.files, variant.file_size
    );
    let root = scratch.join(variant.label);
    let drives = root.join("drives");
    fs::create_dir_all(&drives).expect("creating the drives directory");
    let source = root.join("source");
    write_random_files(&source, variant.files, variant.file_size);
    let mut node = Node::start_with_config(&root, Some(&config(&drives, pairs)));
    let source_text = source.to_str().expect("a UTF-8 scratch path");
    node.cli(&["upload", "--batch", source_text, PREFIX]);
    let stored = node.data_dir().join("store").join(PREFIX);
    let work = Work {
        amount: (variant.files * variant.file_size) as f64 / (1 << 20) as f64,
        unit: "MiB",
    };
    let mut baseline = Series::new("baseline", "sh -c 'cp -r SRC DST && sync && md5sum DST/*'");
    let mut quire = Series::new("quire clone", "quire tasks run fill-N (create_local_clone)");
    for pair in 1..=pairs {
        println!("pair {pair}:");
        let destination = root.join(format!("baseline-{pair}"));
        let run = run_timed(
            "the baseline",
            Command::new("sh")
                .args(["-c", r#"cp -r "$1" "$2" && sync && md5sum "$2"/*"#, "sh"])
                .arg(&stored)
                .arg(&destination),
            None,
        );
        baseline.record(&run, &work);
        let drive = drives.join(format!("drive-{pair}"));
        fs::create_dir(&drive).expect("plugging in the drive");
        let task = format!("fill-{pair}");
        let run = run_timed(
            "quire tasks run",
            Command::new(QUIRE)
                .args(["tasks", "run", &task, "--json", "--data-dir"])
                .arg(node.data_dir()),
            Some(&node),
        );
        quire.record(&run, &work);
        check_run(&run.stdout, variant.files, &stored, &drive.join(PREFIX));
    }
    print_summary(&work, &baseline, &[&quire], TARGET);
    node.stop();
}

/// Checks (untimed) that the run copied every file, without errors, and that the
/// drive holds the stored bytes.
fn check_run(stdout: &str, files: u64, stored: &Path, copied: &Path) {
    let report: serde_json::Value = serde_json::from_str(stdout)
        .unwrap_or_else(|e| panic!("quire tasks run printed no JSON ({e}): {stdout}"));
    assert_eq!(report["items_done"], files, "{stdout}");
    assert_eq!(report["errors"], 0, "{stdout}");
    let first = fs::read_dir(stored)
        .expect("listing the stored files")
        .next()
        .expect("a stored file")
        .expect("a directory entry")
        .file_name();
    assert_eq!(
        fs::read(stored.join(&first)).expect("reading a stored file"),
        fs::read(copied.join(&first)).expect("reading its copy on the drive"),
        "the copy differs"
    );
}

/// Writes `count` files of `size` random bytes into `dir` and syncs them.
fn write_random_files(dir: &Path, count: u64, size: u64) {
    fs::create_dir_all(dir).expect("creating the source directory");
    let mut random = RandomBytes::new();
    let mut buffer = vec![0u8; 1 << 20];
    let paths: Vec<PathBuf> = (0..count)
        .map(|i| dir.join(format!("f-{i:05}.bin")))
        .collect();
    for path in &paths {
        let mut file = File::create(path).expect("creating a source file");
        let mut left = size;
        while left > 0 {
            let chunk = left.min(buffer.len() as u64) as usize;
            random.fill(&mut buffer[..chunk]);
            file.write_all(&buffer[..chunk])
                .expect("writing a source file");
            left -= chunk as u64;
        }
    }
    rustix::fs::sync();
}
