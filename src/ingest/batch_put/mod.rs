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
use futures_util::Stream;

use super::IngestError;
use super::leftovers::remove_empty_parents;
use super::stage::{StageInput, check, path_limits};
use crate::db::repo::files;
use crate::model::{DeletionPolicy, check_path_limits};
use crate::node::{Claim, Node, Reserved};
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
    let result = receive_and_commit(node, &input, &mut plan, store.clone(), body).await;
    plan.reserved = None;
    if let Some(store) = store {
        plan.clean_up(node, store).await;
    }
    result?;
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

/// Steps 2 to 5: receives the body and commits the verified files; answers go to
/// `plan`.
async fn receive_and_commit<S, E>(
    node: &Arc<Node>,
    input: &BatchPutInput,
    plan: &mut Plan,
    store: Option<Arc<Store>>,
    body: S,
) -> Result<(), IngestError>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
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
        // The names stay claimed until the commit ends, even without the caller.
        let claim = plan.claim.clone();
        let committed = tokio::spawn(async move {
            let committed = commit(&node, &store, &record_as, verified).await;
            drop(claim);
            committed
        });
        for (index, result) in committed.await?? {
            plan.answer(index, result);
        }
    }
    Ok(())
}

/// What each file's bytes must be, and the answers known so far.
struct Plan {
    expected: Vec<Expected>,
    results: Vec<Option<Result<(), IngestError>>>,
    /// The accepted files' names, claimed until the batch ends.
    claim: Arc<Claim>,
    /// The files (place in the request, name) whose directories may be created in
    /// the store.
    placing: Vec<(usize, String)>,
    /// Room reserved in the chosen store until the batch ends.
    reserved: Option<Reserved>,
}

impl Plan {
    /// Checks every file of the manifest: name, size, checksum, and that no file
    /// recorded (or placed now, or earlier in the batch) is in the way of its name;
    /// claims the names of the files accepted.
    fn check(node: &Node, input: &BatchPutInput) -> Result<Plan, IngestError> {
        let mut plan = Plan {
            expected: Vec::with_capacity(input.files.len()),
            results: Vec::with_capacity(input.files.len()),
            claim: Arc::new(node.claims.claim(&[], "a batch upload").0),
            placing: Vec::new(),
            reserved: None,
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
        let candidates: Vec<(usize, &str)> = (input.files.iter().enumerate())
            .filter(|(index, _)| plan.results[*index].is_none())
            .map(|(index, file)| (index, file.name.as_str()))
            .collect();
        let names: Vec<&str> = candidates.iter().map(|(_, name)| *name).collect();
        let (claim, answers) = node.claims.claim(&names, "a batch upload");
        let mut claimed = Vec::with_capacity(candidates.len());
        for ((index, name), answer) in candidates.into_iter().zip(answers) {
            match answer {
                Ok(()) => claimed.push((index, name)),
                Err(busy) => {
                    let by = if claim.holds(&busy.other) {
                        "this same request"
                    } else {
                        busy.by
                    };
                    let (name, other) = (name.to_string(), busy.other);
                    plan.refuse(index, IngestError::NameBusy { name, other, by });
                }
            }
        }
        plan.claim = Arc::new(claim);
        let names: Vec<&str> = claimed.iter().map(|(_, name)| *name).collect();
        let obstacles = node.db.read(|tx| files::obstacles(tx, &names))?;
        for ((index, name), obstacle) in claimed.into_iter().zip(obstacles) {
            match obstacle {
                Some(obstacle) => plan.refuse(index, IngestError::obstacle(name, obstacle)),
                None => plan.placing.push((index, name.to_string())),
            }
        }
        Ok(plan)
    }

    /// One store for every accepted file, or each of them refused.
    fn choose_store(&mut self, node: &Arc<Node>) -> Option<Arc<Store>> {
        let accepted: Vec<usize> = (0..self.expected.len())
            .filter(|i| self.expected[*i].is_accepted())
            .collect();
        if accepted.is_empty() {
            return None;
        }
        let sizes: Vec<u64> = accepted.iter().map(|i| self.expected[*i].size).collect();
        match node.reserve_room(&sizes) {
            Ok(reserved) => {
                let store = reserved.store.clone();
                self.reserved = Some(reserved);
                let limits = path_limits(&store);
                let base = store.root.as_os_str().len();
                for index in accepted {
                    let name = &self.expected[index].name;
                    if let Err(error) = check_path_limits(name, base, limits) {
                        self.refuse(index, error.into());
                    }
                }
                Some(store)
            }
            Err(why) => {
                for index in accepted {
                    let size = self.expected[index].size;
                    let why = why.clone();
                    self.refuse(index, IngestError::NoStore { size, why });
                }
                None
            }
        }
    }

    /// Removes the directories that files which were not stored left empty in
    /// `store`; only once every file is named or given up, since an unnamed file
    /// does not keep its directory from looking empty.
    async fn clean_up(&self, node: &Arc<Node>, store: Arc<Store>) {
        let unstored: Vec<String> = (self.placing.iter())
            .filter(|(index, _)| matches!(self.results[*index], Some(Err(_))))
            .map(|(_, name)| name.clone())
            .collect();
        if unstored.is_empty() {
            return;
        }
        let (node, claim) = (node.clone(), self.claim.clone());
        let _ = tokio::task::spawn_blocking(move || {
            for name in unstored {
                remove_empty_parents(&node, &store, &name, &claim);
            }
        })
        .await;
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
    body: S,
) -> Result<Vec<Result<Option<Received>, IngestError>>, IngestError>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let (sender, receiver) = tokio::sync::mpsc::channel::<Bytes>(QUEUE_CHUNKS);
    let writer = tokio::task::spawn_blocking(move || receive(store.as_deref(), expected, receiver));
    if let (_, Some(error)) = super::stream::feed(body, sender).await {
        // Whatever arrived whole is still committed; the rest can be sent again.
        tracing::warn!(%error, "batch upload body interrupted");
    }
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
