//! The `quire_http` provider: stream each large file into a quire peer's staging
//! with `PUT upload/stream/{destination transfer id}`, several files at once, each
//! continuing from the bytes the destination already holds (`GET` of the same
//! route), so a broken connection or a restarted destination costs only what was
//! in flight; send small files many to a request (`PUT upload/stream_batch`,
//! made durable there with one sync). An optional `Pace` caps the bytes per
//! second to the peer.
//!
//! The destination hashes the bytes as they arrive and checks them against the
//! transfer's checksum when it stores the file; this side hashes what it reads
//! (the prefix the destination already held included) against the source copy's
//! record, so a source that rotted is caught here too.

use std::io::{Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{StreamExt, stream};
use tokio_util::io::ReaderStream;

use super::{FileOutcome, Outbound, Pace, Unreachable};
use crate::peer::{LibrarianClient, PeerError};
use crate::protocol::upload::{StreamBatchFile, StreamBatchManifest, stream_batch_head};

/// Files streamed at once.
const PARALLEL_FILES: usize = 4;
/// Attempts at one file within one run before the batch is left for later.
const ATTEMPTS: u32 = 3;
/// Bytes per chunk of a stream (and per booking of the pace).
const CHUNK: usize = 256 << 10;

/// Files up to this size go many to a request.
const SMALL_FILE: u64 = 1 << 20;
/// Most bytes, and most files, in one batch request.
const BATCH_BYTES: u64 = 16 << 20;
const BATCH_FILES: usize = 1000;
/// Batch requests in flight at once.
const PARALLEL_BATCHES: usize = 2;

/// Streams every file of a batch. `Err` when the destination could not be reached
/// for some file after retries: the batch is tried again later, from what the
/// destination holds.
pub async fn send(
    client: &LibrarianClient,
    pace: Option<Arc<Pace>>,
    files: Vec<Outbound>,
) -> Result<Vec<(usize, FileOutcome)>, Unreachable> {
    let (small, large): (Vec<Outbound>, Vec<Outbound>) =
        files.into_iter().partition(|f| f.size <= SMALL_FILE);
    let mut outcomes = send_small(client, pace.clone(), small).await?;
    outcomes.extend(send_large(client, pace, large).await?);
    outcomes.sort_by_key(|(index, _)| *index);
    Ok(outcomes)
}

/// Small files, `BATCH_FILES` or `BATCH_BYTES` to a request.
async fn send_small(
    client: &LibrarianClient,
    pace: Option<Arc<Pace>>,
    files: Vec<Outbound>,
) -> Result<Vec<(usize, FileOutcome)>, Unreachable> {
    let mut groups: Vec<Vec<Outbound>> = Vec::new();
    let mut bytes = 0;
    for file in files {
        let full = groups
            .last()
            .is_none_or(|g| g.len() >= BATCH_FILES || bytes + file.size > BATCH_BYTES);
        if full {
            groups.push(Vec::new());
            bytes = 0;
        }
        bytes += file.size;
        groups.last_mut().expect("a group").push(file);
    }
    let results: Vec<Result<Vec<(usize, FileOutcome)>, Unreachable>> = stream::iter(groups)
        .map(|group| {
            let pace = pace.clone();
            async move { send_group(client, pace, group).await }
        })
        .buffer_unordered(PARALLEL_BATCHES)
        .collect()
        .await;
    let mut outcomes = Vec::new();
    for result in results {
        outcomes.extend(result?);
    }
    Ok(outcomes)
}

/// One batch request: the files are read and hashed here first (a file whose
/// bytes differ from its record is left out), then sent together; a request
/// that fails in transit is sent again, up to `ATTEMPTS` times.
async fn send_group(
    client: &LibrarianClient,
    pace: Option<Arc<Pace>>,
    group: Vec<Outbound>,
) -> Result<Vec<(usize, FileOutcome)>, Unreachable> {
    let (body, manifest, mut outcomes) = tokio::task::spawn_blocking(move || read_group(group))
        .await
        .map_err(|e| Unreachable(format!("cannot read the files to send: {e}")))?;
    if manifest.is_empty() {
        return Ok(outcomes);
    }
    if let Some(pace) = &pace {
        pace.wait_for(body.len() as u64).await;
    }
    let mut attempt = 0;
    let answer = loop {
        attempt += 1;
        match client.stream_batch(body.clone()).await {
            Ok(answer) => break answer,
            Err(error) if error.is_transient() && attempt < ATTEMPTS => {
                tracing::info!(%error, attempt, "batch stream failed; sending it again");
                tokio::time::sleep(Duration::from_millis(500 * 2u64.pow(attempt))).await;
            }
            Err(error) if error.is_transient() => {
                return Err(Unreachable(format!(
                    "a batch of {} files: {error}",
                    manifest.len()
                )));
            }
            Err(error) => {
                let reason = error.to_string();
                outcomes.extend(
                    manifest
                        .iter()
                        .map(|(index, _, _)| (*index, FileOutcome::Refused(reason.clone()))),
                );
                return Ok(outcomes);
            }
        }
    };
    let mut answers: std::collections::HashMap<u64, _> = answer
        .files
        .into_iter()
        .map(|item| (item.transfer_id, item))
        .collect();
    for (index, transfer_id, size) in &manifest {
        let Some(item) = answers.remove(transfer_id) else {
            return Err(Unreachable(format!(
                "the destination's answer left out transfer {transfer_id}"
            )));
        };
        let outcome = match item.error {
            None if item.staged_bytes == *size => FileOutcome::Moved { sent: *size },
            None => {
                return Err(Unreachable(format!(
                    "the destination staged {} of {size} bytes of a file",
                    item.staged_bytes
                )));
            }
            Some(error) if error.status >= 500 => {
                return Err(Unreachable(format!(
                    "the destination failed to stage a file: {}",
                    error.reason
                )));
            }
            Some(error) => FileOutcome::Refused(error.reason),
        };
        outcomes.push((*index, outcome));
    }
    Ok(outcomes)
}

/// A file of a group request: its index in the batch, its transfer there, its size.
type Listed = (usize, u64, u64);

/// The request body of a group (manifest, then bytes), the files in it, and the
/// outcomes of files left out (their bytes differ from their record, or cannot be
/// read).
fn read_group(group: Vec<Outbound>) -> (Vec<u8>, Vec<Listed>, Vec<(usize, FileOutcome)>) {
    let mut contents = Vec::new();
    let mut listed = Vec::new();
    let mut outcomes = Vec::new();
    for file in group {
        let mut bytes = vec![0u8; file.size as usize];
        let read = file.source.read_exact_at(&mut bytes, 0);
        let intact = read.is_ok()
            && file.source.metadata().map(|m| m.len()).ok() == Some(file.size)
            && *blake3::hash(&bytes).as_bytes() == file.blake3;
        if intact {
            listed.push((file.index, file.destination_transfer_id, bytes));
        } else {
            outcomes.push((file.index, FileOutcome::SourceDiffers));
        }
    }
    let manifest = StreamBatchManifest {
        files: listed
            .iter()
            .map(|(_, id, bytes)| StreamBatchFile {
                transfer_id: *id,
                size: bytes.len() as u64,
            })
            .collect(),
    };
    let mut body = stream_batch_head(&manifest);
    for (index, id, bytes) in listed {
        contents.push((index, id, bytes.len() as u64));
        body.extend_from_slice(&bytes);
    }
    (body, contents, outcomes)
}

/// Large files, each streamed on its own, `PARALLEL_FILES` at once.
async fn send_large(
    client: &LibrarianClient,
    pace: Option<Arc<Pace>>,
    files: Vec<Outbound>,
) -> Result<Vec<(usize, FileOutcome)>, Unreachable> {
    let results: Vec<Result<(usize, FileOutcome), Unreachable>> = stream::iter(files)
        .map(|file| {
            let pace = pace.clone();
            async move {
                let index = file.index;
                send_file(client, pace, file).await.map(|o| (index, o))
            }
        })
        .buffer_unordered(PARALLEL_FILES)
        .collect()
        .await;
    let mut outcomes = Vec::with_capacity(results.len());
    let mut unreachable = None;
    for result in results {
        match result {
            Ok(outcome) => outcomes.push(outcome),
            Err(error) => unreachable = Some(error),
        }
    }
    match unreachable {
        Some(error) => Err(error),
        None => {
            outcomes.sort_by_key(|(index, _)| *index);
            Ok(outcomes)
        }
    }
}

async fn send_file(
    client: &LibrarianClient,
    pace: Option<Arc<Pace>>,
    file: Outbound,
) -> Result<FileOutcome, Unreachable> {
    let id = file.destination_transfer_id;
    let source = Arc::new(
        file.source
            .try_clone()
            .map_err(|e| Unreachable(format!("cannot read {}: {e}", file.file_name)))?,
    );
    let mut attempt = 0;
    loop {
        attempt += 1;
        let error = match attempt_file(client, pace.clone(), &source, &file, id).await {
            Ok(outcome) => return Ok(outcome),
            Err(error) => error,
        };
        if !error.is_transient() {
            return Ok(FileOutcome::Refused(error.to_string()));
        }
        if attempt >= ATTEMPTS {
            return Err(Unreachable(format!(
                "{} (destination transfer {id}): {error}",
                file.file_name
            )));
        }
        tracing::info!(file = %file.file_name, %error, attempt, "stream interrupted; resuming");
        tokio::time::sleep(Duration::from_millis(500 * 2u64.pow(attempt))).await;
    }
}

/// One attempt: asks what the destination holds, hashes that prefix here, streams
/// the rest.
async fn attempt_file(
    client: &LibrarianClient,
    pace: Option<Arc<Pace>>,
    source: &Arc<std::fs::File>,
    file: &Outbound,
    id: u64,
) -> Result<FileOutcome, PeerError> {
    let held = client.stream_status(id, None).await?.staged_bytes;
    // More than the file (an older, longer attempt) is written over from the start.
    let offset = if held <= file.size { held } else { 0 };
    let local = |e: std::io::Error| PeerError::Unusable {
        peer: "this node".into(),
        problem: format!("cannot read {}: {e}", file.file_name),
    };
    let hasher = Arc::new(Mutex::new(blake3::Hasher::new()));
    {
        let (source, hasher) = (source.clone(), hasher.clone());
        tokio::task::spawn_blocking(move || hash_prefix(&source, offset, &hasher))
            .await
            .map_err(|e| local(std::io::Error::other(e)))?
            .map_err(local)?;
    }
    let mut reader = source.try_clone().map_err(local)?;
    reader.seek(SeekFrom::Start(offset)).map_err(local)?;
    let body_hasher = hasher.clone();
    let body =
        ReaderStream::with_capacity(tokio::fs::File::from_std(reader), CHUNK).then(move |chunk| {
            let (pace, hasher) = (pace.clone(), body_hasher.clone());
            async move {
                if let Ok(bytes) = &chunk {
                    if let Some(pace) = &pace {
                        pace.wait_for(bytes.len() as u64).await;
                    }
                    lock(&hasher).update(bytes);
                }
                chunk
            }
        });
    let length = file.size - offset;
    let staged = client
        .stream_upload(id, None, offset, length, reqwest::Body::wrap_stream(body))
        .await?
        .staged_bytes;
    if staged != file.size {
        return Err(PeerError::Unreachable {
            url: client.connection().url.clone(),
            message: format!("the destination holds {staged} of {} bytes", file.size),
        });
    }
    let digest = *lock(&hasher).finalize().as_bytes();
    Ok(if digest == file.blake3 {
        FileOutcome::Moved { sent: length }
    } else {
        FileOutcome::SourceDiffers
    })
}

/// Hashes the first `length` bytes of `source` into `hasher`.
fn hash_prefix(
    source: &std::fs::File,
    length: u64,
    hasher: &Mutex<blake3::Hasher>,
) -> std::io::Result<()> {
    let mut position = 0u64;
    let mut buffer = vec![0u8; 1 << 20];
    let mut hasher = lock(hasher);
    while position < length {
        let wanted = buffer.len().min((length - position) as usize);
        let n = source.read_at(&mut buffer[..wanted], position)?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
        position += n as u64;
    }
    Ok(())
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
