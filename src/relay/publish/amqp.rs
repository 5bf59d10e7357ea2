//! The RabbitMQ publisher: one connection and one confirm-mode channel shared by every
//! request, watched by a supervisor task that replaces them when they die.
//!
//! lapin does not bring a connection back after the broker restarts or the network
//! fails (its own auto-recovery gives up after a fixed number of attempts and replays
//! state onto the old channel). The relay does it itself, so that the rules are simple:
//!
//! - A *link* is one connection with its channel, numbered by a generation. It is never
//!   repaired: when it dies it is dropped, and a new link is opened, its exchanges
//!   declared again.
//! - A link is dead when lapin says the connection or channel is closed (a reset, a
//!   missed heartbeat, a channel error), or when a publish on it failed, was refused
//!   (nack), or was not confirmed within `publish_timeout` (a network that swallows
//!   traffic shows nothing else). After a node's loss, a channel opened while a quorum
//!   queue elected its new leader can refuse every publish to it: a new link does not.
//!   A blocked connection (broker resource alarm) is not ready but is kept:
//!   reconnecting would not lift the alarm.
//! - While there is no ready link, a publish fails at once with
//!   [`PublishError::Unavailable`]: the relay answers 503 without waiting.
//! - A publish answers `Ok` only for the broker's ack on the link it was sent on; one
//!   cut off by the link's death fails (its confirm errors or times out), so it is
//!   answered 503, never 204.
//! - Reconnection waits 50 ms, then doubles up to `reconnect_max_delay`, each wait
//!   drawn between half and all of it (jitter, so that many relays do not reconnect in
//!   step), and each attempt is bounded by `connect_timeout`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use futures_util::future::BoxFuture;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Confirmation, Connection};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::{sleep, timeout};

use super::Unroutable;
use super::{Delivered, Outgoing, PublishError, Publisher};
use crate::amq::TealExchange;
use crate::relay::broker::{self, Backoff, Broker, BrokerError, Exchanges, short_string};

/// The AMQP header of a message published again on an operator's request.
pub(crate) const REPLAY_HEADER: &str = "x-powens-relay-replay";

/// How often the supervisor looks at the link besides being woken by a failed publish.
const WATCH_INTERVAL: Duration = Duration::from_millis(100);

/// How the AMQP publisher connects, publishes and recovers.
#[derive(Debug, Clone)]
pub(crate) struct AmqpSettings {
    /// The broker, and how long a connection attempt (TCP, AMQP handshake, channel,
    /// declarations) may take.
    pub(crate) broker: Broker,
    /// How the exchanges are named and declared.
    pub(crate) exchanges: Exchanges,
    /// The exchanges to declare on every new connection.
    pub(crate) declare: Vec<TealExchange>,
    /// Answer to a message no queue receives.
    pub(crate) unroutable: Unroutable,
    /// How long a publish may wait for its confirm.
    pub(crate) publish_timeout: Duration,
    /// The longest wait between two reconnection attempts.
    pub(crate) reconnect_max_delay: Duration,
}

/// Publishes to RabbitMQ with publisher confirms, reconnecting by itself (see the module
/// documentation for the rules).
#[derive(Debug)]
pub(crate) struct AmqpPublisher {
    shared: Arc<Shared>,
    supervisor: Mutex<Option<JoinHandle<()>>>,
}

/// One connection and its confirm-mode channel.
#[derive(Debug)]
struct Link {
    connection: Connection,
    channel: Channel,
    generation: u64,
}

impl Link {
    fn is_dead(&self) -> bool {
        !(self.connection.status().connected() && self.channel.status().connected())
    }
}

#[derive(Debug)]
struct Shared {
    settings: AmqpSettings,
    link: RwLock<Option<Arc<Link>>>,
    /// The generation of a link that a publish found broken (0: none).
    broken: AtomicU64,
    /// Wakes the supervisor: a link broke, or the publisher is closing.
    wake: Notify,
    closing: AtomicBool,
}

impl Shared {
    /// The current link, whatever its state.
    fn current(&self) -> Option<Arc<Link>> {
        self.link
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Whether `link` is still up: lapin has not closed it and no publish found it
    /// broken. (A blocked link is alive, but not ready.)
    fn is_alive(&self, link: &Link) -> bool {
        !link.is_dead() && self.broken.load(Ordering::Acquire) != link.generation
    }

    /// The current link if it can take a publish now.
    fn ready_link(&self) -> Option<Arc<Link>> {
        self.current()
            .filter(|link| self.is_alive(link) && !link.connection.status().blocked())
    }

    /// A publish on `link` failed in a way that says the link is gone.
    fn report_broken(&self, link: &Link) {
        // A blocked connection is the broker refusing work (resource alarm), not a dead
        // link: a new connection would be blocked too.
        if link.connection.status().blocked() {
            return;
        }
        self.broken.store(link.generation, Ordering::Release);
        self.wake.notify_one();
    }

    fn replace_link(&self, link: Option<Arc<Link>>) -> Option<Arc<Link>> {
        std::mem::replace(
            &mut *self.link.write().unwrap_or_else(PoisonError::into_inner),
            link,
        )
    }

    async fn publish_on(&self, link: &Link, message: &Outgoing) -> Result<Delivered, PublishError> {
        let mut properties = BasicProperties::default()
            .with_content_type("application/json".into())
            .with_delivery_mode(2);
        if let Some(id) = &message.message_id {
            properties = properties.with_message_id(short_string(id)?);
        }
        if message.replay {
            let mut headers = FieldTable::default();
            headers.insert(REPLAY_HEADER.into(), AMQPValue::Boolean(true));
            properties = properties.with_headers(headers);
        }
        let exchange = short_string(&message.exchange.name)?;
        let routing_key = short_string(&message.routing_key)?;
        let broken = |e: lapin::Error| {
            self.report_broken(link);
            if link.is_dead() {
                PublishError::Unavailable
            } else {
                PublishError::Channel(e.into())
            }
        };
        let confirm = link
            .channel
            .basic_publish(
                exchange,
                routing_key,
                BasicPublishOptions {
                    mandatory: true,
                    immediate: false,
                },
                &message.body,
                properties,
            )
            .await
            .map_err(broken)?;
        match confirm.await.map_err(broken)? {
            Confirmation::Ack(None) => Ok(Delivered::Confirmed),
            Confirmation::Ack(Some(_returned)) => match self.settings.unroutable {
                // Holding is the journal's: here, as for reject, not delivered.
                Unroutable::Reject | Unroutable::Hold => Err(PublishError::Unroutable),
                Unroutable::Accept => {
                    tracing::warn!(
                        request_id = crate::relay::ops::current_request_id().as_deref(),
                        exchange = %message.exchange.name,
                        routing_key = %message.routing_key,
                        "no queue is bound for this domain: message dropped (unroutable = accept)"
                    );
                    Ok(Delivered::Dropped)
                }
            },
            Confirmation::Nack(_) => {
                // The broker could not store it: a queue's node is gone, a quorum queue
                // is between leaders, a full queue refuses. A channel that opened while
                // a quorum queue elected its leader can go on refusing every publish to
                // it (seen with RabbitMQ 3.10 after a node's loss): a fresh link does not.
                self.report_broken(link);
                Err(PublishError::Nacked)
            }
            // open_link enables confirms on every channel it opens.
            Confirmation::NotRequested => Err(PublishError::Nacked),
        }
    }
}

impl AmqpPublisher {
    /// Connects, opens a confirm-mode channel, declares the exchanges and starts the
    /// supervisor that reconnects when the link dies. Must be called within a Tokio
    /// runtime.
    ///
    /// # Errors
    /// A [`BrokerError`] saying which step failed (a 406 on declare means the exchange
    /// exists with other flags: set `exchange_durable` to match). The first connection
    /// is not retried (but for trying each node of a cluster once): a relay that cannot
    /// reach its broker at start-up says so and stops.
    pub(crate) async fn connect(settings: AmqpSettings) -> Result<Self, BrokerError> {
        let link = settings
            .broker
            .first_of_each(async || open_link(&settings, 1).await)
            .await?;
        let shared = Arc::new(Shared {
            settings,
            link: RwLock::new(Some(Arc::new(link))),
            broken: AtomicU64::new(0),
            wake: Notify::new(),
            closing: AtomicBool::new(false),
        });
        let supervisor = tokio::spawn(supervise(shared.clone()));
        Ok(Self {
            shared,
            supervisor: Mutex::new(Some(supervisor)),
        })
    }
}

/// Opens link number `generation`, bounded by the connect timeout.
async fn open_link(settings: &AmqpSettings, generation: u64) -> Result<Link, BrokerError> {
    let broker = &settings.broker;
    broker
        .bounded(async {
            let (connection, channel) = broker.open().await?;
            channel
                .confirm_select(ConfirmSelectOptions::default())
                .await
                .map_err(BrokerError::setup("enable publisher confirms"))?;
            settings
                .exchanges
                .declare(&channel, &settings.declare)
                .await?;
            Ok(Link {
                connection,
                channel,
                generation,
            })
        })
        .await
}

/// The supervisor: waits for the link to die, then reconnects until it succeeds or the
/// publisher closes.
async fn supervise(shared: Arc<Shared>) {
    let mut generation = 1;
    loop {
        // Watch the current link.
        loop {
            if shared.closing.load(Ordering::Acquire) {
                return;
            }
            if !shared.current().is_some_and(|link| shared.is_alive(&link)) {
                break;
            }
            tokio::select! {
                () = shared.wake.notified() => {}
                () = sleep(WATCH_INTERVAL) => {}
            }
        }
        if let Some(dead) = shared.replace_link(None) {
            tracing::warn!(
                "the broker connection is lost or refused a message: answering 503 until a new one is up; reconnecting"
            );
            tokio::spawn(close_link(dead, "connection replaced"));
        }

        let mut backoff = Backoff::new(shared.settings.reconnect_max_delay);
        for attempt in 1u64.. {
            if shared.closing.load(Ordering::Acquire) {
                return;
            }
            generation += 1;
            match open_link(&shared.settings, generation).await {
                Ok(link) => {
                    shared.replace_link(Some(Arc::new(link)));
                    let node = shared
                        .settings
                        .broker
                        .node_in_use()
                        .map(ToString::to_string);
                    tracing::info!(
                        attempt,
                        node = node.unwrap_or_default(),
                        "reconnected to the broker, exchanges declared"
                    );
                    break;
                }
                Err(e) => {
                    let wait = backoff.next_wait();
                    tracing::warn!(
                        attempt,
                        error = %e,
                        retry_in_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                        "reconnecting to the broker failed"
                    );
                    tokio::select! {
                        () = shared.wake.notified() => {}
                        () = sleep(wait) => {}
                    }
                }
            }
        }
    }
}

/// Closes a dead or finished link (see [`broker::close`]).
async fn close_link(link: Arc<Link>, reason: &'static str) {
    broker::close(&link.connection, &link.channel, reason).await;
}

impl Publisher for AmqpPublisher {
    fn publish<'a>(
        &'a self,
        message: &'a Outgoing,
    ) -> BoxFuture<'a, Result<Delivered, PublishError>> {
        Box::pin(async move {
            let Some(link) = self.shared.ready_link() else {
                return Err(PublishError::Unavailable);
            };
            match timeout(
                self.shared.settings.publish_timeout,
                self.shared.publish_on(&link, message),
            )
            .await
            {
                Ok(result) => result,
                Err(_) => {
                    // A healthy broker confirms in milliseconds: this link is likely cut
                    // off (traffic swallowed), which nothing else would reveal as quickly.
                    self.shared.report_broken(&link);
                    Err(PublishError::Timeout)
                }
            }
        })
    }

    fn is_ready(&self) -> bool {
        self.shared.ready_link().is_some()
    }

    fn broker_node(&self) -> Option<String> {
        self.shared.ready_link()?;
        let node = self.shared.settings.broker.node_in_use()?;
        Some(node.to_string())
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            self.shared.closing.store(true, Ordering::Release);
            self.shared.wake.notify_one();
            let supervisor = self
                .supervisor
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take();
            if let Some(supervisor) = supervisor {
                // It stops at its next look; a connection attempt in progress is
                // abandoned.
                supervisor.abort();
                let _ = supervisor.await;
            }
            if let Some(link) = self.shared.replace_link(None) {
                close_link(link, "relay shutting down").await;
            }
        })
    }
}
