//! Drop-box ingest of many small files, against the physical baseline of copying
//! the tree and syncing: `sh -c 'cp -r SRC DST && sync'`.
//!
//! A node watches `dropbox/` (delete after ingest, on the store's filesystem, so
//! files are linked into the store) and two quire sides are timed per pair, each
//! until the drop-box is empty again, which happens only after every file is
//! recorded:
//! - "moved in": a copy of the tree, made and synced beforehand (untimed), is
//!   renamed into the drop-box, as instruments that write elsewhere and then move
//!   do; the time is the node's work alone;
//! - "written in": `cp -r SRC dropbox/` is started and timed too, so the time holds
//!   the drop itself, with the node ingesting while the files are being written.
//!
//! Outputs are kept until the end (see `batch_upload.rs` for why: on ext4 without
//! a journal, whoever creates files soon after a deletion pays for it).
//!
//! `cargo bench --bench dropbox_ingest`. Settings: QUIRE_BENCH_FILES (default
//! 10000), QUIRE_BENCH_FILE_SIZE (default 4K), QUIRE_BENCH_PAIRS (default 5),
//! QUIRE_BENCH_DIR (parent of the scratch directory),
//! QUIRE_BENCH_BINARY (another quire binary to measure).

// Shared by every benchmark; this one times the node itself, so it does not use
// all of it (no CLI runs, no child's stdout).
#[allow(dead_code)]
mod common;

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::api::{Api, check_records, now};
use common::measure::{Run, Series, Work, print_summary, run_timed};
use common::node::Node;
use common::tree::{SmallFiles, count_files, expected_tree_records};

/// quire should reach this fraction of the baseline's throughput.
const TARGET: f64 = 0.5;
/// Files per subdirectory of the source tree.
/// How often the drop-box is looked at while waiting for it to empty.
const POLL: Duration = Duration::from_millis(5);
/// Longest wait for one drop.
const DROP_DEADLINE: Duration = Duration::from_secs(600);
/// The recorded names start with this.
const PREFIX: &str = "bench";

fn main() {
    let SmallFiles {
        files,
        pairs,
        scratch,
        source,
        ..
    } = SmallFiles::prepare("dropbox_ingest (many small files dropped in)", 3);
    let dropbox = scratch.path().join("dropbox");
    let config = format!(
        "max_search_results = {}\n[[dropbox]]\npath = \"{}\"\nprefix = \"{PREFIX}\"\n\
             after_ingest = \"delete\"\n",
        files + 1,
        dropbox.display()
    );
    println!(
        "drop-box: {} (after_ingest = delete, default settle time)",
        dropbox.display()
    );
    let mut node = Node::start_with_config(scratch.path(), Some(&config));
    let api = Api::admin(&node);

    let work = Work {
        amount: files as f64,
        unit: "files",
    };
    let mut baseline = Series::new("baseline", "sh -c 'cp -r SRC DST && sync'");
    let mut moved = Series::new(
        "quire moved in",
        "mv TREE dropbox/ (a synced copy), until ingested",
    );
    let mut written = Series::new("quire written", "cp -r SRC dropbox/, until ingested");
    for pair in 1..=pairs {
        println!("pair {pair}:");
        let destination = scratch.path().join(format!("baseline-{pair}"));
        let run = run_timed(
            "the baseline",
            Command::new("sh")
                .args(["-c", r#"cp -r "$1" "$2" && sync"#, "sh"])
                .arg(&source)
                .arg(&destination),
            None,
        );
        baseline.record(&run, &work);
        assert_eq!(count_files(&destination), files, "cp -r copied every file");

        let prepared = scratch.path().join(format!("prepared-{pair}"));
        let copying = Instant::now();
        copy_tree(&source, &prepared);
        println!(
            "  {:<15} (untimed: cp -r of the tree to move in took {:.2} s)",
            "",
            copying.elapsed().as_secs_f64()
        );
        rustix::fs::sync();
        let tree = format!("mv-{pair}");
        let since = now();
        let run = timed_drop(&node, &dropbox, || {
            fs::rename(&prepared, dropbox.join(&tree)).expect("moving the tree in");
        });
        moved.record(&run, &work);
        check_ingested(&node, &api, &source, &tree, files, since);

        let tree = format!("cp-{pair}");
        rustix::fs::sync();
        let since = now();
        let run = timed_drop(&node, &dropbox, || copy_tree(&source, &dropbox.join(&tree)));
        written.record(&run, &work);
        check_ingested(&node, &api, &source, &tree, files, since);
    }
    print_summary(&work, &baseline, &[&moved, &written], TARGET);
    println!("load average at end: {}", common::load_average());
    node.stop();
    scratch.finish();
}

/// Times `drop` plus the wait until the drop-box holds no file, with the node's
/// CPU time meanwhile.
fn timed_drop(node: &Node, dropbox: &Path, drop: impl FnOnce()) -> Run {
    let node_before = node.cpu_seconds();
    let started = Instant::now();
    drop();
    let dropped = started.elapsed().as_secs_f64();
    while holds_a_file(dropbox) {
        assert!(
            started.elapsed() < DROP_DEADLINE,
            "the drop-box did not empty within {DROP_DEADLINE:?}"
        );
        std::thread::sleep(POLL);
    }
    let wall = started.elapsed().as_secs_f64();
    println!(
        "  {:<15} (the drop itself took {dropped:.2} s; the drop-box was empty {:.2} s later)",
        "",
        wall - dropped
    );
    Run {
        wall,
        cpu: 0.0,
        node_cpu: Some(node.cpu_seconds() - node_before),
        stdout: String::new(),
    }
}

/// Whether any regular file is left under `dir` (stops at the first one).
fn holds_a_file(dir: &Path) -> bool {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .flatten()
        .any(|e| e.file_type().is_file())
}

/// `cp -r SRC DST`, waited for.
fn copy_tree(source: &Path, destination: &Path) {
    let status = Command::new("cp")
        .arg("-r")
        .arg(source)
        .arg(destination)
        .stdin(Stdio::null())
        .status()
        .expect("running cp");
    assert!(status.success(), "cp -r failed: {status}");
}

/// Checks (untimed) that the tree was ingested whole: exactly its files recorded
/// since `since`, a sample of them with the source's checksum, and every file in
/// the store.
fn check_ingested(
    node: &Node,
    api: &Api,
    source: &Path,
    tree: &str,
    files: u64,
    since: quire::model::Timestamp,
) {
    let prefix = format!("{PREFIX}/{tree}");
    check_records(
        api,
        &expected_tree_records(source, &prefix, files, since, now()),
    );
    let first = format!("{prefix}/d000/f000000");
    let (_, path) = node.stored(&first);
    let stored_tree = path
        .ancestors()
        .nth(2)
        .expect("a stored path ends in TREE/dNNN/fNNNNNN")
        .to_path_buf();
    let stored = count_files(&stored_tree);
    assert_eq!(
        stored,
        files,
        "{} holds {stored} files",
        stored_tree.display()
    );
}
