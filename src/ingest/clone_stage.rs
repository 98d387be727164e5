//! `clone/stage`: a peer (or an operator ingesting a SneakerNet manifest) announces
//! one file it is about to copy here. Staging is shared with uploads; what differs
//! is the order of the checks and how an earlier transfer of the same file is
//! treated, which follow the reference:
//!
//! 1. a negative size, or no store with room, refuses the clone;
//! 2. a file of that name already here refuses it as a conflict (a re-run of a
//!    manifest ingest counts these as "already there"), and so does a file whose
//!    name is a parent path of it or lies under it;
//! 3. a live transfer of the same checksum to the same name that is ONGOING refuses
//!    it as too early; one that is INITIATED or STAGED is failed (its staging
//!    removed) and the clone refused, so that both sides fail their transfers.

use std::sync::Arc;

use super::stage::{Fresh, check, stage_fresh};
use super::transfer_state::{discard_staging_of, fail_in};
use super::{IngestError, StageInput, StageOutput, StagingLayout};
use crate::db::repo::{files, transfers};
use crate::model::{IncomingTransfer, TransferStatus};
use crate::node::Node;

/// What a `clone/stage` request asks for.
#[derive(Debug, Clone)]
pub struct CloneStageInput {
    pub upload_size: i64,
    pub upload_checksum: String,
    pub upload_name: String,
    pub destination_location: String,
    /// Recorded as the transfer's (and later the file's) uploader.
    pub uploader: String,
    /// Recorded as the transfer's (and later the file's) source.
    pub source: String,
    /// The sender's outgoing transfer; `None` when it has none (a manifest entry
    /// written without outgoing transfers), and then nobody is called back.
    pub source_transfer_id: Option<u64>,
}

impl CloneStageInput {
    /// The upload this clone is staged as: its source is the caller of record.
    pub(super) fn stage_input(&self) -> StageInput {
        StageInput {
            caller: self.source.clone(),
            upload_size: self.upload_size,
            upload_checksum: self.upload_checksum.clone(),
            upload_name: self.upload_name.clone(),
            destination_location: self.destination_location.clone(),
            uploader: self.uploader.clone(),
            record_checksum_algorithm: None,
        }
    }
}

/// Why a clone was not staged.
#[derive(Debug, thiserror::Error)]
pub enum CloneStageError {
    /// Refused like an upload would be (size, names, checksum, room, name taken).
    #[error(transparent)]
    Refused(#[from] IngestError),
    /// The same file is being copied here by transfer `existing`.
    #[error("transfer {existing} of this file is ongoing")]
    Ongoing { existing: u64 },
    /// Transfer `existing` of the same file was initiated or staged already; it has
    /// now been failed.
    #[error("transfer {existing} of this file was already initiated or staged; it is now failed")]
    Restarted { existing: u64 },
}

impl CloneStageError {
    /// The incoming transfer the refusal names, if any.
    pub fn existing_transfer(&self) -> Option<u64> {
        match self {
            CloneStageError::Refused(_) => None,
            CloneStageError::Ongoing { existing } | CloneStageError::Restarted { existing } => {
                Some(*existing)
            }
        }
    }
}

/// Stages one clone; its transfer starts INITIATED.
pub async fn stage_clone(
    node: &Arc<Node>,
    clone: CloneStageInput,
) -> Result<StageOutput, CloneStageError> {
    let input = clone.stage_input();
    if input.upload_size < 0 {
        return Err(IngestError::NegativeSize(input.upload_size).into());
    }
    let size = input.upload_size as u64;
    // Only a look: the room is reserved when the clone is staged below.
    if let Err(why) = node.reserve_room(&[size]) {
        return Err(IngestError::NoStore { size, why }.into());
    }
    let checked = check(node, &input)?;
    let checksum = checked.checksum.to_string();
    let (obstacle, live) = node
        .db
        .read(|tx| {
            Ok((
                files::obstacle(tx, &input.destination_location)?,
                transfers::live_incoming_with_checksum(tx, &checksum)?,
            ))
        })
        .map_err(IngestError::from)?;
    if let Some(obstacle) = obstacle {
        return Err(IngestError::obstacle(&input.destination_location, obstacle).into());
    }
    if let Some(earlier) = live
        .into_iter()
        .find(|t| t.destination_location == input.destination_location)
    {
        return Err(refuse_repeat(node, earlier).await);
    }
    let fresh = Fresh {
        index: 0,
        input,
        checked,
        source_transfer_id: clone.source_transfer_id,
    };
    let mut staged = stage_fresh(node, vec![fresh], StagingLayout::PerUpload).await?;
    let (_, result) = staged.pop().expect("one result per input");
    Ok(result?)
}

/// The refusal of a clone whose file already has a live transfer here; an
/// INITIATED or STAGED one is failed first.
async fn refuse_repeat(node: &Arc<Node>, earlier: IncomingTransfer) -> CloneStageError {
    let existing = earlier.id;
    if earlier.status == TransferStatus::Ongoing {
        return CloneStageError::Ongoing { existing };
    }
    let failed = node
        .db
        .write(move |txn| Ok(Ok::<_, IngestError>(fail_in(txn, existing)?)))
        .await;
    match failed {
        Ok(failed) => {
            let node = node.clone();
            let failed: Vec<IncomingTransfer> = failed.into_iter().collect();
            let discarded =
                tokio::task::spawn_blocking(move || discard_staging_of(&node, &failed)).await;
            if let Err(error) = discarded {
                return CloneStageError::Refused(error.into());
            }
            CloneStageError::Restarted { existing }
        }
        Err(error) => CloneStageError::Refused(error),
    }
}
