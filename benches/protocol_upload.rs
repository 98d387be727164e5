//! One-file uploads through the Librarian protocol, as pipelines make them, at 1, 4
//! and 16 concurrent clients, against the physical baseline of the same number of
//! `cp FILE DST && sync`-equivalent operations made with the same concurrency.
//!
//! - quire: each client (a thread of this program with one kept-alive HTTP
//!   connection, through the bench's lean client so that the client's CPU, on
//!   the same two cores, stays small beside the node's) takes the next source file and does what the Librarian client
//!   does with the `local` provider: `POST upload/stage`, a copy of the file into
//!   the staging location the node answered (`std::fs::copy`, as quire's own local
//!   provider), `POST upload/commit`. The md5 each stage declares is computed before
//!   the timing, so the clients spend their time on the protocol alone.
//! - baseline: each thread takes the next source file, reads it, writes it to a
//!   temporary name in the destination directory, fsyncs it, renames it to its
//!   final name and fsyncs the directory: what `cp FILE DST && sync` makes durable
//!   for one file, without the cost of starting two processes.
//!
//! Both sides write `dNNN/fNNNNNN` trees of 1000 files per directory. The order
//! within a pair rotates (baseline first in odd pairs, quire first in even ones),
//! and outputs are kept until the end (see batch_upload.rs on ext4's inode allocator
//! after deletions). After each quire run (untimed) the node must have recorded
//! exactly the run's names, with the source's md5 for a sample of them, and the
//! store must hold every file.
//!
//! `cargo bench --bench protocol_upload`. Settings: QUIRE_BENCH_FILES (uploads per
//! run, default 2000), QUIRE_BENCH_FILE_SIZE (default 4K), QUIRE_BENCH_PAIRS
//! (default 5), QUIRE_BENCH_CLIENTS (concurrency levels, default `1,4,16`),
//! QUIRE_BENCH_DIR (parent of the scratch directory),
//! QUIRE_BENCH_BINARY (another quire binary to measure).

// Each benchmark uses its own part of the shared helpers.
#[allow(dead_code)]
mod common;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Barrier;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use common::api::{Api, check_records};
use common::lean_http::LeanClient;
use common::measure::{Run, Series, Work, own_cpu_seconds, print_summary};
use common::node::Node;
use common::tree::{FILES_PER_DIR, count_files, expected_tree_records, relative_name};
use common::{PAIRS_VAR, Scratch, env_count};
use quire::model::{Algorithm, Timestamp};
use quire::protocol::upload::{
    LOCAL_PROVIDER, TransferProvider, UploadCompletionRequest, UploadInitiationRequest,
};

/// At 16 clients quire should reach this fraction of the baseline's throughput.
const TARGET: f64 = 0.5;
const FILES_VAR: &str = "QUIRE_BENCH_FILES";
const FILE_SIZE_VAR: &str = "QUIRE_BENCH_FILE_SIZE";
const CLIENTS_VAR: &str = "QUIRE_BENCH_CLIENTS";

/// The synced source files and the md5 of each, in `upload/stage`'s form.
struct Source {
    root: PathBuf,
    paths: Vec<PathBuf>,
    checksums: Vec<String>,
}

fn main() {
    let files = env_count(FILES_VAR, 2000).max(1);
    let file_size = env_count(FILE_SIZE_VAR, 4096);
    let pairs = env_count(PAIRS_VAR, 5).max(1);
    let levels = client_levels();
    let scratch = Scratch::new();
    common::print_header("protocol_upload (one file per stage + commit)", &scratch);
    println!(
        "settings: {files} uploads per run ({FILES_VAR}) of {file_size} bytes \
         ({FILE_SIZE_VAR}), clients {levels:?} ({CLIENTS_VAR}), {pairs} pairs ({PAIRS_VAR})"
    );
    let outputs = 2 * pairs * levels.len() as u64 + 1;
    common::tree::check_space(scratch.path(), files, file_size, outputs);
    let source = write_source(&scratch.path().join("source"), files, file_size);
    let config = format!("max_search_results = {}\n", files + 1);
    let mut node = Node::start_with_config(scratch.path(), Some(&config));
    let api = Api::admin(&node);

    let work = Work {
        amount: files as f64,
        unit: "files",
    };
    let mut verdicts = Vec::new();
    for &clients in &levels {
        println!("== {clients} concurrent clients");
        let mut baseline = Series::new(
            "baseline",
            "read, write tmp, fsync, rename, fsync dir (per file, N threads)",
        );
        let mut quire = Series::new(
            "quire protocol",
            "upload/stage, copy into staging, upload/commit (per file, N threads)",
        );
        for pair in 1..=pairs {
            println!("pair {pair}:");
            let quire_first = pair % 2 == 0;
            for side in if quire_first { [1, 0] } else { [0, 1] } {
                if side == 0 {
                    let destination = scratch.path().join(format!("baseline-c{clients}-{pair}"));
                    let run = baseline_run(&source, &destination, clients);
                    baseline.record(&run, &work);
                    let copied = count_files(&destination);
                    assert_eq!(
                        copied, files,
                        "the baseline wrote {copied} of {files} files"
                    );
                } else {
                    let prefix = format!("proto-c{clients}-{pair}");
                    let (run, since) = quire_run(&node, &source, &prefix, clients);
                    quire.record(&run, &work);
                    check_run(&node, &api, &source, &prefix, since);
                }
            }
        }
        println!(
            "  single upload as a client waits for it: quire {:.2} ms, baseline {:.2} ms \
             (median wall time x clients / files)",
            quire.median() * clients as f64 / files as f64 * 1e3,
            baseline.median() * clients as f64 / files as f64 * 1e3,
        );
        print_summary(&work, &baseline, &[&quire], TARGET);
        verdicts.push(format!(
            "{clients} clients {:.2}",
            baseline.median() / quire.median()
        ));
    }
    println!(
        "ratios by concurrency (target >= {TARGET:.2} at 16 clients): {}",
        verdicts.join(", ")
    );
    println!("load average at end: {}", common::load_average());
    node.stop();
    scratch.finish();
}

/// The concurrency levels from `QUIRE_BENCH_CLIENTS` (e.g. `1,4,16`).
fn client_levels() -> Vec<u64> {
    let text = std::env::var(CLIENTS_VAR).unwrap_or_else(|_| "1,4,16".into());
    let levels: Vec<u64> = text
        .split(',')
        .map(|part| {
            part.trim()
                .parse::<u64>()
                .ok()
                .filter(|n| *n > 0)
                .unwrap_or_else(|| panic!("{CLIENTS_VAR}={text:?}: give counts like 1,4,16"))
        })
        .collect();
    levels
}

/// Writes the source tree (`dNNN/fNNNNNN`) and computes each file's md5.
fn write_source(root: &Path, files: u64, size: u64) -> Source {
    common::tree::write_random_tree(root, files, size);
    let paths: Vec<PathBuf> = (0..files).map(|i| source_path(root, i)).collect();
    let checksums = paths
        .iter()
        .map(|path| {
            let bytes = fs::read(path).expect("reading a source file");
            quire::checksum::hash_bytes(Algorithm::Md5, &bytes).to_string()
        })
        .collect();
    Source {
        root: root.to_path_buf(),
        paths,
        checksums,
    }
}

/// Where file `index` of a tree rooted at `root` lives.
fn source_path(root: &Path, index: u64) -> PathBuf {
    root.join(relative_name(index))
}

/// Runs `clients` threads that share the indexes `0..files`, each calling `work`
/// on its own state (made by `setup`, untimed) for every index it takes; returns
/// the wall time from the moment all threads are ready until the last one ends.
fn run_parallel<S>(
    files: u64,
    clients: u64,
    setup: impl Fn() -> S + Sync,
    work: impl Fn(&mut S, u64) + Sync,
) -> f64 {
    let next = AtomicU64::new(0);
    let ready = Barrier::new(clients as usize + 1);
    let started = std::thread::scope(|scope| {
        for _ in 0..clients {
            scope.spawn(|| {
                let mut state = setup();
                ready.wait();
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    if index >= files {
                        break;
                    }
                    work(&mut state, index);
                }
            });
        }
        ready.wait();
        Instant::now()
    });
    started.elapsed().as_secs_f64()
}

/// The baseline: per file, read it, write a temporary copy, fsync it, rename it into
/// place, fsync the directory.
fn baseline_run(source: &Source, destination: &Path, clients: u64) -> Run {
    let files = source.paths.len() as u64;
    for directory in 0..files.div_ceil(FILES_PER_DIR) {
        fs::create_dir_all(destination.join(format!("d{directory:03}")))
            .expect("creating a baseline directory");
    }
    rustix::fs::sync();
    let cpu_before = own_cpu_seconds();
    let wall = run_parallel(
        files,
        clients,
        || (),
        |(), index| {
            let target = source_path(destination, index);
            let directory = target.parent().expect("a parent");
            let temporary = directory.join(format!(".tmp-f{index:06}"));
            let bytes = fs::read(&source.paths[index as usize]).expect("reading a source file");
            let mut file = fs::File::create(&temporary).expect("creating a baseline file");
            file.write_all(&bytes).expect("writing a baseline file");
            file.sync_all().expect("syncing a baseline file");
            drop(file);
            fs::rename(&temporary, &target).expect("renaming a baseline file");
            fs::File::open(directory)
                .and_then(|d| d.sync_all())
                .expect("syncing a baseline directory");
        },
    );
    Run {
        wall,
        cpu: own_cpu_seconds() - cpu_before,
        node_cpu: None,
        stdout: String::new(),
    }
}

/// quire: per file, `upload/stage`, a copy into the staging location, `upload/commit`.
/// Also returns when the run started, as the node stamps records.
fn quire_run(node: &Node, source: &Source, prefix: &str, clients: u64) -> (Run, Timestamp) {
    let files = source.paths.len() as u64;
    rustix::fs::sync();
    let since = common::api::now();
    let cpu_before = own_cpu_seconds();
    let node_before = node.cpu_seconds();
    let wall = run_parallel(
        files,
        clients,
        || Api::admin(node).lean(),
        |client, index| upload_one(client, source, prefix, index),
    );
    let run = Run {
        wall,
        cpu: own_cpu_seconds() - cpu_before,
        node_cpu: Some(node.cpu_seconds() - node_before),
        stdout: String::new(),
    };
    (run, since)
}

/// The fields of `upload/stage`'s answer that a `local` upload uses.
#[derive(serde::Deserialize)]
struct Staged {
    transfer_id: u64,
    store_name: String,
    staging_name: String,
    staging_location: String,
}

/// POSTs `body` and decodes the answer, which must have status `expected`.
fn call<T: serde::de::DeserializeOwned>(
    client: &mut LeanClient,
    route: &str,
    body: &impl serde::Serialize,
    expected: u16,
    name: &str,
) -> T {
    let request = serde_json::to_vec(body).expect("encoding a request");
    let (status, answer) = client.post(route, &request);
    assert_eq!(
        status,
        expected,
        "{route} of {name}: {}",
        String::from_utf8_lossy(&answer)
    );
    // The protocol answers some routes with an empty body.
    let answer = if answer.is_empty() {
        b"null".to_vec()
    } else {
        answer
    };
    serde_json::from_slice(&answer).unwrap_or_else(|e| {
        panic!(
            "{route} of {name} answered {} ({e})",
            String::from_utf8_lossy(&answer)
        )
    })
}

/// One upload as the Librarian client makes it with the `local` provider.
fn upload_one(client: &mut LeanClient, source: &Source, prefix: &str, index: u64) {
    let name = format!("{prefix}/{}", relative_name(index));
    let upload_name = format!("f{index:06}");
    let stage = UploadInitiationRequest {
        upload_size: fs::metadata(&source.paths[index as usize])
            .expect("a source file")
            .len() as i64,
        upload_checksum: source.checksums[index as usize].clone(),
        upload_name: upload_name.clone(),
        destination_location: name.clone(),
        uploader: "bench".into(),
        record_checksum_algorithm: None,
    };
    let staged: Staged = call(client, "upload/stage", &stage, 201, &name);
    let staging_location = staged.staging_location;
    fs::copy(&source.paths[index as usize], &staging_location)
        .unwrap_or_else(|e| panic!("copying into {staging_location}: {e}"));
    let commit = UploadCompletionRequest {
        store_name: staged.store_name,
        staging_name: staged.staging_name,
        staging_location,
        upload_name,
        destination_location: name.clone(),
        transfer_provider_name: LOCAL_PROVIDER.into(),
        transfer_provider: TransferProvider {
            hostnames: Vec::new(),
        },
        meta_mode: "infer".into(),
        deletion_policy: "DISALLOWED".into(),
        uploader: "bench".into(),
        null_obsid: false,
        transfer_id: staged.transfer_id,
    };
    let _: serde_json::Value = call(client, "upload/commit", &commit, 200, &name);
}

/// Checks (untimed) that the run's files are all recorded, with the source's md5 for
/// a sample, that the store holds each of them, and that no staged file is left.
fn check_run(node: &Node, api: &Api, source: &Source, prefix: &str, since: Timestamp) {
    let files = source.paths.len() as u64;
    // Records are stamped before the commit answers, so "now" is after all of them.
    let expected = expected_tree_records(&source.root, prefix, files, since, common::api::now());
    check_records(api, &expected);
    let stored = node.data_dir().join("store").join(prefix);
    let on_disk = count_files(&stored);
    assert_eq!(on_disk, files, "{} holds {on_disk} files", stored.display());
    // Emptied staging directories may wait there for the next upload; no bytes may.
    let staging = node.data_dir().join("store").join(".quire-staging");
    let left = count_files(&staging);
    assert_eq!(left, 0, "{} still holds {left} files", staging.display());
}
