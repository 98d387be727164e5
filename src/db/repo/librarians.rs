//! Peer librarians.

use redb::ReadableTable;

use super::{get, put};
use crate::db::codec::decode;
use crate::db::tables::LIBRARIANS;
use crate::db::{DbError, Reads, WriteTxn};
use crate::model::Librarian;

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
