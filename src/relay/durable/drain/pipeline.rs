//! The drain's pipeline: pages read ahead of the publishing, and the commits of
//! confirmed entries queued for the writer.

use std::collections::VecDeque;

use tokio::task::JoinHandle;

use super::{COMMITS, PAGE, write_failed};
use crate::relay::journal::{Entry, Journal, JournalError, Seq, WriteError};

/// An entry read for the drain, or the read that failed (the pass ends there).
pub(super) enum Read {
    Entry(Entry),
    Failed(JournalError),
}

/// The entries of a page read, or its failure.
pub(super) fn entries(
    page: Result<Vec<Entry>, JournalError>,
) -> futures_util::stream::Iter<std::vec::IntoIter<Read>> {
    let items: Vec<Read> = match page {
        Ok(page) => page.into_iter().map(Read::Entry).collect(),
        Err(e) => vec![Read::Failed(e)],
    };
    futures_util::stream::iter(items)
}

/// Pages of waiting entries in `seq` order, read by a task of their own one page
/// ahead of the drain (a page is read while the drain publishes the last one), until
/// a page comes back empty or a read fails (the error is the last item). The task
/// stops when the pages are dropped.
pub(super) fn read_ahead(
    journal: Journal,
) -> (
    impl futures_util::Stream<Item = Result<Vec<Entry>, JournalError>> + Send,
    JoinHandle<()>,
) {
    let (sender, receiver) = tokio::sync::mpsc::channel(1);
    let reading = tokio::spawn(async move {
        let mut after = None;
        loop {
            // The slot first: a page is read while the drain publishes the last one,
            // never two ahead.
            let Ok(slot) = sender.reserve().await else {
                return;
            };
            let entries = match journal.reader().pending(after, PAGE).await {
                Ok(entries) => entries,
                Err(e) => {
                    slot.send(Err(e));
                    return;
                }
            };
            let Some(last) = entries.last() else { return };
            after = Some(last.meta.seq);
            slot.send(Ok(entries));
        }
    });
    let pages = futures_util::stream::unfold(receiver, |mut receiver| async move {
        let page = receiver.recv().await?;
        Some((page, receiver))
    });
    (pages, reading)
}

/// Aborts its task when dropped.
pub(super) struct AbortOnDrop(pub(super) JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A commit of confirmed entries sent to the writer, and their keys.
type Commit = (JoinHandle<Result<u64, WriteError>>, Vec<String>);

/// Confirmed entries, committed [`PAGE`] at a time by tasks of their own, up to
/// [`COMMITS`] of them queued for the writer (which applies those queued together in
/// one transaction): the drain goes on publishing while they are written, and waits
/// only when the writer is that far behind. An entry's key is told confirmed (it stops
/// counting as waiting) only once its commit succeeded: an entry whose commit failed
/// is published again by the next pass, and counted then.
pub(super) struct Commits<'j> {
    journal: &'j Journal,
    seqs: Vec<Seq>,
    keys: Vec<String>,
    running: VecDeque<Commit>,
    /// Entries whose commit succeeded.
    committed: u64,
}

impl<'j> Commits<'j> {
    pub(super) fn new(journal: &'j Journal) -> Self {
        Self {
            journal,
            seqs: Vec::with_capacity(PAGE),
            keys: Vec::with_capacity(PAGE),
            running: VecDeque::with_capacity(COMMITS),
            committed: 0,
        }
    }

    /// Adds the entry `seq` of `key`; a full batch goes to the writer, once fewer
    /// than [`COMMITS`] are queued.
    pub(super) async fn push(
        &mut self,
        seq: Seq,
        key: String,
        confirmed: &mut impl FnMut(&str),
    ) -> Result<(), JournalError> {
        self.seqs.push(seq);
        self.keys.push(key);
        if self.seqs.len() >= PAGE {
            while self.running.len() >= COMMITS {
                self.wait_oldest(confirmed).await?;
            }
            self.send();
        }
        Ok(())
    }

    /// Sends the batch to the writer.
    fn send(&mut self) {
        let journal = self.journal.clone();
        let seqs = std::mem::replace(&mut self.seqs, Vec::with_capacity(PAGE));
        let keys = std::mem::replace(&mut self.keys, Vec::with_capacity(PAGE));
        let commit = tokio::spawn(async move { journal.confirm(seqs).await });
        self.running.push_back((commit, keys));
    }

    /// Waits for the oldest commit queued; tells its keys confirmed if it succeeded.
    async fn wait_oldest(&mut self, confirmed: &mut impl FnMut(&str)) -> Result<(), JournalError> {
        let Some((running, keys)) = self.running.pop_front() else {
            return Ok(());
        };
        let written = running.await.unwrap_or(Err(WriteError::Closed));
        written.map_err(write_failed(self.journal))?;
        for key in &keys {
            confirmed(key);
        }
        self.committed += u64::try_from(keys.len()).unwrap_or(u64::MAX);
        Ok(())
    }

    /// Commits the rest, and waits for every commit queued (none is left running):
    /// the entries committed, and the first failure.
    pub(super) async fn finish(
        mut self,
        confirmed: &mut impl FnMut(&str),
    ) -> (u64, Option<JournalError>) {
        if !self.seqs.is_empty() {
            self.send();
        }
        let mut failed = None;
        while !self.running.is_empty() {
            if let Err(e) = self.wait_oldest(confirmed).await {
                match failed {
                    None => failed = Some(e),
                    Some(_) => {
                        tracing::error!(error = %e, "journal: a commit of confirmed entries failed");
                    }
                }
            }
        }
        (self.committed, failed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::relay::journal::{NewEntry, Options, Undelivered};

    fn entry(n: i64) -> NewEntry {
        NewEntry {
            message_id: format!("msg-{n}"),
            received_at: chrono::Utc::now(),
            exchange: "powens_domain_webhooks".to_owned(),
            routing_key: key(n),
            event: None,
            id_webhook_data: Some(n),
            state: Undelivered::Pending,
            next_attempt_at: None,
            body: b"{}".to_vec(),
        }
    }

    /// The domain of entry `n`.
    fn key(n: i64) -> String {
        format!("d{}.biapi.pro", n % 3)
    }

    /// Confirms the entries `seqs` (with their `n`) through one [`Commits`], adding
    /// the keys told confirmed to `told`.
    async fn commit_all(
        journal: &Journal,
        seqs: &[(Seq, i64)],
        told: &mut Vec<String>,
    ) -> (u64, Option<JournalError>) {
        let mut tell = |k: &str| told.push(k.to_owned());
        let mut commits = Commits::new(journal);
        for &(seq, n) in seqs {
            commits.push(seq, key(n), &mut tell).await.unwrap();
        }
        commits.finish(&mut tell).await
    }

    /// A failed commit tells no key confirmed (its entries still wait, and the next
    /// pass publishes them again) and is the error `finish` returns, with every commit
    /// queued waited for; once the writer takes them, each key is told once per entry.
    #[tokio::test]
    async fn keys_are_told_confirmed_only_once_their_commit_succeeded() {
        let dir = std::env::temp_dir().join(format!("powens-drain-commits-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let journal = Journal::open(&dir, Options::default()).unwrap();
        let count = i64::try_from(PAGE * 2 + 7).unwrap();
        let mut seqs = Vec::new();
        for n in 0..count {
            seqs.push((journal.append(entry(n)).await.unwrap().seq, n));
        }

        journal
            .writer_sql(
                "CREATE TRIGGER refuse BEFORE UPDATE ON entries
                 BEGIN SELECT RAISE(ABORT, 'refused by the test'); END",
            )
            .await
            .unwrap();
        let mut told = Vec::new();
        let (committed, failed) = commit_all(&journal, &seqs, &mut told).await;
        assert_eq!(committed, 0);
        assert!(
            matches!(failed, Some(JournalError::Write { .. })),
            "{failed:?}"
        );
        assert!(told.is_empty(), "told confirmed without a commit: {told:?}");
        assert_eq!(journal.totals().pending, u64::try_from(count).unwrap());

        journal.writer_sql("DROP TRIGGER refuse").await.unwrap();
        let (committed, failed) = commit_all(&journal, &seqs, &mut told).await;
        assert!(failed.is_none(), "{failed:?}");
        assert_eq!(committed, u64::try_from(count).unwrap());
        let mut expected: Vec<_> = seqs.iter().map(|&(_, n)| key(n)).collect();
        expected.sort();
        told.sort();
        assert_eq!(told, expected);
        assert_eq!(journal.totals().pending, 0);
        journal.close().await;
        let _ = std::fs::remove_dir_all(&dir);
    }
}
