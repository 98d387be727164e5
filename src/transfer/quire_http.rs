//! The `quire_http` provider: stream each file into a quire peer's staging with
//! `PUT upload/stream/{destination transfer id}`, several files at once, each
//! continuing from the bytes the destination already holds (`GET` of the same
//! route), so a broken connection or a restarted destination costs only what was
//! in flight. An optional `Pace` caps the bytes per second to the peer.
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

/// Files streamed at once.
const PARALLEL_FILES: usize = 4;
/// Attempts at one file within one run before the batch is left for later.
const ATTEMPTS: u32 = 3;
/// Bytes per chunk of a stream (and per booking of the pace).
const CHUNK: usize = 256 << 10;

/// Streams every file of a batch. `Err` when the destination could not be reached
/// for some file after retries: the batch is tried again later, from what the
/// destination holds.
pub async fn send(
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
