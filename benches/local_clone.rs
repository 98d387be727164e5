//! `create_local_clone` (filling a SneakerNet drive) against the physical baseline
//! of copying the same stored files to a directory on the same filesystem, syncing,
//! and hashing the copies read back from the medium. quire runs `quire tasks run
//! fill-N` on a node whose task copies every file of its `main` store onto drive
//! store N, which is plugged in (its directory created) just before the run; it
//! verifies each copy with BLAKE3 after evicting it from the page cache. The
//! baseline does the same work with standard tools, timed as three steps in a row:
//! `sh -c 'cp -r SRC DST && sync'`, the copies evicted from the page cache the way
//! quire evicts them (`posix_fadvise(DONTNEED)` on each file, done by this
//! program), then `b3sum DST/*` (BLAKE3, as quire verifies; Debian's package
//! `b3sum`, or `cargo install b3sum`).
//!
//! After each quire run (untimed) the drive must hold exactly the stored files
//! (counted by walking it, compared byte for byte for a sample) and the node must
//! record exactly one instance on the drive per file (asked with `search/file`),
//! whatever the task reported.
//!
//! Two variants, each on a node of its own: a few large files (QUIRE_BENCH_FILES,
//! default 4, totalling QUIRE_BENCH_SIZE, default 1G) and many small ones
//! (QUIRE_BENCH_SMALL_FILES, default 1000, of QUIRE_BENCH_SMALL_SIZE, default 64K;
//! 0 files skips it). Outputs stay until the end (see batch_upload.rs on ext4's
//! inode allocator after deletions).
//!
//! `cargo bench --bench local_clone`. Also QUIRE_BENCH_PAIRS (default 5),
//! QUIRE_BENCH_DIR (parent of the scratch directory),
//! QUIRE_BENCH_BINARY (another quire binary to measure).

// Each benchmark uses its own part of the shared helpers.
#[allow(dead_code)]
mod common;

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::api::{Api, sample_indexes};
use common::measure::{Run, Series, Work, own_cpu_seconds, print_summary, run_timed};
use common::node::Node;
use common::tree::count_files;
use common::{PAIRS_VAR, RandomBytes, Scratch, env_count, quire_binary};

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
    require_b3sum();
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
fn config(drives: &Path, pairs: u64, files: u64) -> String {
    let mut text = format!(
        "max_search_results = {}\n[[stores]]\nname = \"main\"\npath = \"store\"\n",
        files + 1
    );
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
    let mut node = Node::start_with_config(&root, Some(&config(&drives, pairs, variant.files)));
    let api = Api::admin(&node);
    let source_text = source.to_str().expect("a UTF-8 scratch path");
    node.cli(&["upload", "--batch", source_text, PREFIX]);
    let stored = node.data_dir().join("store").join(PREFIX);
    let work = Work {
        amount: (variant.files * variant.file_size) as f64 / (1 << 20) as f64,
        unit: "MiB",
    };
    let mut baseline = Series::new(
        "baseline",
        "sh -c 'cp -r SRC DST && sync'; evict DST/*; b3sum DST/*",
    );
    let mut quire = Series::new("quire clone", "quire tasks run fill-N (create_local_clone)");
    for pair in 1..=pairs {
        println!("pair {pair}:");
        let destination = root.join(format!("baseline-{pair}"));
        let run = baseline_run(&stored, &destination, variant.files);
        baseline.record(&run, &work);
        let drive = drives.join(format!("drive-{pair}"));
        fs::create_dir(&drive).expect("plugging in the drive");
        let task = format!("fill-{pair}");
        let run = run_timed(
            "quire tasks run",
            Command::new(quire_binary())
                .args(["tasks", "run", &task, "--json", "--data-dir"])
                .arg(node.data_dir()),
            Some(&node),
        );
        quire.record(&run, &work);
        check_run(&api, &run.stdout, variant.files, &stored, &drive);
    }
    print_summary(&work, &baseline, &[&quire], TARGET);
    node.stop();
}

/// The baseline, timed as three steps in a row: copy and sync, evict the copies
/// from the page cache, hash them with b3sum. Checks (untimed) that b3sum hashed
/// every file.
fn baseline_run(stored: &Path, destination: &Path, files: u64) -> Run {
    let copied = run_timed(
        "the baseline's copy",
        Command::new("sh")
            .args(["-c", r#"cp -r "$1" "$2" && sync"#, "sh"])
            .arg(stored)
            .arg(destination),
        None,
    );
    let (started, cpu_before) = (std::time::Instant::now(), own_cpu_seconds());
    evict_tree(destination);
    let (evicting, evicting_cpu) = (
        started.elapsed().as_secs_f64(),
        own_cpu_seconds() - cpu_before,
    );
    let hashed = run_timed(
        "the baseline's b3sum",
        Command::new("sh")
            .args(["-c", r#"b3sum "$1"/*"#, "sh"])
            .arg(destination),
        None,
    );
    let lines = hashed.stdout.lines().count() as u64;
    assert_eq!(lines, files, "b3sum hashed {lines} of {files} files");
    Run {
        wall: copied.wall + evicting + hashed.wall,
        cpu: copied.cpu + evicting_cpu + hashed.cpu,
        node_cpu: None,
        stdout: hashed.stdout,
    }
}

/// Asks the kernel to drop the cached pages of every file under `root`, as quire
/// does before it reads its copies back (the pages are clean: they were synced).
fn evict_tree(root: &Path) {
    for entry in walkdir::WalkDir::new(root).into_iter().flatten() {
        if entry.file_type().is_file() {
            let file = File::open(entry.path()).expect("opening a copy");
            rustix::fs::fadvise(&file, 0, None, rustix::fs::Advice::DontNeed)
                .expect("evicting a copy from the page cache");
        }
    }
}

/// Fails early, saying how to get it, unless `b3sum` runs.
fn require_b3sum() {
    let found = Command::new("b3sum")
        .arg("--version")
        .output()
        .is_ok_and(|output| output.status.success());
    if !found {
        panic!(
            "this benchmark's baseline hashes with b3sum (BLAKE3, as quire verifies), which \
             is not installed: `sudo apt-get install b3sum` (Debian, Ubuntu) or `cargo \
             install b3sum`, then run it again"
        );
    }
}

/// Checks (untimed), without trusting the task's own counts: the task reported no
/// error; the drive holds exactly one file per stored file (walked), a sample of
/// them equal to the stored bytes; and the node records exactly one instance on
/// the drive per file.
fn check_run(api: &Api, stdout: &str, files: u64, stored: &Path, drive: &Path) {
    let report: serde_json::Value = serde_json::from_str(stdout)
        .unwrap_or_else(|e| panic!("quire tasks run printed no JSON ({e}): {stdout}"));
    assert_eq!(report["errors"], 0, "{stdout}");
    let on_drive = count_files(drive);
    assert_eq!(
        on_drive,
        files,
        "{} holds {on_drive} files, {files} expected",
        drive.display()
    );
    let mut names: Vec<_> = fs::read_dir(stored)
        .expect("listing the stored files")
        .map(|entry| entry.expect("a directory entry").file_name())
        .collect();
    names.sort();
    for index in sample_indexes(names.len() as u64, 8) {
        let name = &names[index as usize];
        assert!(
            fs::read(stored.join(name)).expect("reading a stored file")
                == fs::read(drive.join(PREFIX).join(name)).expect("reading its copy on the drive"),
            "the copy of {name:?} on the drive differs"
        );
    }
    let records = api.files_created_between(
        quire::model::Timestamp::from_micros(0),
        quire::model::Timestamp::now(),
        files + 1,
    );
    assert_eq!(
        records.len() as u64,
        files,
        "the node records {} files",
        records.len()
    );
    for record in &records {
        let on_this_drive = record["instances"]
            .as_array()
            .expect("a record lists its instances")
            .iter()
            .filter(|instance| {
                instance["path"]
                    .as_str()
                    .is_some_and(|path| Path::new(path).starts_with(drive))
            })
            .count();
        assert_eq!(
            on_this_drive,
            1,
            "{} has {on_this_drive} instances on {}",
            record["name"],
            drive.display()
        );
    }
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
