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

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::StreamExt;

mod pipeline;

use pipeline::{AbortOnDrop, Commits, Read, entries, read_ahead};

use super::Shared;
use crate::amq::TealExchange;
use crate::relay::journal::{
    Entry, EntryMeta, Journal, JournalError, State, Undelivered, WriteError,
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
