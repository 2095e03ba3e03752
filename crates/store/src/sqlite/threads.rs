//! The threads that run SQLite for the async store: one writer, a few readers, each behind a
//! bounded queue.
//!
//! **Why threads of our own, and not `spawn_blocking` per call.** SQLite takes one write lock
//! per database, so concurrent write transactions queue inside SQLite anyway, each with its
//! own fsync. A single writer that takes every operation waiting in its queue and runs them in
//! **one** transaction (group commit) pays one fsync for the whole batch: at 10,000 jobs in
//! flight that is the difference between seconds and minutes of queueing. Each operation runs
//! inside its own savepoint, so one that fails (over budget, say) leaves no trace while the
//! others of the batch commit; every caller hears its answer only after the batch's commit is
//! on disk. Readers have connections of their own: in WAL mode they read a consistent
//! snapshot without waiting for the writer, or for another process that holds the write lock.
//!
//! **Bounded, with deadlines.** A full queue refuses at once. An operation whose deadline has
//! passed while it waited is answered with a timeout and never applied, so a caller that gave
//! up is not surprised later (the caller's own timeout, in [`crate::guard`], still
//! bounds the wait; a write that does land after its caller gave up can only be one that
//! counts more, never less: see the ledger docs).

use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rusqlite::{Connection, Transaction, TransactionBehavior};
use tokio::sync::oneshot;

use crate::error::StoreError;

/// Operations waiting for the writer, at most.
pub const WRITE_QUEUE: usize = 65_536;
/// Operations applied in one transaction, at most.
const BATCH: usize = 1024;
/// Read operations waiting, at most.
const READ_QUEUE: usize = 4096;
/// Reader threads (each with its own connection).
pub const READERS: usize = 2;

/// One write operation, type-erased so that a batch can hold several kinds.
trait WriteOp: Send {
    fn deadline(&self) -> Instant;
    /// Runs the operation inside the batch's transaction and keeps its result.
    fn apply(&mut self, tx: &Transaction<'_>) -> bool;
    /// Answers the caller: its own result if the batch committed, else `failed`.
    fn answer(self: Box<Self>, failed: Option<StoreError>);
}

struct Op<T, F> {
    run: Option<F>,
    out: Option<Result<T, StoreError>>,
    reply: oneshot::Sender<Result<T, StoreError>>,
    deadline: Instant,
}

impl<T, F> WriteOp for Op<T, F>
where
    T: Send,
    F: FnOnce(&Transaction<'_>) -> Result<T, StoreError> + Send,
{
    fn deadline(&self) -> Instant {
        self.deadline
    }

    fn apply(&mut self, tx: &Transaction<'_>) -> bool {
        let Some(run) = self.run.take() else {
            return false;
        };
        let result = run(tx);
        let ok = result.is_ok();
        self.out = Some(result);
        ok
    }

    fn answer(self: Box<Self>, failed: Option<StoreError>) {
        let result = match (failed, self.out) {
            (Some(e), _) => Err(e),
            (None, Some(r)) => r,
            (None, None) => Err(timed_out()),
        };
        let _ = self.reply.send(result);
    }
}

fn timed_out() -> StoreError {
    StoreError::Store("sqlite: the operation waited past its deadline and was not applied".into())
}

fn store_err(e: impl std::fmt::Display) -> StoreError {
    StoreError::Store(format!("sqlite: {e}"))
}

type ReadJob = Box<dyn FnOnce(&mut Connection) + Send>;

/// The queues in front of the threads. Dropping it ends the threads once their queues drain.
pub struct Threads {
    writes: SyncSender<Box<dyn WriteOp>>,
    reads: SyncSender<ReadJob>,
    timeout: Duration,
}

impl std::fmt::Debug for Threads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Threads")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Threads {
    /// Starts the writer on `writer` and one reader thread per connection in `readers`.
    /// `timeout` is each operation's deadline, from the moment it is queued.
    pub fn start(
        writer: Connection,
        readers: Vec<Connection>,
        timeout: Duration,
    ) -> Result<Threads, StoreError> {
        let (writes, write_rx) = sync_channel::<Box<dyn WriteOp>>(WRITE_QUEUE);
        std::thread::Builder::new()
            .name("genroute-sqlite-writer".into())
            .spawn(move || write_loop(writer, write_rx))
            .map_err(store_err)?;
        let (reads, read_rx) = sync_channel::<ReadJob>(READ_QUEUE);
        let read_rx = Arc::new(Mutex::new(read_rx));
        for (i, conn) in readers.into_iter().enumerate() {
            let rx = read_rx.clone();
            std::thread::Builder::new()
                .name(format!("genroute-sqlite-reader-{i}"))
                .spawn(move || read_loop(conn, &rx))
                .map_err(store_err)?;
        }
        Ok(Threads {
            writes,
            reads,
            timeout,
        })
    }

    /// How long after it is queued an operation may still be started: nine tenths of the
    /// deadline, so that one started in time normally answers before its caller gives up.
    fn start_by(&self) -> Duration {
        self.timeout.mul_f64(0.9)
    }

    /// Runs `f` in the writer's next batch transaction and waits (asynchronously) for the
    /// batch to commit.
    pub async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, rx) = oneshot::channel();
        let op = Box::new(Op {
            run: Some(f),
            out: None,
            reply,
            deadline: Instant::now() + self.start_by(),
        });
        match self.writes.try_send(op) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                return Err(StoreError::Store(format!(
                    "sqlite: {WRITE_QUEUE} writes are already waiting; refused at once"
                )))
            }
            Err(TrySendError::Disconnected(_)) => {
                return Err(StoreError::Store(
                    "sqlite: the writer thread stopped".into(),
                ))
            }
        }
        rx.await.unwrap_or_else(|_| {
            Err(StoreError::Store(
                "sqlite: the writer thread stopped".into(),
            ))
        })
    }

    /// Runs `f` on a reader's connection, inside one read transaction (a consistent
    /// snapshot), and waits (asynchronously) for its answer.
    pub async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, rx) = oneshot::channel();
        let deadline = Instant::now() + self.start_by();
        let job: ReadJob = Box::new(move |conn: &mut Connection| {
            let result = if Instant::now() > deadline {
                Err(timed_out())
            } else {
                conn.transaction_with_behavior(TransactionBehavior::Deferred)
                    .map_err(store_err)
                    .and_then(|tx| f(&tx))
            };
            let _ = reply.send(result);
        });
        match self.reads.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                return Err(StoreError::Store(format!(
                    "sqlite: {READ_QUEUE} reads are already waiting; refused at once"
                )))
            }
            Err(TrySendError::Disconnected(_)) => {
                return Err(StoreError::Store(
                    "sqlite: the reader threads stopped".into(),
                ))
            }
        }
        rx.await
            .unwrap_or_else(|_| Err(StoreError::Store("sqlite: a reader thread stopped".into())))
    }
}

fn read_loop(mut conn: Connection, rx: &Mutex<Receiver<ReadJob>>) {
    loop {
        let job = match rx.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        match job {
            Ok(job) => job(&mut conn),
            Err(_) => return,
        }
    }
}

fn write_loop(mut conn: Connection, rx: Receiver<Box<dyn WriteOp>>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(op) => batch.push(op),
                Err(_) => break,
            }
        }
        run_batch(&mut conn, batch);
    }
}

/// Applies a batch in one immediate transaction, each operation in its own savepoint.
fn run_batch(conn: &mut Connection, batch: Vec<Box<dyn WriteOp>>) {
    let now = Instant::now();
    let (mut live, late): (Vec<_>, Vec<_>) = batch.into_iter().partition(|op| op.deadline() > now);
    for op in late {
        op.answer(Some(timed_out()));
    }
    if live.is_empty() {
        return;
    }
    let tx = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(e) => {
            let e = store_err(format!("cannot take the write lock: {e}"));
            for op in live {
                op.answer(Some(e.clone()));
            }
            return;
        }
    };
    let mut failed = None;
    for op in &mut live {
        if let Err(e) = tx
            .prepare_cached("SAVEPOINT op")
            .and_then(|mut s| s.execute([]))
        {
            failed = Some(store_err(e));
            break;
        }
        let ok = op.apply(&tx);
        let end = if ok {
            tx.prepare_cached("RELEASE op")
                .and_then(|mut s| s.execute([]))
        } else {
            tx.prepare_cached("ROLLBACK TO op")
                .and_then(|mut s| s.execute([]))
                .and_then(|_| tx.prepare_cached("RELEASE op")?.execute([]))
        };
        if let Err(e) = end {
            failed = Some(store_err(e));
            break;
        }
    }
    if failed.is_none() {
        if let Err(e) = tx.commit() {
            failed = Some(store_err(format!("commit failed: {e}")));
        }
    }
    for op in live {
        op.answer(failed.clone());
    }
}
