//! The thread that runs one drop-box: it applies watcher events to the tracker,
//! rescans (at start, after lost events, on the rescan interval), and hands
//! batches of complete files to its workers (`workers`), which prepare them up to
//! their durable placement and record them, while the runner goes on taking
//! events and gathering the next batch.
//!
//! Invariants: the watcher exists before the first rescan, so a file dropped
//! during start-up is seen by one or the other; a file is in at most one batch at
//! a time; at most `PREPARERS` batches are being prepared and at most
//! `MAX_IN_FLIGHT` answers are awaited; a stop request is honoured between
//! batches, and every batch handed out is recorded (or taken back) before the
//! runner ends.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use super::ingest::Verdict;
use super::layout::Layout;
use super::problems::{Problem, Reporter};
use super::scan::{Found, walk};
use super::tracker::Tracker;
use super::watch::{FollowUp, Message, Watcher, apply, start_watcher};
use super::workers::{PREPARERS, Workers, ingest_here};
use crate::node::Node;

/// Most answers awaited from the workers: batches being prepared, and placed
/// groups waiting for or in the recorder. Each holds a descriptor per file.
pub const MAX_IN_FLIGHT: usize = 3;
/// A batch waits for more events until none came for this long...
const GATHER_QUIET: Duration = Duration::from_millis(5);
/// ...or it has waited this long.
const GATHER_MAX: Duration = Duration::from_millis(50);
/// Events applied before the runner looks at its other work (it takes whole
/// messages, so a round may apply a few more).
const MAX_EVENTS_PER_ROUND: usize = 65_536;

/// One drop-box's state, owned by its thread.
pub struct Runner {
    pub node: Arc<Node>,
    pub layout: Layout,
    pub tracker: Tracker,
    pub reporter: Reporter,
    pub receiver: Receiver<Message>,
    /// For a watcher made again after the drop-box directory came back, and for
    /// the recorder's answers.
    pub sender: Sender<Message>,
    pub watcher: Option<Watcher>,
    pub stop: Arc<AtomicBool>,
    /// Most files in one batch (bounded by the open-file limit: each file of a
    /// batch in flight holds a descriptor).
    pub max_batch: usize,
}

/// What the runner does between events.
struct Schedule {
    next_tick: Instant,
    next_rescan: Instant,
    tick: Duration,
    rescan_every: Duration,
    /// Batches handed to the preparers and not answered by them yet.
    preparing: usize,
    /// Answers awaited: batches being prepared, and placed groups not recorded.
    in_flight: usize,
}

impl Schedule {
    /// Whether another batch may be handed out.
    fn can_prepare(&self) -> bool {
        self.preparing < PREPARERS && self.in_flight < MAX_IN_FLIGHT
    }
}

impl Runner {
    /// Runs until told to stop.
    pub fn run(mut self) {
        let mut workers = Workers::start(&self.node, &self.layout, &self.sender);
        let settle = Duration::from_secs_f64(self.layout.config.settle_seconds);
        let rescan_every = Duration::from_secs_f64(self.layout.config.rescan_seconds);
        let tick = (settle / 4).clamp(Duration::from_millis(50), Duration::from_millis(500));
        let mut schedule = Schedule {
            next_tick: Instant::now() + tick,
            next_rescan: Instant::now() + rescan_every,
            tick,
            rescan_every,
            preparing: 0,
            in_flight: 0,
        };
        self.rescan(false);
        while !self.stop.load(Ordering::SeqCst) && self.round(&mut schedule, &workers) {}
        // Every batch handed out is recorded or taken back before the runner ends.
        workers.close();
        while schedule.in_flight > 0 {
            match self.receiver.recv_timeout(Duration::from_millis(100)) {
                Ok(message @ (Message::Prepared { .. } | Message::Recorded(_))) => {
                    self.handle(message, &mut FollowUp::default(), &mut schedule, &mut 0);
                }
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) if !workers.all_finished() => {}
                Err(_) => {
                    // A worker died (it panicked): start-up recovery takes back
                    // what its batches placed.
                    tracing::error!(
                        batches = schedule.in_flight,
                        "drop-box batches were left unrecorded"
                    );
                    break;
                }
            }
        }
        workers.join();
        tracing::info!(dropbox = %self.layout.root.display(), "drop-box stopped");
    }

    /// One round: events, follow-ups, settling, rescans, and a batch if one can
    /// go. Returns false when told to stop.
    fn round(&mut self, schedule: &mut Schedule, workers: &Workers) -> bool {
        self.tracker.new_round();
        let can_prepare = self.tracker.ready_len() > 0 && schedule.can_prepare();
        let wait = if can_prepare {
            Duration::ZERO
        } else {
            let next = schedule.next_tick.min(schedule.next_rescan);
            next.saturating_duration_since(Instant::now())
        };
        let mut follow = FollowUp::default();
        if !self.receive(wait, &mut follow, schedule) || !self.gather(&mut follow, schedule) {
            return false;
        }
        let lost = follow.rescan;
        self.follow_up(follow);
        let now = Instant::now();
        if now >= schedule.next_tick {
            self.tracker.settle(now);
            schedule.next_tick = now + schedule.tick;
        }
        if lost || now >= schedule.next_rescan {
            self.rescan(lost);
            schedule.next_rescan = Instant::now() + schedule.rescan_every;
        }
        if self.tracker.ready_len() > 0
            && schedule.can_prepare()
            && !self.stop.load(Ordering::SeqCst)
        {
            self.prepare(schedule, workers);
        }
        true
    }

    /// Waits up to `wait` for a message, then handles the messages already
    /// queued (up to about `MAX_EVENTS_PER_ROUND` events). Returns false when told
    /// to stop.
    fn receive(&mut self, wait: Duration, follow: &mut FollowUp, schedule: &mut Schedule) -> bool {
        let first = match self.receiver.recv_timeout(wait) {
            Ok(message) => message,
            Err(RecvTimeoutError::Timeout) => return true,
            Err(RecvTimeoutError::Disconnected) => return false,
        };
        let mut applied = 0;
        if !self.handle(first, follow, schedule, &mut applied) {
            return false;
        }
        while applied < MAX_EVENTS_PER_ROUND {
            match self.receiver.try_recv() {
                Ok(message) => {
                    if !self.handle(message, follow, schedule, &mut applied) {
                        return false;
                    }
                }
                Err(_) => break,
            }
        }
        true
    }

    /// Handles one message, counting the events it held onto `applied`. Returns
    /// false when told to stop.
    fn handle(
        &mut self,
        message: Message,
        follow: &mut FollowUp,
        schedule: &mut Schedule,
        applied: &mut usize,
    ) -> bool {
        match message {
            Message::Events(events) => {
                *applied += events.len().max(1);
                for event in events {
                    apply(&mut self.tracker, event, follow);
                }
            }
            Message::Prepared { verdicts, groups } => {
                schedule.preparing -= 1;
                // The batch's answer is in; its placed groups' are awaited.
                schedule.in_flight = schedule.in_flight + groups - 1;
                self.settle_verdicts(verdicts);
            }
            Message::Recorded(verdicts) => {
                schedule.in_flight -= 1;
                self.settle_verdicts(verdicts);
            }
            Message::Stop => return false,
        }
        true
    }

    /// Lets a small batch grow while events keep coming (a burst is under way).
    /// Returns false when told to stop.
    fn gather(&mut self, follow: &mut FollowUp, schedule: &mut Schedule) -> bool {
        let started = Instant::now();
        while (1..self.max_batch).contains(&self.tracker.ready_len())
            && started.elapsed() < GATHER_MAX
        {
            match self.receiver.recv_timeout(GATHER_QUIET) {
                Ok(message) => {
                    if !self.handle(message, follow, schedule, &mut 0)
                        || !self.receive(Duration::ZERO, follow, schedule)
                    {
                        return false;
                    }
                }
                Err(_) => return true,
            }
            self.walk_new_dirs(follow);
        }
        true
    }

    /// Walks directories that appeared, and notes a lost drop-box directory.
    fn follow_up(&mut self, mut follow: FollowUp) {
        self.walk_new_dirs(&mut follow);
        if follow.root_lost {
            tracing::warn!(dropbox = %self.layout.root.display(), "the drop-box directory went away; watching it again when it is back");
            self.watcher = None;
        }
    }

    /// Walks the directories that appeared. The watcher watched each one (and
    /// everything below it) before it reported it, so a file is either there for
    /// this walk or made later, under a watch: one walk misses nothing.
    fn walk_new_dirs(&mut self, follow: &mut FollowUp) {
        for dir in std::mem::take(&mut follow.moved_in_dirs) {
            walk(&self.layout, &dir, Found::MovedIn, &mut self.tracker);
        }
        for dir in std::mem::take(&mut follow.created_dirs) {
            walk(&self.layout, &dir, Found::InNewDirectory, &mut self.tracker);
        }
    }

    /// Walks the whole drop-box; after lost events, first forgets what events
    /// said. Watches the directory again if it had gone away.
    fn rescan(&mut self, events_lost: bool) {
        let root = self.layout.root.clone();
        if self.watcher.is_none() && root.is_dir() {
            match start_watcher(&self.layout, self.sender.clone()) {
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

    /// Hands one batch of ready files to the preparers (or, when they are gone,
    /// ingests it here).
    fn prepare(&mut self, schedule: &mut Schedule, workers: &Workers) {
        let batch = self.tracker.take_ready(self.max_batch);
        if batch.is_empty() {
            return;
        }
        match workers.prepare(batch) {
            Ok(()) => {
                schedule.preparing += 1;
                schedule.in_flight += 1;
            }
            Err(batch) => {
                let verdicts = ingest_here(&self.node, &self.layout, batch);
                self.settle_verdicts(verdicts);
            }
        }
    }

    /// Tells the tracker how each file ended, and reports the problems.
    fn settle_verdicts(&mut self, verdicts: Vec<(PathBuf, Verdict)>) {
        if verdicts.is_empty() {
            return;
        }
        let now = Instant::now();
        let count = verdicts.len();
        let mut ingested = 0;
        let mut problems: Vec<(PathBuf, Problem)> = Vec::new();
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
            "drop-box files done"
        );
    }
}
