//! Recording committed uploads: File + Instance + transfer COMPLETED for every item
//! (and, for a clone, the callback owed to its source), in one transaction.

use std::path::PathBuf;

use crate::checksum::Digests;
use crate::db::repo::{callbacks, files, instances, next_ids, transfers};
use crate::ingest::IngestError;
use crate::model::{
    CallbackKind, DeletionPolicy, File, IncomingTransfer, Instance, Timestamp, TransferStatus,
};
use crate::node::Node;

/// One upload whose bytes are in place and await their record.
pub struct Placed {
    pub transfer: IncomingTransfer,
    pub digests: Digests,
    pub target: PathBuf,
    pub deletion_policy: DeletionPolicy,
}

fn records_for(placed: &Placed, now: Timestamp) -> (File, Instance) {
    let transfer = &placed.transfer;
    let checksum = match transfer.record_algorithm {
        Some(algorithm) => placed
            .digests
            .get(algorithm)
            .cloned()
            .expect("computed at verify"),
        None => transfer.transfer_checksum.clone(),
    };
    let file = File {
        name: transfer.destination_location.clone(),
        create_time: now,
        size: transfer.transfer_size,
        checksum,
        uploader: transfer.uploader.clone(),
        source: transfer.source.clone(),
    };
    let instance = Instance::verified_copy(
        &file.name,
        transfer.store_id,
        &placed.target,
        placed.deletion_policy,
        placed.digests.blake3(),
        now,
    );
    (file, instance)
}

/// Records every placed upload; one result per item. An item is refused (and
/// nothing written for it) if its transfer closed or its name was taken meanwhile
/// (by another commit, or by an earlier item of the same batch).
pub async fn record_all(
    node: &Node,
    placed: &[&Placed],
) -> Result<Vec<Result<(), IngestError>>, IngestError> {
    let now = Timestamp::now();
    let work: Vec<(u64, File, Instance)> = placed
        .iter()
        .map(|p| {
            let (file, instance) = records_for(p, now);
            (p.transfer.id, file, instance)
        })
        .collect();
    node.db
        .write(move |txn| {
            let ids: Vec<u64> = work.iter().map(|(id, _, _)| *id).collect();
            let names: Vec<&str> = work.iter().map(|(_, file, _)| file.name.as_str()).collect();
            let current = transfers::get_incoming_many(txn, &ids)?;
            let obstacles = files::obstacles_in_order(txn, &names)?;
            let mut results = Vec::with_capacity(work.len());
            let mut accepted = Vec::new();
            for ((id, file, instance), (transfer, obstacle)) in
                work.iter().zip(current.into_iter().zip(obstacles))
            {
                let verdict = match (transfer, obstacle) {
                    (None, _) => Err(IngestError::TransferNotFound(*id)),
                    (Some(t), _) if t.status.is_terminal() => Err(IngestError::TransferClosed {
                        id: *id,
                        status: t.status,
                    }),
                    (Some(_), Some(obstacle)) => Err(IngestError::obstacle(&file.name, obstacle)),
                    (Some(mut transfer), None) => {
                        transfer.status = TransferStatus::Completed;
                        transfer.end_time = Some(now);
                        accepted.push((file.clone(), instance.clone(), transfer));
                        Ok(())
                    }
                };
                results.push(verdict);
            }
            if !accepted.is_empty() {
                let first_id = next_ids(txn, "instances", accepted.len() as u64)?;
                let mut new_files = Vec::with_capacity(accepted.len());
                let mut new_instances = Vec::with_capacity(accepted.len());
                let mut completed = Vec::with_capacity(accepted.len());
                for (offset, (file, mut instance, transfer)) in accepted.into_iter().enumerate() {
                    instance.id = first_id + offset as u64;
                    new_files.push(file);
                    new_instances.push(instance);
                    completed.push(transfer);
                }
                files::insert_all(txn, &new_files)?;
                instances::put_instances(txn, &new_instances)?;
                transfers::put_incoming_all(txn, &completed)?;
                // A completed clone owes its source a `clone/complete`, recorded
                // with the file so that it can be delayed but never lost.
                for clone in completed.iter().filter(|t| t.source_transfer_id.is_some()) {
                    callbacks::owe(txn, clone.id, CallbackKind::Complete)?;
                }
            }
            Ok(Ok::<_, IngestError>(results))
        })
        .await
}
