//! The thread that runs one drop-box: it applies watcher events to the tracker,
//! rescans (at start, after lost events, on the rescan interval), and ingests
//! complete files in batches as large as the events in flight allow.
//!
//! Invariants: the watcher exists before the first rescan, so a file dropped
//! during start-up is seen by one or the other; one batch at a time, and a stop
//! request is honoured between batches, never inside one.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use notify::RecommendedWatcher;

use super::ingest::{Verdict, ingest_batch};
use super::layout::Layout;
use super::problems::{Problem, Reporter};
use super::scan::{Found, walk};
use super::tracker::Tracker;
use super::watch::{FollowUp, Message, apply, start_watcher};
use crate::node::Node;

/// Most files in one batch (one intent and one record transaction each).
const MAX_BATCH: usize = 4096;
/// A batch waits for more events until none came for this long...
const GATHER_QUIET: Duration = Duration::from_millis(5);
/// ...or it has waited this long.
const GATHER_MAX: Duration = Duration::from_millis(50);
/// Most events applied before the runner looks at its other work.
const MAX_EVENTS_PER_ROUND: usize = 65_536;

/// One drop-box's state, owned by its thread.
pub struct Runner {
    pub node: Arc<Node>,
    pub layout: Layout,
    pub tracker: Tracker,
    pub reporter: Reporter,
    pub receiver: Receiver<Message>,
    /// For a watcher made again after the drop-box directory came back.
    pub sender: Sender<Message>,
    pub watcher: Option<RecommendedWatcher>,
    pub stop: Arc<AtomicBool>,
}

impl Runner {
    /// Runs until told to stop.
    pub fn run(mut self) {
        let settle = Duration::from_secs_f64(self.layout.config.settle_seconds);
        let rescan_every = Duration::from_secs_f64(self.layout.config.rescan_seconds);
        let tick = (settle / 4).clamp(Duration::from_millis(50), Duration::from_millis(500));
        self.rescan(false);
        let mut next_tick = Instant::now() + tick;
        let mut next_rescan = Instant::now() + rescan_every;
        while !self.stop.load(Ordering::SeqCst) {
            let wait = if self.tracker.ready_len() > 0 {
                Duration::ZERO
            } else {
                next_tick
                    .min(next_rescan)
                    .saturating_duration_since(Instant::now())
            };
            let mut follow = FollowUp::default();
            if !self.receive(wait, &mut follow) {
                break;
            }
            self.gather(&mut follow);
            let lost = follow.rescan;
            self.follow_up(follow);
            let now = Instant::now();
            if now >= next_tick {
                self.tracker.settle(now);
                next_tick = now + tick;
            }
            if lost || now >= next_rescan {
                self.rescan(lost);
                next_rescan = Instant::now() + rescan_every;
            }
            if self.tracker.ready_len() > 0 && !self.stop.load(Ordering::SeqCst) {
                self.ingest();
            }
        }
        tracing::info!(dropbox = %self.layout.root.display(), "drop-box stopped");
    }

    /// Waits up to `wait` for a message, then applies every event already queued.
    /// Returns false when told to stop.
    fn receive(&mut self, wait: Duration, follow: &mut FollowUp) -> bool {
        let first = match self.receiver.recv_timeout(wait) {
            Ok(message) => message,
            Err(RecvTimeoutError::Timeout) => return true,
            Err(RecvTimeoutError::Disconnected) => return false,
        };
        if !self.handle(first, follow) {
            return false;
        }
        for _ in 0..MAX_EVENTS_PER_ROUND {
            match self.receiver.try_recv() {
                Ok(message) => {
                    if !self.handle(message, follow) {
                        return false;
                    }
                }
                Err(_) => break,
            }
        }
        true
    }

    fn handle(&mut self, message: Message, follow: &mut FollowUp) -> bool {
        match message {
            Message::Event(event) => {
                apply(&self.layout, &mut self.tracker, event, follow);
                true
            }
            Message::Stop => false,
        }
    }

    /// Lets a small batch grow while events keep coming (a burst is under way).
    fn gather(&mut self, follow: &mut FollowUp) {
        let started = Instant::now();
        while (1..MAX_BATCH).contains(&self.tracker.ready_len()) && started.elapsed() < GATHER_MAX {
            match self.receiver.recv_timeout(GATHER_QUIET) {
                Ok(message) => {
                    if !self.handle(message, follow) {
                        self.stop.store(true, Ordering::SeqCst);
                        return;
                    }
                    if !self.receive(Duration::ZERO, follow) {
                        self.stop.store(true, Ordering::SeqCst);
                        return;
                    }
                }
                Err(_) => return,
            }
            self.walk_new_dirs(follow);
        }
    }

    /// Walks directories that appeared, and notes a lost drop-box directory.
    fn follow_up(&mut self, mut follow: FollowUp) {
        self.walk_new_dirs(&mut follow);
        if follow.root_lost {
            tracing::warn!(dropbox = %self.layout.root.display(), "the drop-box directory went away; watching it again when it is back");
            self.watcher = None;
        }
    }

    fn walk_new_dirs(&mut self, follow: &mut FollowUp) {
        for dir in std::mem::take(&mut follow.moved_in_dirs) {
            walk(&self.layout, &dir, Found::MovedIn, &mut self.tracker);
        }
        for dir in std::mem::take(&mut follow.created_dirs) {
            walk(&self.layout, &dir, Found::Settling, &mut self.tracker);
        }
    }

    /// Walks the whole drop-box; after lost events, first forgets what events
    /// said. Watches the directory again if it had gone away.
    fn rescan(&mut self, events_lost: bool) {
        let root = self.layout.root.clone();
        if self.watcher.is_none() && root.is_dir() {
            match start_watcher(&root, self.sender.clone()) {
                Ok(watcher) => self.watcher = Some(watcher),
                Err(error) => {
                    tracing::warn!(dropbox = %root.display(), %error, "cannot watch the drop-box")
                }
            }
        }
        if events_lost {
            tracing::warn!(dropbox = %root.display(), "drop-box events were lost; rescanning");
            self.tracker.events_lost();
        }
        self.tracker.rescan_started();
        let started = Instant::now();
        let files = walk(&self.layout, &root, Found::Settling, &mut self.tracker);
        tracing::debug!(
            dropbox = %root.display(),
            files,
            known = self.tracker.known_len(),
            ms = started.elapsed().as_millis() as u64,
            "drop-box rescan done"
        );
    }

    /// Ingests one batch of ready files and tells the tracker how each ended.
    fn ingest(&mut self) {
        let batch = self.tracker.take_ready(MAX_BATCH);
        if batch.is_empty() {
            return;
        }
        let started = Instant::now();
        let count = batch.len();
        let verdicts = ingest_batch(&self.node, &self.layout, batch);
        let now = Instant::now();
        let mut ingested = 0;
        let mut problems: Vec<(std::path::PathBuf, Problem)> = Vec::new();
        for (path, verdict) in verdicts {
            match verdict {
                Verdict::Ingested | Verdict::AlreadyIngested => {
                    ingested += usize::from(verdict == Verdict::Ingested);
                    self.tracker.done(&path);
                }
                Verdict::Gone => self.tracker.done(&path),
                Verdict::NotReady(fingerprint) => self.tracker.not_ready(&path, fingerprint, now),
                Verdict::Failed(problem, fingerprint) => {
                    self.tracker.failed(&path, fingerprint);
                    problems.push((path, problem));
                }
            }
        }
        if !problems.is_empty() {
            let found: Vec<(&Path, &Problem)> = problems
                .iter()
                .map(|(p, problem)| (p.as_path(), problem))
                .collect();
            self.reporter.report(&self.node, &self.layout.root, &found);
        }
        tracing::info!(
            dropbox = %self.layout.root.display(),
            files = count,
            ingested,
            refused = problems.len(),
            ms = started.elapsed().as_millis() as u64,
            "drop-box batch done"
        );
    }
}
