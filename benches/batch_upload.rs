//! Ingest of many small files in one directory tree, against the physical baseline
//! of copying the tree and syncing: `sh -c 'cp -r SRC DST && sync'`. quire runs
//! `quire upload --batch SRC PREFIX` with the default provider.
//!
//! Outputs of both sides are kept until the end and removed with the scratch
//! directory, not between pairs. On ext4 without a journal, the inode allocator
//! skips inodes freed less than 60 s ago (360 s while their inode-table block is
//! dirty, which creating new files in it causes) and reads inode tables to find
//! them, so whichever side creates files first after a deletion pays several times
//! over: measured here, `cp -r` of 10,000 files took 4 s instead of 0.6 s 65 s after
//! deleting 20,000 files, and 2 s / 1.3 s / 0.6 s at 65 / 120 / 200 s. Keeping the
//! outputs treats both sides the same; the space they need is checked first.
//!
//! After each quire run (untimed) the node must have recorded exactly the run's
//! names, with the source's checksum for a sample of them, and the store must hold
//! every file.
//!
//! `cargo bench --bench batch_upload`. Settings: QUIRE_BENCH_FILES (default 10000),
//! QUIRE_BENCH_FILE_SIZE (bytes, K/M/G suffixes; default 4K), QUIRE_BENCH_PAIRS
//! (default 5), QUIRE_BENCH_DIR (parent of the scratch directory),
//! QUIRE_BENCH_BINARY (another quire binary to measure).

// Each benchmark uses its own part of the shared helpers.
#[allow(dead_code)]
mod common;

use std::process::Command;

use common::api::{Api, check_records, now};
use common::measure::{Series, Work, print_summary, run_timed};
use common::node::Node;
use common::quire_binary;
use common::tree::{SmallFiles, count_files, expected_tree_records};

/// quire should reach this fraction of the baseline's throughput.
const TARGET: f64 = 0.5;

fn main() {
    let SmallFiles {
        files,
        pairs,
        scratch,
        source,
        ..
    } = SmallFiles::prepare("batch_upload (many small files)", 2);
    let config = format!("max_search_results = {}\n", files + 1);
    let mut node = Node::start_with_config(scratch.path(), Some(&config));
    let api = Api::admin(&node);

    let work = Work {
        amount: files as f64,
        unit: "files",
    };
    let mut baseline = Series::new("baseline", "sh -c 'cp -r SRC DST && sync'");
    let mut quire = Series::new("quire batch", "quire upload --batch SRC PREFIX");
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
        let copied = count_files(&destination);
        assert_eq!(copied, files, "cp -r copied {copied} of {files} files");

        let prefix = format!("batch-{pair}");
        let since = now();
        let run = run_timed(
            "quire upload --batch",
            Command::new(quire_binary())
                .args(["upload", "--batch", "--json"])
                .arg(&source)
                .arg(&prefix)
                .arg("--data-dir")
                .arg(node.data_dir()),
            Some(&node),
        );
        quire.record(&run, &work);
        check_batch(&node, &run.stdout, &prefix, files);
        let expected = expected_tree_records(&source, &prefix, files, since, now());
        check_records(&api, &expected);
    }
    print_summary(&work, &baseline, &[&quire], TARGET);
    println!("load average at end: {}", common::load_average());
    node.stop();
    scratch.finish();
}

/// Checks (untimed) that every file was uploaded and is in the store.
fn check_batch(node: &Node, stdout: &str, prefix: &str, files: u64) {
    let summary: serde_json::Value = serde_json::from_str(stdout)
        .unwrap_or_else(|e| panic!("quire upload --batch printed no JSON ({e}): {stdout}"));
    assert_eq!(summary["uploaded"], files, "{stdout}");
    assert_eq!(
        summary["failed"].as_array().map(Vec::len),
        Some(0),
        "{stdout}"
    );
    let first = format!("{prefix}/d000/f000000");
    let (_, path) = node.stored(&first);
    let stored_tree = path
        .ancestors()
        .nth(2)
        .expect("a stored path ends in PREFIX/dNNN/fNNNNNN")
        .to_path_buf();
    let stored = count_files(&stored_tree);
    assert_eq!(
        stored,
        files,
        "{} holds {stored} files",
        stored_tree.display()
    );
}
