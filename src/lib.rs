//! quire: a self-contained data-management node speaking the Librarian v2 protocol.
//!
//! See ARCHITECTURE.md for the map of modules and the invariants each one keeps.

pub mod accounts;
pub mod checksum;
pub mod cli;
pub mod clones;
pub mod config;
pub mod db;
pub mod dropbox;
pub mod fsroot;
pub mod http;
pub mod ingest;
pub mod integrity;
pub mod model;
pub mod node;
pub mod peer;
#[cfg(test)]
mod power_loss;
pub mod protocol;
pub mod store;
pub mod tasks;
pub mod transfer;
