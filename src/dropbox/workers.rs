//! The threads that ingest one drop-box's batches for its runner: `PREPARERS`
//! preparers, each reading, hashing and durably placing a batch (two at once, so
//! that one reads while the other waits for the database or a sync), and one
//! recorder, which records each placed batch and removes or moves its files aside.
//!
//! Invariants: every batch handed to the preparers is answered to the runner once
//! with `Message::Prepared` (the verdicts reached while preparing, and how many
//! placed groups went on), sent before those groups go on; every placed group is
//! answered once with `Message::Recorded`. When the workers are told to close,
//! they finish every batch already handed to them.

use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use super::ingest::{Placed, Verdict, prepare_batch, record_batch};
use super::layout::Layout;
use super::tracker::ReadyFile;
use super::watch::Message;
use crate::node::Node;

/// Batches prepared at once.
pub const PREPARERS: usize = 2;

/// The worker threads of one drop-box.
pub struct Workers {
    /// Batches for the preparers; `None` once closed.
    jobs: Option<Sender<Vec<ReadyFile>>>,
    threads: Vec<JoinHandle<()>>,
}

impl Workers {
    /// Starts the preparers and the recorder of `layout`'s drop-box; they answer
    /// on `answers`.
    pub fn start(node: &Arc<Node>, layout: &Layout, answers: &Sender<Message>) -> Workers {
        let (record, placed) = mpsc::channel::<Placed>();
        let mut threads = vec![spawn(
            format!("quire-dropbox-{}-record", layout.index),
            recorder(node.clone(), layout.clone(), placed, answers.clone()),
        )];
        let (jobs, queue) = mpsc::channel::<Vec<ReadyFile>>();
        let queue = Arc::new(Mutex::new(queue));
        for index in 0..PREPARERS {
            let preparer = Preparer {
                node: node.clone(),
                layout: layout.clone(),
                queue: queue.clone(),
                record: record.clone(),
                answers: answers.clone(),
            };
            threads.push(spawn(
                format!("quire-dropbox-{}-prepare-{index}", layout.index),
                move || preparer.run(),
            ));
        }
        Workers {
            jobs: Some(jobs),
            threads,
        }
    }

    /// Hands `batch` to the preparers; gives it back if none is left (they
    /// panicked), for `ingest_here`.
    pub fn prepare(&self, batch: Vec<ReadyFile>) -> Result<(), Vec<ReadyFile>> {
        match &self.jobs {
            Some(jobs) => jobs.send(batch).map_err(|mpsc::SendError(batch)| batch),
            None => Err(batch),
        }
    }

    /// No more batches: the threads end once they have answered for every batch
    /// handed to them.
    pub fn close(&mut self) {
        self.jobs = None;
    }

    /// Whether every thread has ended (after `close`, or by a panic).
    pub fn all_finished(&self) -> bool {
        self.threads.iter().all(JoinHandle::is_finished)
    }

    /// Waits for the threads to end.
    pub fn join(mut self) {
        self.close();
        for thread in self.threads {
            let _ = thread.join();
        }
    }
}

/// Prepares and records `batch` on the calling thread, when the workers are gone.
pub fn ingest_here(node: &Node, layout: &Layout, batch: Vec<ReadyFile>) -> Vec<(PathBuf, Verdict)> {
    let (mut verdicts, placed) = prepare_batch(node, layout, batch);
    for group in placed {
        verdicts.extend(record_batch(node, layout, group));
    }
    verdicts
}

fn spawn(name: String, work: impl FnOnce() + Send + 'static) -> JoinHandle<()> {
    std::thread::Builder::new()
        .name(name)
        .spawn(work)
        .expect("spawning a drop-box worker thread")
}

/// One preparer thread.
struct Preparer {
    node: Arc<Node>,
    layout: Layout,
    queue: Arc<Mutex<Receiver<Vec<ReadyFile>>>>,
    record: Sender<Placed>,
    answers: Sender<Message>,
}

impl Preparer {
    fn run(self) {
        loop {
            // Whoever holds the queue waits for the next batch; the other waits
            // for the queue.
            // A preparer that panicked leaves the queue usable.
            let next = self.queue.lock().unwrap_or_else(|e| e.into_inner()).recv();
            let Ok(batch) = next else {
                return;
            };
            let started = Instant::now();
            let count = batch.len();
            let (verdicts, placed) = prepare_batch(&self.node, &self.layout, batch);
            tracing::debug!(
                dropbox = %self.layout.root.display(),
                files = count,
                placed = placed.iter().map(|p| p.paths().count()).sum::<usize>(),
                ms = started.elapsed().as_millis() as u64,
                "drop-box batch placed"
            );
            // The runner waits for every answer before it ends.
            let _ = self.answers.send(Message::Prepared {
                verdicts,
                groups: placed.len(),
            });
            for group in placed {
                if let Err(mpsc::SendError(group)) = self.record.send(group) {
                    // The recorder ended (it panicked): record here.
                    let verdicts = record_batch(&self.node, &self.layout, group);
                    let _ = self.answers.send(Message::Recorded(verdicts));
                }
            }
        }
    }
}

/// The recorder thread: records placed groups in the order they come and answers
/// with their verdicts.
fn recorder(
    node: Arc<Node>,
    layout: Layout,
    placed: Receiver<Placed>,
    answers: Sender<Message>,
) -> impl FnOnce() {
    move || {
        for group in placed {
            let started = Instant::now();
            let verdicts = record_batch(&node, &layout, group);
            tracing::debug!(
                dropbox = %layout.root.display(),
                files = verdicts.len(),
                ms = started.elapsed().as_millis() as u64,
                "drop-box batch recorded"
            );
            let _ = answers.send(Message::Recorded(verdicts));
        }
    }
}
