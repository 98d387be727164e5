//! quire: a self-contained data-management node speaking the Librarian v2 protocol.
//!
//! See ARCHITECTURE.md for the map of modules and the invariants each one keeps.

pub mod model;
pub mod accounts;
pub mod checksum;
pub mod config;
pub mod db;
pub mod store;
pub mod ingest;
pub mod node;
pub mod protocol;
pub mod http;
pub mod integrity;
pub mod cli;
