//! The threads that run one drop-box. The runner applies watcher events to the
//! tracker, rescans (at start, after lost events, on the rescan interval), and
//! prepares batches of complete files up to their durable placement; its
//! recorder records each placed batch and removes or moves its files aside,
//! while the runner prepares the next one.
//!
//! Invariants: the watcher exists before the first rescan, so a file dropped
//! during start-up is seen by one or the other; a file is in at most one batch at
//! a time; at most `MAX_IN_FLIGHT` placed batches wait for the recorder; a stop
//! request is honoured between batches, and every placed batch is recorded (or
//! taken back) before the runner ends.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::ingest::{Placed, Verdict, prepare_batch, record_batch};
use super::layout::Layout;
use super::problems::{Problem, Reporter};
use super::scan::{Found, walk};
use super::tracker::Tracker;
use super::watch::{FollowUp, Message, Watcher, apply, start_watcher};
use crate::node::Node;

/// Most placed batches waiting for the recorder.
const MAX_IN_FLIGHT: usize = 2;
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
    /// Placed batches sent to the recorder and not answered yet.
    in_flight: usize,
}

impl Runner {
    /// Runs until told to stop.
    pub fn run(mut self) {
        let (jobs, recorder) = self.start_recorder();
        let settle = Duration::from_secs_f64(self.layout.config.settle_seconds);
        let rescan_every = Duration::from_secs_f64(self.layout.config.rescan_seconds);
        let tick = (settle / 4).clamp(Duration::from_millis(50), Duration::from_millis(500));
        let mut schedule = Schedule {
            next_tick: Instant::now() + tick,
            next_rescan: Instant::now() + rescan_every,
            tick,
            rescan_every,
            in_flight: 0,
        };
        self.rescan(false);
        while !self.stop.load(Ordering::SeqCst) && self.round(&mut schedule, &jobs) {}
        // Every placed batch is recorded or taken back before the runner ends.
        drop(jobs);
        while schedule.in_flight > 0 {
            match self.receiver.recv_timeout(Duration::from_millis(100)) {
                Ok(Message::Recorded(verdicts)) => {
                    schedule.in_flight -= 1;
                    self.settle_verdicts(verdicts);
                }
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) if !recorder.is_finished() => {}
                Err(_) => {
                    // The recorder died (it panicked): start-up recovery takes back
                    // what its batches placed.
                    tracing::error!(
                        batches = schedule.in_flight,
                        "drop-box batches were left unrecorded"
                    );
                    break;
                }
            }
        }
        let _ = recorder.join();
        tracing::info!(dropbox = %self.layout.root.display(), "drop-box stopped");
    }

    /// One round: events, follow-ups, settling, rescans, and a batch if one can
    /// go. Returns false when told to stop.
    fn round(&mut self, schedule: &mut Schedule, jobs: &Sender<Placed>) -> bool {
        self.tracker.new_round();
        let can_prepare = self.tracker.ready_len() > 0 && schedule.in_flight < MAX_IN_FLIGHT;
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
            && schedule.in_flight < MAX_IN_FLIGHT
            && !self.stop.load(Ordering::SeqCst)
        {
            self.prepare(schedule, jobs);
        }
        true
    }

    /// The recorder thread: records placed batches in order and answers with
    /// their verdicts.
    fn start_recorder(&self) -> (Sender<Placed>, JoinHandle<()>) {
        let (jobs, queue) = mpsc::channel::<Placed>();
        let (node, layout, answers) = (self.node.clone(), self.layout.clone(), self.sender.clone());
        let thread = std::thread::Builder::new()
            .name(format!("quire-dropbox-{}-record", self.layout.index))
            .spawn(move || {
                for placed in queue {
                    let started = Instant::now();
                    let verdicts = record_batch(&node, &layout, placed);
                    tracing::debug!(
                        dropbox = %layout.root.display(),
                        files = verdicts.len(),
                        ms = started.elapsed().as_millis() as u64,
                        "drop-box batch recorded"
                    );
                    // The runner waits for every answer before it ends.
                    let _ = answers.send(Message::Recorded(verdicts));
                }
            })
            .expect("spawning a drop-box recorder thread");
        (jobs, thread)
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

    /// Prepares one batch of ready files (up to their durable placement) and
    /// hands what was placed to the recorder.
    fn prepare(&mut self, schedule: &mut Schedule, jobs: &Sender<Placed>) {
        let batch = self.tracker.take_ready(self.max_batch);
        if batch.is_empty() {
            return;
        }
        let started = Instant::now();
        let count = batch.len();
        let (verdicts, placed) = prepare_batch(&self.node, &self.layout, batch);
        let placed_files: usize = placed.iter().map(|p| p.paths().count()).sum();
        tracing::debug!(
            dropbox = %self.layout.root.display(),
            files = count,
            placed = placed_files,
            ms = started.elapsed().as_millis() as u64,
            "drop-box batch placed"
        );
        self.settle_verdicts(verdicts);
        for group in placed {
            match jobs.send(group) {
                Ok(()) => schedule.in_flight += 1,
                // The recorder ended (it panicked): record here.
                Err(mpsc::SendError(group)) => {
                    let verdicts = record_batch(&self.node, &self.layout, group);
                    self.settle_verdicts(verdicts);
                }
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
