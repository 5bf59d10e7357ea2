//! The journal: webhooks committed to local disk, so that a 2xx can mean "confirmed by
//! RabbitMQ **or** committed to the relay's journal (fsync'd)". This module is its
//! storage engine; the relay decides what goes in and drains it.
//!
//! # Files
//!
//! Under `data_dir`: `journal.sqlite3` (SQLite, one table `entries`, in arrival order),
//! SQLite's `journal.sqlite3-wal` and `journal.sqlite3-shm` beside it, and
//! `journal.lock`. The database is created empty with mode 0600 before SQLite opens it
//! (SQLite gives its `-wal` and `-shm` the database's mode), an existing file readable
//! by others is brought back to 0600, and a `data_dir` the journal creates is 0700:
//! bodies carry bank data.
//!
//! # Durability
//!
//! WAL with `synchronous = FULL`: a commit returns once its log frames are fsync'd, so
//! a committed entry survives a crash of the relay and a power cut. [`Journal::append`]
//! returns `Ok` only after that commit. The fsync is the cost (0.4 to 1.7 ms a commit
//! on the development disk), so writes go through one writer thread that commits every
//! request queued at that moment in one transaction (group commit): concurrent webhooks
//! share one fsync (see `writer.rs`).
//!
//! # One writer
//!
//! [`Journal::open`] locks `journal.lock` (`flock`) for the journal's life and writes
//! its pid, program and host into it; a second open, by another process or the same,
//! fails with [`JournalError::Locked`] naming the holder. The kernel drops the lock
//! when the holder exits, so a crash leaves nothing to clean up. [`open_read_only`]
//! takes no lock: WAL lets `journal stats` and `journal list` read while `serve` writes.
//!
//! # Faults
//!
//! - A **full disk** (or an I/O error) fails the requests of the commit that met it with
//!   [`WriteError::Disk`] (alone, or in [`AppendError::Write`]): SQLite rolls the transaction back,
//!   the journal keeps everything committed before, and appends work again once there
//!   is space. The relay answers 503, as it does when the broker refuses.
//! - A file that is **not a database, is damaged** (`PRAGMA quick_check`, run at every
//!   writer open; it reads the whole file) **or has an unknown schema version** stops
//!   the open with [`JournalError::Corrupt`] / [`JournalError::UnknownSchema`], saying
//!   to move the files aside and keep them. Nothing is written to such a file, and a
//!   new journal is never created over it; nor over a `-wal` left without its
//!   database ([`JournalError::StrayLog`]), which SQLite would apply to the new file.
//!
//! # The byte limit
//!
//! `journal_max_bytes` bounds the sum of the bodies' sizes (the file is larger: indexes,
//! metadata, free pages; [`Stats::file_bytes`] says by how much). An append that would
//! pass it first drops confirmed entries, oldest confirm first: they are delivered and
//! kept only for replay. Each drop is returned ([`Appended::dropped`]), counted and
//! logged. Pending and held entries are never dropped: when they alone would pass the
//! limit the append fails with [`AppendError::Full`] and the relay answers 503.
//!
//! # Using it
//!
//! - [`Journal::open`] blocks (it checks the whole file): call it at start-up.
//! - Writes are `async`: they queue a request for the writer thread and wait for its
//!   commit. A caller that stops waiting does not cancel it: once queued, it commits.
//! - Reads ([`Reader`], [`Journal::reader`]) run on Tokio's blocking pool, on read-only
//!   connections of their own: they never wait for the writer.
//! - At shutdown, stop appending (stop taking webhooks and the drain), then
//!   [`Journal::close`]: it commits what is queued and returns once the lock is free.

mod entry;
mod error;
mod files;
mod instant;
mod lock;
mod ops;
mod queries;
mod reader;
mod request;
mod schema;
mod statements;
mod writer;

#[cfg(test)]
mod tests;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{mpsc, watch};

pub(crate) use entry::{
    Appended, Entry, EntryMeta, Filter, NewEntry, Seq, State, Stats, Totals, Undelivered,
};
pub(crate) use error::{AppendError, JournalError, WriteError};
pub(crate) use instant::parse_instant;
pub(crate) use reader::{Reader, open_read_only};

use files::Paths;
use request::{Failure, Message, Op, Shared};

/// `journal_max_bytes` when not configured: 1 GiB.
pub(crate) const DEFAULT_MAX_BYTES: u64 = 1024 * 1024 * 1024;

/// Requests waiting for the writer beyond this make callers wait to queue (the relay's
/// concurrency bounds them anyway).
const QUEUE: usize = 4096;

/// Entries one prune transaction deletes, so that appends are not held up behind a
/// large prune.
const PRUNE_BATCH: usize = 1000;

/// How the journal is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Options {
    /// `journal_max_bytes`: the most body bytes the journal holds.
    pub(crate) max_bytes: u64,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            max_bytes: DEFAULT_MAX_BYTES,
        }
    }
}

/// The journal, open for writing. Cheap to clone; every clone talks to the one writer
/// thread, which stops at [`close`](Self::close) or when the last clone is dropped.
#[derive(Debug, Clone)]
pub(crate) struct Journal {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    sender: mpsc::Sender<Message>,
    shared: Arc<Shared>,
    stopped: watch::Receiver<bool>,
    reader: Reader,
}

impl Journal {
    /// Opens (or creates) the journal in `dir`, creating `dir` if needed: locks it,
    /// checks the file, starts the writer thread.
    ///
    /// Blocking (file I/O, and the integrity check reads the whole file): call it at
    /// start-up or on a blocking thread.
    ///
    /// # Errors
    /// [`JournalError::Locked`] when another writer holds `dir`; `Corrupt`,
    /// `UnknownSchema` or `StrayLog` for a file it must not touch; `Directory`, `File`,
    /// `Open` otherwise.
    pub(crate) fn open(dir: &Path, options: Options) -> Result<Self, JournalError> {
        let paths = Paths::new(dir);
        files::create_dir(dir)?;
        let lock = lock::DirLock::acquire(&paths.lock).map_err(|e| match e {
            lock::LockError::Held(holder) => JournalError::Locked {
                path: paths.lock.clone(),
                holder,
            },
            lock::LockError::Io(source) => JournalError::File {
                path: paths.lock.clone(),
                source,
            },
        })?;
        if !paths.db.exists() && paths.wal.exists() {
            return Err(JournalError::StrayLog { path: paths.wal });
        }
        files::create_private(&paths.db)?;
        for path in [&paths.db, &paths.wal, &paths.shm] {
            files::make_private(path)?;
        }
        let connection = schema::open_writer(&paths)?;
        let totals = queries::totals(&connection, &paths)?;
        let reader = Reader::open(paths.clone())?;
        let shared = Arc::new(Shared::new(totals));
        let (sender, receiver) = mpsc::channel(QUEUE);
        let (stopped_tx, stopped) = watch::channel(false);
        writer::spawn(
            connection,
            lock,
            receiver,
            shared.clone(),
            options.max_bytes,
            &paths.db,
            stopped_tx,
        )?;
        Ok(Self {
            inner: Arc::new(Inner {
                sender,
                shared,
                stopped,
                reader,
            }),
        })
    }

    /// Sends `op` to the writer and waits for its commit.
    async fn submit<O: Op>(&self, op: O) -> Result<O::Output, Option<Failure>> {
        let (message, answer) = request::request(op);
        self.inner.sender.send(message).await.map_err(|_| None)?;
        answer.await.map_err(|_| None)?.map_err(Some)
    }

    fn write_error(&self, failure: Option<Failure>) -> WriteError {
        match failure {
            Some(Failure::Disk(source)) => WriteError::Disk {
                path: self.path().to_owned(),
                source,
            },
            // Only appends can be over the limit.
            Some(Failure::Full { .. }) | None => WriteError::Closed,
        }
    }

    /// Commits `entry` (pending or held); `Ok` once it is fsync'd. If the caller stops
    /// waiting, the entry is committed all the same (the drain will publish it).
    ///
    /// # Errors
    /// [`AppendError::Full`] over the byte limit, [`AppendError::Write`] when the
    /// write failed (the journal intact) or the journal is closed.
    pub(crate) async fn append(&self, entry: NewEntry) -> Result<Appended, AppendError> {
        self.submit(ops::Append(entry))
            .await
            .map_err(|failure| match failure {
                Some(Failure::Full { max_bytes }) => AppendError::Full { max_bytes },
                other => AppendError::Write(self.write_error(other)),
            })
    }

    /// Marks `seqs` confirmed (now); those already confirmed or gone are skipped.
    /// Returns how many changed. Shares a commit with the appends queued with it.
    ///
    /// # Errors
    /// [`WriteError`].
    pub(crate) async fn confirm(&self, seqs: Vec<Seq>) -> Result<u64, WriteError> {
        self.submit(ops::Confirm(seqs))
            .await
            .map_err(|f| self.write_error(f))
    }

    /// Records a failed publish of `seq`: one more attempt, `error`, the next attempt at
    /// `next_attempt_at`, and the state it waits in (held, or pending again). Returns
    /// whether it was still waiting (a confirmed or unknown entry is left alone).
    ///
    /// # Errors
    /// [`WriteError`].
    pub(crate) async fn defer(
        &self,
        seq: Seq,
        error: &str,
        next_attempt_at: DateTime<Utc>,
        state: Undelivered,
    ) -> Result<bool, WriteError> {
        let op = ops::Defer {
            seq,
            error: error.to_owned(),
            next_attempt_at,
            state,
        };
        self.submit(op).await.map_err(|f| self.write_error(f))
    }

    /// Deletes the entries confirmed before `now - retention`, in transactions of
    /// [`PRUNE_BATCH`] so that appends go on meanwhile. Pending and held entries stay,
    /// however old. Returns how many went.
    ///
    /// # Errors
    /// [`WriteError`]; the transactions before it stay committed.
    pub(crate) async fn prune(
        &self,
        now: DateTime<Utc>,
        retention: Duration,
    ) -> Result<u64, WriteError> {
        let Some(before) = chrono::TimeDelta::from_std(retention)
            .ok()
            .and_then(|retention| now.checked_sub_signed(retention))
        else {
            return Ok(0); // a retention longer than the calendar: nothing is old enough
        };
        let mut total = 0u64;
        loop {
            let op = ops::Prune {
                before,
                limit: PRUNE_BATCH,
            };
            let pruned = self.submit(op).await.map_err(|f| self.write_error(f))?;
            total = total.saturating_add(pruned);
            if pruned < PRUNE_BATCH as u64 {
                return Ok(total);
            }
        }
    }

    /// Commits what is queued, stops the writer and releases the lock; returns once the
    /// lock is released (another process may open the journal then). Appends after it
    /// fail with [`WriteError::Closed`]; reads still work.
    pub(crate) async fn close(&self) {
        self.inner.reader.forget_idle();
        // Already closing, or the writer stopped: wait for it all the same.
        let _ = self.inner.sender.send(Message::Close).await;
        let mut stopped = self.inner.stopped.clone();
        // An error means the writer thread is gone (it panicked): nothing to wait for.
        let _ = stopped.wait_for(|stopped| *stopped).await;
    }

    /// The live figures, as of the last commit (no I/O: for metrics).
    pub(crate) fn totals(&self) -> Totals {
        self.inner.shared.totals()
    }

    /// What the writer did since the journal was opened (tests).
    #[cfg(test)]
    pub(crate) fn counters(&self) -> entry::Counters {
        self.inner.shared.counters()
    }

    /// The reads, also available without a writer ([`open_read_only`]).
    pub(crate) fn reader(&self) -> &Reader {
        &self.inner.reader
    }

    /// The database file.
    pub(crate) fn path(&self) -> &Path {
        self.inner.reader.path()
    }

    /// Tests: sends a raw message to the writer.
    #[cfg(test)]
    async fn send(&self, message: Message) {
        let _ = self.inner.sender.send(message).await;
    }

    /// Tests: queues `op` without waiting for its answer (so that the next request
    /// queues behind it, in this order).
    #[cfg(test)]
    async fn queue<O: Op>(
        &self,
        op: O,
    ) -> tokio::sync::oneshot::Receiver<Result<O::Output, Failure>> {
        let (message, answer) = request::request(op);
        let _ = self.inner.sender.send(message).await;
        answer
    }

    /// Tests: requests waiting for the writer.
    #[cfg(test)]
    fn queued(&self) -> usize {
        let sender = &self.inner.sender;
        sender.max_capacity() - sender.capacity()
    }

    /// Tests: runs `sql` on the writer's connection, in its transaction.
    #[cfg(test)]
    pub(crate) async fn writer_sql(&self, sql: &str) -> Result<Vec<String>, Option<Failure>> {
        self.submit(ops::Sql(sql.to_owned())).await
    }
}
