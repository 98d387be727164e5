//! The send queue: batches of outgoing clones, with an index of the live ones.

use redb::ReadableTable;

use super::{all_by_id, get, put};
use crate::db::tables::{SEND_CONFLICTS, SEND_QUEUE, SEND_QUEUE_LIVE};
use crate::db::{DbError, Reads, WriteTxn};
use crate::model::SendQueueItem;

/// The batch with `id`.
pub fn get_item(tx: &impl Reads, id: u64) -> Result<Option<SendQueueItem>, DbError> {
    get(tx, SEND_QUEUE, id)
}

/// Stores a batch, keeping the live index in step with its state.
pub fn put_item(txn: &WriteTxn, item: &SendQueueItem) -> Result<(), DbError> {
    put(txn, SEND_QUEUE, item.id, item)?;
    let mut live = txn.open_table(SEND_QUEUE_LIVE)?;
    if item.state.is_live() {
        live.insert(item.id, ())?;
    } else {
        live.remove(item.id)?;
    }
    Ok(())
}

/// Every QUEUED or MOVED batch, in id (creation) order.
pub fn live_items(tx: &impl Reads) -> Result<Vec<SendQueueItem>, DbError> {
    let Some(table) = tx.table(SEND_QUEUE_LIVE)? else {
        return Ok(Vec::new());
    };
    let mut ids = Vec::new();
    for entry in table.iter()? {
        ids.push(entry?.0.value());
    }
    let mut items = Vec::with_capacity(ids.len());
    for id in ids {
        items.extend(get_item(tx, id)?);
    }
    Ok(items)
}

/// Every batch ever queued, in id order.
pub fn all_items(tx: &impl Reads) -> Result<Vec<SendQueueItem>, DbError> {
    all_by_id(tx, SEND_QUEUE)
}

/// Records that `destination` holds `file_name` with other bytes (`reason`).
pub fn put_conflict(
    txn: &WriteTxn,
    destination: &str,
    file_name: &str,
    reason: &str,
) -> Result<(), DbError> {
    let mut table = txn.open_table(SEND_CONFLICTS)?;
    table.insert((destination, file_name), reason)?;
    Ok(())
}

/// The files `destination` holds with other bytes, with the reason.
pub fn conflicts_with(
    tx: &impl Reads,
    destination: &str,
) -> Result<Vec<(String, String)>, DbError> {
    let Some(table) = tx.table(SEND_CONFLICTS)? else {
        return Ok(Vec::new());
    };
    let mut found = Vec::new();
    for entry in table.range((destination, "")..)? {
        let (key, value) = entry?;
        let (peer, name) = key.value();
        if peer != destination {
            break;
        }
        found.push((name.to_string(), value.value().to_string()));
    }
    Ok(found)
}
