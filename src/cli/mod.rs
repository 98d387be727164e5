//! The `quire` command line: `serve` runs a node; every other subcommand is a client
//! of a node's HTTP API.

pub mod connection;
pub mod librarians;
pub mod manifest;
pub mod output;
pub mod ping;
pub mod search;
pub mod serve;
pub mod stores;
pub mod tasks;
pub mod upload;
pub mod users;
pub mod validate;

/// Runs a client subcommand's async body on a single-threaded runtime.
pub(crate) fn block_on(
    body: impl std::future::Future<Output = anyhow::Result<()>>,
) -> anyhow::Result<()> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(body)
}
