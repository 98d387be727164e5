//! Space promised to uploads that are staged but not yet committed, so that a
//! store is chosen only if it can hold them all.
//!
//! Invariant: a live incoming transfer holds a reservation of its declared size on
//! its store from the moment it is staged (rebuilt from the live transfers at
//! start-up) until it completes or fails; a store is chosen for new uploads only
//! if its free space, less what its reservations still need, holds them. What a
//! reservation still needs is its declared size less the bytes already staged
//! (those are counted by the filesystem's free space already); that is measured
//! only when the quick sum of declared sizes says the store may be too full, so a
//! store with room costs no more than one `statvfs`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::Node;
use crate::db::Db;
use crate::db::repo::transfers;
use crate::fsroot::{Dir, Kind, Visit};
use crate::model::IncomingTransfer;
use crate::store::{Store, Stores};

/// Every reservation of the node.
#[derive(Debug, Default)]
pub struct Reservations {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    next_token: u64,
    held: HashMap<u64, Held>,
    /// The token of each transfer's reservation.
    by_transfer: HashMap<u64, u64>,
    /// The sum of `held`'s declared sizes per store, kept with `held` (`add`,
    /// `take`), so that choosing a store costs nothing per upload in progress.
    promised: HashMap<u64, u64>,
}

#[derive(Debug, Clone)]
struct Held {
    store_id: u64,
    bytes: u64,
    /// Set once the transfer is recorded.
    transfer: Option<u64>,
    /// Where its bytes are staged (known once the transfer is recorded).
    staged: Option<PathBuf>,
}

/// Space promised on one store to some uploads: each promise is bound to its
/// upload's transfer once recorded, or released; dropping this releases the
/// promises neither bound nor released (the upload was given up).
pub struct Reserved {
    node: Arc<Node>,
    pub store: Arc<Store>,
    /// What the store had for these uploads: its free space less what earlier
    /// reservations still need.
    pub available: u64,
    tokens: Vec<Option<u64>>,
}

impl Reserved {
    /// Binds upload `index`'s reservation to its transfer, whose bytes are staged
    /// at `staged`; it lasts until the transfer completes or fails.
    pub fn bind(&mut self, index: usize, transfer: u64, staged: PathBuf) {
        if let Some(token) = self.tokens[index].take() {
            self.node.reservations.bind(token, transfer, staged);
        }
    }

    /// Releases upload `index`'s reservation (it was refused).
    pub fn release(&mut self, index: usize) {
        if let Some(token) = self.tokens[index].take() {
            self.node.reservations.release_tokens([token]);
        }
    }
}

impl Drop for Reserved {
    fn drop(&mut self) {
        let left = self.tokens.iter_mut().filter_map(Option::take);
        self.node.reservations.release_tokens(left);
    }
}

impl Node {
    /// Chooses the first store that is ingestable, enabled and available and
    /// whose free space, less what its reservations still need, holds all of
    /// `sizes`, and reserves them there. `Err` says, store by store, why none can.
    pub fn reserve_room(self: &Arc<Self>, sizes: &[u64]) -> Result<Reserved, String> {
        let (store, available, tokens) =
            self.reservations.reserve(&self.stores, &self.db, sizes)?;
        Ok(Reserved {
            node: self.clone(),
            store,
            available,
            tokens: tokens.into_iter().map(Some).collect(),
        })
    }
}

impl Reservations {
    /// See [`Node::reserve_room`]; returns the store, what it had available, and
    /// one unbound token per size.
    fn reserve(
        &self,
        stores: &Stores,
        db: &Db,
        sizes: &[u64],
    ) -> Result<(Arc<Store>, u64, Vec<u64>), String> {
        let total = sizes
            .iter()
            .fold(0u64, |sum, bytes| sum.saturating_add(*bytes));
        let mut inner = self.inner.lock().expect("reservations lock");
        let mut reasons = Vec::new();
        for store in stores.all() {
            let available = match usable(store) {
                Err(why) => {
                    reasons.push(format!("{} is {why}", store.name));
                    continue;
                }
                Ok(free) => free,
            };
            let promised = inner.promised(store.id);
            let mut left = available.saturating_sub(promised);
            if left < total {
                // The quick sum counts staged bytes twice; measure what is still due.
                left = available.saturating_sub(inner.still_due(store, db));
            }
            if left >= total {
                let tokens = sizes
                    .iter()
                    .map(|bytes| inner.add(store.id, *bytes, None, None))
                    .collect();
                return Ok((store.clone(), left, tokens));
            }
            reasons.push(format!(
                "{} has {available} bytes free, {} of them promised to uploads in progress",
                store.name,
                available - left
            ));
        }
        Err(if reasons.is_empty() {
            "the node has no stores".into()
        } else {
            reasons.join("; ")
        })
    }

    /// Binds a reservation to the transfer it was made for, whose bytes are staged
    /// at `staged`.
    fn bind(&self, token: u64, transfer: u64, staged: PathBuf) {
        let mut inner = self.inner.lock().expect("reservations lock");
        if let Some(held) = inner.held.get_mut(&token) {
            held.transfer = Some(transfer);
            held.staged = Some(staged);
            inner.by_transfer.insert(transfer, token);
        }
    }

    /// Releases reservations that were never bound (their uploads were refused).
    fn release_tokens(&self, tokens: impl IntoIterator<Item = u64>) {
        let mut inner = self.inner.lock().expect("reservations lock");
        for token in tokens {
            if let Some(held) = inner.take(token)
                && let Some(transfer) = held.transfer
            {
                inner.by_transfer.remove(&transfer);
            }
        }
    }

    /// Releases the reservations of transfers that completed or failed.
    pub fn release_transfers(&self, transfers: impl IntoIterator<Item = u64>) {
        let mut inner = self.inner.lock().expect("reservations lock");
        for transfer in transfers {
            if let Some(token) = inner.by_transfer.remove(&transfer) {
                inner.take(token);
            }
        }
    }

    /// Reserves the declared size of a live transfer found at start-up, whether
    /// or not its store has room now (it was promised before).
    pub fn restore(&self, transfer: &IncomingTransfer, staged: PathBuf) {
        let mut inner = self.inner.lock().expect("reservations lock");
        if inner.by_transfer.contains_key(&transfer.id) {
            return;
        }
        let token = inner.add(
            transfer.store_id,
            transfer.transfer_size,
            Some(transfer.id),
            Some(staged),
        );
        inner.by_transfer.insert(transfer.id, token);
    }

    /// What the reservations on `store` still need (see the module's comment).
    pub fn still_due_on(&self, store: &Store, db: &Db) -> u64 {
        let mut inner = self.inner.lock().expect("reservations lock");
        inner.still_due(store, db)
    }
}

impl Inner {
    fn add(
        &mut self,
        store_id: u64,
        bytes: u64,
        transfer: Option<u64>,
        staged: Option<PathBuf>,
    ) -> u64 {
        self.next_token += 1;
        let token = self.next_token;
        let held = Held {
            store_id,
            bytes,
            transfer,
            staged,
        };
        self.held.insert(token, held);
        let promised = self.promised.entry(store_id).or_default();
        *promised = promised.saturating_add(bytes);
        token
    }

    /// Removes a reservation.
    fn take(&mut self, token: u64) -> Option<Held> {
        let held = self.held.remove(&token)?;
        if let Some(sum) = self.promised.get_mut(&held.store_id) {
            *sum = sum.saturating_sub(held.bytes);
        }
        Some(held)
    }

    /// The declared sizes reserved on a store: an upper bound of what is due.
    fn promised(&self, store_id: u64) -> u64 {
        self.promised.get(&store_id).copied().unwrap_or(0)
    }

    /// What the reservations on a store still need: each declared size less the
    /// bytes already staged. Reservations of transfers that are no longer live
    /// (closed somewhere that did not release them) are dropped on the way.
    fn still_due(&mut self, store: &Store, db: &Db) -> u64 {
        let store_id = store.id;
        let bound: Vec<(u64, u64)> = self
            .held
            .iter()
            .filter(|(_, h)| h.store_id == store_id)
            .filter_map(|(token, h)| Some((*token, h.transfer?)))
            .collect();
        let ids: Vec<u64> = bound.iter().map(|(_, id)| *id).collect();
        if let Ok(found) = db.read(|tx| transfers::get_incoming_many(tx, &ids)) {
            for ((token, id), transfer) in bound.into_iter().zip(found) {
                if transfer.is_none_or(|t| t.status.is_terminal()) {
                    self.take(token);
                    self.by_transfer.remove(&id);
                }
            }
        }
        // Staged data is looked at from the staging area, symlink-free: clients
        // write there.
        let staging = store.staging_root().ok();
        self.held
            .values()
            .filter(|h| h.store_id == store_id)
            .map(|h| {
                let staged = match (&staging, h.staged.as_deref()) {
                    (Some(staging), Some(path)) => path
                        .strip_prefix(&store.staging)
                        .map_or(0, |relative| staged_bytes(staging, relative)),
                    _ => 0,
                };
                h.bytes.saturating_sub(staged)
            })
            .sum()
    }
}

/// The free space of a store that may take new uploads, or why it may not.
fn usable(store: &Store) -> Result<u64, String> {
    if !store.ingestable {
        return Err("not ingestable".into());
    }
    if !store.enabled() {
        return Err("disabled".into());
    }
    if !store.available() {
        return Err("unavailable".into());
    }
    store
        .space()
        .map(|space| space.free)
        .map_err(|error| format!("of unknown free space ({error})"))
}

/// Bytes staged at `relative` (beneath the staging area `staging`) so far: a
/// file's length, or the sum of a directory's files. Links are not followed; a
/// missing path holds nothing.
fn staged_bytes(staging: &Dir, relative: &Path) -> u64 {
    match staging.try_stat(relative) {
        Ok(Some(meta)) if meta.kind == Kind::File => meta.size,
        Ok(Some(meta)) if meta.kind == Kind::Dir => {
            let Ok(tree) = staging.open_dir(relative) else {
                return 0;
            };
            let mut total = 0;
            let _ = tree.walk(&mut |entry| {
                if entry.kind == Kind::File
                    && let Ok(meta) = entry.meta()
                {
                    total += meta.size;
                }
                Visit::Continue
            });
            total
        }
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_promised_sum_follows_every_reservation_made_and_ended() {
        let reservations = Reservations::default();
        let mut inner = reservations.inner.lock().unwrap();
        let first = inner.add(1, 100, None, None);
        let second = inner.add(1, 20, Some(7), None);
        inner.by_transfer.insert(7, second);
        let _other = inner.add(2, 5, None, None);
        assert_eq!((inner.promised(1), inner.promised(2)), (120, 5));
        drop(inner);
        reservations.release_tokens([first]);
        reservations.release_transfers([7]);
        let inner = reservations.inner.lock().unwrap();
        assert_eq!((inner.promised(1), inner.promised(2)), (0, 5));
        assert!(inner.by_transfer.is_empty());
    }
}
