//! Recording committed uploads: File + Instance + transfer COMPLETED for every item,
//! in one transaction.

use std::path::PathBuf;

use crate::checksum::Digests;
use crate::db::repo::{files, instances, next_id, transfers};
use crate::ingest::IngestError;
use crate::model::{DeletionPolicy, File, IncomingTransfer, Instance, Timestamp, TransferStatus};
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
    let instance = Instance {
        id: 0,
        file_name: file.name.clone(),
        store_id: transfer.store_id,
        path: placed.target.to_string_lossy().into_owned(),
        deletion_policy: placed.deletion_policy,
        created_time: now,
        available: true,
        blake3: placed.digests.blake3(),
        verified_time: now,
    };
    (file, instance)
}

/// Records every placed upload; one result per item. An item is refused (and
/// nothing written for it) if its transfer closed or its name was taken meanwhile.
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
            let mut results = Vec::new();
            for (id, file, mut instance) in work {
                let Some(mut transfer) = transfers::get_incoming(txn, id)? else {
                    results.push(Err(IngestError::TransferNotFound(id)));
                    continue;
                };
                if transfer.status.is_terminal() {
                    let status = transfer.status;
                    results.push(Err(IngestError::TransferClosed { id, status }));
                    continue;
                }
                if files::exists(txn, &file.name)? {
                    results.push(Err(IngestError::NameTaken(file.name)));
                    continue;
                }
                files::insert(txn, &file)?;
                instance.id = next_id(txn, "instances")?;
                instances::put_instance(txn, &instance)?;
                transfer.status = TransferStatus::Completed;
                transfer.end_time = Some(now);
                transfers::put_incoming(txn, &transfer)?;
                results.push(Ok(()));
            }
            Ok(Ok::<_, IngestError>(results))
        })
        .await
}
