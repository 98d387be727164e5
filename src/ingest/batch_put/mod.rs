//! `upload/batch_put` (quire): many small files named, sent and committed in one
//! request, with no staging and no transfer records.
//!
//! Order of a batch (each step durable before the next):
//! 1. check every file of the manifest (name, size, checksum, name free) and
//!    choose one store for all of them;
//! 2. write each accepted file's bytes into an unnamed file in its target
//!    directory, hashing them in the same pass, and verify them;
//! 3. record the intent: which inode is about to be named where;
//! 4. name the verified files without replacing anything, then sync bytes and
//!    names together;
//! 5. record File + Instance for each named file in the transaction that forgets
//!    the intent.
//!
//! A crash before 3 leaves nothing (the kernel frees unnamed files); a crash
//! after it leaves an intent, and start-up takes back every named inode it lists
//! that no record points at (`recovery`). So a file is either recorded with
//! complete, verified bytes, or not in the store at all.

mod receive;
mod record;
pub mod recovery;

use std::collections::HashSet;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};

use super::IngestError;
use super::stage::{StageInput, check};
use crate::db::repo::files;
use crate::model::DeletionPolicy;
use crate::node::Node;
use crate::store::Store;
use receive::{Expected, Received, receive};
use record::{Named, RecordAs, record_named, take_back_unrecorded, write_intent};

/// Most files in one request.
pub const MAX_FILES: usize = 4096;
/// Chunks queued between the network and the writer.
const QUEUE_CHUNKS: usize = 64;

/// A batch upload as the client describes it.
#[derive(Debug, Clone)]
pub struct BatchPutInput {
    /// The authenticated caller; the files' source.
    pub caller: String,
    pub uploader: String,
    pub deletion_policy: DeletionPolicy,
    /// The files, in the order their bytes follow in the body.
    pub files: Vec<PutFile>,
}

/// One file of a batch upload.
#[derive(Debug, Clone)]
pub struct PutFile {
    pub name: String,
    pub size: u64,
    pub checksum: String,
}

/// How one file of the batch ended.
#[derive(Debug)]
pub struct PutOutcome {
    pub name: String,
    pub result: Result<(), IngestError>,
}

/// Stores the files of `input`, whose bytes follow in `body` back to back in
/// manifest order. Each file gets its own result; files whose bytes arrived
/// whole and verified are committed even if the body ends early. A body longer
/// than the manifest declares stores nothing.
pub async fn put_batch<S, E>(
    node: &Arc<Node>,
    input: BatchPutInput,
    body: S,
) -> Result<Vec<PutOutcome>, IngestError>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let mut plan = Plan::check(node, &input)?;
    let store = plan.choose_store(node);
    // The plan's expectations go to the writer; from here on only answers change.
    let expected = std::mem::take(&mut plan.expected);
    let received = receive_body(store.clone(), expected, body).await?;
    let mut verified = Vec::new();
    for (index, item) in received.into_iter().enumerate() {
        match item {
            Ok(Some(file)) => verified.push((index, file)),
            Ok(None) => {}
            // A file refused before its bytes came keeps that first answer.
            Err(error) if plan.results[index].is_none() => plan.answer(index, Err(error)),
            Err(_) => {}
        }
    }
    if let Some(store) = store.filter(|_| !verified.is_empty()) {
        // Once files are about to be named, the batch finishes even if the caller
        // goes away: a dropped request must not leave named files without their
        // record (a retry would hear 409 for files that recovery later removes).
        let node = node.clone();
        let record_as = RecordAs {
            caller: input.caller.clone(),
            uploader: input.uploader.clone(),
            deletion_policy: input.deletion_policy,
        };
        let committed =
            tokio::spawn(async move { commit(&node, &store, &record_as, verified).await });
        for (index, result) in committed.await?? {
            plan.answer(index, result);
        }
    }
    Ok(input
        .files
        .into_iter()
        .zip(plan.results)
        .map(|(file, result)| PutOutcome {
            name: file.name,
            result: result.expect("every file is answered"),
        })
        .collect())
}

/// What each file's bytes must be, and the answers known so far.
struct Plan {
    expected: Vec<Expected>,
    results: Vec<Option<Result<(), IngestError>>>,
}

impl Plan {
    /// Checks every file of the manifest: name, size, checksum, and that its name
    /// is free (in the database and earlier in the batch).
    fn check(node: &Node, input: &BatchPutInput) -> Result<Plan, IngestError> {
        let mut plan = Plan {
            expected: Vec::with_capacity(input.files.len()),
            results: Vec::with_capacity(input.files.len()),
        };
        for file in &input.files {
            let stage = StageInput {
                caller: input.caller.clone(),
                upload_size: i64::try_from(file.size).unwrap_or(i64::MAX),
                upload_checksum: file.checksum.clone(),
                upload_name: file.name.rsplit('/').next().unwrap_or(&file.name).into(),
                destination_location: file.name.clone(),
                uploader: input.uploader.clone(),
                record_checksum_algorithm: None,
            };
            match check(node, &stage) {
                Ok(checked) => {
                    plan.expected
                        .push(Expected::accept(&file.name, file.size, checked.checksum));
                    plan.results.push(None);
                }
                Err(error) => {
                    plan.expected.push(Expected::skip(file.size));
                    plan.results.push(Some(Err(error)));
                }
            }
        }
        let names: Vec<&str> = input.files.iter().map(|f| f.name.as_str()).collect();
        let taken = node.db.read(|tx| files::exist_all(tx, &names))?;
        let mut claimed = HashSet::new();
        for (index, (name, taken)) in names.into_iter().zip(taken).enumerate() {
            if plan.results[index].is_none() && (taken || !claimed.insert(name)) {
                plan.refuse(index, IngestError::NameTaken(name.to_string()));
            }
        }
        Ok(plan)
    }

    /// One store for every accepted file, or each of them refused.
    fn choose_store(&mut self, node: &Node) -> Option<Arc<Store>> {
        let accepted: Vec<usize> = (0..self.expected.len())
            .filter(|i| self.expected[*i].is_accepted())
            .collect();
        if accepted.is_empty() {
            return None;
        }
        let total: u64 = accepted.iter().map(|i| self.expected[*i].size).sum();
        if let Some((store, _)) = node.stores.choose_for_ingest(total) {
            return Some(store);
        }
        let why = node.stores.why_no_room(total);
        for index in accepted {
            let size = self.expected[index].size;
            let why = why.clone();
            self.refuse(index, IngestError::NoStore { size, why });
        }
        None
    }

    /// Refuses a file before its bytes arrive: they will be skipped.
    fn refuse(&mut self, index: usize, error: IngestError) {
        self.expected[index] = Expected::skip(self.expected[index].size);
        self.answer(index, Err(error));
    }

    fn answer(&mut self, index: usize, result: Result<(), IngestError>) {
        self.results[index] = Some(result);
    }
}

/// Step 2: feeds the body to the blocking writer; one entry per file: verified
/// bytes, `None` if skipped, or why they were not accepted.
async fn receive_body<S, E>(
    store: Option<Arc<Store>>,
    expected: Vec<Expected>,
    mut body: S,
) -> Result<Vec<Result<Option<Received>, IngestError>>, IngestError>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let (sender, receiver) = tokio::sync::mpsc::channel::<Bytes>(QUEUE_CHUNKS);
    let writer = tokio::task::spawn_blocking(move || receive(store.as_deref(), expected, receiver));
    while let Some(chunk) = body.next().await {
        match chunk {
            Ok(bytes) => {
                if sender.send(bytes).await.is_err() {
                    break;
                }
            }
            Err(error) => {
                // Whatever arrived whole is still committed; the rest can be sent
                // again.
                tracing::warn!(%error, "batch upload body interrupted");
                break;
            }
        }
    }
    drop(sender);
    writer.await?
}

/// Steps 3 to 5 for the verified files; one result per file.
async fn commit(
    node: &Arc<Node>,
    store: &Arc<Store>,
    record_as: &RecordAs,
    verified: Vec<(usize, Received)>,
) -> Result<Vec<(usize, Result<(), IngestError>)>, IngestError> {
    let intent = write_intent(node, store, &verified).await?;
    let mut files = Vec::with_capacity(verified.len());
    let mut waiting = Vec::with_capacity(verified.len());
    for (index, item) in verified {
        files.push(item.file);
        waiting.push((index, item.name, item.checksum, item.digests));
    }
    let named = {
        let store = store.clone();
        tokio::task::spawn_blocking(move || store.name_all(files)).await?
    };
    let mut outcomes = Vec::with_capacity(waiting.len());
    let mut to_record = Vec::with_capacity(waiting.len());
    for ((index, name, checksum, digests), named) in waiting.into_iter().zip(named) {
        match named {
            Ok(target) => to_record.push(Named {
                index,
                name,
                checksum,
                digests,
                target,
            }),
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
                outcomes.push((index, Err(IngestError::NameTaken(name))));
            }
            Err(error) => outcomes.push((
                index,
                Err(IngestError::io("cannot name the file in the store", error)),
            )),
        }
    }
    let whole_intent = outcomes.is_empty();
    let recorded =
        match record_named(node, store, record_as, intent.id, &to_record, whole_intent).await {
            Ok(recorded) => recorded,
            Err(error) => {
                take_back_unrecorded(node, intent, HashSet::new()).await;
                return Err(error);
            }
        };
    let mut kept = HashSet::new();
    for (item, recorded) in to_record.into_iter().zip(&recorded) {
        if *recorded {
            kept.insert(item.name);
            outcomes.push((item.index, Ok(())));
        } else {
            outcomes.push((item.index, Err(IngestError::NameTaken(item.name))));
        }
    }
    if !(whole_intent && recorded.iter().all(|r| *r)) {
        take_back_unrecorded(node, intent, kept).await;
    }
    Ok(outcomes)
}
