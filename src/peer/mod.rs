//! A typed client for the Librarian v2 protocol (and quire's additions), shared by
//! the CLI and the node's own background work; and the registry of peer librarians
//! this node knows (`registry`: a client for a known peer with its unsealed
//! credentials).

mod address;
pub mod changes;
mod client;
mod clone_client;
mod error;
mod librarians_client;
pub mod registry;
pub mod remote_validation;
mod tasks_client;

pub use address::{check_peer_name, peer_base_url, split_authenticator};
pub use client::{Connection, LibrarianClient};
pub use error::PeerError;
