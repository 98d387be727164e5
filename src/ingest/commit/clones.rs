//! Storing clones that peers (or a manifest ingest) have STAGED here: the same
//! crash-safe commit as uploads, driven by the transfer records alone.

use std::sync::Arc;

use super::{Outcome, Prepared, commit_prepared};
use crate::ingest::IngestError;
use crate::model::{DeletionPolicy, IncomingTransfer, TransferStatus};
use crate::node::Node;

/// How one staged clone ended.
#[derive(Debug)]
pub enum CloneCommit {
    /// Stored: File + Instance recorded, transfer COMPLETED, `clone/complete` owed.
    Stored,
    /// Refused for good: transfer FAILED, staging removed, failure callback owed.
    Failed(IngestError),
    /// Not tried now (its store is disabled or away, or the node failed); the
    /// transfer stays STAGED for a later run.
    Deferred(IngestError),
}

/// Verifies and stores STAGED clones with `deletion_policy`; one result per
/// transfer, in order.
pub async fn commit_staged_clones(
    node: &Arc<Node>,
    staged: Vec<IncomingTransfer>,
    deletion_policy: DeletionPolicy,
) -> Result<Vec<CloneCommit>, IngestError> {
    let mut outcome = Outcome::new(staged.len());
    let ids: Vec<u64> = staged.iter().map(|t| t.id).collect();
    let mut prepared = Vec::new();
    for (index, transfer) in staged.into_iter().enumerate() {
        match prepare_clone(node, transfer, deletion_policy) {
            Ok(item) => prepared.push((index, item)),
            Err((error, Some(id))) => outcome.refuse_transfer(index, id, error),
            Err((error, None)) => outcome.answer(index, Err(error)),
        }
    }
    commit_prepared(node, prepared, &mut outcome).await?;
    let failed: std::collections::HashSet<u64> = outcome.refused.iter().copied().collect();
    outcome.close_refused(node).await?;
    Ok(outcome
        .finish()
        .into_iter()
        .zip(ids)
        .map(|(result, id)| match result {
            Ok(()) => CloneCommit::Stored,
            Err(error) if failed.contains(&id) => CloneCommit::Failed(error),
            Err(error) => CloneCommit::Deferred(error),
        })
        .collect())
}

/// Checks a staged clone against its store. The error carries the transfer id when
/// the clone can never be stored (its transfer is then failed).
fn prepare_clone(
    node: &Node,
    transfer: IncomingTransfer,
    deletion_policy: DeletionPolicy,
) -> Result<Prepared, (IngestError, Option<u64>)> {
    let id = transfer.id;
    if transfer.status != TransferStatus::Staged {
        let status = transfer.status;
        return Err((IngestError::TransferClosed { id, status }, None));
    }
    let Some(store) = node.stores.by_id(transfer.store_id).cloned() else {
        let missing =
            IngestError::StoreDisabled(format!("#{} (no longer configured)", transfer.store_id));
        return Err((missing, Some(id)));
    };
    if !store.enabled() {
        return Err((IngestError::StoreDisabled(store.name.clone()), None));
    }
    if !store.available() {
        let why = format!("store '{}' is unavailable", store.name);
        let size = transfer.transfer_size;
        return Err((IngestError::NoStore { size, why }, None));
    }
    if store.staging_dir(&transfer.staging_name).is_none() {
        return Err((IngestError::StagedDataMissing(id), Some(id)));
    }
    Ok(Prepared {
        staged: std::path::Path::new(&transfer.staging_name).join(&transfer.upload_name),
        transfer,
        store,
        deletion_policy,
    })
}
