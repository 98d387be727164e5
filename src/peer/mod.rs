//! A typed client for the Librarian v2 protocol (and quire's additions), shared by
//! the CLI and the node's own background work.

mod client;
mod clone_client;
mod error;
mod tasks_client;

pub use client::{Connection, LibrarianClient};
pub use error::PeerError;
