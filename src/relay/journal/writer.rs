//! The writer thread and its group commit.
//!
//! One thread owns the write connection. It takes the first request waiting, then every
//! request already queued behind it (up to [`MAX_BATCH_REQUESTS`] or
//! [`MAX_BATCH_BYTES`] of bodies), applies them all in one transaction, commits (one
//! fsync of the log) and answers them all. Requests that arrive during a commit's fsync
//! wait for the next one and share it: under load the fsync is paid per batch, not per
//! webhook, with no timer to tune and no delay when the relay is idle.
//!
//! Each request runs in a savepoint, so that one failing request (a full disk for a
//! large body, the byte limit) is rolled back alone and the rest of its batch commits.
//! If SQLite rolled the whole transaction back (it may on a full disk or an I/O error),
//! the batch is applied again without the request that failed.

use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use rusqlite::Connection;
use tokio::sync::{mpsc, watch};

use super::entry::{Counters, Totals};
use super::error::{JournalError, SqlError};
use super::lock::DirLock;
use super::request::{Failure, Message, Shared, Tx, Work};
use super::statements::Statements;

/// The most requests one transaction applies: a bound on how long the first of them
/// waits for the last.
pub(crate) const MAX_BATCH_REQUESTS: usize = 256;

/// The most body bytes one transaction takes (the batch may pass it by one request):
/// a first sync of several MB of bank data should not hold up everything behind it.
pub(crate) const MAX_BATCH_BYTES: usize = 8 * 1024 * 1024;

/// Starts the writer thread on `connection`, holding `lock` until it stops.
pub(crate) fn spawn(
    connection: Connection,
    lock: DirLock,
    receiver: mpsc::Receiver<Message>,
    shared: Arc<Shared>,
    max_bytes: u64,
    db: &Path,
    stopped: watch::Sender<bool>,
) -> Result<(), JournalError> {
    // The statements borrow the connection, so they are prepared on the thread; it says
    // whether that worked before `open` returns.
    let (ready, started) = std::sync::mpsc::sync_channel(1);
    std::thread::Builder::new()
        .name("journal-writer".to_owned())
        .spawn(move || {
            let totals = shared.totals();
            match Statements::prepare(&connection) {
                Ok(sql) => {
                    let _ = ready.send(Ok(()));
                    let mut writer = Writer {
                        connection: &connection,
                        sql,
                        totals,
                        max_bytes,
                        shared: &shared,
                    };
                    writer.run(receiver);
                }
                Err(e) => {
                    let _ = ready.send(Err(SqlError::from(e)));
                }
            }
            // The connection closes before the lock goes, so that the next writer never
            // finds this one still open.
            drop(connection);
            drop(lock);
            let _ = stopped.send(true);
        })
        .map_err(|source| JournalError::Thread { source })?;
    match started.recv() {
        Ok(Ok(())) => Ok(()),
        Ok(Err(source)) => Err(JournalError::Open {
            path: db.to_owned(),
            source,
        }),
        Err(e) => Err(JournalError::Thread {
            source: std::io::Error::other(e),
        }),
    }
}

struct Writer<'c, 's> {
    connection: &'c Connection,
    sql: Statements<'c>,
    /// As of the last commit.
    totals: Totals,
    max_bytes: u64,
    shared: &'s Shared,
}

impl Writer<'_, '_> {
    fn run(&mut self, mut receiver: mpsc::Receiver<Message>) {
        let mut batch: Vec<Box<dyn Work>> = Vec::with_capacity(MAX_BATCH_REQUESTS);
        while let Some(first) = receiver.blocking_recv() {
            let mut closing = false;
            let mut weight = 0usize;
            let mut next = Some(first);
            while let Some(message) = next.take() {
                match message {
                    Message::Work(work) => {
                        weight = weight.saturating_add(work.weight());
                        batch.push(work);
                    }
                    Message::Close => closing = true,
                    #[cfg(test)]
                    Message::Pause(until) => {
                        let _ = until.recv();
                    }
                }
                if batch.len() < MAX_BATCH_REQUESTS && weight < MAX_BATCH_BYTES {
                    next = receiver.try_recv().ok();
                }
            }
            if !batch.is_empty() {
                self.commit(&mut batch);
                for work in batch.drain(..) {
                    work.answer();
                }
            }
            if closing {
                // Refuses new requests; those already queued still come out of
                // `blocking_recv` and are committed before it returns `None`.
                receiver.close();
            }
        }
    }

    /// Applies `batch` in one transaction and commits it; each request keeps its
    /// result (or the commit's failure).
    fn commit(&mut self, batch: &mut [Box<dyn Work>]) {
        let now = Utc::now();
        let mut failed = vec![false; batch.len()];
        loop {
            let mut totals = self.totals;
            let mut counts = Counters::default();
            let broken = match self.attempt(batch, &mut failed, &mut totals, &mut counts, now) {
                Attempt::Again => continue,
                Attempt::Broken(e) => e,
                Attempt::Applied => match self.sql.commit.execute([]) {
                    Ok(_) => {
                        self.totals = totals;
                        self.shared.record(totals, &counts, true);
                        if counts.dropped > 0 {
                            tracing::warn!(
                                dropped = counts.dropped,
                                bytes = counts.dropped_bytes,
                                "the journal reached journal_max_bytes: dropped the oldest \
                                 confirmed entries before their retention"
                            );
                        }
                        return;
                    }
                    Err(e) => e.into(),
                },
            };
            if !self.connection.is_autocommit() {
                // If this fails too, the next BEGIN reports it to its requests.
                let _ = self.sql.rollback.execute([]);
            }
            for work in batch.iter_mut() {
                // One that failed on its own keeps its own reason.
                if !work.failed() {
                    work.fail(Failure::Disk(broken.clone()));
                }
            }
            self.shared.record(totals, &counts, false);
            return;
        }
    }

    /// Applies the requests of `batch` not `failed` yet in a new transaction, each in a
    /// savepoint; marks those that fail.
    fn attempt(
        &mut self,
        batch: &mut [Box<dyn Work>],
        failed: &mut [bool],
        totals: &mut Totals,
        counts: &mut Counters,
        now: DateTime<Utc>,
    ) -> Attempt {
        if let Err(e) = self.sql.begin.execute([]) {
            return Attempt::Broken(e.into());
        }
        for (work, failed) in batch.iter_mut().zip(failed.iter_mut()) {
            if *failed {
                continue;
            }
            if let Err(e) = self.sql.savepoint.execute([]) {
                return Attempt::Broken(e.into());
            }
            let before = (*totals, *counts);
            let mut tx = Tx {
                sql: &mut self.sql,
                totals,
                counts,
                now,
                max_bytes: self.max_bytes,
                connection: self.connection,
            };
            if work.apply(&mut tx) {
                if let Err(e) = self.sql.release.execute([]) {
                    return Attempt::Broken(e.into());
                }
                continue;
            }
            *failed = true;
            (*totals, *counts) = before;
            if self.connection.is_autocommit() {
                // SQLite rolled the whole transaction back: again, without this one.
                return Attempt::Again;
            }
            let undo = self.sql.rollback_to.execute([]);
            if let Err(e) = undo.and_then(|_| self.sql.release.execute([])) {
                return Attempt::Broken(e.into());
            }
        }
        Attempt::Applied
    }
}

/// How applying a batch went.
enum Attempt {
    /// Every request applied or rolled back alone: ready to commit.
    Applied,
    /// The transaction is gone (SQLite rolled it back): apply the batch again.
    Again,
    /// The transaction cannot go on.
    Broken(SqlError),
}
