//! Publishing messages: to RabbitMQ with publisher confirms, to standard output (the
//! default without a broker), or to memory (tests).

use std::io::Write;
use std::sync::{Arc, Mutex, PoisonError};

use futures_util::future::BoxFuture;

use super::broker::{AmqpError, BrokerError};

mod amqp;

pub use amqp::{AmqpPublisher, AmqpSettings};

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
#[derive(Debug, Clone, thiserror::Error)]
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
    /// The broker could not be reached or set up, or a name is too long for AMQP.
    #[error(transparent)]
    Broker(#[from] BrokerError),
    /// The publish failed on the connection or channel.
    #[error("publishing failed: {0}")]
    Channel(#[source] AmqpError),
    /// The message could not be written to standard output.
    #[error("cannot write to standard output: {0}")]
    Output(#[source] Arc<std::io::Error>),
}

impl PublishError {
    /// Whether this is a fault whose detail belongs in the log rather than in the answer
    /// (the broker's or the output's), as opposed to the broker's verdict on a message.
    pub(crate) fn is_broker_fault(&self) -> bool {
        matches!(self, Self::Broker(_) | Self::Channel(_) | Self::Output(_))
    }

    /// What the answer to Powens says: the verdict, or "unavailable" for a fault.
    pub(crate) fn public_reason(&self) -> String {
        if self.is_broker_fault() {
            Self::Unavailable.to_string()
        } else {
            self.to_string()
        }
    }
}

/// Where the relay sends messages.
pub trait Publisher: Send + Sync + 'static {
    /// Publishes `message`, resolving once it is safely stored (for RabbitMQ: confirmed).
    fn publish<'a>(&'a self, message: &'a Outgoing) -> BoxFuture<'a, Result<(), PublishError>>;

    /// Whether a publish could succeed now (`/readyz`).
    fn is_ready(&self) -> bool;

    /// The broker node publishes go to now, if there is one and it is usable (its URL
    /// without the password; `/readyz` and the metrics).
    fn broker_node(&self) -> Option<String> {
        None
    }

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
                .map_err(|e| PublishError::Output(Arc::new(e)))
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
