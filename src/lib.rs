//! quire: a self-contained data-management node speaking the Librarian v2 protocol.
//!
//! See ARCHITECTURE.md for the map of modules and the invariants each one keeps.

pub mod model;
pub mod checksum;
pub mod db;
