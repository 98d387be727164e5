//! `warn_disabled_timer`: one warning when a destination's transfers stay
//! disabled that long, counted from the first run of the task that found them
//! disabled in this process; enabling them again resets the watch.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

use crate::db::DbError;
use crate::db::repo::errors;
use crate::model::{ErrorCategory, ErrorSeverity};
use crate::tasks::TaskContext;

/// Per task: since when its destination has been seen disabled, and whether the
/// warning was raised.
static SEEN_DISABLED: LazyLock<Mutex<HashMap<String, (Instant, bool)>>> =
    LazyLock::new(Default::default);

/// The watch of one `send_clone` task.
pub struct DisabledWatch {
    task: String,
}

impl DisabledWatch {
    pub fn of(task: &str) -> DisabledWatch {
        DisabledWatch {
            task: task.to_string(),
        }
    }

    /// The destination's transfers are enabled (again).
    pub fn enabled(&self) {
        lock().remove(&self.task);
    }

    /// The destination's transfers are disabled (or it is unknown): raises the
    /// warning once `timer` has passed since this was first seen.
    pub fn disabled(
        &self,
        context: &TaskContext,
        destination: &str,
        timer: Option<Duration>,
    ) -> Result<(), DbError> {
        let due = {
            let mut seen = lock();
            let (since, warned) = seen
                .entry(self.task.clone())
                .or_insert((Instant::now(), false));
            let due = timer.is_some_and(|t| since.elapsed() >= t) && !*warned;
            if due {
                *warned = true;
            }
            due
        };
        if !due {
            tracing::debug!(%destination, "transfers to the destination are disabled; nothing sent");
            return Ok(());
        }
        let message = format!(
            "transfers to {destination} have been disabled for longer than the task {}'s \
             warn_disabled_timer; nothing is sent to it until `quire librarians transfers \
             {destination} enable`",
            self.task
        );
        tracing::warn!(%destination, task = %self.task, "{message}");
        let task = self.task.clone();
        context.node().db.write_blocking(move |txn| {
            errors::raise(
                txn,
                ErrorSeverity::Warning,
                ErrorCategory::LibrarianNetworkAvailability,
                message,
                Some(task),
            )?;
            Ok(Ok::<_, DbError>(()))
        })
    }
}

fn lock() -> std::sync::MutexGuard<'static, HashMap<String, (Instant, bool)>> {
    SEEN_DISABLED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
