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

    /// Whether store `id` is configured and its root is here now: what start-up
    /// recovery needs before it may decide that a placed file is gone.
    pub fn is_here(&self, id: u64) -> bool {
        self.by_id(id).is_some_and(|s| s.available())
    }

    /// Ids of the node's stores that are unavailable now (unplugged drives). The
    /// copies they hold are away, not lost: they are reported unavailable and are
    /// neither hashed nor counted as corrupt until the store comes back.
    pub fn away_ids(&self) -> Vec<u64> {
        self.stores
            .iter()
            .filter(|s| !s.available())
            .map(|s| s.id)
            .collect()
    }

    /// Why no store can take `size` bytes, one clause per store.
    pub fn why_no_room(&self, size: u64) -> String {
        let reasons: Vec<String> = self
            .stores
            .iter()
            .map(|store| {
                let why = if !store.ingestable {
                    "not ingestable".to_string()
                } else if !store.enabled() {
                    "disabled".to_string()
                } else if !store.available() {
                    "unavailable".to_string()
                } else {
                    match store.space() {
                        Ok(space) if space.free < size => format!("{} bytes free", space.free),
                        Ok(_) => "has room".to_string(),
                        Err(error) => format!("free space unknown: {error}"),
                    }
                };
                format!("{} is {why}", store.name)
            })
            .collect();
        if reasons.is_empty() {
            "the node has no stores".into()
        } else {
            reasons.join("; ")
        }
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
