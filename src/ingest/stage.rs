//! `upload/stage` and `upload/batch_stage`: check each request, choose a store,
//! create staging, and record INITIATED incoming transfers in one transaction.
//!
//! A single upload gets a staging directory of its own, `<staging>/<uuid>/`, as the
//! protocol describes (the emptied directory of an earlier single upload is lent
//! again: see `store::staging_pool`). A batch shares one staging directory, each item staged as
//! `<staging>/<uuid>/<index>-<name>`: creating (and later removing) a directory per
//! small file would double the inodes a batch allocates.

use std::sync::Arc;

use super::IngestError;
use super::transfer_state::{discard_staging_of, fail_in};
use crate::db::DbError;
use crate::db::repo::{files, next_ids, transfers};
use crate::model::{
    Algorithm, Checksum, IncomingTransfer, PathLimits, Timestamp, TransferStatus,
    check_path_limits, validate_file_name,
};
use crate::node::Node;
use crate::store::Store;
use crate::store::durable::create_dirs_in;

/// What a client asks to stage.
#[derive(Debug, Clone)]
pub struct StageInput {
    /// The authenticated caller; the transfer's source.
    pub caller: String,
    pub upload_size: i64,
    pub upload_checksum: String,
    pub upload_name: String,
    pub destination_location: String,
    pub uploader: String,
    pub record_checksum_algorithm: Option<String>,
}

/// A staged upload, ready to receive bytes.
#[derive(Debug, Clone)]
pub struct StageOutput {
    pub transfer_id: u64,
    pub store: Arc<Store>,
    pub available_bytes: u64,
    pub staging_name: String,
    /// Name of the staged entry inside the staging directory.
    pub upload_name: String,
    /// Absolute path the bytes go to: `<staging>/<staging_name>/<upload_name>`.
    pub staging_location: String,
}

/// How staging directories are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StagingLayout {
    /// One directory per upload, named by the upload's own name.
    PerUpload,
    /// Like `PerUpload`, possibly in the emptied directory of an earlier single
    /// upload, and given back for the next one once committed
    /// (`store::staging_pool`).
    PerUploadReusing,
    /// One directory shared by all uploads of a batch.
    SharedByBatch,
}

/// A stage request that passed its checks.
pub(super) struct Checked {
    pub(super) size: u64,
    pub(super) checksum: Checksum,
    pub(super) record_algorithm: Option<Algorithm>,
}

/// Checks a stage request's size, names and checksum.
pub(super) fn check(node: &Node, input: &StageInput) -> Result<Checked, IngestError> {
    if input.upload_size < 0 {
        return Err(IngestError::NegativeSize(input.upload_size));
    }
    let size = input.upload_size as u64;
    validate_file_name(&input.destination_location)?;
    validate_file_name(&input.upload_name)?;
    let checksum = Checksum::parse(&input.upload_checksum)
        .map_err(|e| IngestError::InvalidChecksum(e.to_string()))?;
    let record_algorithm = match &input.record_checksum_algorithm {
        None => None,
        Some(name) => Some(Algorithm::parse(name).ok_or_else(|| {
            IngestError::InvalidChecksum(format!("unknown algorithm '{name}' to record"))
        })?),
    };
    let max = node.config.maximal_upload_size_bytes;
    if size > max {
        return Err(IngestError::TooLarge { size, max });
    }
    Ok(Checked {
        size,
        checksum,
        record_algorithm,
    })
}

/// Stages one upload. A repeated stage of the same destination and checksum by the
/// same caller returns the transfer already under way, so an interrupted upload can
/// resume from the bytes already staged.
pub async fn stage_upload(node: &Arc<Node>, input: StageInput) -> Result<StageOutput, IngestError> {
    stage_uploads(node, vec![input], StagingLayout::PerUploadReusing)
        .await?
        .pop()
        .expect("one result per input")
}

/// Stages many uploads at once: one store is chosen for all of them and their
/// transfers are recorded in one transaction. Each input gets its own result.
pub async fn stage_uploads(
    node: &Arc<Node>,
    inputs: Vec<StageInput>,
    layout: StagingLayout,
) -> Result<Vec<Result<StageOutput, IngestError>>, IngestError> {
    let checked: Vec<Result<Checked, IngestError>> =
        inputs.iter().map(|i| check(node, i)).collect();
    // One read transaction for the whole batch: is a recorded file in the way of
    // each name, and which live transfers share each checksum?
    let known = node.db.read(|tx| {
        let names: Vec<&str> = inputs
            .iter()
            .zip(&checked)
            .filter(|(_, checked)| checked.is_ok())
            .map(|(input, _)| input.destination_location.as_str())
            .collect();
        let mut obstacles = files::obstacles(tx, &names)?.into_iter();
        inputs
            .iter()
            .zip(&checked)
            .map(|(_, checked)| match checked {
                Ok(checked) => Ok(Some((
                    obstacles.next().expect("one per checked input"),
                    transfers::live_incoming_with_checksum(tx, &checked.checksum.to_string())?,
                ))),
                Err(_) => Ok(None),
            })
            .collect::<Result<Vec<_>, DbError>>()
    })?;
    let mut results: Vec<Option<Result<StageOutput, IngestError>>> = Vec::new();
    let mut fresh = Vec::new();
    let mut stale = Vec::new();
    for (index, ((input, checked), known)) in inputs.into_iter().zip(checked).zip(known).enumerate()
    {
        results.push(None);
        let (checked, (obstacle, live)) = match (checked, known) {
            (Ok(checked), Some(known)) => (checked, known),
            (Err(error), _) => {
                results[index] = Some(Err(error));
                continue;
            }
            (Ok(_), None) => unreachable!("known is computed for every checked input"),
        };
        if let Some(obstacle) = obstacle {
            let refused = IngestError::obstacle(&input.destination_location, obstacle);
            results[index] = Some(Err(refused));
            continue;
        }
        match resumable(node, &input, &checked, live, &mut stale) {
            Some(resumed) => results[index] = Some(Ok(resumed)),
            None => fresh.push(Fresh {
                index,
                input,
                checked,
                source_transfer_id: None,
            }),
        }
    }
    fail_stale(node, stale).await?;
    if !fresh.is_empty() {
        for (index, result) in stage_fresh(node, fresh, layout).await? {
            results[index] = Some(result);
        }
    }
    Ok(results
        .into_iter()
        .map(|r| r.expect("every input has a result"))
        .collect())
}

/// The live transfer this stage repeats, if any. Other live transfers of the same
/// checksum and destination are added to `stale`: the protocol fails them when an
/// upload is restarted.
fn resumable(
    node: &Node,
    input: &StageInput,
    checked: &Checked,
    live: Vec<IncomingTransfer>,
    stale: &mut Vec<u64>,
) -> Option<StageOutput> {
    for transfer in live {
        if transfer.destination_location != input.destination_location {
            continue;
        }
        let store = node.stores.by_id(transfer.store_id);
        let same_request = transfer.source == input.caller
            && transfer.upload_name == input.upload_name
            && transfer.transfer_size == checked.size
            && transfer.status == TransferStatus::Initiated
            && transfer.source_transfer_id.is_none()
            && store.is_some_and(|s| s.enabled() && s.available());
        match store {
            Some(store) if same_request => {
                let available_bytes = store.space().map(|s| s.free).unwrap_or(0);
                return Some(StageOutput {
                    transfer_id: transfer.id,
                    store: store.clone(),
                    available_bytes,
                    staging_location: staging_location(
                        store,
                        &transfer.staging_name,
                        &transfer.upload_name,
                    ),
                    staging_name: transfer.staging_name,
                    upload_name: transfer.upload_name,
                });
            }
            _ => stale.push(transfer.id),
        }
    }
    None
}

/// Fails stale transfers in one transaction and removes their staged data.
pub(super) async fn fail_stale(node: &Arc<Node>, stale: Vec<u64>) -> Result<(), IngestError> {
    if stale.is_empty() {
        return Ok(());
    }
    let failed = node
        .db
        .write(move |txn| {
            let mut failed = Vec::new();
            for id in stale {
                failed.extend(fail_in(txn, id)?);
            }
            Ok(Ok::<_, IngestError>(failed))
        })
        .await?;
    let node = node.clone();
    tokio::task::spawn_blocking(move || discard_staging_of(&node, &failed)).await?;
    Ok(())
}

/// A checked input that needs a new transfer; `index` is its place in the request.
pub(super) struct Fresh {
    pub(super) index: usize,
    pub(super) input: StageInput,
    pub(super) checked: Checked,
    /// For a clone: the sender's outgoing transfer.
    pub(super) source_transfer_id: Option<u64>,
}

/// Reserves room, creates staging and records new transfers for checked inputs.
/// The transfer's source is the input's `caller`.
pub(super) async fn stage_fresh(
    node: &Arc<Node>,
    fresh: Vec<Fresh>,
    layout: StagingLayout,
) -> Result<Vec<(usize, Result<StageOutput, IngestError>)>, IngestError> {
    let sizes: Vec<u64> = fresh.iter().map(|f| f.checked.size).collect();
    let mut reserved = match node.reserve_room(&sizes) {
        Ok(reserved) => reserved,
        Err(why) => {
            return Ok(fresh
                .into_iter()
                .map(|f| {
                    let size = f.checked.size;
                    let why = why.clone();
                    (f.index, Err(IngestError::NoStore { size, why }))
                })
                .collect());
        }
    };
    let store = reserved.store.clone();
    let available_bytes = reserved.available;
    let limits = path_limits(&store);
    let mut outcomes = Vec::new();
    // Each fitting input with the place of its reservation.
    let mut fitting = Vec::with_capacity(fresh.len());
    for (reservation, f) in fresh.into_iter().enumerate() {
        let upload_name = match layout {
            StagingLayout::PerUpload | StagingLayout::PerUploadReusing => {
                f.input.upload_name.clone()
            }
            StagingLayout::SharedByBatch => batch_item_name(fitting.len(), &f.input, limits),
        };
        match fits(&store, &f.input.destination_location, &upload_name, limits) {
            Ok(()) => fitting.push(((f, reservation), upload_name)),
            Err(error) => {
                reserved.release(reservation);
                outcomes.push((f.index, Err(error)));
            }
        }
    }
    if fitting.is_empty() {
        return Ok(outcomes);
    }
    let (fresh, upload_names): (Vec<(Fresh, usize)>, Vec<String>) = fitting.into_iter().unzip();
    let (fresh, reservations): (Vec<Fresh>, Vec<usize>) = fresh.into_iter().unzip();
    let staging_names = create_staging(&store, &upload_names, layout).await?;
    let now = Timestamp::now();
    let transfers: Vec<IncomingTransfer> = fresh
        .iter()
        .zip(&staging_names)
        .zip(&upload_names)
        .map(|((f, staging_name), upload_name)| IncomingTransfer {
            id: 0,
            status: TransferStatus::Initiated,
            uploader: f.input.uploader.clone(),
            source: f.input.caller.clone(),
            transfer_size: f.checked.size,
            transfer_checksum: f.checked.checksum.clone(),
            store_id: store.id,
            staging_name: staging_name.clone(),
            upload_name: upload_name.clone(),
            destination_location: f.input.destination_location.clone(),
            start_time: now,
            end_time: None,
            source_transfer_id: f.source_transfer_id,
            record_algorithm: f.checked.record_algorithm,
        })
        .collect();
    let recorded = node
        .db
        .write(move |txn| {
            let names: Vec<&str> = transfers
                .iter()
                .map(|t| t.destination_location.as_str())
                .collect();
            let obstacles = files::obstacles(txn, &names)?;
            let fresh_count = obstacles.iter().filter(|o| o.is_none()).count() as u64;
            let mut next = next_ids(txn, "incoming_transfers", fresh_count)?;
            let mut recorded = Vec::with_capacity(transfers.len());
            let mut accepted = Vec::new();
            for (mut transfer, obstacle) in transfers.into_iter().zip(obstacles) {
                if let Some(obstacle) = obstacle {
                    let error = IngestError::obstacle(&transfer.destination_location, obstacle);
                    recorded.push(Err((error, transfer)));
                    continue;
                }
                transfer.id = next;
                next += 1;
                accepted.push(transfer.clone());
                recorded.push(Ok(transfer));
            }
            transfers::put_incoming_all(txn, &accepted)?;
            Ok(Ok::<_, IngestError>(recorded))
        })
        .await;
    let recorded = match recorded {
        Ok(recorded) => recorded,
        Err(error) => {
            remove_staging(&store, staging_names).await;
            return Err(error);
        }
    };
    let mut refused = Vec::new();
    let places = fresh.into_iter().map(|f| f.index).zip(reservations);
    for ((index, reservation), result) in places.zip(recorded) {
        match result {
            Ok(transfer) => {
                let staged = staging_path(&store, &transfer.staging_name, &transfer.upload_name);
                reserved.bind(reservation, transfer.id, staged.clone());
                outcomes.push((
                    index,
                    Ok(StageOutput {
                        transfer_id: transfer.id,
                        store: store.clone(),
                        available_bytes,
                        staging_location: staged.to_string_lossy().into_owned(),
                        staging_name: transfer.staging_name,
                        upload_name: transfer.upload_name,
                    }),
                ))
            }
            Err((error, transfer)) => {
                reserved.release(reservation);
                refused.push(transfer);
                outcomes.push((index, Err(error)));
            }
        }
    }
    if !refused.is_empty() {
        let node = node.clone();
        tokio::task::spawn_blocking(move || discard_staging_of(&node, &refused)).await?;
    }
    Ok(outcomes)
}

/// The limits of the filesystem of `store`'s root: its own component limit (at
/// most `NAME_MAX`) and `PATH_MAX`.
pub(super) fn path_limits(store: &Store) -> PathLimits {
    let name_max = rustix::fs::statvfs(&store.root)
        .map(|s| s.f_namemax as usize)
        .unwrap_or(usize::MAX);
    PathLimits {
        name_max: name_max.min(libc::NAME_MAX as usize),
        path_max: libc::PATH_MAX as usize - 1,
    }
}

/// Refuses an upload whose name could not be created in the store, or whose
/// staged name could not be created in its staging directory (a new one, named by
/// a UUID), before anything is created for it.
fn fits(
    store: &Store,
    destination: &str,
    upload_name: &str,
    limits: PathLimits,
) -> Result<(), IngestError> {
    check_path_limits(destination, store.root.as_os_str().len(), limits)?;
    let staging_dir = store.staging.as_os_str().len() + 1 + STAGING_NAME_BYTES;
    check_path_limits(upload_name, staging_dir, limits)?;
    Ok(())
}

/// Length of a staging directory's name (a hyphenated UUID).
const STAGING_NAME_BYTES: usize = 36;

/// The staged name of item `position` of a batch: `<position>-<base name>`, its
/// end cut (at a character boundary) to fit one component.
fn batch_item_name(position: usize, input: &StageInput, limits: PathLimits) -> String {
    let name = &input.upload_name;
    let base = name.rsplit('/').next().unwrap_or(name);
    let mut staged = format!("{position}-{base}");
    let mut end = staged.len().min(limits.name_max);
    while !staged.is_char_boundary(end) {
        end -= 1;
    }
    staged.truncate(end);
    staged
}

async fn remove_staging(store: &Arc<Store>, mut staging_names: Vec<String>) {
    staging_names.sort();
    staging_names.dedup();
    let store = store.clone();
    let _ = tokio::task::spawn_blocking(move || {
        for name in staging_names {
            let _ = store.remove_staging(&name);
        }
    })
    .await;
}

/// Creates the staging directories for `upload_names` (one each, or one shared)
/// with the parents a nested upload name needs; returns each upload's directory.
async fn create_staging(
    store: &Arc<Store>,
    upload_names: &[String],
    layout: StagingLayout,
) -> Result<Vec<String>, IngestError> {
    // A spare directory is a few quick system calls away: no blocking thread.
    if layout == StagingLayout::PerUploadReusing
        && let [upload_name] = upload_names
        && !upload_name.contains('/')
        && let Some(spare) = store.lend_spare_staging()
    {
        return Ok(vec![spare]);
    }
    let store = store.clone();
    let upload_names = upload_names.to_vec();
    tokio::task::spawn_blocking(move || {
        let mut created: Vec<String> = Vec::new();
        for upload_name in &upload_names {
            let made = match (layout, created.first()) {
                (StagingLayout::SharedByBatch, Some(shared)) => Ok(shared.clone()),
                (StagingLayout::SharedByBatch, None) | (StagingLayout::PerUpload, _) => {
                    store.create_staging()
                }
                // Possibly an emptied directory of an earlier upload: it is empty,
                // ours, and nothing else names it.
                (StagingLayout::PerUploadReusing, _) => store.lend_staging(),
            }
            .and_then(|staging_name| {
                let parent = std::path::Path::new(upload_name).parent();
                if let Some(parent) = parent.filter(|p| !p.as_os_str().is_empty()) {
                    // Symlink-free from the staging area: clients write there.
                    let staging = store.staging_root()?;
                    create_dirs_in(&staging, &std::path::Path::new(&staging_name).join(parent))?;
                }
                Ok(staging_name)
            });
            match made {
                Ok(staging_name) => created.push(staging_name),
                Err(e) => {
                    created.dedup();
                    for name in created {
                        let _ = store.remove_staging(&name);
                    }
                    return Err(IngestError::io("cannot create a staging directory", e));
                }
            }
        }
        Ok(created)
    })
    .await?
}

fn staging_location(store: &Store, staging_name: &str, upload_name: &str) -> String {
    staging_path(store, staging_name, upload_name)
        .to_string_lossy()
        .into_owned()
}

fn staging_path(store: &Store, staging_name: &str, upload_name: &str) -> std::path::PathBuf {
    store.staging.join(staging_name).join(upload_name)
}
