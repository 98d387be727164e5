//! Accounts.

use redb::ReadableTable;

use super::{get, put};
use crate::db::codec::decode;
use crate::db::tables::USERS;
use crate::db::{DbError, Reads, WriteTxn};
use crate::model::User;

/// The account called `username`.
pub fn get_user(tx: &impl Reads, username: &str) -> Result<Option<User>, DbError> {
    get(tx, USERS, username)
}

/// Creates or replaces an account.
pub fn put_user(txn: &WriteTxn, user: &User) -> Result<(), DbError> {
    put(txn, USERS, user.username.as_str(), user)
}

/// Removes an account; returns whether it existed.
pub fn delete_user(txn: &WriteTxn, username: &str) -> Result<bool, DbError> {
    Ok(txn.open_table(USERS)?.remove(username)?.is_some())
}

/// Every account, by name.
pub fn all_users(tx: &impl Reads) -> Result<Vec<User>, DbError> {
    let Some(table) = tx.table(USERS)? else {
        return Ok(Vec::new());
    };
    let mut users = Vec::new();
    for entry in table.iter()? {
        users.push(decode(entry?.1.value())?);
    }
    Ok(users)
}
