//! `TaskContext`: what a running task may use (the node, the async runtime for peer
//! calls) and how it reports progress. Tasks run on a blocking thread.

use std::fmt::Display;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::node::Node;

/// Handed to a task for one run.
pub struct TaskContext {
    node: Arc<Node>,
    task_name: String,
    runtime: tokio::runtime::Handle,
    /// The soft timeout, as an instant; `None` means no limit.
    deadline: Option<Instant>,
    /// Set when the node begins to shut down.
    stopping: Arc<AtomicBool>,
    items_done: AtomicU64,
    errors: AtomicU64,
    last_error: Mutex<Option<String>>,
}

/// Why a run ended early, if it did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interruption {
    SoftTimeout,
    Shutdown,
}

impl TaskContext {
    pub(super) fn new(
        node: Arc<Node>,
        task_name: String,
        runtime: tokio::runtime::Handle,
        deadline: Option<Instant>,
        stopping: Arc<AtomicBool>,
    ) -> TaskContext {
        TaskContext {
            node,
            task_name,
            runtime,
            deadline,
            stopping,
            items_done: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            last_error: Mutex::new(None),
        }
    }

    /// The node the task works on.
    pub fn node(&self) -> &Arc<Node> {
        &self.node
    }

    /// The configured name of the task.
    pub fn task_name(&self) -> &str {
        &self.task_name
    }

    /// Whether the task may start another item: false once the soft timeout has
    /// passed or shutdown has begun. Tasks check it between items, never inside one,
    /// so an item is always finished.
    pub fn keep_going(&self) -> bool {
        self.interruption().is_none()
    }

    /// Why `keep_going` is false, if it is.
    pub fn interruption(&self) -> Option<Interruption> {
        if self.stopping.load(Ordering::SeqCst) {
            Some(Interruption::Shutdown)
        } else if self.deadline.is_some_and(|d| Instant::now() >= d) {
            Some(Interruption::SoftTimeout)
        } else {
            None
        }
    }

    /// Counts one item handled.
    pub fn item_done(&self) {
        self.items_done.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one failed item and logs why; the run goes on.
    pub fn item_failed(&self, what: impl Display) {
        let message = what.to_string();
        tracing::warn!(task = %self.task_name, "{message}");
        self.errors.fetch_add(1, Ordering::Relaxed);
        *self.last_error.lock().expect("last_error lock") = Some(message);
    }

    /// Runs an async operation (a peer call) from the task's blocking thread.
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }

    pub(super) fn counts(&self) -> (u64, u64, Option<String>) {
        (
            self.items_done.load(Ordering::Relaxed),
            self.errors.load(Ordering::Relaxed),
            self.last_error.lock().expect("last_error lock").clone(),
        )
    }
}
