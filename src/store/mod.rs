//! Local stores: directories on POSIX filesystems that hold each file at
//! `<root>/<name>`, with durable staging and commit.

mod commit;
mod dirs;
pub mod durable;
mod local;
mod registry;
mod shared_sync;
mod staging_pool;
mod unnamed;

pub use commit::{Changed, StagedEntry, changed};
pub use dirs::ParentDirs;
pub use local::{AvailabilityChange, Space, Store};
pub use registry::Stores;
pub use staging_pool::GivenBack;
pub use unnamed::UnnamedFile;
