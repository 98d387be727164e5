//! Every commit path, recorded and replayed: single upload commits, batch commits,
//! `upload/batch_put`, drop-box batches (copied and linked), staged clones
//! (`recieve_clone`) and verified copies onto a drive (`create_local_clone`).
//! Small batches (per-file fsyncs) and large ones (one syncfs, at 16 items) take
//! different branches, so each path runs with both.

use std::fs;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::harness::{CALLER, Harness, run};
use crate::checksum::hash_bytes;
use crate::clones::{Requester, mark_ongoing, mark_staged};
use crate::db::repo::files;
use crate::ingest::{
    BatchPutInput, CloneStageInput, CommitInput, PutFile, StageInput, StageOutput, StagingLayout,
    commit_upload, commit_uploads, put_batch, stage_clone, stage_upload, stage_uploads,
};
use crate::model::{Algorithm, DeletionPolicy};
use crate::node::Node;
use crate::protocol::tasks::RunReport;
use crate::tasks::{Tasks, wait_for};

/// Items from which one syncfs replaces per-file syncs, in every path.
const LARGE: usize = 17;
const SMALL: usize = 3;
/// How long background work (drop-box batches, task runs) may take.
const DEADLINE: Duration = Duration::from_secs(120);

fn md5(bytes: &[u8]) -> String {
    hash_bytes(Algorithm::Md5, bytes).to_string()
}

/// Bytes no other name has.
fn content(name: &str) -> Vec<u8> {
    format!("the bytes of {name}\n").repeat(40).into_bytes()
}

/// Names spread over a few nested directories (new directories must be made
/// durable too).
fn names(prefix: &str, count: usize) -> Vec<String> {
    (0..count)
        .map(|i| format!("{prefix}/d{}/f{i}", i % 3))
        .collect()
}

fn stage_input(name: &str, bytes: &[u8]) -> StageInput {
    StageInput {
        caller: CALLER.into(),
        upload_size: bytes.len() as i64,
        upload_checksum: md5(bytes),
        upload_name: name.rsplit('/').next().unwrap_or(name).into(),
        destination_location: name.into(),
        uploader: "tester".into(),
        record_checksum_algorithm: None,
    }
}

fn commit_input(name: &str, staged: &StageOutput) -> CommitInput {
    CommitInput {
        caller: CALLER.into(),
        transfer_id: staged.transfer_id,
        store_name: staged.store.name.clone(),
        staging_name: staged.staging_name.clone(),
        upload_name: staged.upload_name.clone(),
        destination_location: name.into(),
        deletion_policy: DeletionPolicy::Disallowed,
    }
}

/// Stages `names` in one batch and copies their bytes into staging, unsynced, as
/// a client of the local provider does.
async fn stage_and_copy(node: &Arc<Node>, names: &[String]) -> Vec<CommitInput> {
    let inputs = names
        .iter()
        .map(|name| stage_input(name, &content(name)))
        .collect();
    let staged = stage_uploads(node, inputs, StagingLayout::SharedByBatch)
        .await
        .expect("staging");
    names
        .iter()
        .zip(staged)
        .map(|(name, staged)| {
            let staged = staged.expect("staged");
            fs::write(&staged.staging_location, content(name)).expect("copying into staging");
            commit_input(name, &staged)
        })
        .collect()
}

#[test]
fn single_upload_commits() {
    let mut harness = Harness::open("", |_| {});
    harness.record();
    let (node, store) = (harness.node.clone(), harness.main_store());
    run(async {
        for name in ["deep/er/one", "deep/er/two", "top"] {
            let bytes = content(name);
            let staged = stage_upload(&node, stage_input(name, &bytes))
                .await
                .expect("staging");
            fs::write(&staged.staging_location, &bytes).expect("copying into staging");
            commit_upload(&node, commit_input(name, &staged))
                .await
                .expect("committing");
            harness.acknowledge(&format!("upload/commit {name}"), &store, &[name.into()]);
        }
    });
    harness.verify();
}

fn batch_commit(count: usize) {
    let mut harness = Harness::open("", |_| {});
    harness.record();
    let (node, store) = (harness.node.clone(), harness.main_store());
    let names = names("batch", count);
    run(async {
        let inputs = stage_and_copy(&node, &names).await;
        let results = commit_uploads(&node, inputs).await.expect("committing");
        assert!(results.iter().all(Result::is_ok), "{results:?}");
        harness.acknowledge("upload/batch_commit", &store, &names);
    });
    harness.verify();
}

#[test]
fn small_batch_commits() {
    batch_commit(SMALL);
}

#[test]
fn large_batch_commits() {
    batch_commit(LARGE);
}

fn batch_put_upload(count: usize) {
    let mut harness = Harness::open("", |_| {});
    harness.record();
    let (node, store) = (harness.node.clone(), harness.main_store());
    let names = names("put", count);
    let mut body = Vec::new();
    let files = names
        .iter()
        .map(|name| {
            let bytes = content(name);
            body.extend_from_slice(&bytes);
            PutFile {
                name: name.clone(),
                size: bytes.len() as u64,
                checksum: md5(&bytes),
            }
        })
        .collect();
    let input = BatchPutInput {
        caller: CALLER.into(),
        uploader: "tester".into(),
        deletion_policy: DeletionPolicy::Disallowed,
        files,
    };
    run(async {
        let body = futures_util::stream::iter([Ok::<_, std::io::Error>(Bytes::from(body))]);
        let outcomes = put_batch(&node, input, body).await.expect("a batch_put");
        assert!(outcomes.iter().all(|o| o.result.is_ok()), "{outcomes:?}");
        harness.acknowledge("upload/batch_put", &store, &names);
    });
    harness.verify();
}

#[test]
fn small_batch_puts() {
    batch_put_upload(SMALL);
}

#[test]
fn large_batch_puts() {
    batch_put_upload(LARGE);
}

/// Runs the configured task `name` once (its loop's first run, or the next) and
/// stops the loops; returns the report of the run.
fn run_task(runtime: &tokio::runtime::Runtime, node: &Arc<Node>, name: &str) -> RunReport {
    runtime.block_on(async {
        let loops = Tasks::spawn(node);
        let asked = node.tasks.run_now(name).expect("the task exists");
        let report = asked.await.expect("a run report");
        node.tasks.begin_shutdown();
        wait_for(loops, DEADLINE).await;
        report
    })
}

#[test]
fn staged_clones_stored_by_recieve_clone() {
    let config = "[[tasks.recieve_clone]]\ntask_name = \"receive\"\nevery = \"1h\"\n";
    let mut harness = Harness::open(config, |_| {});
    harness.record();
    let (node, store) = (harness.node.clone(), harness.main_store());
    let names = names("clones", SMALL);
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    runtime.block_on(async {
        for name in &names {
            let bytes = content(name);
            let clone = CloneStageInput {
                upload_size: bytes.len() as i64,
                upload_checksum: md5(&bytes),
                upload_name: name.rsplit('/').next().unwrap_or(name).into(),
                destination_location: name.clone(),
                uploader: "peer".into(),
                source: CALLER.into(),
                source_transfer_id: None,
            };
            let out = stage_clone(&node, clone).await.expect("clone/stage");
            fs::write(&out.staging_location, &bytes).expect("copying into staging");
            let requester = Requester {
                username: CALLER,
                admin: true,
            };
            let id = out.transfer_id as i64;
            mark_ongoing(&node, requester, id).await.expect("ongoing");
            mark_staged(&node, requester, id).await.expect("staged");
        }
    });
    let report = run_task(&runtime, &node, "receive");
    // The run may be the loop's first or the one after it; the acknowledgement
    // check finds any clone that was not stored.
    assert_eq!(report.errors, 0, "{report:?}");
    harness.acknowledge("recieve_clone", &store, &names);
    drop(runtime);
    drop(node);
    harness.verify();
}

/// Waits (polling, with a deadline) until `done` holds.
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(
            started.elapsed() < DEADLINE,
            "timed out waiting until {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn regular_files_under(dir: &Path) -> usize {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_file())
        .count()
}

fn dropbox_ingest(link: bool, count: usize) {
    let config = format!(
        "[[dropbox]]\npath = \"dropbox\"\nprefix = \"p\"\nafter_ingest = \"delete\"\n\
         settle_seconds = 1\nlink = {link}\n"
    );
    let mut harness = Harness::open(&config, |_| {});
    harness.watch_dropbox("dropbox", "p");
    let node = harness.node.clone();
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let dropboxes = runtime
        .block_on(crate::dropbox::spawn(node.clone()))
        .expect("the drop-box starts");
    harness.record();
    let dropbox = harness.data_dir.join("dropbox");
    // A large batch arrives as one directory moved in, so that it is one batch.
    let outside = harness.root.join("outside");
    let arriving = if count >= LARGE { &outside } else { &dropbox };
    let names: Vec<String> = (0..count)
        .map(|i| format!("burst/d{}/f{i}", i % 3))
        .collect();
    for name in &names {
        let path = arriving.join(name);
        fs::create_dir_all(path.parent().expect("a parent")).expect("a directory");
        fs::write(path, content(name)).expect("dropping a file");
    }
    if count >= LARGE {
        fs::rename(outside.join("burst"), dropbox.join("burst")).expect("moving the burst in");
    }
    let recorded: Vec<String> = names.iter().map(|n| format!("p/{n}")).collect();
    wait_until("every dropped file is recorded and removed", || {
        let refs: Vec<&str> = recorded.iter().map(String::as_str).collect();
        let all = node
            .db
            .read(|tx| files::exist_all(tx, &refs))
            .expect("reading records");
        all.iter().all(|r| *r) && regular_files_under(&dropbox) == 0
    });
    runtime.block_on(dropboxes.shutdown());
    drop(runtime);
    drop(node);
    harness.verify();
}

#[test]
fn small_dropbox_batches_copied() {
    dropbox_ingest(false, SMALL);
}

#[test]
fn large_dropbox_batches_copied() {
    dropbox_ingest(false, LARGE);
}

#[test]
fn small_dropbox_batches_linked() {
    dropbox_ingest(true, SMALL);
}

#[test]
fn large_dropbox_batches_linked() {
    dropbox_ingest(true, LARGE);
}

fn local_copy(count: usize) {
    let config = "[[stores]]\nname = \"main\"\npath = \"store\"\n\
                  [[stores]]\nname = \"drive\"\npath = \"drive\"\ningestable = false\n\
                  [[tasks.create_local_clone]]\ntask_name = \"fill\"\nevery = \"1h\"\n\
                  clone_from = \"main\"\nclone_to = [\"drive\"]\nage_in_days = 7\n";
    let mut harness = Harness::open(config, |data| {
        fs::create_dir_all(data.join("drive")).expect("plugging in the drive");
    });
    let node = harness.node.clone();
    let drive = harness.store("drive");
    let names = names("copied", count);
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    runtime.block_on(async {
        let inputs = stage_and_copy(&node, &names).await;
        let results = commit_uploads(&node, inputs).await.expect("committing");
        assert!(results.iter().all(Result::is_ok), "{results:?}");
    });
    harness.record();
    let report = run_task(&runtime, &node, "fill");
    // The run may be the loop's first or the one after it; the acknowledgement
    // check finds any copy that was not made.
    assert_eq!(report.errors, 0, "{report:?}");
    harness.acknowledge("create_local_clone", &drive, &names);
    drop(runtime);
    drop(node);
    harness.verify();
}

#[test]
fn small_local_copies() {
    local_copy(SMALL);
}

#[test]
fn large_local_copies() {
    local_copy(LARGE);
}
