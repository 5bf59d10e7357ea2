//! What travels between the handles and the writer thread: requests, each with its
//! own operation and answer, and the figures the writer publishes.

use std::sync::{Mutex, PoisonError};

use chrono::{DateTime, Utc};
use rusqlite::Connection;
use tokio::sync::oneshot;

use super::entry::{Counters, Totals};
use super::error::SqlError;
use super::statements::Statements;

/// Why a request was not committed.
#[derive(Debug, Clone)]
pub(crate) enum Failure {
    /// Over the byte limit, with only undelivered entries left to drop.
    Full {
        /// The limit.
        max_bytes: u64,
    },
    /// SQLite failed (a full disk, an I/O error); the request's changes were rolled
    /// back, the journal's earlier commits stand.
    Disk(SqlError),
}

impl From<rusqlite::Error> for Failure {
    fn from(error: rusqlite::Error) -> Self {
        Self::Disk(error.into())
    }
}

/// What a request sees of the transaction it runs in.
#[derive(Debug)]
pub(crate) struct Tx<'a, 'c> {
    /// The prepared statements.
    pub(crate) sql: &'a mut Statements<'c>,
    /// The figures as of this request; rolled back with it.
    pub(crate) totals: &'a mut Totals,
    /// What the batch did so far; rolled back with the request.
    pub(crate) counts: &'a mut Counters,
    /// The batch's instant (confirm times).
    pub(crate) now: DateTime<Utc>,
    /// `journal_max_bytes`.
    pub(crate) max_bytes: u64,
    /// The connection, for `last_insert_rowid`.
    pub(crate) connection: &'c Connection,
}

/// A change to the journal: applied in a transaction, possibly more than once (when
/// the batch is applied again), so it leaves its input untouched.
pub(crate) trait Op: Send + 'static {
    /// What the caller gets once it is committed.
    type Output: Send + 'static;

    /// Applies the change; on an error, its changes are rolled back.
    fn apply(&self, tx: &mut Tx<'_, '_>) -> Result<Self::Output, Failure>;

    /// The body bytes it writes (for the batch's size cap).
    fn weight(&self) -> usize {
        0
    }
}

/// A request with where to answer.
struct Job<O: Op> {
    op: O,
    result: Option<Result<O::Output, Failure>>,
    reply: oneshot::Sender<Result<O::Output, Failure>>,
}

/// A [`Job`] whatever its operation, as the writer handles it.
pub(crate) trait Work: Send {
    /// Applies it, keeping its result; returns whether it succeeded.
    fn apply(&mut self, tx: &mut Tx<'_, '_>) -> bool;
    /// Replaces its result with `failure` (its commit failed).
    fn fail(&mut self, failure: Failure);
    /// Whether it failed.
    fn failed(&self) -> bool;
    /// Sends its result (to nobody if the caller stopped waiting: what committed stays).
    fn answer(self: Box<Self>);
    /// The body bytes it writes.
    fn weight(&self) -> usize;
}

impl<O: Op> Work for Job<O> {
    fn apply(&mut self, tx: &mut Tx<'_, '_>) -> bool {
        let result = self.op.apply(tx);
        let ok = result.is_ok();
        self.result = Some(result);
        ok
    }

    fn fail(&mut self, failure: Failure) {
        self.result = Some(Err(failure));
    }

    fn failed(&self) -> bool {
        matches!(self.result, Some(Err(_)))
    }

    fn answer(self: Box<Self>) {
        // Never applied (cannot happen): dropping the reply tells the caller "closed".
        if let Some(result) = self.result {
            let _ = self.reply.send(result);
        }
    }

    fn weight(&self) -> usize {
        self.op.weight()
    }
}

/// What travels to the writer.
pub(crate) enum Message {
    /// A change to apply.
    Work(Box<dyn Work>),
    /// Finish what is queued, then stop and release the lock.
    Close,
    /// Tests: block the writer until the sender drops, so that requests pile up.
    #[cfg(test)]
    Pause(std::sync::mpsc::Receiver<()>),
}

impl std::fmt::Debug for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Work(_) => "Work",
            Self::Close => "Close",
            #[cfg(test)]
            Self::Pause(_) => "Pause",
        })
    }
}

/// A request for `op`, and where its answer comes.
pub(crate) fn request<O: Op>(op: O) -> (Message, oneshot::Receiver<Result<O::Output, Failure>>) {
    let (reply, answer) = oneshot::channel();
    let job = Job {
        op,
        result: None,
        reply,
    };
    (Message::Work(Box::new(job)), answer)
}

/// What the handles read of the writer without asking it.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    figures: Mutex<(Totals, Counters)>,
}

impl Shared {
    pub(crate) fn new(totals: Totals) -> Self {
        Self {
            figures: Mutex::new((totals, Counters::default())),
        }
    }

    /// The live figures, as of the last commit.
    pub(crate) fn totals(&self) -> Totals {
        self.figures
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .0
    }

    /// The writer's counters.
    #[cfg(test)]
    pub(crate) fn counters(&self) -> Counters {
        self.figures
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .1
    }

    /// A commit (or a failed one) and what it changed.
    pub(crate) fn record(&self, totals: Totals, counts: &Counters, committed: bool) {
        let mut figures = self.figures.lock().unwrap_or_else(PoisonError::into_inner);
        let counters = &mut figures.1;
        if !committed {
            counters.failed_commits = counters.failed_commits.saturating_add(1);
            return;
        }
        figures.0 = totals;
        let counters = &mut figures.1;
        counters.commits = counters.commits.saturating_add(1);
        for (sum, add) in [
            (&mut counters.appended, counts.appended),
            (&mut counters.confirmed, counts.confirmed),
            (&mut counters.deferred, counts.deferred),
            (&mut counters.dropped, counts.dropped),
            (&mut counters.dropped_bytes, counts.dropped_bytes),
            (&mut counters.pruned, counts.pruned),
        ] {
            *sum = sum.saturating_add(add);
        }
    }
}
