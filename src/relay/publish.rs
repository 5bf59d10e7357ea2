//! Publishing messages: to RabbitMQ with publisher confirms, to standard output (the
//! default without a broker), or to memory (tests).

use std::future::Future;
use std::io::Write;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use lapin::options::{BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions};
use lapin::types::{FieldTable, ShortString};
use lapin::{
    BasicProperties, Channel, Confirmation, Connection, ConnectionProperties, ExchangeKind,
};

use super::config::{AmqpUrl, Unroutable};

/// A boxed future, so that [`Publisher`] can be a trait object.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A message ready to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// The exchange's full name (prefix included).
    pub exchange: String,
    /// The routing key (for webhooks, the Powens domain).
    pub routing_key: String,
    /// The message body (TeaL JSON).
    pub body: Vec<u8>,
    /// The AMQP `message_id` (the webhook's `id_webhook_data`, when it has one).
    pub message_id: Option<String>,
}

/// Why a message was not published. Every variant means "not confirmed": the relay
/// answers 503 and Powens retries.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PublishError {
    /// No usable broker connection.
    #[error("the message broker is unavailable")]
    Unavailable,
    /// The broker refused the message (nack).
    #[error("the message broker refused the message")]
    Nacked,
    /// No queue is bound to receive the message.
    #[error("no queue is bound to receive messages for this domain")]
    Unroutable,
    /// The broker did not confirm in time.
    #[error("the message broker did not confirm the message in time")]
    Timeout,
    /// The publish failed on the connection or channel.
    #[error("publishing failed: {0}")]
    Failed(String),
}

/// Where the relay sends messages.
pub trait Publisher: Send + Sync + 'static {
    /// Publishes `message`, resolving once it is safely stored (for RabbitMQ: confirmed).
    fn publish<'a>(&'a self, message: &'a Outgoing) -> BoxFuture<'a, Result<(), PublishError>>;

    /// Whether a publish could succeed now (`/readyz`).
    fn is_ready(&self) -> bool;

    /// Releases the connection after the last publish (graceful shutdown).
    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}

impl std::fmt::Debug for dyn Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Publisher")
    }
}

/// Publishes to RabbitMQ over one long-lived connection and one confirm-mode channel
/// shared by every request: concurrent publishes pipeline their confirms.
#[derive(Debug)]
pub struct AmqpPublisher {
    connection: Connection,
    channel: Channel,
    unroutable: Unroutable,
    timeout: Duration,
}

/// How to declare the exchanges.
#[derive(Debug, Clone)]
pub struct ExchangeSettings {
    /// Exchange names to declare (direct exchanges).
    pub names: Vec<String>,
    /// Declare them durable (TeaL: false).
    pub durable: bool,
}

impl AmqpPublisher {
    /// Connects, opens a confirm-mode channel and declares the exchanges.
    ///
    /// # Errors
    /// [`PublishError::Failed`] saying which step failed (a 406 on declare means the
    /// exchange exists with other flags: set `exchange_durable` to match).
    pub async fn connect(
        url: &AmqpUrl,
        exchanges: &ExchangeSettings,
        unroutable: Unroutable,
        timeout: Duration,
    ) -> Result<Self, PublishError> {
        let connection = Connection::connect_uri(
            url.uri(),
            ConnectionProperties::default().with_connection_name("powens-relay".into()),
        )
        .await
        .map_err(|e| PublishError::Failed(format!("cannot connect to {url}: {e}")))?;
        let channel = connection
            .create_channel()
            .await
            .map_err(|e| PublishError::Failed(format!("cannot open a channel: {e}")))?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(|e| PublishError::Failed(format!("cannot enable publisher confirms: {e}")))?;
        declare_exchanges(&channel, exchanges).await?;
        Ok(Self {
            connection,
            channel,
            unroutable,
            timeout,
        })
    }

    async fn publish_confirmed(&self, message: &Outgoing) -> Result<(), PublishError> {
        let failed = |e: lapin::Error| {
            if self.is_ready() {
                PublishError::Failed(e.to_string())
            } else {
                PublishError::Unavailable
            }
        };
        let mut properties = BasicProperties::default()
            .with_content_type("application/json".into())
            .with_delivery_mode(2);
        if let Some(id) = &message.message_id {
            let id = short_string(id).map_err(PublishError::Failed)?;
            properties = properties.with_message_id(id);
        }
        let exchange = short_string(&message.exchange).map_err(PublishError::Failed)?;
        let routing_key = short_string(&message.routing_key).map_err(PublishError::Failed)?;
        let confirm = self
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
            .map_err(failed)?;
        match confirm.await.map_err(failed)? {
            Confirmation::Ack(None) => Ok(()),
            Confirmation::Ack(Some(_returned)) => match self.unroutable {
                Unroutable::Reject => Err(PublishError::Unroutable),
                Unroutable::Accept => {
                    tracing::warn!(
                        exchange = %message.exchange,
                        routing_key = %message.routing_key,
                        "no queue is bound for this domain: message dropped (unroutable = accept)"
                    );
                    Ok(())
                }
            },
            Confirmation::Nack(_) => Err(PublishError::Nacked),
            Confirmation::NotRequested => Err(PublishError::Failed(
                "the channel is not in confirm mode".into(),
            )),
        }
    }
}

/// `text` as an AMQP short string (names, routing keys, message ids: 255 bytes at most).
pub(crate) fn short_string(text: &str) -> Result<ShortString, String> {
    ShortString::try_new(text).map_err(|_| {
        format!(
            "a name, routing key or message id is {} bytes long, more than the 255 AMQP allows",
            text.len()
        )
    })
}

/// Declares each exchange as a direct exchange with the given durability.
pub(crate) async fn declare_exchanges(
    channel: &Channel,
    exchanges: &ExchangeSettings,
) -> Result<(), PublishError> {
    for name in &exchanges.names {
        channel
            .exchange_declare(
                short_string(name).map_err(PublishError::Failed)?,
                ExchangeKind::Direct,
                ExchangeDeclareOptions {
                    durable: exchanges.durable,
                    ..ExchangeDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .map_err(|e| {
                PublishError::Failed(format!(
                    "cannot declare exchange {name} (durable = {}): {e}; if it exists with other flags, set exchange_durable to match",
                    exchanges.durable
                ))
            })?;
    }
    Ok(())
}

impl Publisher for AmqpPublisher {
    fn publish<'a>(&'a self, message: &'a Outgoing) -> BoxFuture<'a, Result<(), PublishError>> {
        Box::pin(async move {
            if !self.is_ready() {
                return Err(PublishError::Unavailable);
            }
            tokio::time::timeout(self.timeout, self.publish_confirmed(message))
                .await
                .unwrap_or(Err(PublishError::Timeout))
        })
    }

    fn is_ready(&self) -> bool {
        self.connection.status().connected() && self.channel.status().connected()
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            if let Err(e) = self.channel.close(200, "relay shutting down".into()).await {
                tracing::warn!(error = %e, "closing the AMQP channel failed");
            }
            if let Err(e) = self
                .connection
                .close(200, "relay shutting down".into())
                .await
            {
                tracing::warn!(error = %e, "closing the AMQP connection failed");
            }
        })
    }
}

/// Writes each message body as one line to standard output: the relay's default when no
/// broker is configured, for trying it out.
#[derive(Debug, Default)]
pub struct StdoutPublisher {
    lock: Mutex<()>,
}

impl Publisher for StdoutPublisher {
    fn publish<'a>(&'a self, message: &'a Outgoing) -> BoxFuture<'a, Result<(), PublishError>> {
        Box::pin(async move {
            let _guard = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
            let mut out = std::io::stdout().lock();
            out.write_all(&message.body)
                .and_then(|()| out.write_all(b"\n"))
                .and_then(|()| out.flush())
                .map_err(|e| PublishError::Failed(format!("cannot write to standard output: {e}")))
        })
    }

    fn is_ready(&self) -> bool {
        true
    }
}

/// Keeps published messages in memory, and can be told to fail: for tests of code that
/// uses a [`Publisher`].
#[derive(Debug, Clone, Default)]
pub struct MemoryPublisher {
    inner: Arc<Mutex<MemoryState>>,
}

#[derive(Debug, Default)]
struct MemoryState {
    published: Vec<Outgoing>,
    failure: Option<PublishError>,
}

impl MemoryPublisher {
    /// An empty publisher that accepts every message.
    pub fn new() -> Self {
        Self::default()
    }

    /// From now on, fail every publish with `failure` (or succeed, with `None`).
    pub fn fail_with(&self, failure: Option<PublishError>) {
        self.state().failure = failure;
    }

    /// The messages published so far.
    pub fn published(&self) -> Vec<Outgoing> {
        self.state().published.clone()
    }

    /// The messages published so far, forgetting them.
    pub fn take(&self) -> Vec<Outgoing> {
        std::mem::take(&mut self.state().published)
    }

    fn state(&self) -> std::sync::MutexGuard<'_, MemoryState> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Publisher for MemoryPublisher {
    fn publish<'a>(&'a self, message: &'a Outgoing) -> BoxFuture<'a, Result<(), PublishError>> {
        Box::pin(async move {
            let mut state = self.state();
            match &state.failure {
                Some(failure) => Err(failure.clone()),
                None => {
                    state.published.push(message.clone());
                    Ok(())
                }
            }
        })
    }

    fn is_ready(&self) -> bool {
        self.state().failure.is_none()
    }
}
