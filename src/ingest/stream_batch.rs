//! quire's batch stream: the whole bytes of many small staged files in one
//! request (`PUT upload/stream_batch`), one after another in manifest order, for
//! a sender with many small files to move (`quire_http` clones). Each file is
//! written from its start, hashed as it arrives, and the batch is made durable
//! with one filesystem sync per store instead of one per file.
//!
//! Invariants: a file is reported staged only after that sync; a file the caller
//! may not write (not its transfer, closed, missing staging) has its bytes read
//! and dropped, and the others go on; the same claim as a single stream keeps a
//! newer stream of a file from being overwritten.

use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::Stream;

use super::IngestError;
use super::stream::{Claim, QUEUE_CHUNKS, Resolved, StreamTarget, feed, open_at, resolve};
use crate::checksum::Digester;
use crate::fsroot::Meta;
use crate::node::{Node, StagedDigest};
use crate::store::durable::sync_filesystem_of;

/// Most files in one batch stream.
pub const MAX_STREAM_BATCH_FILES: usize = 4096;
/// Largest file in a batch stream: larger files are streamed on their own.
pub const MAX_STREAM_BATCH_FILE_BYTES: u64 = 64 << 20;

/// One file of a batch stream: its transfer and its whole size.
#[derive(Debug, Clone)]
pub struct BatchStreamFile {
    pub transfer_id: u64,
    pub size: u64,
}

/// What became of one file: its staged length, or why it was not written.
pub type BatchStreamOutcome = Result<u64, IngestError>;

/// Writes every file of a batch stream; one outcome per file, in order.
pub async fn receive_stream_batch<S, E>(
    node: &Arc<Node>,
    caller: &str,
    files: Vec<BatchStreamFile>,
    body: S,
) -> Result<Vec<BatchStreamOutcome>, IngestError>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let mut seen = std::collections::HashSet::new();
    let targets: Vec<(BatchStreamFile, Result<Resolved, IngestError>)> = files
        .into_iter()
        .map(|file| {
            if !seen.insert(file.transfer_id) || file.size > MAX_STREAM_BATCH_FILE_BYTES {
                let detail = if file.size > MAX_STREAM_BATCH_FILE_BYTES {
                    format!(
                        "{} bytes; a batch stream takes files of at most \
                         {MAX_STREAM_BATCH_FILE_BYTES} (stream larger ones on their own)",
                        file.size
                    )
                } else {
                    "listed twice in one batch stream".to_string()
                };
                let id = file.transfer_id;
                return (file, Err(IngestError::WrongTransferDetails { id, detail }));
            }
            let target = StreamTarget {
                caller: caller.to_string(),
                transfer_id: file.transfer_id,
                path: None,
                offset: 0,
            };
            let resolved = resolve(node, &target).and_then(|r| {
                if r.transfer.transfer_size == file.size {
                    Ok(r)
                } else {
                    Err(IngestError::WrongTransferDetails {
                        id: file.transfer_id,
                        detail: format!(
                            "the manifest says {} bytes, the transfer {}",
                            file.size, r.transfer.transfer_size
                        ),
                    })
                }
            });
            (file, resolved)
        })
        .collect();
    let (sender, receiver) = tokio::sync::mpsc::channel::<Bytes>(QUEUE_CHUNKS);
    let writer = {
        let node = node.clone();
        tokio::task::spawn_blocking(move || write_all(&node, targets, receiver))
    };
    let (_, body_error) = feed(body, sender).await;
    let outcomes = writer.await?;
    if let Some(error) = body_error {
        tracing::info!(%error, "batch stream interrupted; the files it finished are kept");
    }
    Ok(outcomes)
}

/// A file being written.
struct Open {
    resolved: Resolved,
    file: std::fs::File,
    digester: Digester,
    claim: Claim,
}

/// A file whose bytes are written (and whose descriptor is closed), waiting for
/// the batch's sync.
struct Written {
    resolved: Resolved,
    meta: Meta,
    digester: Digester,
    claim: Claim,
}

/// The blocking side: each file's bytes in turn, then one sync per store.
fn write_all(
    node: &Node,
    targets: Vec<(BatchStreamFile, Result<Resolved, IngestError>)>,
    mut chunks: tokio::sync::mpsc::Receiver<Bytes>,
) -> Vec<BatchStreamOutcome> {
    let mut pending: Bytes = Bytes::new();
    let mut written: Vec<Result<Written, IngestError>> = Vec::with_capacity(targets.len());
    let mut ended = false;
    for (file, resolved) in targets {
        let mut open = resolved.and_then(|r| open_file(node, r));
        let mut left = file.size;
        while left > 0 {
            if pending.is_empty() {
                match chunks.blocking_recv() {
                    Some(chunk) => pending = chunk,
                    None => {
                        ended = true;
                        break;
                    }
                }
            }
            let take = pending.len().min(left as usize);
            let piece = pending.split_to(take);
            left -= take as u64;
            if let Ok(current) = &mut open {
                let wrote = current.claim.while_owner(|| {
                    current
                        .file
                        .write_all(&piece)
                        .map_err(|e| IngestError::io("cannot write the staged file", e))
                });
                match wrote {
                    Ok(()) => current.digester.update(piece),
                    Err(error) => open = Err(error),
                }
            }
        }
        if ended && left > 0 {
            open = open.and(Err(IngestError::BodyEnded {
                expected: file.size,
                received: file.size - left,
            }));
        }
        written.push(open.and_then(close));
    }
    // One sync per store's staging makes every file written above durable.
    let mut synced: HashMap<u64, Result<(), String>> = HashMap::new();
    for open in written.iter().flatten() {
        let store = &open.resolved.store;
        synced.entry(store.id).or_insert_with(|| {
            store
                .staging_root()
                .and_then(|dir| sync_filesystem_of(&dir))
                .map_err(|e| e.to_string())
        });
    }
    written
        .into_iter()
        .map(|open| {
            let open = open?;
            if let Some(Err(error)) = synced.get(&open.resolved.store.id) {
                return Err(IngestError::io(
                    "cannot sync the staged files",
                    std::io::Error::other(error.clone()),
                ));
            }
            finish(node, open)
        })
        .collect()
}

/// Closes a written file, keeping what its commit needs to know of it.
fn close(open: Open) -> Result<Written, IngestError> {
    let meta =
        Meta::of(&open.file).map_err(|e| IngestError::io("cannot inspect the staged file", e))?;
    Ok(Written {
        resolved: open.resolved,
        meta,
        digester: open.digester,
        claim: open.claim,
    })
}

fn open_file(node: &Node, resolved: Resolved) -> Result<Open, IngestError> {
    let staging = resolved
        .store
        .staging_root()
        .map_err(|e| IngestError::io("cannot open the staging area", e))?;
    let claim = Claim::take(&resolved.file);
    let file = claim.while_owner(|| {
        node.staged_digests.forget(resolved.transfer.id);
        open_at(&staging, &resolved.relative, 0)
    })?;
    let mut algorithms = vec![resolved.transfer.transfer_checksum.algorithm];
    algorithms.extend(resolved.transfer.record_algorithm);
    let digester = Digester::new(&algorithms, Some(resolved.transfer.transfer_size));
    Ok(Open {
        resolved,
        file,
        digester,
        claim,
    })
}

/// Remembers a whole file's digests for its commit; returns its staged length.
fn finish(node: &Node, written: Written) -> BatchStreamOutcome {
    let Written {
        resolved,
        meta,
        digester,
        claim,
    } = written;
    if digester.size() == resolved.transfer.transfer_size {
        let digest = StagedDigest::capture(&meta, digester.finish());
        claim.while_owner(|| {
            node.staged_digests.insert(resolved.transfer.id, digest);
            Ok(())
        })?;
    }
    Ok(meta.size)
}
