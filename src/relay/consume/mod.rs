//! The consumer side: bind a queue to TeaL's exchanges, as TeaL's `AMQHandler` does,
//! and receive typed messages, acknowledged only once the caller has handled them.
//!
//! The consumer reconnects by itself when its connection dies (capped backoff with
//! jitter), declaring its queue and bindings again; bindings can be added and removed
//! while it runs ([`TealConsumer::bindings`]). A message delivered but not acknowledged
//! before the connection died is delivered again: handle messages idempotently (the
//! webhook's `message_id` helps). A private queue (the default, TeaL's way) is deleted
//! with its connection, so what is published while the consumer reconnects is not
//! kept for it; a named queue ([`ConsumerSettings::queue`]) keeps it.
//!
//! ```no_run
//! use powens_webhooks::Domain;
//! use powens_webhooks::relay::AmqpUrl;
//! use powens_webhooks::relay::consume::{Bindings, ConsumerSettings, Incoming, TealConsumer};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let url = AmqpUrl::parse("amqp://guest:guest@127.0.0.1:5672/%2f")?;
//! let bindings = Bindings {
//!     domains: vec![Domain::parse("budgea.biapi.pro")?],
//!     ..Bindings::default()
//! };
//! let mut consumer = TealConsumer::connect(&url, &ConsumerSettings::default(), &bindings).await?;
//! // Acknowledged when the handler returns Ok, requeued when it returns Err.
//! loop {
//!     consumer
//!         .handle_next(|received| {
//!             if let Incoming::Webhook(webhook) = &received.message {
//!                 println!("{} from {}", webhook.event, webhook.domain);
//!             }
//!             std::future::ready(Ok::<(), std::io::Error>(()))
//!         })
//!         .await??;
//! }
//! # }
//! ```

mod bindings;
mod error;
mod received;
mod settings;

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures_util::StreamExt;
use lapin::options::{BasicConsumeOptions, BasicQosOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, Connection};
use tokio::sync::Mutex;

use super::broker::AmqpUrl;
use super::broker::{self, Backoff, Broker, BrokerError, Exchanges, short_string};
pub use bindings::{BindingHandle, Bindings};
use bindings::{Wanted, set_binding};
pub use error::ConsumeError;
pub use received::{ACK_TIMEOUT, Incoming, Received};
pub use settings::{ConsumerSettings, QueueType, QueueTypeError};

/// One connection's worth of consuming.
#[derive(Debug)]
struct Session {
    connection: Connection,
    channel: Channel,
    consumer: lapin::Consumer,
    queue: String,
}

/// A consumer bound to TeaL's exchanges, reconnecting by itself.
#[derive(Debug)]
pub struct TealConsumer {
    broker: Broker,
    settings: ConsumerSettings,
    handle: BindingHandle,
    session: Option<Session>,
    queue: String,
}

impl TealConsumer {
    /// Connects, declares the exchanges (with the relay's flags) and the queue, binds it
    /// and starts consuming. The first connection is not retried: a consumer that
    /// cannot reach its broker at start-up says so.
    ///
    /// # Errors
    /// [`ConsumeError::Broker`] saying which step failed.
    pub async fn connect(
        url: &AmqpUrl,
        settings: &ConsumerSettings,
        bindings: &Bindings,
    ) -> Result<Self, ConsumeError> {
        Self::connect_to(Broker::new(url.clone()), settings, bindings).await
    }

    /// As [`TealConsumer::connect`], to the nodes of one cluster: the first attempt goes
    /// to a node drawn at random, each failed one moves on to the next node, and each
    /// node is tried once before giving up.
    ///
    /// # Errors
    /// [`ConsumeError::NoNodes`] for an empty list, else as [`TealConsumer::connect`].
    pub async fn connect_cluster(
        nodes: Vec<AmqpUrl>,
        settings: &ConsumerSettings,
        bindings: &Bindings,
    ) -> Result<Self, ConsumeError> {
        let broker = Broker::cluster(nodes).ok_or(ConsumeError::NoNodes)?;
        Self::connect_to(broker, settings, bindings).await
    }

    /// As [`TealConsumer::connect`], to `broker` (its connect time-out is replaced by
    /// the settings').
    pub(crate) async fn connect_to(
        broker: Broker,
        settings: &ConsumerSettings,
        bindings: &Bindings,
    ) -> Result<Self, ConsumeError> {
        if settings.queue.is_none() && settings.queue_type == QueueType::Quorum {
            return Err(ConsumeError::UnnamedQuorumQueue);
        }
        let broker = broker
            .with_connect_timeout(settings.connect_timeout)
            .with_connection_name("powens-consumer");
        let handle = BindingHandle {
            wanted: Arc::new(Mutex::new(Wanted {
                keys: bindings.pairs().collect(),
                live: None,
            })),
            connected: Arc::new(AtomicBool::new(false)),
            exchanges: Exchanges {
                prefix: settings.exchange_prefix.clone(),
                durable: settings.exchange_durable,
            },
            broker: broker.clone(),
        };
        let mut consumer = Self {
            broker,
            settings: settings.clone(),
            handle,
            session: None,
            queue: String::new(),
        };
        let broker = consumer.broker.clone();
        broker
            .first_of_each(async || consumer.open_session().await)
            .await?;
        Ok(consumer)
    }

    /// The queue's name (server-generated unless one was configured; a private queue
    /// gets a new name on each reconnection).
    pub fn queue(&self) -> &str {
        &self.queue
    }

    /// A handle to add and remove bindings while the consumer runs.
    pub fn bindings(&self) -> BindingHandle {
        self.handle.clone()
    }

    async fn open_session(&mut self) -> Result<(), BrokerError> {
        let mut wanted = self.handle.wanted.lock().await;
        let settings = &self.settings;
        let exchanges = &self.handle.exchanges;
        let session = self
            .broker
            .bounded(async {
                let (connection, channel) = self.broker.open().await?;
                channel
                    .basic_qos(settings.prefetch, BasicQosOptions::default())
                    .await
                    .map_err(BrokerError::setup("set the prefetch count"))?;
                let used: BTreeSet<_> = wanted.keys.iter().map(|(e, _)| *e).collect();
                exchanges
                    .declare(&channel, &used.into_iter().collect::<Vec<_>>())
                    .await?;
                let options = match settings.queue {
                    Some(_) => QueueDeclareOptions {
                        durable: true,
                        ..QueueDeclareOptions::default()
                    },
                    None => QueueDeclareOptions {
                        exclusive: true,
                        auto_delete: true,
                        ..QueueDeclareOptions::default()
                    },
                };
                let mut arguments = FieldTable::default();
                if settings.queue.is_some() && settings.queue_type != QueueType::Classic {
                    arguments.insert(
                        "x-queue-type".into(),
                        AMQPValue::LongString(settings.queue_type.as_str().into()),
                    );
                }
                let name = short_string(settings.queue.as_deref().unwrap_or(""))?;
                let queue = channel
                    .queue_declare(name, options, arguments)
                    .await
                    .map_err(BrokerError::setup("declare the queue"))?
                    .name()
                    .as_str()
                    .to_owned();
                for (exchange, key) in &wanted.keys {
                    set_binding(&channel, &queue, exchanges, (*exchange, key), true).await?;
                }
                let consumer = channel
                    .basic_consume(
                        short_string(&queue)?,
                        "".into(),
                        BasicConsumeOptions::default(),
                        FieldTable::default(),
                    )
                    .await
                    .map_err(BrokerError::setup("start consuming"))?;
                Ok(Session {
                    connection,
                    channel,
                    consumer,
                    queue,
                })
            })
            .await?;
        wanted.live = Some((session.channel.clone(), session.queue.clone()));
        self.handle.connected.store(true, Ordering::Relaxed);
        self.queue.clone_from(&session.queue);
        self.session = Some(session);
        Ok(())
    }

    /// Drops a dead session and opens a new one, retrying with backoff until it works.
    async fn reconnect(&mut self) {
        self.handle.connected.store(false, Ordering::Relaxed);
        self.handle.wanted.lock().await.live = None;
        if let Some(dead) = self.session.take() {
            tokio::spawn(async move {
                broker::close(&dead.connection, &dead.channel, "connection replaced").await;
            });
        }
        let mut backoff = Backoff::new(self.settings.reconnect_max_delay);
        for attempt in 1u64.. {
            match self.open_session().await {
                Ok(()) => {
                    let node = self.handle.node().unwrap_or_default();
                    tracing::info!(attempt, queue = %self.queue, %node, "consumer reconnected, queue and bindings declared");
                    return;
                }
                Err(e) => {
                    let wait = backoff.next_wait();
                    tracing::warn!(attempt, error = %e, retry_in_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX), "consumer reconnection failed");
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    /// The next message, reconnecting as needed. Acknowledge it with
    /// [`Received::ack`] (or use [`TealConsumer::handle_next`]).
    ///
    /// # Errors
    /// [`ConsumeError::Malformed`]: the message was rejected.
    pub async fn next(&mut self) -> Result<Received, ConsumeError> {
        loop {
            let Some(session) = self.session.as_mut() else {
                self.reconnect().await;
                continue;
            };
            match session.consumer.next().await {
                Some(Ok(delivery)) => {
                    return received::read(delivery, &self.settings.exchange_prefix).await;
                }
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "consumer connection lost: reconnecting");
                }
                None => tracing::warn!("consumer cancelled by the broker: reconnecting"),
            }
            self.reconnect().await;
        }
    }

    /// Receives the next message and runs `handler` on it: acknowledged if the handler
    /// succeeds, requeued (for redelivery) if it fails. Returns the handler's result.
    /// An acknowledgement lost with the connection is logged, not returned: the message
    /// comes again after reconnection.
    ///
    /// # Errors
    /// As [`TealConsumer::next`].
    pub async fn handle_next<F, Fut, E>(
        &mut self,
        handler: F,
    ) -> Result<Result<(), E>, ConsumeError>
    where
        F: FnOnce(&Received) -> Fut,
        Fut: Future<Output = Result<(), E>>,
    {
        let received = self.next().await?;
        let result = handler(&received).await;
        let settled = match &result {
            Ok(()) => received.ack().await,
            Err(_) => received.requeue().await,
        };
        if let Err(e) = settled {
            tracing::warn!(error = %e, "acknowledgement lost with the connection: the message will be delivered again");
        }
        Ok(result)
    }

    /// Closes the channel and the connection (a private queue is then deleted).
    pub async fn close(self) {
        if let Some(session) = self.session {
            broker::close(&session.connection, &session.channel, "consumer done").await;
        }
    }
}
