//! The journal between the webhook route and the broker: a 204 means confirmed by
//! RabbitMQ **or** committed to the journal on local disk (fsync'd).
//!
//! [`Durable`] is the relay's publisher when `journal` is on (and there is a broker):
//!
//! - `fallback`: a webhook goes to RabbitMQ as before; when the broker does not take it
//!   (down, no confirm within `publish_timeout_secs`, a nack, or, with
//!   `unroutable = "hold"`, no queue bound), it is committed to the journal and answered
//!   204. While a domain has webhooks waiting in the journal, its new ones join them
//!   there, behind them, so that each domain's order holds.
//! - `always`: every webhook is committed before its 204 and published from the
//!   journal.
//!
//! The drain (`drain.rs`) publishes what waits, in arrival order per domain, as soon as
//! the broker takes messages again; an entry leaves the journal's waiting states only
//! once confirmed. Every message carries a stable AMQP `message_id` (the same on a
//! re-publish after a crash and on a replay), so that consumers can drop duplicates.
//!
//! Duplicates: Powens sends again a webhook whose 2xx it did not see. With `dedup`, a
//! webhook whose `(domain, id_webhook_data)` was accepted within the retention is
//! answered 204 and not published again (`dedup.rs`). Only webhooks go through the
//! journal: a browser's callback or a CIBA notification is answered 503 as before when
//! the broker does not take it (the browser, the provider, tries again).

mod browse;
mod dedup;
mod drain;
mod metrics;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::Utc;
use futures_util::future::BoxFuture;
use prometheus_client::registry::Registry;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::journal::{AppendError, Journal, JournalError, NewEntry, Options, Undelivered};
use super::publish::{AmqpPublisher, Delivered, JournalStatus, Outgoing, PublishError, Publisher};
pub(crate) use browse::replay_message;
use dedup::Dedup;
pub(crate) use drain::drain_once;
use metrics::JournalMetrics;

/// How the journal is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JournalMode {
    /// Only when the broker does not take a webhook (and behind those).
    Fallback,
    /// Every webhook.
    Always,
}

/// The journal's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct JournalSettings {
    /// `None`: off.
    pub(crate) mode: Option<JournalMode>,
    /// `data_dir`.
    pub(crate) dir: PathBuf,
    /// `journal_max_bytes`.
    pub(crate) max_bytes: u64,
    /// `journal_retention_secs`.
    pub(crate) retention: Duration,
    /// `dedup`.
    pub(crate) dedup: bool,
    /// `unroutable = "hold"`.
    pub(crate) hold_unroutable: bool,
}

/// The relay's publisher with the journal: see the module's documentation.
#[derive(Debug)]
pub(crate) struct Durable {
    shared: Arc<Shared>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

#[derive(Debug)]
struct Shared {
    journal: Journal,
    broker: Arc<AmqpPublisher>,
    settings: JournalSettings,
    mode: JournalMode,
    /// Per routing key, the entries committed and not yet confirmed: a key with some
    /// takes its new webhooks into the journal, behind them.
    waiting: Mutex<HashMap<String, u64>>,
    dedup: Option<Dedup>,
    /// New entries for the drain.
    wake: Notify,
    closing: AtomicBool,
    /// Told to the drain's and the upkeep's waits when closing.
    stopped: Notify,
    metrics: JournalMetrics,
}

impl Shared {
    fn waiting(&self) -> std::sync::MutexGuard<'_, HashMap<String, u64>> {
        self.waiting.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// One fewer entry waits for `key`.
    fn settled(&self, key: &str) {
        let mut waiting = self.waiting();
        if let Some(count) = waiting.get_mut(key) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                waiting.remove(key);
            }
        }
    }

    /// Commits `message` as `state`; the key counted as waiting meanwhile, and after.
    async fn keep(&self, message: &Outgoing, state: Undelivered) -> Result<(), PublishError> {
        let entry = NewEntry {
            message_id: message.message_id.clone().unwrap_or_default(),
            received_at: Utc::now(),
            exchange: message.exchange.name.to_string(),
            routing_key: message.routing_key.clone(),
            event: message.webhook.as_ref().map(|w| w.event.to_string()),
            id_webhook_data: message
                .webhook
                .as_ref()
                .and_then(|w| w.id_webhook_data)
                .and_then(|id| i64::try_from(id).ok()),
            state,
            next_attempt_at: (state == Undelivered::Held).then(Utc::now),
            body: message.body.clone(),
        };
        match self.journal.append(entry).await {
            Ok(_) => {
                self.metrics.appended.inc();
                self.wake.notify_one();
                Ok(())
            }
            Err(e) => {
                self.settled(&message.routing_key);
                Err(match e {
                    AppendError::Full { max_bytes } => PublishError::JournalFull { max_bytes },
                    other => PublishError::Journal(other),
                })
            }
        }
    }

    /// Counts one more entry waiting for `key`; whether there were some already.
    fn join(&self, key: &str, always: bool) -> bool {
        let mut waiting = self.waiting();
        match waiting.get_mut(key) {
            Some(count) => {
                *count += 1;
                true
            }
            None if always => {
                waiting.insert(key.to_owned(), 1);
                true
            }
            None => false,
        }
    }

    async fn publish(&self, message: &Outgoing) -> Result<Delivered, PublishError> {
        if message.webhook.is_none() {
            // A callback or a CIBA notification: its sender is there to try again.
            return self.broker.publish(message).await;
        }
        let id = message.webhook.as_ref().and_then(|w| w.id_webhook_data);
        if let (Some(dedup), Some(id)) = (&self.dedup, id)
            && dedup.seen(&message.routing_key, id)
        {
            self.metrics.duplicates.inc();
            return Ok(Delivered::Duplicate);
        }
        let always = self.mode == JournalMode::Always;
        let delivered = if self.join(&message.routing_key, always) {
            self.keep(message, Undelivered::Pending).await?;
            Delivered::Journaled
        } else {
            match self.broker.publish(message).await {
                Ok(delivered) => delivered,
                Err(PublishError::Unroutable) if self.settings.hold_unroutable => {
                    self.join(&message.routing_key, true);
                    self.keep(message, Undelivered::Held).await?;
                    Delivered::Held
                }
                Err(e) if e.is_broker_unavailable() => {
                    tracing::debug!(error = %e, "the broker did not take a webhook: journaled");
                    self.join(&message.routing_key, true);
                    self.keep(message, Undelivered::Pending).await?;
                    Delivered::Journaled
                }
                Err(e) => return Err(e),
            }
        };
        if let (Some(dedup), Some(id)) = (&self.dedup, id) {
            dedup.remember(&message.routing_key, id);
        }
        Ok(delivered)
    }
}

/// Why the journal could not be opened at start-up: another process holds it, it is
/// damaged, or it cannot be read. The message names the file and what to do.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct JournalStartError(#[from] StartFailure);

#[derive(Debug, thiserror::Error)]
pub(crate) enum StartFailure {
    #[error(transparent)]
    Open(#[from] JournalError),
    #[error("opening the journal failed: {0}")]
    Task(#[source] tokio::task::JoinError),
}

impl From<JournalError> for JournalStartError {
    fn from(error: JournalError) -> Self {
        Self(StartFailure::Open(error))
    }
}

/// The journal, open, not yet publishing: opened before the broker is connected, so
/// that a journal another process holds stops the relay before anything else.
#[derive(Debug)]
pub(crate) struct OpenJournal {
    journal: Journal,
    settings: JournalSettings,
    waiting: HashMap<String, u64>,
    dedup: Option<Dedup>,
}

impl OpenJournal {
    /// Opens the journal of `settings` (its mode must be on): locks it, checks it,
    /// reads what waits in it and, with `dedup`, the webhooks of the retention.
    ///
    /// # Errors
    /// [`JournalStartError`]: another process holds the journal, or it is damaged.
    pub(crate) async fn open(settings: JournalSettings) -> Result<Self, JournalStartError> {
        let dir = settings.dir.clone();
        let options = Options {
            max_bytes: settings.max_bytes,
        };
        let journal = tokio::task::spawn_blocking(move || Journal::open(&dir, options))
            .await
            .map_err(StartFailure::Task)??;
        let waiting = journal
            .reader()
            .waiting_per_key()
            .await?
            .into_iter()
            .collect();
        let dedup = match settings.dedup {
            true => Some(Dedup::warm(journal.reader(), settings.retention).await?),
            false => None,
        };
        Ok(Self {
            journal,
            settings,
            waiting,
            dedup,
        })
    }

    /// Publishes through `broker` from now on: starts the drain and the journal's
    /// upkeep.
    pub(crate) fn start(self, broker: Arc<AmqpPublisher>) -> Durable {
        let mode = self.settings.mode.unwrap_or(JournalMode::Fallback);
        let totals = self.journal.totals();
        tracing::info!(
            journal = %self.journal.path().display(),
            mode = if mode == JournalMode::Always { "always" } else { "fallback" },
            waiting = totals.pending + totals.held,
            dedup = self.settings.dedup,
            "journal open"
        );
        let shared = Arc::new(Shared {
            journal: self.journal,
            broker,
            settings: self.settings,
            mode,
            waiting: Mutex::new(self.waiting),
            dedup: self.dedup,
            wake: Notify::new(),
            closing: AtomicBool::new(false),
            stopped: Notify::new(),
            metrics: JournalMetrics::default(),
        });
        let tasks = vec![
            tokio::spawn(drain::run(shared.clone())),
            tokio::spawn(metrics::upkeep(shared.clone())),
        ];
        Durable {
            shared,
            tasks: Mutex::new(tasks),
        }
    }
}

impl Publisher for Durable {
    fn publish<'a>(
        &'a self,
        message: &'a Outgoing,
    ) -> BoxFuture<'a, Result<Delivered, PublishError>> {
        Box::pin(self.shared.publish(message))
    }

    /// Whether the broker takes messages now (the journal's state is [`journal`]).
    ///
    /// [`journal`]: Publisher::journal
    fn is_ready(&self) -> bool {
        self.shared.broker.is_ready()
    }

    fn journal(&self) -> Option<JournalStatus> {
        let totals = self.shared.journal.totals();
        let undelivered_room = totals.undelivered_bytes < self.shared.settings.max_bytes;
        Some(JournalStatus {
            accepting: !self.shared.closing.load(Ordering::Acquire) && undelivered_room,
            waiting: totals.pending + totals.held,
        })
    }

    fn assigns_message_ids(&self) -> bool {
        true
    }

    fn register_metrics(&self, registry: &mut Registry) {
        self.shared.metrics.register(registry);
    }

    fn broker_node(&self) -> Option<String> {
        self.shared.broker.broker_node()
    }

    /// Stops the drain and the upkeep (a publish in flight finishes), commits what is
    /// queued and releases the journal, then closes the broker connection.
    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            self.shared.closing.store(true, Ordering::Release);
            self.shared.stopped.notify_waiters();
            let tasks =
                std::mem::take(&mut *self.tasks.lock().unwrap_or_else(PoisonError::into_inner));
            for task in tasks {
                let _ = task.await;
            }
            self.shared.journal.close().await;
            self.shared.broker.close().await;
        })
    }
}
