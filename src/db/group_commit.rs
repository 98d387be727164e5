//! Group commit: one writer thread applies the write jobs of many callers in a single
//! durable redb transaction, so that thousands of small changes per second cost a
//! handful of fsyncs instead of one each.
//!
//! Invariants:
//! - a caller hears `Ok` only after the transaction holding its change is durable;
//! - a job that refuses (inner `Err`) has written nothing, so the other jobs of its
//!   batch commit unaffected;
//! - a job that fails with a storage error (outer `Err`) or panics aborts the whole
//!   batch, and every caller of that batch hears the error.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::{Arc, mpsc};

use tokio::sync::oneshot;

use super::{DbError, WriteTxn};

/// What a write job returns: outer `Err` for a storage failure, inner `Err` for a
/// refusal that changed nothing.
pub type WriteJobResult<R, E> = Result<Result<R, E>, DbError>;

/// Most jobs applied in one transaction.
const MAX_BATCH: usize = 4096;

/// Test builds only: called on the writer thread after each durable commit and
/// before any caller of it hears `Ok`, with the database file's path, so that the
/// power-loss tests can keep a copy of the database as each commit left it.
#[cfg(test)]
pub static COMMIT_OBSERVER: std::sync::OnceLock<fn(&Path)> = std::sync::OnceLock::new();

trait Job: Send {
    fn run(&mut self, transaction: &WriteTxn) -> Result<(), DbError>;
    fn finish(self: Box<Self>, outcome: Result<(), DbError>);
}

struct TypedJob<F, R, E> {
    work: Option<F>,
    result: Option<Result<R, E>>,
    reply: oneshot::Sender<Result<R, E>>,
}

impl<F, R, E> Job for TypedJob<F, R, E>
where
    F: FnOnce(&WriteTxn) -> WriteJobResult<R, E> + Send,
    R: Send,
    E: From<DbError> + Send,
{
    fn run(&mut self, transaction: &WriteTxn) -> Result<(), DbError> {
        let work = self.work.take().expect("a job runs once");
        self.result = Some(work(transaction)?);
        Ok(())
    }

    fn finish(self: Box<Self>, outcome: Result<(), DbError>) {
        let answer = match (outcome, self.result) {
            (Ok(()), Some(result)) => result,
            (Ok(()), None) => Err(DbError::WriterGone.into()),
            (Err(error), _) => Err(error.into()),
        };
        // The caller may have gone away; its change is committed regardless.
        let _ = self.reply.send(answer);
    }
}

/// Sends write jobs to the writer thread.
#[derive(Clone)]
pub struct GroupCommitter {
    jobs: mpsc::Sender<Box<dyn Job>>,
}

impl GroupCommitter {
    /// Starts the writer thread for `database`, whose file is `path`. It stops when
    /// the last handle drops.
    pub fn start(database: Arc<redb::Database>, path: &Path) -> GroupCommitter {
        let (jobs, receiver) = mpsc::channel::<Box<dyn Job>>();
        let path = path.to_path_buf();
        std::thread::Builder::new()
            .name("quire-db-writer".into())
            .spawn(move || writer_loop(&database, &path, &receiver))
            .expect("spawning the database writer thread");
        GroupCommitter { jobs }
    }

    fn enqueue<R, E>(
        &self,
        work: impl FnOnce(&WriteTxn) -> WriteJobResult<R, E> + Send + 'static,
    ) -> Result<oneshot::Receiver<Result<R, E>>, DbError>
    where
        R: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        let (reply, receiver) = oneshot::channel();
        let job = TypedJob {
            work: Some(work),
            result: None,
            reply,
        };
        self.jobs
            .send(Box::new(job))
            .map_err(|_| DbError::WriterGone)?;
        Ok(receiver)
    }

    /// Queues `work` and waits for the durable commit.
    pub async fn submit<R, E>(
        &self,
        work: impl FnOnce(&WriteTxn) -> WriteJobResult<R, E> + Send + 'static,
    ) -> Result<R, E>
    where
        R: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        let receiver = self.enqueue(work)?;
        receiver
            .await
            .unwrap_or_else(|_| Err(DbError::WriterGone.into()))
    }

    /// Queues `work` and blocks the calling thread until the durable commit.
    pub fn submit_blocking<R, E>(
        &self,
        work: impl FnOnce(&WriteTxn) -> WriteJobResult<R, E> + Send + 'static,
    ) -> Result<R, E>
    where
        R: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        let receiver = self.enqueue(work)?;
        receiver
            .blocking_recv()
            .unwrap_or_else(|_| Err(DbError::WriterGone.into()))
    }
}

fn writer_loop(database: &redb::Database, path: &Path, receiver: &mpsc::Receiver<Box<dyn Job>>) {
    while let Ok(first) = receiver.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match receiver.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let outcome = apply_batch(database, &mut batch);
        match &outcome {
            Err(error) => tracing::error!(%error, jobs = batch.len(), "database batch failed"),
            Ok(()) => observe_commit(path),
        }
        for job in batch {
            job.finish(outcome.clone());
        }
    }
}

/// Tells the test observer, if any, of a durable commit; nothing in release builds.
#[inline(always)]
fn observe_commit(path: &Path) {
    #[cfg(test)]
    if let Some(observer) = COMMIT_OBSERVER.get() {
        observer(path);
    }
    #[cfg(not(test))]
    let _ = path;
}

fn apply_batch(database: &redb::Database, batch: &mut [Box<dyn Job>]) -> Result<(), DbError> {
    let transaction = database.begin_write()?;
    for job in batch.iter_mut() {
        let ran = catch_unwind(AssertUnwindSafe(|| job.run(&transaction)));
        let failure = match ran {
            Ok(Ok(())) => continue,
            Ok(Err(error)) => error,
            Err(_) => DbError::Storage("a database write job panicked".into()),
        };
        transaction.abort()?;
        return Err(failure);
    }
    transaction.commit()?;
    Ok(())
}
