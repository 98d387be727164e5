//! `clone/batch_stage`: a source librarian announces many files it is about to
//! send here. Each file is checked as `clone/stage` checks one; the batch is staged
//! only if every file passes and a store has room for the batch's total size, all
//! on one store (holding a reservation of each file's size), and their INITIATED
//! transfers are recorded in one transaction.
//!
//! The files of a batch share one staging directory (each under a name of its
//! own, `N-<upload name>`), as the files of an upload batch do.
//!
//! A refused batch stages nothing. Its refusal names the files that caused it,
//! under one reason chosen in the reference's order: a file being copied here
//! already (425) before a file already here (409) before a file whose earlier
//! transfer was initiated or staged (406; those earlier transfers are failed,
//! as for a single clone) before a request that is malformed (400).

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;

use super::stage::{Fresh, check, fail_stale, stage_fresh};
use super::{CloneStageInput, IngestError, StageOutput, StagingLayout};
use crate::db::repo::{files, transfers};
use crate::model::TransferStatus;
use crate::node::Node;

/// Most files in one batch.
pub const MAX_CLONE_BATCH: usize = 4096;

/// Why a batch was not staged. Each list holds the position of every file
/// (in the request) that caused it.
#[derive(Debug, thiserror::Error)]
pub enum CloneBatchError {
    /// The batch as a whole: its size, or no store with room for it.
    #[error(transparent)]
    Refused(#[from] IngestError),
    #[error("{} of the files are being copied here already", .0.len())]
    Ongoing(Vec<usize>),
    #[error("{} of the files are here already", .0.len())]
    Exists(Vec<usize>),
    #[error("{} of the files had earlier transfers initiated or staged; those are now failed", .0.len())]
    Restarted(Vec<usize>),
    /// Files refused for what they are (name, size, checksum), with the first reason.
    #[error("{reason}")]
    Invalid { items: Vec<usize>, reason: String },
}

/// Stages every clone of a batch, or none. `clones` carry the batch's `source`
/// and the caller as uploader.
pub async fn stage_clone_batch(
    node: &Arc<Node>,
    clones: Vec<CloneStageInput>,
    total_size: i64,
) -> Result<Vec<StageOutput>, CloneBatchError> {
    if clones.len() > MAX_CLONE_BATCH {
        return Err(CloneBatchError::Invalid {
            items: (0..clones.len()).collect(),
            reason: format!(
                "{} files in one batch; the limit is {MAX_CLONE_BATCH}",
                clones.len()
            ),
        });
    }
    if total_size < 0 {
        return Err(IngestError::NegativeSize(total_size).into());
    }
    let Classified { fresh, restarted } = classify(node, clones)?;
    if !restarted.is_empty() {
        let items = restarted.iter().map(|(index, _)| *index).collect();
        fail_stale(node, restarted.into_iter().map(|(_, id)| id).collect()).await?;
        return Err(CloneBatchError::Restarted(items));
    }
    let needed = fresh
        .iter()
        .fold(0u64, |sum, f| sum.saturating_add(f.checked.size))
        .max(total_size as u64);
    // Only a look: the room of each file is reserved when it is staged below.
    if let Err(why) = node.reserve_room(&[needed]) {
        return Err(IngestError::NoStore { size: needed, why }.into());
    }
    let staged = stage_fresh(node, fresh, StagingLayout::SharedByBatch).await?;
    let mut outputs = Vec::with_capacity(staged.len());
    let mut taken = Vec::new();
    let mut other = None;
    for (index, result) in staged {
        match result {
            Ok(output) => outputs.push(output),
            Err(
                IngestError::NameTaken(_)
                | IngestError::InsideStoredFile { .. }
                | IngestError::HoldsStoredFile { .. },
            ) => taken.push(index),
            Err(error) => other = other.or(Some((index, error))),
        }
    }
    if taken.is_empty() && other.is_none() {
        return Ok(outputs);
    }
    // A file recorded meanwhile took a name: the batch stages nothing after all.
    fail_stale(node, outputs.iter().map(|o| o.transfer_id).collect()).await?;
    match other {
        Some((index, error)) if taken.is_empty() => Err(item_refusal(index, error)),
        _ => Err(CloneBatchError::Exists(taken)),
    }
}

/// The clones of a batch that may be staged, and (position, transfer id) of each
/// live transfer of a file sent again.
struct Classified {
    fresh: Vec<Fresh>,
    restarted: Vec<(usize, u64)>,
}

/// Checks every clone without changing anything: the ones that may be staged,
/// and the ids of live transfers of files sent again (to be failed). Any other
/// refusal is returned at once, by priority. The names and live transfers are
/// looked up in one read transaction for the whole batch.
fn classify(node: &Node, clones: Vec<CloneStageInput>) -> Result<Classified, CloneBatchError> {
    let mut invalid: Option<(Vec<usize>, String)> = None;
    let mut note_invalid = |index: usize, reason: String| match &mut invalid {
        Some((items, _)) => items.push(index),
        None => invalid = Some((vec![index], reason)),
    };
    let names: HashSet<&str> = clones
        .iter()
        .map(|c| c.destination_location.as_str())
        .collect();
    let mut seen: HashSet<&str> = HashSet::new();
    let mut candidates = Vec::with_capacity(clones.len());
    for (index, clone) in clones.iter().enumerate() {
        let name = clone.destination_location.as_str();
        if !seen.insert(name) {
            note_invalid(index, format!("'{name}' appears twice in the batch"));
            continue;
        }
        if let Some(parent) = Path::new(name)
            .ancestors()
            .skip(1)
            .filter_map(|p| p.to_str())
            .find(|p| !p.is_empty() && names.contains(p))
        {
            note_invalid(
                index,
                format!("'{name}' would lie under '{parent}', another file of the batch"),
            );
            continue;
        }
        let input = clone.stage_input();
        match check(node, &input) {
            Ok(checked) => candidates.push(Fresh {
                index,
                input,
                checked,
                source_transfer_id: clone.source_transfer_id,
            }),
            Err(error) if malformed(&error) => note_invalid(index, format!("'{name}': {error}")),
            // Too large for this node: the batch as a whole cannot be taken (413).
            Err(error) => return Err(error.into()),
        }
    }
    let known = node
        .db
        .read(|tx| {
            let names: Vec<&str> = candidates
                .iter()
                .map(|c| c.input.destination_location.as_str())
                .collect();
            let obstacles = files::obstacles(tx, &names)?;
            let live = candidates
                .iter()
                .map(|c| {
                    transfers::live_incoming_with_checksum(tx, &c.checked.checksum.to_string())
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok((obstacles, live))
        })
        .map_err(IngestError::from)?;
    let (mut ongoing, mut exists, mut restarted) = (Vec::new(), Vec::new(), Vec::new());
    let mut fresh = Vec::with_capacity(candidates.len());
    for ((candidate, obstacle), live) in candidates.into_iter().zip(known.0).zip(known.1) {
        let name = candidate.input.destination_location.as_str();
        if obstacle.is_some() {
            exists.push(candidate.index);
        } else if let Some(earlier) = live.into_iter().find(|t| t.destination_location == name) {
            if earlier.status == TransferStatus::Ongoing {
                ongoing.push(candidate.index);
            } else {
                restarted.push((candidate.index, earlier.id));
            }
        } else {
            fresh.push(candidate);
        }
    }
    if !ongoing.is_empty() {
        return Err(CloneBatchError::Ongoing(ongoing));
    }
    if !exists.is_empty() {
        return Err(CloneBatchError::Exists(exists));
    }
    if restarted.is_empty()
        && let Some((items, reason)) = invalid
    {
        return Err(CloneBatchError::Invalid { items, reason });
    }
    Ok(Classified { fresh, restarted })
}

/// Whether a refusal is about what the request says (400), not about this node.
fn malformed(error: &IngestError) -> bool {
    matches!(
        error,
        IngestError::InvalidName(_)
            | IngestError::NegativeSize(_)
            | IngestError::InvalidChecksum(_)
            | IngestError::NameTooLong(_)
    )
}

/// The refusal of a batch because of its item `index`: 400 for a malformed item,
/// otherwise the status the item would get alone (no room 413, a name being
/// placed right now 409, ...).
fn item_refusal(index: usize, error: IngestError) -> CloneBatchError {
    if malformed(&error) {
        CloneBatchError::Invalid {
            items: vec![index],
            reason: error.to_string(),
        }
    } else {
        CloneBatchError::Refused(error)
    }
}
