//! Which of `create_local_clone`'s target stores (drives) takes the next file: the
//! first, in configured order, that is enabled, available and has room. A drive
//! without room (free space counts `report_full_fraction`) receives nothing, and
//! with `disable_store_on_full` it is disabled in the database, as
//! `admin/stores/state_change` would.

use std::sync::Arc;

use super::store_watch;
use crate::db::DbError;
use crate::db::repo::{errors, stores};
use crate::model::{ErrorCategory, ErrorSeverity, StoreState};
use crate::node::Node;
use crate::store::Store;

/// The outcome of looking for a target for one file.
pub enum Choice {
    /// Copy the file here; the store has `free` bytes of room.
    Target { store: Arc<Store>, free: u64 },
    /// Some target is enabled and present, but none has room for the file.
    NoRoom { why: String },
    /// Every target is disabled or away.
    NoneUsable,
}

/// Picks the target for a file of `size` bytes.
pub fn choose(
    node: &Node,
    targets: &[Arc<Store>],
    size: u64,
    disable_on_full: bool,
    caller: &str,
) -> Result<Choice, DbError> {
    let mut full = Vec::new();
    for target in targets {
        if !target.enabled() || !store_watch::check_available(node, target)? {
            continue;
        }
        let free = match target.space() {
            Ok(space) => space.free,
            Err(error) => {
                tracing::warn!(store = %target.name, %error, "cannot read free space");
                continue;
            }
        };
        if free >= size {
            return Ok(Choice::Target {
                store: target.clone(),
                free,
            });
        }
        full.push(format!("{} has {free} bytes free", target.name));
        if disable_on_full {
            disable_full(node, target, free, size, caller)?;
        }
    }
    Ok(if full.is_empty() {
        Choice::NoneUsable
    } else {
        Choice::NoRoom {
            why: full.join(", "),
        }
    })
}

/// Disables a full drive durably and says so once, in an error record.
fn disable_full(
    node: &Node,
    store: &Arc<Store>,
    free: u64,
    size: u64,
    caller: &str,
) -> Result<(), DbError> {
    let state = StoreState {
        id: store.id,
        name: store.name.clone(),
        enabled: false,
    };
    let message = format!(
        "Store '{}' is full ({free} bytes free within its report_full_fraction, {size} needed) \
         and was disabled (disable_store_on_full). Swap the drive, then `quire stores enable {}`.",
        store.name, store.name
    );
    let caller = caller.to_string();
    node.db.write_blocking(move |txn| {
        stores::put_store(txn, &state)?;
        errors::raise(
            txn,
            ErrorSeverity::Warning,
            ErrorCategory::StoreFull,
            message,
            Some(caller),
        )?;
        Ok(Ok::<_, DbError>(()))
    })?;
    store.set_enabled(false);
    tracing::warn!(store = %store.name, "store full; disabled");
    Ok(())
}
