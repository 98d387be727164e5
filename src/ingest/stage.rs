//! `upload/stage`: check the request, choose a store, create a staging directory and
//! record an INITIATED incoming transfer.

use std::sync::Arc;

use super::IngestError;
use super::transfer_state::{discard_staging, fail_in};
use crate::db::DbError;
use crate::db::repo::{files, next_id, transfers};
use crate::model::{
    Algorithm, Checksum, IncomingTransfer, Timestamp, TransferStatus, validate_file_name,
};
use crate::node::Node;
use crate::store::Store;

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
    /// Absolute path the bytes go to: `<staging>/<staging_name>/<upload_name>`.
    pub staging_location: String,
}

struct Checked {
    size: u64,
    checksum: Checksum,
    record_algorithm: Option<Algorithm>,
}

fn check(node: &Node, input: &StageInput) -> Result<Checked, IngestError> {
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

/// Stages an upload. A repeated stage of the same destination and checksum by the
/// same caller returns the transfer already under way, so an interrupted upload can
/// resume from the bytes already staged.
pub async fn stage_upload(node: &Arc<Node>, input: StageInput) -> Result<StageOutput, IngestError> {
    let checked = check(node, &input)?;
    let name = input.destination_location.clone();
    if node.db.read(|tx| files::exists(tx, &name))? {
        return Err(IngestError::NameTaken(name));
    }
    if let Some(resumed) = resumable(node, &input, &checked).await? {
        return Ok(resumed);
    }
    let (store, available_bytes) = node
        .stores
        .choose_for_ingest(checked.size)
        .ok_or(IngestError::NoStore { size: checked.size })?;
    let staging_name = create_staging(&store, &input.upload_name).await?;

    let transfer = IncomingTransfer {
        id: 0,
        status: TransferStatus::Initiated,
        uploader: input.uploader.clone(),
        source: input.caller.clone(),
        transfer_size: checked.size,
        transfer_checksum: checked.checksum.clone(),
        store_id: store.id,
        staging_name: staging_name.clone(),
        upload_name: input.upload_name.clone(),
        destination_location: name.clone(),
        start_time: Timestamp::now(),
        end_time: None,
        source_transfer_id: None,
        record_algorithm: checked.record_algorithm,
    };
    let recorded = node
        .db
        .write(move |txn| {
            if files::exists(txn, &transfer.destination_location)? {
                return Ok(Err(IngestError::NameTaken(transfer.destination_location)));
            }
            let mut transfer = transfer;
            transfer.id = next_id(txn, "incoming_transfers")?;
            transfers::put_incoming(txn, &transfer)?;
            Ok(Ok(transfer.id))
        })
        .await;
    let transfer_id = match recorded {
        Ok(id) => id,
        Err(error) => {
            let _ = store.remove_staging(&staging_name);
            return Err(error);
        }
    };
    let staging_location = staging_location(&store, &staging_name, &input.upload_name);
    Ok(StageOutput {
        transfer_id,
        store,
        available_bytes,
        staging_name,
        staging_location,
    })
}

/// The live transfer this stage repeats, if any. Live transfers of the same
/// checksum and destination staged by someone else are failed instead, as the
/// protocol requires for restarted uploads.
async fn resumable(
    node: &Arc<Node>,
    input: &StageInput,
    checked: &Checked,
) -> Result<Option<StageOutput>, IngestError> {
    let checksum_text = checked.checksum.to_string();
    let live = node
        .db
        .read(|tx| transfers::live_incoming_with_checksum(tx, &checksum_text))?;
    let mut stale = Vec::new();
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
                return Ok(Some(StageOutput {
                    transfer_id: transfer.id,
                    store: store.clone(),
                    available_bytes,
                    staging_location: staging_location(
                        store,
                        &transfer.staging_name,
                        &transfer.upload_name,
                    ),
                    staging_name: transfer.staging_name,
                }));
            }
            _ => stale.push(transfer.id),
        }
    }
    for id in stale {
        let failed = node
            .db
            .write(move |txn| Ok(Ok::<_, DbError>(fail_in(txn, id)?)))
            .await?;
        if let Some(transfer) = failed {
            discard_staging(node, &transfer);
        }
    }
    Ok(None)
}

async fn create_staging(store: &Arc<Store>, upload_name: &str) -> Result<String, IngestError> {
    let store = store.clone();
    let upload_name = upload_name.to_string();
    tokio::task::spawn_blocking(move || {
        let staging_name = store
            .create_staging()
            .map_err(|e| IngestError::io("cannot create a staging directory", e))?;
        if let Some(parent) = std::path::Path::new(&upload_name).parent()
            && !parent.as_os_str().is_empty()
        {
            let dir = store.staging.join(&staging_name).join(parent);
            std::fs::create_dir_all(dir)
                .map_err(|e| IngestError::io("cannot create a staging directory", e))?;
        }
        Ok(staging_name)
    })
    .await?
}

fn staging_location(store: &Store, staging_name: &str, upload_name: &str) -> String {
    store
        .staging
        .join(staging_name)
        .join(upload_name)
        .to_string_lossy()
        .into_owned()
}
