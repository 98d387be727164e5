//! The set of stores a node runs, and the rule for choosing where new data goes.

use std::sync::Arc;

use super::Store;

/// Every store of the node, in configuration order.
#[derive(Debug, Clone, Default)]
pub struct Stores {
    stores: Vec<Arc<Store>>,
}

impl Stores {
    /// Wraps the configured stores.
    pub fn new(stores: Vec<Store>) -> Stores {
        Stores {
            stores: stores.into_iter().map(Arc::new).collect(),
        }
    }

    /// Every store.
    pub fn all(&self) -> &[Arc<Store>] {
        &self.stores
    }

    /// The store called `name`.
    pub fn by_name(&self, name: &str) -> Option<&Arc<Store>> {
        self.stores.iter().find(|s| s.name == name)
    }

    /// The store with `id`.
    pub fn by_id(&self, id: u64) -> Option<&Arc<Store>> {
        self.stores.iter().find(|s| s.id == id)
    }

    /// The first store that is ingestable, enabled, available and has room for
    /// `size` bytes, with its free space. Disabled and full stores are never chosen.
    pub fn choose_for_ingest(&self, size: u64) -> Option<(Arc<Store>, u64)> {
        self.stores.iter().find_map(|store| {
            if !(store.ingestable && store.enabled() && store.available()) {
                return None;
            }
            let free = store.space().ok()?.free;
            (free >= size).then(|| (store.clone(), free))
        })
    }
}
