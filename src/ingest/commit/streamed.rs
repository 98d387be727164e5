//! `upload/batch_stream` (quire): the bytes of many staged single-file uploads in
//! one request body, committed as they arrive. Each item is written into an
//! unnamed file in its target directory and hashed in the same pass; after the
//! body ends, the verified items are named in one durable batch and recorded in
//! one transaction, as `upload/batch_commit` would.
//!
//! Body: for each item, its transfer id (u64, little-endian), its length (u64,
//! little-endian), then that many bytes.

use std::collections::{BTreeMap, HashSet};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::{Buf, Bytes, BytesMut};
use futures_util::{Stream, StreamExt};

use super::record::Placed;
use super::{InPlace, Outcome, Prepared, record_placed};
use crate::checksum::{Digester, Digests};
use crate::db::repo::transfers;
use crate::ingest::IngestError;
use crate::model::{DeletionPolicy, IncomingTransfer, TransferStatus};
use crate::node::Node;
use crate::store::{Store, UnnamedFile};

/// Bytes of an item's frame header.
const HEADER_BYTES: usize = 16;
/// Most items in one body.
pub const MAX_ITEMS: usize = 4096;
/// Chunks queued between the network and the writer.
const QUEUE_CHUNKS: usize = 64;

/// How one item of the body ended.
#[derive(Debug)]
pub struct StreamedItem {
    pub transfer_id: u64,
    /// The file's name, when the transfer is known.
    pub destination_location: String,
    pub result: Result<(), IngestError>,
}

/// An item after the body was read.
struct Received {
    transfer_id: u64,
    transfer: Option<IncomingTransfer>,
    store: Option<Arc<Store>>,
    /// The verified digests, or why the item was not accepted.
    verdict: Result<Digests, Rejection>,
    /// The accepted item's bytes, until they are named.
    file: Option<UnnamedFile>,
}

/// Why an item was not accepted, and whether its transfer is failed for good.
struct Rejection {
    error: IngestError,
    for_good: bool,
}

impl Rejection {
    fn answer(error: IngestError) -> Rejection {
        Rejection {
            error,
            for_good: false,
        }
    }

    fn for_good(error: IngestError) -> Rejection {
        Rejection {
            error,
            for_good: true,
        }
    }
}

/// Commits the items of a batch body; one result per item, in body order.
pub async fn commit_streamed_batch<S, E>(
    node: &Arc<Node>,
    caller: String,
    deletion_policy: DeletionPolicy,
    body: S,
) -> Result<Vec<StreamedItem>, IngestError>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let (sender, receiver) = tokio::sync::mpsc::channel::<Bytes>(QUEUE_CHUNKS);
    let reader = {
        let node = node.clone();
        tokio::task::spawn_blocking(move || receive(&node, &caller, receiver))
    };
    let mut body = body;
    let mut body_error = None;
    while let Some(chunk) = body.next().await {
        match chunk {
            Ok(bytes) => {
                if sender.send(bytes).await.is_err() {
                    break;
                }
            }
            Err(error) => {
                body_error = Some(error.to_string());
                break;
            }
        }
    }
    drop(sender);
    let mut received = reader.await??;
    if let Some(error) = body_error {
        // Whatever arrived whole is still committed; the rest can be sent again.
        tracing::warn!(%error, items = received.len(), "batch body interrupted");
    }
    let named = name_all(&mut received).await?;
    let mut outcome = Outcome::new(received.len());
    let mut in_place = Vec::new();
    let mut answers = Vec::with_capacity(received.len());
    for (index, (item, named)) in received.into_iter().zip(named).enumerate() {
        let destination = item
            .transfer
            .as_ref()
            .map(|t| t.destination_location.clone())
            .unwrap_or_default();
        answers.push((item.transfer_id, destination.clone()));
        let digests = match item.verdict {
            Err(rejection) if rejection.for_good => {
                outcome.refuse_transfer(index, item.transfer_id, rejection.error);
                continue;
            }
            Err(rejection) => {
                outcome.answer(index, Err(rejection.error));
                continue;
            }
            Ok(digests) => digests,
        };
        let (Some(transfer), Some(store), Some(named)) = (item.transfer, item.store, named) else {
            unreachable!("an accepted item has a transfer and a store, and was named");
        };
        let target = match named {
            Ok(target) => target,
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
                outcome.refuse_transfer(
                    index,
                    item.transfer_id,
                    IngestError::NameTaken(destination),
                );
                continue;
            }
            Err(error) => {
                let error = IngestError::io("cannot name the upload in the store", error);
                outcome.answer(index, Err(error));
                continue;
            }
        };
        let staged = store
            .staging
            .join(&transfer.staging_name)
            .join(&transfer.upload_name);
        let placed = Placed {
            transfer: transfer.clone(),
            digests,
            target,
            deletion_policy,
        };
        let item = Prepared {
            transfer,
            store,
            staged,
            deletion_policy,
        };
        in_place.push(InPlace {
            index,
            item,
            placed,
        });
    }
    record_placed(node, in_place, &mut outcome).await?;
    outcome.close_refused(node).await?;
    Ok(answers
        .into_iter()
        .zip(outcome.finish())
        .map(
            |((transfer_id, destination_location), result)| StreamedItem {
                transfer_id,
                destination_location,
                result,
            },
        )
        .collect())
}

/// A store and the files (with their item positions) to name in it.
type StoreGroup = (Arc<Store>, Vec<(usize, UnnamedFile)>);

/// Names the accepted items, one durable batch per store; `None` for items that
/// were not accepted.
async fn name_all(
    received: &mut [Received],
) -> Result<Vec<Option<std::io::Result<PathBuf>>>, IngestError> {
    let mut by_store: BTreeMap<u64, StoreGroup> = BTreeMap::new();
    for (index, item) in received.iter_mut().enumerate() {
        if let (Some(store), Some(file)) = (&item.store, item.file.take()) {
            by_store
                .entry(store.id)
                .or_insert_with(|| (store.clone(), Vec::new()))
                .1
                .push((index, file));
        }
    }
    let mut outcomes: Vec<Option<std::io::Result<PathBuf>>> =
        (0..received.len()).map(|_| None).collect();
    for (_, (store, files)) in by_store {
        let (indexes, files): (Vec<usize>, Vec<UnnamedFile>) = files.into_iter().unzip();
        let named = tokio::task::spawn_blocking(move || store.name_all(files)).await?;
        for (index, result) in indexes.into_iter().zip(named) {
            outcomes[index] = Some(result);
        }
    }
    Ok(outcomes)
}

/// Reads the body's frames (blocking): checks each item's transfer, writes its
/// bytes into an unnamed file while hashing them, and verifies them.
fn receive(
    node: &Node,
    caller: &str,
    mut chunks: tokio::sync::mpsc::Receiver<Bytes>,
) -> Result<Vec<Received>, IngestError> {
    let mut items: Vec<Received> = Vec::new();
    let mut pending = BytesMut::new();
    let mut current: Option<Current> = None;
    let mut made_dirs = HashSet::new();
    loop {
        let Some(chunk) = chunks.blocking_recv() else {
            break;
        };
        pending.extend_from_slice(&chunk);
        loop {
            if let Some(item) = current.as_mut() {
                let take = (item.remaining as usize).min(pending.len());
                if take == 0 && item.remaining > 0 {
                    break;
                }
                item.feed(pending.split_to(take).freeze());
                if item.remaining == 0 {
                    items.push(current.take().expect("current item").finish());
                }
                continue;
            }
            if pending.len() < HEADER_BYTES {
                break;
            }
            if items.len() >= MAX_ITEMS {
                return Err(IngestError::WrongTransferDetails {
                    id: 0,
                    detail: format!("a batch body holds at most {MAX_ITEMS} items"),
                });
            }
            let transfer_id = pending.get_u64_le();
            let length = pending.get_u64_le();
            let started = Current::start(node, caller, transfer_id, length, &mut made_dirs);
            if started.remaining == 0 {
                items.push(started.finish());
            } else {
                current = Some(started);
            }
        }
    }
    if let Some(item) = current {
        let id = item.transfer_id;
        let mut unfinished = item.finish();
        unfinished.verdict = Err(Rejection::answer(IngestError::io(
            format!("the body ended inside the bytes of transfer {id}"),
            std::io::Error::from(std::io::ErrorKind::UnexpectedEof),
        )));
        unfinished.file = None;
        items.push(unfinished);
    }
    Ok(items)
}

/// The item whose bytes are arriving.
struct Current {
    transfer_id: u64,
    transfer: Option<IncomingTransfer>,
    store: Option<Arc<Store>>,
    remaining: u64,
    /// Where the bytes go, unless the item was already rejected.
    sink: Result<(UnnamedFile, Digester), Rejection>,
}

impl Current {
    fn start(
        node: &Node,
        caller: &str,
        transfer_id: u64,
        length: u64,
        made_dirs: &mut HashSet<PathBuf>,
    ) -> Current {
        let mut current = Current {
            transfer_id,
            transfer: None,
            store: None,
            remaining: length,
            sink: Err(Rejection::answer(IngestError::TransferNotFound(
                transfer_id,
            ))),
        };
        let transfer = match node.db.read(|tx| transfers::get_incoming(tx, transfer_id)) {
            Ok(Some(transfer)) => transfer,
            Ok(None) => return current,
            Err(error) => {
                current.sink = Err(Rejection::answer(error.into()));
                return current;
            }
        };
        current.sink = check(node, caller, &transfer, length).and_then(|store| {
            let file = store
                .create_unnamed(&transfer.destination_location, made_dirs)
                .map_err(|e| {
                    Rejection::answer(IngestError::io("cannot create the file in the store", e))
                })?;
            let mut algorithms = vec![transfer.transfer_checksum.algorithm];
            algorithms.extend(transfer.record_algorithm);
            current.store = Some(store);
            Ok((file, Digester::new(&algorithms, Some(length))))
        });
        current.transfer = Some(transfer);
        current
    }

    /// Writes and hashes the next bytes of the item (or skips them if rejected).
    fn feed(&mut self, bytes: Bytes) {
        self.remaining -= bytes.len() as u64;
        if let Ok((file, digester)) = &mut self.sink {
            if let Err(error) = file.file().write_all(&bytes) {
                self.sink = Err(Rejection::answer(IngestError::io(
                    "cannot write the file",
                    error,
                )));
                return;
            }
            digester.update(bytes);
        }
    }

    /// The item once all its bytes arrived: verified against its transfer.
    fn finish(self) -> Received {
        let (verdict, file) = match (self.sink, &self.transfer) {
            (Ok((file, digester)), Some(transfer)) => {
                match super::verify::compare(transfer, digester.finish()) {
                    Ok(digests) => (Ok(digests), Some(file)),
                    Err(error) => (Err(Rejection::for_good(error)), None),
                }
            }
            (Ok(_), None) => unreachable!("a sink exists only for a known transfer"),
            (Err(rejection), _) => (Err(rejection), None),
        };
        Received {
            transfer_id: self.transfer_id,
            transfer: self.transfer,
            store: self.store,
            verdict,
            file,
        }
    }
}

/// Whether the caller may send the bytes of `transfer` here, and the store they go to.
fn check(
    node: &Node,
    caller: &str,
    transfer: &IncomingTransfer,
    length: u64,
) -> Result<Arc<Store>, Rejection> {
    let id = transfer.id;
    if transfer.source != caller {
        return Err(Rejection::answer(IngestError::NotYourTransfer(id)));
    }
    if transfer.status.is_terminal() {
        let error = match transfer.status {
            TransferStatus::Completed => {
                IngestError::NameTaken(transfer.destination_location.clone())
            }
            status => IngestError::TransferClosed { id, status },
        };
        return Err(Rejection::answer(error));
    }
    if length != transfer.transfer_size {
        return Err(Rejection::for_good(IngestError::Mismatch {
            expected: format!("{} bytes", transfer.transfer_size),
            found: format!("{length} bytes"),
        }));
    }
    let store = node
        .stores
        .by_id(transfer.store_id)
        .cloned()
        .ok_or_else(|| {
            Rejection::answer(IngestError::StoreDisabled(format!(
                "#{}",
                transfer.store_id
            )))
        })?;
    if !store.enabled() {
        return Err(Rejection::answer(IngestError::StoreDisabled(
            store.name.clone(),
        )));
    }
    Ok(store)
}
