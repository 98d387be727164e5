//! Local stores: directories on POSIX filesystems that hold each file at
//! `<root>/<name>`, with durable staging and commit.

mod dirs;
pub mod durable;
mod local;
mod registry;
mod unnamed;

pub use dirs::ParentDirs;
pub use local::{AvailabilityChange, Space, Store};
pub use registry::Stores;
pub use unnamed::UnnamedFile;
