//! Drop-box ingest: directories (`[[dropbox]]` in the configuration) that
//! instruments drop files into. Each complete file is ingested once, in-process,
//! as `<prefix>/<relative path>`, and only then removed from the drop-box or moved
//! aside; a file that cannot be ingested stays where it is and is reported.
//!
//! Map: `layout` (paths and start-up checks), `filter` (ignore patterns), `watch`
//! (inotify events), `scan` (rescans), `tracker` (when a file is complete),
//! `probe` (is anyone writing a file), `ingest` (one batch, in the commit order),
//! `problems` (error records, once per problem), `recovery` (batches cut short by
//! a crash), `runner` (the thread of one drop-box), `workers` (the threads that
//! prepare and record its batches).
//!
//! Invariants: bytes are durable in a store before their record; a drop-box file
//! is removed or moved aside only after its record is durable; after start-up
//! recovery no bytes placed by a drop-box sit in a store without a record; every
//! path in a drop-box is reached from the drop-box directory through
//! `crate::fsroot`, so a directory swapped for a link is seen as the link (and
//! reported), never followed; a stored inode is never reachable from a drop-box
//! or `move_to` path (see `ingest::prepare`).

mod filter;
mod ingest;
mod layout;
mod probe;
mod problems;
mod recovery;
mod runner;
mod scan;
mod tracker;
mod watch;
mod workers;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::config::ConfigError;
use crate::db::DbError;
use crate::node::Node;
use problems::Reporter;
use runner::Runner;
use tracker::Tracker;
use watch::Message;

pub use recovery::{IntentRecovery, recover_intents};

/// Why the drop-boxes could not start.
#[derive(Debug, thiserror::Error)]
pub enum DropboxError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("cannot watch the drop-box {path}: {source}")]
    Watch {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("the drop-box start-up task failed: {0}")]
    Task(String),
}

/// The running drop-boxes of a node.
pub struct Dropboxes {
    stop: Arc<AtomicBool>,
    runners: Vec<(mpsc::Sender<Message>, JoinHandle<()>)>,
}

/// Takes back what batches cut short by a crash left in the stores, then starts
/// one thread per configured drop-box. Call after start-up recovery.
pub async fn spawn(node: Arc<Node>) -> Result<Dropboxes, DropboxError> {
    tokio::task::spawn_blocking(move || start(&node))
        .await
        .map_err(|e| DropboxError::Task(e.to_string()))?
}

fn start(node: &Arc<Node>) -> Result<Dropboxes, DropboxError> {
    recover_intents(node)?;
    let stop = Arc::new(AtomicBool::new(false));
    let mut runners = Vec::new();
    let layouts = layout::resolve_all(node)?;
    if layouts.is_empty() {
        return Ok(Dropboxes { stop, runners });
    }
    let max_batch = max_batch(layouts.len());
    for layout in layouts {
        let (sender, receiver) = mpsc::channel();
        let watcher = watch::start_watcher(&layout, sender.clone()).map_err(|source| {
            DropboxError::Watch {
                path: layout.root.clone(),
                source,
            }
        })?;
        tracing::info!(
            dropbox = %layout.root.display(),
            prefix = %layout.config.prefix,
            "watching drop-box"
        );
        let runner = Runner {
            node: node.clone(),
            tracker: Tracker::new(
                Duration::from_secs_f64(layout.config.settle_seconds),
                &layout.root,
            ),
            reporter: Reporter::load(node)?,
            receiver,
            sender: sender.clone(),
            watcher: Some(watcher),
            stop: stop.clone(),
            max_batch,
            layout,
        };
        let thread = std::thread::Builder::new()
            .name(format!("quire-dropbox-{}", runners.len()))
            .spawn(move || runner.run())
            .map_err(|e| DropboxError::Task(e.to_string()))?;
        runners.push((sender, thread));
    }
    Ok(Dropboxes { stop, runners })
}

/// Most files in one batch.
const MAX_BATCH: usize = 4096;

/// The batch size that keeps the descriptors of `dropboxes` drop-boxes' batches
/// in flight (up to `MAX_IN_FLIGHT` each, two descriptors per copied file) within
/// half of the open-file limit.
fn max_batch(dropboxes: usize) -> usize {
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .current
        .unwrap_or(u64::MAX);
    let in_flight = 2 * runner::MAX_IN_FLIGHT as u64;
    let per_batch = limit / 2 / (in_flight * dropboxes.max(1) as u64);
    let max = (per_batch as usize).clamp(16, MAX_BATCH);
    if max < MAX_BATCH {
        tracing::info!(
            open_file_limit = limit,
            max_batch = max,
            "the open-file limit keeps drop-box batches small; raise it (LimitNOFILE) for larger ones"
        );
    }
    max
}

impl Dropboxes {
    /// Stops every drop-box after the batch in hand and waits for them.
    pub async fn shutdown(self) {
        self.stop.store(true, Ordering::SeqCst);
        for (sender, _) in &self.runners {
            let _ = sender.send(Message::Stop);
        }
        let threads: Vec<JoinHandle<()>> = self.runners.into_iter().map(|(_, t)| t).collect();
        let _ = tokio::task::spawn_blocking(move || {
            for thread in threads {
                let _ = thread.join();
            }
        })
        .await;
    }
}
