//! The drain: publishes what waits in the journal, with confirms, in arrival order per
//! routing key, as soon as the broker takes messages again.
//!
//! A pass reads the waiting entries in `seq` order, a page at a time, and publishes
//! them [`IN_FLIGHT`] at a time on the publisher's channel (which keeps their order);
//! the confirmed ones are marked so [`PAGE`] at a time, up to [`COMMITS`] commits
//! queued for the writer. An entry leaves the waiting states only once confirmed and
//! that committed: a crash before the commit (up to about
//! `COMMITS × PAGE + PAGE + IN_FLIGHT` entries) or a failed commit publishes it again,
//! with the same `message_id`. When the broker does not take an
//! entry (down, slow, a nack), the pass stops and the drain waits for the broker. When
//! no queue is bound for an entry's key, the entry is held and tried again later, with
//! a backoff of 1 s doubling to [`HELD_BACKOFF_MAX`]; the key's later entries wait
//! behind it. One exception to the order: a message the broker refuses (nack) while
//! the next one of its key, already in flight, is taken comes after that one.

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use tokio::task::JoinHandle;

use super::Shared;
use crate::amq::TealExchange;
use crate::relay::journal::{
    Entry, EntryMeta, Journal, JournalError, Seq, State, Undelivered, WriteError,
};
use crate::relay::publish::{AmqpPublisher, Exchange, Outgoing, PublishError, Publisher};

/// Entries read at a time.
const PAGE: usize = 512;
/// Commits of confirmed entries queued for the writer at a time.
const COMMITS: usize = 4;
/// Publishes awaiting their confirm at a time.
const IN_FLIGHT: usize = 256;
/// The longest wait before a held entry is tried again.
const HELD_BACKOFF_MAX: Duration = Duration::from_secs(60);
/// How often the drain looks whether the broker is back.
const BROKER_POLL: Duration = Duration::from_millis(100);
/// The longest the drain sleeps with nothing due (new entries wake it at once).
const IDLE: Duration = Duration::from_secs(1);

/// What a pass did.
#[derive(Debug, Default)]
pub(crate) struct Pass {
    /// Entries confirmed, and that committed.
    pub(crate) published: u64,
    /// The broker did not take an entry: the pass stopped there.
    pub(crate) broker_down: Option<PublishError>,
    /// Held entries were left, the first due then.
    pub(crate) next_held: Option<DateTime<Utc>>,
}

/// What a pass has seen of the order: keys whose earlier entry waits (their later ones
/// wait behind it), and the first held entry due.
#[derive(Default)]
struct Order {
    blocked: HashSet<String>,
    next_held: Option<DateTime<Utc>>,
}

impl Order {
    /// Whether `entry` is published in this pass: not behind a waiting entry of its
    /// key, and not a held entry whose time has not come (which blocks its key).
    fn due(&mut self, entry: &Entry) -> bool {
        let meta = &entry.meta;
        if self.blocked.contains(&meta.routing_key) {
            return false;
        }
        match meta.next_attempt_at {
            Some(at) if meta.state == State::Held && at > Utc::now() => {
                self.next_held = Some(self.next_held.map_or(at, |next| next.min(at)));
                self.blocked.insert(meta.routing_key.clone());
                false
            }
            _ => true,
        }
    }
}

fn lock(order: &Mutex<Order>) -> std::sync::MutexGuard<'_, Order> {
    order
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// One pass over the journal's waiting entries (see the module's documentation);
/// `confirmed` is told the routing key of each entry confirmed.
///
/// Publishing does not stop at a page's end: the next page is read ahead while the
/// last one is published, and confirmed entries are committed [`PAGE`] at a time by
/// tasks of their own (see [`Commits`]), so that neither the read nor the commit's
/// fsync leaves the channel idle.
///
/// # Errors
/// The journal's read or write error; what was confirmed before it stays so.
pub(crate) async fn drain_once(
    journal: &Journal,
    broker: &AmqpPublisher,
    mut confirmed: impl FnMut(&str),
) -> Result<Pass, JournalError> {
    let order = Mutex::new(Order::default());
    // Pages in `seq` order, read ahead by a task of their own while the last page's
    // entries are published: a page's read (its bodies off the disk) would otherwise
    // leave the channel without new publishes for its whole duration.
    let (pages, reading) = read_ahead(journal.clone());
    let _reading = AbortOnDrop(reading);
    let results = pages
        .flat_map(entries)
        .filter(|item| {
            let due = match item {
                Read::Entry(entry) => lock(&order).due(entry),
                Read::Failed(_) => true,
            };
            std::future::ready(due)
        })
        .map(|item| async move {
            match item {
                Read::Entry(Entry { meta, body }) => {
                    let result = broker.publish(&outgoing(&meta, body, false)).await;
                    Ok((meta, result))
                }
                Read::Failed(e) => Err(e),
            }
        })
        .buffered(IN_FLIGHT);
    let mut results = std::pin::pin!(results);
    let mut pass = Pass::default();
    let mut commits = Commits::new(journal);
    // The first error ends the pass; what was confirmed before it is still committed.
    let mut failed = None;
    while let Some(published) = results.next().await {
        let (meta, result) = match published {
            Ok(published) => published,
            Err(e) => {
                failed = Some(e);
                break;
            }
        };
        let blocked = lock(&order).blocked.contains(&meta.routing_key);
        let step = match result {
            // Taken, also behind a held one of its key (already in flight): it is
            // delivered, whatever waits before it.
            Ok(_) => {
                commits
                    .push(meta.seq, meta.routing_key, &mut confirmed)
                    .await
            }
            Err(_) if blocked => Ok(()),
            Err(PublishError::Unroutable) => {
                lock(&order).blocked.insert(meta.routing_key.clone());
                hold(journal, &meta).await
            }
            Err(e) => {
                // Down, slow, or refusing: the rest waits for it.
                let next = Utc::now();
                let deferred = journal
                    .defer(meta.seq, &e.to_string(), next, Undelivered::Pending)
                    .await
                    .map_err(write_failed(journal));
                pass.broker_down = Some(e);
                failed = deferred.err();
                break;
            }
        };
        if let Err(e) = step {
            failed = Some(e);
            break;
        }
    }
    let (published, commit_failed) = commits.finish(&mut confirmed).await;
    pass.published = published;
    match (failed, commit_failed) {
        (Some(e), also) => {
            if let Some(also) = also {
                tracing::error!(error = %also, "journal: a commit of confirmed entries failed too");
            }
            Err(e)
        }
        (None, Some(e)) => Err(e),
        (None, None) => {
            pass.next_held = lock(&order).next_held;
            Ok(pass)
        }
    }
}

/// An entry read for the drain, or the read that failed (the pass ends there).
enum Read {
    Entry(Entry),
    Failed(JournalError),
}

/// The entries of a page read, or its failure.
fn entries(
    page: Result<Vec<Entry>, JournalError>,
) -> futures_util::stream::Iter<std::vec::IntoIter<Read>> {
    let items: Vec<Read> = match page {
        Ok(page) => page.into_iter().map(Read::Entry).collect(),
        Err(e) => vec![Read::Failed(e)],
    };
    futures_util::stream::iter(items)
}

/// Pages of waiting entries in `seq` order, read by a task of their own one page
/// ahead of the drain (a page is read while the drain publishes the last one), until a page comes back empty or a read fails (the error is the
/// last item). The task stops when the pages are dropped.
fn read_ahead(
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
struct AbortOnDrop(JoinHandle<()>);

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
struct Commits<'j> {
    journal: &'j Journal,
    seqs: Vec<Seq>,
    keys: Vec<String>,
    running: VecDeque<Commit>,
    /// Entries whose commit succeeded.
    committed: u64,
}

impl<'j> Commits<'j> {
    fn new(journal: &'j Journal) -> Self {
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
    async fn push(
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
    async fn finish(mut self, confirmed: &mut impl FnMut(&str)) -> (u64, Option<JournalError>) {
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

/// Holds `meta`'s entry: no queue is bound for its key (it was answered 2xx already,
/// so it waits whatever `unroutable` says).
async fn hold(journal: &Journal, meta: &EntryMeta) -> Result<(), JournalError> {
    let backoff = Duration::from_secs(1)
        .saturating_mul(2u32.saturating_pow(meta.attempts.min(16)))
        .min(HELD_BACKOFF_MAX);
    let next = Utc::now() + chrono::TimeDelta::from_std(backoff).unwrap_or_default();
    tracing::info!(
        domain = %meta.routing_key,
        message_id = %meta.message_id,
        retry_in_secs = backoff.as_secs(),
        "journal: no queue is bound for this domain; the webhook is held"
    );
    journal
        .defer(meta.seq, "no queue is bound", next, Undelivered::Held)
        .await
        .map_err(write_failed(journal))?;
    Ok(())
}

fn write_failed(journal: &Journal) -> impl Fn(WriteError) -> JournalError {
    let path = journal.path().to_owned();
    move |e| JournalError::Write {
        path: path.clone(),
        source: e,
    }
}

/// The message of the entry `meta` with `body`, as first published: same exchange,
/// key, id and body; with the replay header when `replay`.
pub(super) fn outgoing(meta: &EntryMeta, body: Vec<u8>, replay: bool) -> Outgoing {
    Outgoing {
        exchange: Exchange {
            // Only webhooks are journaled.
            kind: TealExchange::PowensDomainWebhooks,
            name: meta.exchange.as_str().into(),
        },
        routing_key: meta.routing_key.clone(),
        message_id: Some(meta.message_id.clone()),
        body,
        webhook: None,
        replay,
    }
}

/// The drain of a running relay: passes while there is work, waits for the broker
/// when it is down, for new entries (or a held one's time) when there is none.
pub(super) async fn run(shared: Arc<Shared>) {
    let mut outage = false;
    loop {
        if shared.closing.load(Ordering::Acquire) {
            return;
        }
        if !shared.broker.is_ready() {
            outage = true;
            wait(&shared, BROKER_POLL, false).await;
            continue;
        }
        let settled = |key: &str| {
            shared.settled(key);
            shared.metrics.published.inc();
        };
        match drain_once(&shared.journal, &shared.broker, settled).await {
            Ok(pass) if pass.broker_down.is_some() => {
                if !outage {
                    let error = pass.broker_down.map(|e| e.to_string()).unwrap_or_default();
                    tracing::warn!(%error, "journal: the broker does not take messages; the journal keeps them");
                }
                outage = true;
                wait(&shared, BROKER_POLL, false).await;
            }
            Ok(pass) => {
                if outage && pass.published > 0 {
                    tracing::info!(
                        published = pass.published,
                        "journal: the broker takes messages again; drained"
                    );
                }
                outage = false;
                if pass.published == 0 {
                    let until = pass
                        .next_held
                        .and_then(|at| (at - Utc::now()).to_std().ok())
                        .map_or(IDLE, |left| left.min(IDLE));
                    wait(&shared, until, true).await;
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "journal: the drain failed; trying again");
                wait(&shared, IDLE, false).await;
            }
        }
    }
}

/// Sleeps `at_most`, woken early by closing and, if `on_new`, by a new entry.
async fn wait(shared: &Shared, at_most: Duration, on_new: bool) {
    let new = async {
        match on_new {
            true => shared.wake.notified().await,
            false => std::future::pending().await,
        }
    };
    tokio::select! {
        () = tokio::time::sleep(at_most) => {}
        () = shared.stopped.notified() => {}
        () = new => {}
    }
}
