//! Ingest of one large file that must be recorded with MD5, against the physical
//! baseline of copying it while hashing it with md5sum and syncing:
//! `bash -c 'set -o pipefail; tee DST < SRC | md5sum && sync'` (a failing `tee`
//! fails the run). quire runs `quire upload SRC NAME --checksum md5 --provider P`
//! for each provider (network stream and local copy). The order of the three runs
//! rotates from pair to pair (baseline, network, local; then network, local,
//! baseline; ...), so no side always runs first after the settling pause. The
//! source's md5 is computed once beforehand; the baseline's md5sum and each of
//! quire's records must match it.
//!
//! `cargo bench --bench ingest_md5`. Settings: QUIRE_BENCH_SIZE (bytes, K/M/G
//! suffixes; default 1G), QUIRE_BENCH_PAIRS (default 5), QUIRE_BENCH_SETTLE_SECS
//! (default 5), QUIRE_BENCH_DIR (parent of the scratch directory),
//! QUIRE_BENCH_BINARY (another quire binary to measure).

// Each benchmark uses its own part of the shared helpers.
#[allow(dead_code)]
mod common;

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::measure::{Series, Work, print_summary, run_timed};
use common::node::Node;
use common::{PAIRS_VAR, RandomBytes, Scratch, env_count, quire_binary};

/// quire should reach this fraction of the baseline's throughput.
const TARGET: f64 = 0.9;
const SIZE_VAR: &str = "QUIRE_BENCH_SIZE";
/// Seconds to wait after removing the previous outputs, before each pair.
const SETTLE_VAR: &str = "QUIRE_BENCH_SETTLE_SECS";
const PROVIDERS: [&str; 2] = ["network", "local"];

fn main() {
    let size = env_count(SIZE_VAR, 1 << 30).max(1);
    let pairs = env_count(PAIRS_VAR, 5).max(1);
    let settle = Duration::from_secs(env_count(SETTLE_VAR, 5));
    let scratch = Scratch::new();
    common::print_header("ingest_md5 (one large file, recorded with md5)", &scratch);
    println!(
        "settings: {size} bytes ({SIZE_VAR}), {pairs} pairs ({PAIRS_VAR}), settle {} s \
         ({SETTLE_VAR}); each pair runs the baseline, then quire with each provider",
        settle.as_secs()
    );
    let source = scratch.path().join("source.bin");
    write_random_file(&source, size);
    let mut node = Node::start(scratch.path());

    let work = Work {
        amount: size as f64 / (1 << 20) as f64,
        unit: "MiB",
    };
    let md5 = source_md5(&source);
    let mut baseline = Series::new(
        "baseline",
        "bash -c 'set -o pipefail; tee DST < SRC | md5sum && sync'",
    );
    let mut network = Series::new(
        "quire network",
        "quire upload SRC NAME --checksum md5 --provider network",
    );
    let mut local = Series::new(
        "quire local",
        "quire upload SRC NAME --checksum md5 --provider local",
    );
    let mut outputs = Vec::new();
    for pair in 1..=pairs {
        remove_outputs_and_settle(pair, &mut outputs, settle);
        // Pair 1: baseline, network, local; pair 2: network, local, baseline; ...
        for side in (0..3).map(|i| (i + pair as usize - 1) % 3) {
            if side == 0 {
                let destination = scratch.path().join(format!("baseline-{pair}.bin"));
                let run = run_timed(
                    "the baseline",
                    Command::new("bash")
                        .args([
                            "-c",
                            r#"set -o pipefail; tee "$1" < "$2" | md5sum && sync"#,
                            "bash",
                        ])
                        .arg(&destination)
                        .arg(&source),
                    None,
                );
                baseline.record(&run, &work);
                let printed = run.stdout.split_whitespace().next().unwrap_or("");
                assert_eq!(printed, md5, "md5sum printed another md5 than the source's");
                outputs.push(destination);
                continue;
            }
            let (provider, series) = match side {
                1 => (PROVIDERS[0], &mut network),
                _ => (PROVIDERS[1], &mut local),
            };
            let name = format!("ingest-{provider}-{pair}");
            let run = run_timed(
                &format!("quire upload --provider {provider}"),
                Command::new(quire_binary())
                    .arg("upload")
                    .arg(&source)
                    .arg(&name)
                    .args(["--checksum", "md5", "--provider", provider, "--json"])
                    .arg("--data-dir")
                    .arg(node.data_dir()),
                Some(&node),
            );
            series.record(&run, &work);
            outputs.push(check_upload(
                &node,
                &run.stdout,
                &name,
                provider,
                size,
                &md5,
            ));
        }
    }
    print_summary(&work, &baseline, &[&network, &local], TARGET);
    println!("load average at end: {}", common::load_average());
    node.stop();
    scratch.finish();
}

/// Writes `size` random bytes to `path` and syncs them, so the timed runs read the
/// source from the page cache and find no earlier writes still to flush.
fn write_random_file(path: &Path, size: u64) {
    let started = Instant::now();
    let mut file = File::create(path).expect("creating the source file");
    let mut random = RandomBytes::new();
    let mut buffer = vec![0u8; 1 << 20];
    let mut left = size;
    while left > 0 {
        let chunk = left.min(buffer.len() as u64) as usize;
        random.fill(&mut buffer[..chunk]);
        file.write_all(&buffer[..chunk])
            .expect("writing the source file");
        left -= chunk as u64;
    }
    file.sync_all().expect("syncing the source file");
    println!(
        "source: {} ({size} random bytes) written and synced in {:.1} s",
        path.display(),
        started.elapsed().as_secs_f64()
    );
}

/// The source's md5, computed once (untimed).
fn source_md5(path: &Path) -> String {
    let digests = quire::checksum::digest_file(path, &[quire::model::Algorithm::Md5])
        .expect("hashing the source");
    digests
        .get(quire::model::Algorithm::Md5)
        .expect("md5 was asked for")
        .hex()
}

/// Checks (untimed) that the upload did what it claims: the provider asked for, the
/// whole file, and the source's md5 recorded by the node. Returns the
/// stored file's path.
fn check_upload(
    node: &Node,
    stdout: &str,
    name: &str,
    provider: &str,
    size: u64,
    md5: &str,
) -> PathBuf {
    let report: serde_json::Value = serde_json::from_str(stdout)
        .unwrap_or_else(|e| panic!("quire upload printed no JSON ({e}): {stdout}"));
    assert_eq!(report["provider"], provider, "{stdout}");
    assert_eq!(report["size"], size, "{stdout}");
    let (checksum, path) = node.stored(name);
    assert_eq!(
        checksum,
        format!("md5:::{md5}"),
        "the node recorded another md5"
    );
    path
}

/// Runs before every pair, the same for both sides: removes the previous pair's
/// outputs (the baseline's copy and quire's stored files), syncs, then waits
/// `settle` so that freeing (and, on a `discard` mount, trimming) a few GiB is not
/// charged to the next run. Three files per pair free only three inodes, so ext4's
/// "recently deleted inode" scan (see batch_upload.rs) does not matter here.
fn remove_outputs_and_settle(pair: u64, outputs: &mut Vec<PathBuf>, settle: Duration) {
    let started = Instant::now();
    let count = outputs.len();
    for path in outputs.drain(..) {
        fs::remove_file(&path).unwrap_or_else(|e| panic!("cannot remove {}: {e}", path.display()));
    }
    rustix::fs::sync();
    let removed = started.elapsed().as_secs_f64();
    std::thread::sleep(settle);
    println!(
        "pair {pair}: removed {count} previous outputs and synced ({removed:.1} s), settled {} s",
        settle.as_secs()
    );
}
