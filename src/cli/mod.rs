//! The `quire` command line: `serve` runs a node; every other subcommand is a client
//! of a node's HTTP API.

pub mod serve;
