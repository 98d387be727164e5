//! Incoming and outgoing transfers, with indexes of the ones still live.

use redb::ReadableTable;

use super::{get, put};
use crate::db::codec::{decode, encode};
use crate::db::tables::{INCOMING, INCOMING_LIVE, OUTGOING, OUTGOING_LIVE};
use crate::db::{DbError, Reads, WriteTxn};
use crate::model::{IncomingTransfer, OutgoingTransfer, TransferStatus};

/// The incoming transfer with `id`.
pub fn get_incoming(tx: &impl Reads, id: u64) -> Result<Option<IncomingTransfer>, DbError> {
    get(tx, INCOMING, id)
}

/// The incoming transfers with `ids`, in the same order (opening the table once).
pub fn get_incoming_many(
    tx: &impl Reads,
    ids: &[u64],
) -> Result<Vec<Option<IncomingTransfer>>, DbError> {
    let Some(table) = tx.table(INCOMING)? else {
        return Ok(vec![None; ids.len()]);
    };
    ids.iter()
        .map(|id| table.get(*id)?.map(|v| decode(v.value())).transpose())
        .collect()
}

/// Stores an incoming transfer, keeping the live index in step with its status.
pub fn put_incoming(txn: &WriteTxn, transfer: &IncomingTransfer) -> Result<(), DbError> {
    put_incoming_all(txn, std::slice::from_ref(transfer))
}

/// Stores incoming transfers, keeping the live index in step with their status.
pub fn put_incoming_all(txn: &WriteTxn, all: &[IncomingTransfer]) -> Result<(), DbError> {
    let mut table = txn.open_table(INCOMING)?;
    let mut live = txn.open_table(INCOMING_LIVE)?;
    for transfer in all {
        table.insert(transfer.id, encode(transfer).as_slice())?;
        let checksum = transfer.transfer_checksum.to_string();
        if transfer.status.is_terminal() {
            live.remove((checksum.as_str(), transfer.id))?;
        } else {
            live.insert((checksum.as_str(), transfer.id), ())?;
        }
    }
    Ok(())
}

/// Live incoming transfers whose checksum text is `checksum`.
pub fn live_incoming_with_checksum(
    tx: &impl Reads,
    checksum: &str,
) -> Result<Vec<IncomingTransfer>, DbError> {
    let Some(table) = tx.table(INCOMING_LIVE)? else {
        return Ok(Vec::new());
    };
    let mut ids = Vec::new();
    for entry in table.range((checksum, 0)..=(checksum, u64::MAX))? {
        ids.push(entry?.0.value().1);
    }
    let mut transfers = Vec::new();
    for id in ids {
        transfers.extend(get_incoming(tx, id)?);
    }
    Ok(transfers)
}

/// Every live incoming transfer.
pub fn live_incoming(tx: &impl Reads) -> Result<Vec<IncomingTransfer>, DbError> {
    let Some(table) = tx.table(INCOMING_LIVE)? else {
        return Ok(Vec::new());
    };
    let mut ids = Vec::new();
    for entry in table.iter()? {
        ids.push(entry?.0.value().1);
    }
    ids.sort_unstable();
    let mut transfers = Vec::new();
    for id in ids {
        transfers.extend(get_incoming(tx, id)?);
    }
    Ok(transfers)
}

/// The outgoing transfer with `id`.
pub fn get_outgoing(tx: &impl Reads, id: u64) -> Result<Option<OutgoingTransfer>, DbError> {
    get(tx, OUTGOING, id)
}

/// Stores an outgoing transfer, keeping the live index in step with its status.
pub fn put_outgoing(txn: &WriteTxn, transfer: &OutgoingTransfer) -> Result<(), DbError> {
    put(txn, OUTGOING, transfer.id, transfer)?;
    let mut live = txn.open_table(OUTGOING_LIVE)?;
    if transfer.status.is_terminal() {
        live.remove(transfer.id)?;
    } else {
        live.insert(transfer.id, ())?;
    }
    Ok(())
}

/// Stores outgoing transfers, keeping the live index in step (each table opened
/// once).
pub fn put_outgoing_all(txn: &WriteTxn, all: &[OutgoingTransfer]) -> Result<(), DbError> {
    let mut table = txn.open_table(OUTGOING)?;
    let mut live = txn.open_table(OUTGOING_LIVE)?;
    for transfer in all {
        table.insert(transfer.id, encode(transfer).as_slice())?;
        if transfer.status.is_terminal() {
            live.remove(transfer.id)?;
        } else {
            live.insert(transfer.id, ())?;
        }
    }
    Ok(())
}

/// Every live outgoing transfer, oldest first.
pub fn live_outgoing(tx: &impl Reads) -> Result<Vec<OutgoingTransfer>, DbError> {
    let Some(table) = tx.table(OUTGOING_LIVE)? else {
        return Ok(Vec::new());
    };
    let mut ids = Vec::new();
    for entry in table.iter()? {
        ids.push(entry?.0.value());
    }
    let mut transfers = Vec::new();
    for id in ids {
        transfers.extend(get_outgoing(tx, id)?);
    }
    Ok(transfers)
}

/// Live outgoing transfers to the peer `destination`, oldest first.
pub fn live_outgoing_to(
    tx: &impl Reads,
    destination: &str,
) -> Result<Vec<OutgoingTransfer>, DbError> {
    let mut transfers = live_outgoing(tx)?;
    transfers.retain(|t| t.destination == destination);
    Ok(transfers)
}

/// Live incoming transfers in `status`, oldest first, at most `limit`.
pub fn live_incoming_in(
    tx: &impl Reads,
    status: TransferStatus,
    limit: usize,
) -> Result<Vec<IncomingTransfer>, DbError> {
    let mut found = live_incoming(tx)?;
    found.retain(|t| t.status == status);
    found.truncate(limit);
    Ok(found)
}

/// Every outgoing transfer ever recorded, in id order.
pub fn all_outgoing(tx: &impl Reads) -> Result<Vec<OutgoingTransfer>, DbError> {
    super::all_by_id(tx, OUTGOING)
}
