//! Choosing the store for each file of a batch: the pinned store, or the first
//! ingestable, enabled, available store with room, those on the drop-box's
//! filesystem first (there a file is linked, not copied).
//!
//! Invariant: a disabled, unavailable or full store is never chosen; free space is
//! read once per batch and counted down as files are assigned.

use std::sync::Arc;

use crate::dropbox::problems::Problem;
use crate::node::Node;
use crate::store::Store;

/// A store that may take files, with the room left in it.
struct Candidate {
    store: Arc<Store>,
    free: u64,
    device: u64,
}

/// The stores a batch may use.
pub struct StoreChoice {
    candidates: Vec<Candidate>,
    /// Why there are none, when there are none.
    none_because: Option<Problem>,
}

impl StoreChoice {
    /// Looks at the stores once for a batch from a drop-box on `dropbox_device`.
    pub fn for_batch(node: &Node, pinned: Option<&str>, dropbox_device: u64) -> StoreChoice {
        let usable = |store: &Arc<Store>| store.ingestable && store.enabled() && store.available();
        let stores: Vec<Arc<Store>> = match pinned {
            Some(name) => match node.stores.by_name(name) {
                Some(store) if usable(store) => vec![store.clone()],
                Some(store) => {
                    let why = if !store.enabled() {
                        "is disabled"
                    } else if !store.available() {
                        "is unavailable"
                    } else {
                        "is not ingestable"
                    };
                    return StoreChoice::none(Problem::StoreUnusable {
                        store: name.into(),
                        why,
                    });
                }
                None => {
                    return StoreChoice::none(Problem::StoreUnusable {
                        store: name.into(),
                        why: "does not exist",
                    });
                }
            },
            None => node
                .stores
                .all()
                .iter()
                .filter(|s| usable(s))
                .cloned()
                .collect(),
        };
        let mut candidates: Vec<Candidate> = stores
            .into_iter()
            .filter_map(|store| {
                // Less the room promised to uploads staged there.
                let promised = node.reservations.still_due_on(&store, &node.db);
                let free = store.space().ok()?.free.saturating_sub(promised);
                let device = store.root_dir().and_then(|root| root.meta()).ok()?.device;
                Some(Candidate {
                    store,
                    free,
                    device,
                })
            })
            .collect();
        if candidates.is_empty() {
            return StoreChoice::none(Problem::NoStore);
        }
        // Stable: configuration order within each group.
        candidates.sort_by_key(|c| c.device != dropbox_device);
        StoreChoice {
            candidates,
            none_because: None,
        }
    }

    fn none(problem: Problem) -> StoreChoice {
        StoreChoice {
            candidates: Vec::new(),
            none_because: Some(problem),
        }
    }

    /// The store for a file of `size` bytes, and its device; the room is counted.
    pub fn take(&mut self, size: u64) -> Result<(Arc<Store>, u64), Problem> {
        if let Some(problem) = &self.none_because {
            return Err(problem.clone());
        }
        let candidate = self
            .candidates
            .iter_mut()
            .find(|c| c.free >= size)
            .ok_or(Problem::NoRoom)?;
        candidate.free -= size;
        Ok((candidate.store.clone(), candidate.device))
    }
}
