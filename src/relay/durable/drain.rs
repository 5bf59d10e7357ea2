//! The drain: publishes what waits in the journal, with confirms, in arrival order per
//! routing key, as soon as the broker takes messages again.
//!
//! A pass reads the waiting entries in `seq` order, a page at a time, and publishes
//! them [`IN_FLIGHT`] at a time on the publisher's channel (which keeps their order);
//! the confirmed ones are marked so in one commit per page. An entry leaves the
//! waiting states only once confirmed: a crash between the confirm and that commit
//! publishes it again, with the same `message_id`. When the broker does not take an
//! entry (down, slow, a nack), the pass stops and the drain waits for the broker. When
//! no queue is bound for an entry's key, the entry is held and tried again later, with
//! a backoff of 1 s doubling to [`HELD_BACKOFF_MAX`]; the key's later entries wait
//! behind it. One exception to the order: a message the broker refuses (nack) while
//! the next one of its key, already in flight, is taken comes after that one.

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::StreamExt;

use super::Shared;
use crate::amq::TealExchange;
use crate::relay::journal::{
    Entry, EntryMeta, Journal, JournalError, Seq, State, Undelivered, WriteError,
};
use crate::relay::publish::{AmqpPublisher, Exchange, Outgoing, PublishError, Publisher};

/// Entries read at a time.
const PAGE: usize = 512;
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
    /// Entries confirmed.
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
/// Publishing does not stop at a page's end: the next page is read while the last
/// one's publishes await their confirms, and confirmed entries are committed
/// [`PAGE`] at a time by a task of their own (one commit at a time), so that neither
/// the read nor the commit's fsync leaves the channel idle.
///
/// # Errors
/// The journal's read or write error; what was confirmed before it stays so.
pub(crate) async fn drain_once(
    journal: &Journal,
    broker: &AmqpPublisher,
    mut confirmed: impl FnMut(&str),
) -> Result<Pass, JournalError> {
    let order = Mutex::new(Order::default());
    let read_failed: Arc<Mutex<Option<JournalError>>> = Arc::default();
    // Pages in `seq` order until one comes back empty (or a read fails). The state owns
    // what it reads with, so that the drain's future stays `Send`.
    let start = (Some(None), journal.clone(), read_failed.clone());
    let pages = futures_util::stream::unfold(start, |(cursor, journal, failed)| async move {
        let after: Option<Seq> = cursor?;
        match journal.reader().pending(after, PAGE).await {
            Ok(page) => {
                let last = page.last()?.meta.seq;
                let page = futures_util::stream::iter(page);
                Some((page, (Some(Some(last)), journal, failed)))
            }
            Err(e) => {
                *failed
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(e);
                None
            }
        }
    });
    let results = pages
        .flatten()
        .filter(|entry| std::future::ready(lock(&order).due(entry)))
        .map(|entry| async move {
            let result = broker.publish(&outgoing(&entry, false)).await;
            (entry.meta, result)
        })
        .buffered(IN_FLIGHT);
    let mut results = std::pin::pin!(results);
    let mut pass = Pass::default();
    let mut commits = Commits::new(journal);
    while let Some((meta, result)) = results.next().await {
        let blocked = lock(&order).blocked.contains(&meta.routing_key);
        match result {
            // Taken, also behind a held one of its key (already in flight): it is
            // delivered, whatever waits before it.
            Ok(_) => {
                pass.published += 1;
                confirmed(&meta.routing_key);
                commits.push(meta.seq).await?;
            }
            Err(_) if blocked => {}
            Err(PublishError::Unroutable) => {
                hold(journal, &meta).await?;
                lock(&order).blocked.insert(meta.routing_key.clone());
            }
            Err(e) => {
                // Down, slow, or refusing: the rest waits for it.
                let next = Utc::now();
                journal
                    .defer(meta.seq, &e.to_string(), next, Undelivered::Pending)
                    .await
                    .map_err(write_failed(journal))?;
                pass.broker_down = Some(e);
                break;
            }
        }
    }
    commits.finish().await?;
    let failed = read_failed
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .take();
    if let Some(e) = failed {
        return Err(e);
    }
    pass.next_held = lock(&order).next_held;
    Ok(pass)
}

/// Confirmed entries, committed [`PAGE`] at a time by a task of their own, one commit
/// at a time.
struct Commits<'j> {
    journal: &'j Journal,
    batch: Vec<Seq>,
    running: Option<tokio::task::JoinHandle<Result<u64, WriteError>>>,
}

impl<'j> Commits<'j> {
    fn new(journal: &'j Journal) -> Self {
        Self {
            journal,
            batch: Vec::with_capacity(PAGE),
            running: None,
        }
    }

    /// Adds `seq`; a full batch is committed once the last commit has ended.
    async fn push(&mut self, seq: Seq) -> Result<(), JournalError> {
        self.batch.push(seq);
        if self.batch.len() >= PAGE {
            self.wait().await?;
            let journal = self.journal.clone();
            let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(PAGE));
            self.running = Some(tokio::spawn(async move { journal.confirm(batch).await }));
        }
        Ok(())
    }

    /// Waits for the running commit.
    async fn wait(&mut self) -> Result<(), JournalError> {
        if let Some(running) = self.running.take() {
            let written = running.await.unwrap_or(Err(WriteError::Closed));
            written.map_err(write_failed(self.journal))?;
        }
        Ok(())
    }

    /// Waits for the running commit, then commits the rest.
    async fn finish(mut self) -> Result<(), JournalError> {
        self.wait().await?;
        if !self.batch.is_empty() {
            let batch = std::mem::take(&mut self.batch);
            self.journal
                .confirm(batch)
                .await
                .map_err(write_failed(self.journal))?;
        }
        Ok(())
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

/// The message of `entry`, as first published: same exchange, key, id and body; with
/// the replay header when `replay`.
pub(super) fn outgoing(entry: &Entry, replay: bool) -> Outgoing {
    Outgoing {
        exchange: Exchange {
            // Only webhooks are journaled.
            kind: TealExchange::PowensDomainWebhooks,
            name: entry.meta.exchange.as_str().into(),
        },
        routing_key: entry.meta.routing_key.clone(),
        message_id: Some(entry.meta.message_id.clone()),
        body: entry.body.clone(),
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
