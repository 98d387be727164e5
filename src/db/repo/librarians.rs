//! Peer librarians, and the live outgoing transfers addressed to one.

use redb::ReadableTable;

use super::transfers::get_outgoing;
use super::{get, put};
use crate::db::codec::decode;
use crate::db::tables::{LIBRARIANS, OUTGOING_LIVE, PEER_MAX_RATES};
use crate::db::{DbError, Reads, WriteTxn};
use crate::model::{Librarian, OutgoingTransfer};

/// The peer called `name`.
pub fn get_librarian(tx: &impl Reads, name: &str) -> Result<Option<Librarian>, DbError> {
    get(tx, LIBRARIANS, name)
}

/// Creates or updates a peer.
pub fn put_librarian(txn: &WriteTxn, librarian: &Librarian) -> Result<(), DbError> {
    put(txn, LIBRARIANS, librarian.name.as_str(), librarian)
}

/// Every peer, by name.
pub fn all_librarians(tx: &impl Reads) -> Result<Vec<Librarian>, DbError> {
    let Some(table) = tx.table(LIBRARIANS)? else {
        return Ok(Vec::new());
    };
    let mut librarians = Vec::new();
    for entry in table.iter()? {
        librarians.push(decode(entry?.1.value())?);
    }
    Ok(librarians)
}

/// Forgets the peer called `name` (and its rate cap); returns whether it was known.
pub fn delete_librarian(txn: &WriteTxn, name: &str) -> Result<bool, DbError> {
    let mut table = txn.open_table(LIBRARIANS)?;
    let removed = table.remove(name)?.is_some();
    txn.open_table(PEER_MAX_RATES)?.remove(name)?;
    Ok(removed)
}

/// The most bytes per second sent to the peer `name`, if capped.
pub fn max_rate(tx: &impl Reads, name: &str) -> Result<Option<u64>, DbError> {
    let Some(table) = tx.table(PEER_MAX_RATES)? else {
        return Ok(None);
    };
    Ok(table.get(name)?.map(|v| v.value()))
}

/// Sets (or, with `None`, lifts) the cap on bytes per second sent to `name`.
pub fn set_max_rate(txn: &WriteTxn, name: &str, rate: Option<u64>) -> Result<(), DbError> {
    let mut table = txn.open_table(PEER_MAX_RATES)?;
    match rate {
        Some(rate) => table.insert(name, rate)?,
        None => table.remove(name)?,
    };
    Ok(())
}

/// The outgoing transfers to the peer `destination` that are not yet terminal, in
/// id order.
pub fn live_outgoing_to(
    tx: &impl Reads,
    destination: &str,
) -> Result<Vec<OutgoingTransfer>, DbError> {
    let Some(live) = tx.table(OUTGOING_LIVE)? else {
        return Ok(Vec::new());
    };
    let mut ids = Vec::new();
    for entry in live.iter()? {
        ids.push(entry?.0.value());
    }
    let mut transfers = Vec::new();
    for id in ids {
        if let Some(transfer) = get_outgoing(tx, id)?
            && transfer.destination == destination
        {
            transfers.push(transfer);
        }
    }
    Ok(transfers)
}
