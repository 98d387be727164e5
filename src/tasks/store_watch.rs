//! Outages of stores that come and go (SneakerNet drives), reported once: a warning
//! error record when a store goes away, cleared when it comes back.
//!
//! Invariant: one uncleared outage record per store at most; files on an absent
//! store are never reported one by one.

use std::sync::Arc;

use crate::db::DbError;
use crate::db::repo::errors;
use crate::model::{ErrorCategory, ErrorSeverity, Timestamp};
use crate::node::Node;
use crate::store::{AvailabilityChange, Store};

/// The caller recorded on a store's outage record.
fn outage_caller(store: &Store) -> String {
    format!("store {}", store.name)
}

/// Whether `store` is available now; records the start or the end of an outage if
/// one started or ended since the previous look.
pub fn check_available(node: &Node, store: &Arc<Store>) -> Result<bool, DbError> {
    let (available, change) = store.observe_availability();
    match change {
        AvailabilityChange::Unchanged => {}
        AvailabilityChange::WentAway => {
            tracing::warn!(store = %store.name, root = %store.root.display(), "store went away");
            let message = format!(
                "Store '{}' is unavailable: {} is missing (drive unplugged?). Its copies are \
                 reported unavailable and nothing is written to it until it is back.",
                store.name,
                store.root.display()
            );
            let caller = outage_caller(store);
            node.db.write_blocking(move |txn| {
                errors::raise(
                    txn,
                    ErrorSeverity::Warning,
                    ErrorCategory::DataAvailability,
                    message,
                    Some(caller),
                )?;
                Ok(Ok::<_, DbError>(()))
            })?;
        }
        AvailabilityChange::CameBack => {
            tracing::info!(store = %store.name, "store is available again");
            let caller = outage_caller(store);
            node.db.write_blocking(move |txn| {
                let now = Timestamp::now();
                for mut record in errors::all_errors_newest_first(txn)? {
                    let ours = record.category == ErrorCategory::DataAvailability
                        && record.caller.as_deref() == Some(caller.as_str());
                    if ours && !record.cleared {
                        record.cleared = true;
                        record.cleared_time = Some(now);
                        errors::put_error(txn, &record)?;
                    }
                }
                Ok(Ok::<_, DbError>(()))
            })?;
        }
    }
    Ok(available)
}
