//! quire's network transfer provider: a client without a shared filesystem streams
//! the bytes of a staged upload over HTTP. The node writes them into the staging
//! area and hashes them in the same pass, so commit needs no second read. An
//! interrupted stream resumes from the bytes already staged.
//!
//! Invariant: only the newest stream of a staged file writes to it. A client that
//! resumes after a broken connection may start before the node has written the
//! chunks the old connection had queued (or noticed that it broke); the new stream
//! takes the file over, and the old one writes nothing more.

use std::collections::HashMap;
use std::fs;
use std::io::{Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};

use bytes::Bytes;
use futures_util::{Stream, StreamExt};

use super::IngestError;
use crate::checksum::Digester;
use crate::db::repo::{librarians, transfers};
use crate::fsroot::{Dir, Kind, Meta, Refusal};
use crate::model::{Algorithm, IncomingTransfer, validate_file_name};
use crate::node::{Node, StagedDigest};
use crate::store::Store;
use crate::store::durable::{create_dirs_in, start_writeback, sync_file};

/// Chunks queued between the network and the disk writer.
pub(super) const QUEUE_CHUNKS: usize = 64;
/// Writeback of received bytes is started every this many bytes, so the final
/// fsync does not have to write the whole upload at once.
const WRITEBACK_EVERY: u64 = 16 << 20;

/// Which staged file a stream writes.
#[derive(Debug, Clone)]
pub struct StreamTarget {
    pub caller: String,
    pub transfer_id: u64,
    /// For a directory upload, the file's path inside it; `None` for a single file.
    pub path: Option<String>,
    /// Where in the file this stream starts (the staged length when resuming).
    pub offset: u64,
}

pub(super) struct Resolved {
    pub(super) transfer: IncomingTransfer,
    pub(super) store: Arc<Store>,
    /// The staged file, relative to the store's staging area: it is reached from
    /// there symlink-free (clients of the `local` provider write in staging).
    pub(super) relative: PathBuf,
    /// Where that is, for messages and as the key of its stream's claim.
    pub(super) file: PathBuf,
    whole_upload: bool,
}

pub(super) fn resolve(node: &Node, target: &StreamTarget) -> Result<Resolved, IngestError> {
    let id = target.transfer_id;
    let transfer = node
        .db
        .read(|tx| transfers::get_incoming(tx, id))?
        .ok_or(IngestError::TransferNotFound(id))?;
    // An upload is its caller's; a clone from a peer also belongs to the account
    // that staged it (the peer's account here, recorded as its uploader), when
    // that account is a known peer's.
    let clone_of_caller = transfer.source != target.caller
        && transfer.source_transfer_id.is_some()
        && transfer.uploader == target.caller
        && node
            .db
            .read(|tx| librarians::get_librarian(tx, &target.caller))?
            .is_some();
    if transfer.source != target.caller && !clone_of_caller {
        return Err(IngestError::NotYourTransfer(id));
    }
    if transfer.status.is_terminal() {
        let status = transfer.status;
        return Err(IngestError::TransferClosed { id, status });
    }
    let store = node
        .stores
        .by_id(transfer.store_id)
        .ok_or_else(|| IngestError::StoreDisabled(format!("#{}", transfer.store_id)))?
        .clone();
    if store.staging_dir(&transfer.staging_name).is_none() {
        return Err(IngestError::StagedDataMissing(id));
    }
    let mut relative = Path::new(&transfer.staging_name).join(&transfer.upload_name);
    let whole_upload = match target.path.as_deref() {
        None | Some("") => true,
        Some(inner) => {
            validate_file_name(inner)?;
            relative.push(inner);
            false
        }
    };
    Ok(Resolved {
        file: store.staging.join(&relative),
        transfer,
        store,
        relative,
        whole_upload,
    })
}

/// The stream that owns each staged file being written: a counter bumped by each
/// new stream, which a writer compares with its own before every write. Keyed by
/// the file's path, unique to a node and a transfer.
static OWNERS: LazyLock<Mutex<HashMap<PathBuf, Arc<Mutex<u64>>>>> = LazyLock::new(Default::default);

/// A stream's claim on a staged file.
pub(super) struct Claim {
    path: PathBuf,
    owner: Arc<Mutex<u64>>,
    generation: u64,
}

impl Claim {
    /// Takes `path` over from any older stream of it.
    pub(super) fn take(path: &Path) -> Claim {
        let owner = lock(&OWNERS).entry(path.to_path_buf()).or_default().clone();
        let generation = {
            let mut current = lock(&owner);
            *current += 1;
            *current
        };
        Claim {
            path: path.to_path_buf(),
            owner,
            generation,
        }
    }

    /// Runs `write` if this stream still owns the file, with the file held
    /// against a newer stream taking it over meanwhile.
    pub(super) fn while_owner<T>(
        &self,
        write: impl FnOnce() -> Result<T, IngestError>,
    ) -> Result<T, IngestError> {
        let current = lock(&self.owner);
        if *current != self.generation {
            return Err(IngestError::StreamSuperseded);
        }
        let result = write();
        drop(current);
        result
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        let mut owners = lock(&OWNERS);
        // The map's reference and this one: nobody else streams the file.
        if Arc::strong_count(&self.owner) == 2 {
            owners.remove(&self.path);
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Bytes of `target` already staged (0 if none). A link in its place (or on
/// the way to it) is refused, never followed.
pub fn stream_status(node: &Node, target: &StreamTarget) -> Result<u64, IngestError> {
    let resolved = resolve(node, target)?;
    let inspect = |e| IngestError::staging("cannot inspect the staged file", e);
    let staging = resolved.store.staging_root().map_err(inspect)?;
    match staging.try_stat(&resolved.relative) {
        Ok(Some(meta)) if meta.kind == Kind::File => Ok(meta.size),
        Ok(Some(meta)) if meta.kind == Kind::Symlink => {
            Err(inspect(Refusal::Symlink(resolved.file.clone()).into_io()))
        }
        Ok(_) => Ok(0),
        Err(e) => Err(inspect(e)),
    }
}

/// Hands a request body's chunks to a blocking writer until the body ends, fails,
/// or the writer stops taking them (its own error says why); returns the bytes
/// handed over and the body's error, if it failed. Dropping the sender on return
/// tells the writer the body ended.
pub(super) async fn feed<S, E>(
    mut body: S,
    sender: tokio::sync::mpsc::Sender<Bytes>,
) -> (u64, Option<String>)
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let mut received = 0u64;
    while let Some(chunk) = body.next().await {
        match chunk {
            Ok(bytes) => {
                received += bytes.len() as u64;
                if sender.send(bytes).await.is_err() {
                    break;
                }
            }
            Err(error) => return (received, Some(error.to_string())),
        }
    }
    (received, None)
}

/// Writes a body stream into the staged file at `target.offset`, hashing as it goes.
/// Returns the staged length once the bytes are on disk.
pub async fn receive_stream<S, E>(
    node: &Arc<Node>,
    target: StreamTarget,
    body: S,
) -> Result<u64, IngestError>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let resolved = resolve(node, &target)?;
    let (sender, receiver) = tokio::sync::mpsc::channel::<Bytes>(QUEUE_CHUNKS);
    let writer = {
        let node = node.clone();
        let offset = target.offset;
        tokio::task::spawn_blocking(move || write_staged(&node, resolved, offset, receiver))
    };
    let (received, body_error) = feed(body, sender).await;
    let staged = writer.await??;
    tracing::info!(
        transfer = target.transfer_id,
        offset = target.offset,
        received,
        staged,
        interrupted = body_error.is_some(),
        "stream received"
    );
    match body_error {
        Some(error) => Err(IngestError::io(
            format!("upload interrupted after {staged} bytes were staged; resume from there"),
            std::io::Error::other(error),
        )),
        None => Ok(staged),
    }
}

fn write_staged(
    node: &Node,
    resolved: Resolved,
    offset: u64,
    mut chunks: tokio::sync::mpsc::Receiver<Bytes>,
) -> Result<u64, IngestError> {
    let Resolved {
        transfer,
        store,
        relative,
        file: path,
        whole_upload,
    } = resolved;
    let declared = transfer.transfer_size;
    let staging = store
        .staging_root()
        .map_err(|e| IngestError::io("cannot open the staging area", e))?;
    let claim = Claim::take(&path);
    let mut file = claim.while_owner(|| {
        node.staged_digests.forget(transfer.id);
        open_at(&staging, &relative, offset)
    })?;
    let mut algorithms = vec![transfer.transfer_checksum.algorithm];
    algorithms.extend(transfer.record_algorithm);
    let mut digester = whole_upload
        .then(|| resume_digester(&file, offset, declared, &algorithms))
        .transpose()?;
    let mut length = offset;
    let mut written_back = offset;
    let mut result = Ok(());
    while let Some(chunk) = chunks.blocking_recv() {
        length += chunk.len() as u64;
        if length > declared {
            result = Err(IngestError::Oversized { declared });
            break;
        }
        let written = claim.while_owner(|| {
            file.write_all(&chunk)
                .map_err(|e| IngestError::io("cannot write the staged file", e))
        });
        if let Err(error) = written {
            result = Err(error);
            break;
        }
        if length - written_back >= WRITEBACK_EVERY {
            start_writeback(&file, written_back, length - written_back);
            written_back = length;
        }
        if let Some(digester) = digester.as_mut() {
            digester.update(chunk);
        }
    }
    sync_file(&file).map_err(|e| IngestError::io("cannot sync the staged file", e))?;
    let meta = Meta::of(&file).map_err(|e| IngestError::io("cannot inspect the staged file", e))?;
    let length = meta.size;
    result?;
    if let Some(digester) = digester
        && digester.size() == declared
    {
        // The very inode written: commit uses the digests only while the staged
        // name still leads to it, unchanged.
        let digest = StagedDigest::capture(&meta, digester.finish());
        claim.while_owner(|| {
            node.staged_digests.insert(transfer.id, digest);
            Ok(())
        })?;
    }
    Ok(length)
}

/// Opens the staged file `relative` (beneath the staging area `staging`,
/// symlink-free) for writing at `offset`, which must not be beyond what is
/// already staged; anything after `offset` is discarded. A link in its place or
/// on the way, a FIFO, or a file with other names is refused: writing through it
/// would write somewhere the client chose.
pub(super) fn open_at(
    staging: &Dir,
    relative: &Path,
    offset: u64,
) -> Result<fs::File, IngestError> {
    if let Some(parent) = relative.parent().filter(|p| !p.as_os_str().is_empty()) {
        create_dirs_in(staging, parent)
            .map_err(|e| IngestError::staging("cannot create the staging directory", e))?;
    }
    let (mut file, meta) = staging
        .open_for_writing(relative, 0o666)
        .map_err(|e| IngestError::staging("cannot open the staged file", e))?;
    let staged = meta.size;
    if offset > staged {
        return Err(IngestError::BadOffset { offset, staged });
    }
    file.set_len(offset)
        .and_then(|()| file.seek(SeekFrom::Start(offset)).map(|_| ()))
        .map_err(|e| IngestError::io("cannot position the staged file", e))?;
    Ok(file)
}

/// A digester that has already seen the first `offset` bytes of the staged file
/// (read back from the descriptor being written when resuming).
fn resume_digester(
    file: &fs::File,
    offset: u64,
    declared: u64,
    algorithms: &[Algorithm],
) -> Result<Digester, IngestError> {
    let mut digester = Digester::new(algorithms, Some(declared));
    let mut buffer = vec![0u8; 1 << 20];
    let mut position = 0;
    while position < offset {
        let wanted = buffer.len().min((offset - position) as usize);
        let n = file
            .read_at(&mut buffer[..wanted], position)
            .map_err(|e| IngestError::io("cannot reread the staged file", e))?;
        if n == 0 {
            break;
        }
        digester.update_slice(&buffer[..n]);
        position += n as u64;
    }
    Ok(digester)
}
