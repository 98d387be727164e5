//! The part of a store's state that lives in the database; its paths and options
//! come from the configuration.

use serde::{Deserialize, Serialize};

/// A store as the database knows it. The id is stable across restarts and
/// configuration changes, and is what instances point at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreState {
    pub id: u64,
    pub name: String,
    /// Whether the store may receive new data (changed by `admin/stores/state_change`).
    pub enabled: bool,
}
