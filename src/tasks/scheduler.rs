//! The scheduler: one loop per configured task. Each task runs once at start-up and
//! then `every` after the start of its previous run; a task never overlaps itself (its
//! loop runs it, and only its loop); `run_now` asks for an extra run; shutdown lets
//! the item in hand finish.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, oneshot};
use tokio::task::JoinHandle;

use super::context::{Interruption, TaskContext};
use crate::config::tasks::TaskSpec;
use crate::model::Timestamp;
use crate::node::Node;
use crate::protocol::tasks::{RunReport, TaskStatus};

/// The node's tasks and what they last did. Lives in `Node`; the loops are started by
/// `spawn`.
pub struct Tasks {
    slots: Vec<Arc<TaskSlot>>,
    stopping: Arc<AtomicBool>,
}

struct TaskSlot {
    spec: TaskSpec,
    state: Mutex<SlotState>,
    /// Woken for `run_now` and for shutdown.
    wake: Notify,
}

#[derive(Default)]
struct SlotState {
    running_since: Option<Timestamp>,
    last: Option<RunReport>,
    next_run: Option<Timestamp>,
    /// Callers of `run_now` waiting for the next run to finish.
    waiters: Vec<oneshot::Sender<RunReport>>,
}

/// `run_now` named a task that is not configured.
#[derive(Debug, thiserror::Error)]
#[error("there is no task named '{0}'")]
pub struct UnknownTask(pub String);

impl Tasks {
    /// The configured tasks, none running yet.
    pub fn new(specs: Vec<TaskSpec>) -> Tasks {
        Tasks {
            slots: specs
                .into_iter()
                .map(|spec| {
                    Arc::new(TaskSlot {
                        spec,
                        state: Mutex::new(SlotState::default()),
                        wake: Notify::new(),
                    })
                })
                .collect(),
            stopping: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Every task's status, in configuration order.
    pub fn statuses(&self) -> Vec<TaskStatus> {
        self.slots
            .iter()
            .map(|slot| {
                let state = slot.state.lock().expect("task state lock");
                TaskStatus {
                    task_name: slot.spec.name.clone(),
                    task_type: slot.spec.kind.type_name().into(),
                    every_seconds: slot.spec.every.as_secs_f64(),
                    soft_timeout_seconds: slot.spec.soft_timeout.map(|d| d.as_secs_f64()),
                    running_since: state.running_since,
                    last_run: state.last.clone(),
                    next_run: state.next_run,
                }
            })
            .collect()
    }

    /// Asks for a run of `name` as soon as its loop is free (after the run in progress,
    /// if any). The receiver gets that run's report.
    pub fn run_now(&self, name: &str) -> Result<oneshot::Receiver<RunReport>, UnknownTask> {
        let slot = self
            .slots
            .iter()
            .find(|slot| slot.spec.name == name)
            .ok_or_else(|| UnknownTask(name.to_string()))?;
        let (sender, receiver) = oneshot::channel();
        slot.state
            .lock()
            .expect("task state lock")
            .waiters
            .push(sender);
        slot.wake.notify_one();
        Ok(receiver)
    }

    /// Tells every task to stop at its next item boundary and not to start again.
    pub fn begin_shutdown(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        for slot in &self.slots {
            slot.wake.notify_one();
        }
    }

    /// Starts one loop per task. Await the handles after `begin_shutdown` to let the
    /// items in hand finish.
    pub fn spawn(node: &Arc<Node>) -> Vec<JoinHandle<()>> {
        node.tasks
            .slots
            .iter()
            .map(|slot| tokio::spawn(task_loop(node.clone(), slot.clone())))
            .collect()
    }
}

async fn task_loop(node: Arc<Node>, slot: Arc<TaskSlot>) {
    let stopping = node.tasks.stopping.clone();
    loop {
        if stopping.load(Ordering::SeqCst) {
            break;
        }
        let started_at = Instant::now();
        let report = run_once(&node, &slot, stopping.clone()).await;
        let next = started_at + slot.spec.every;
        {
            let mut state = slot.state.lock().expect("task state lock");
            state.running_since = None;
            state.last = Some(report);
            state.next_run = Some(
                Timestamp::now()
                    .plus_micros(next.saturating_duration_since(Instant::now()).as_micros() as i64),
            );
        }
        tokio::select! {
            _ = tokio::time::sleep_until(next.into()) => {}
            _ = slot.wake.notified() => {}
        }
    }
    // Nobody will run this task again: answer whoever is still waiting.
    let waiters = std::mem::take(&mut slot.state.lock().expect("task state lock").waiters);
    for waiter in waiters {
        let _ = waiter.send(shutdown_report());
    }
}

/// Runs the task once on a blocking thread and answers the callers that asked for it
/// before it started.
async fn run_once(node: &Arc<Node>, slot: &Arc<TaskSlot>, stopping: Arc<AtomicBool>) -> RunReport {
    let started = Timestamp::now();
    let waiters = {
        let mut state = slot.state.lock().expect("task state lock");
        state.running_since = Some(started);
        state.next_run = None;
        std::mem::take(&mut state.waiters)
    };
    let begun = Instant::now();
    let context = Arc::new(TaskContext::new(
        node.clone(),
        slot.spec.name.clone(),
        tokio::runtime::Handle::current(),
        slot.spec.soft_timeout.map(|t| begun + t),
        stopping,
    ));
    tracing::debug!(task = %slot.spec.name, "task run starting");
    let kind = slot.spec.kind.clone();
    let ran = {
        let context = context.clone();
        tokio::task::spawn_blocking(move || super::run_task(&context, &kind)).await
    };
    let outcome = match ran {
        Ok(Ok(())) => match context.interruption() {
            Some(Interruption::SoftTimeout) => "soft timeout reached".to_string(),
            Some(Interruption::Shutdown) => "stopped for shutdown".to_string(),
            None => "completed".to_string(),
        },
        Ok(Err(error)) => format!("failed: {error:#}"),
        Err(panic) => format!("failed: the task panicked ({panic})"),
    };
    let (items_done, errors, last_error) = context.counts();
    let report = RunReport {
        started,
        duration_seconds: begun.elapsed().as_secs_f64(),
        items_done,
        errors,
        last_error,
        outcome,
    };
    if report.outcome.starts_with("failed") || report.errors > 0 {
        tracing::warn!(task = %slot.spec.name, ?report, "task run finished with errors");
    } else {
        tracing::info!(task = %slot.spec.name, items = report.items_done,
            seconds = report.duration_seconds, outcome = %report.outcome, "task run finished");
    }
    for waiter in waiters {
        let _ = waiter.send(report.clone());
    }
    report
}

fn shutdown_report() -> RunReport {
    RunReport {
        started: Timestamp::now(),
        duration_seconds: 0.0,
        items_done: 0,
        errors: 0,
        last_error: None,
        outcome: "stopped for shutdown".into(),
    }
}

/// Waits for task loops to finish their items in hand, for at most `grace`.
pub async fn wait_for(handles: Vec<JoinHandle<()>>, grace: Duration) {
    let all = futures_util::future::join_all(handles);
    if tokio::time::timeout(grace, all).await.is_err() {
        tracing::warn!("background tasks still running after the shutdown grace period");
    }
}
