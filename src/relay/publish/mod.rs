//! Publishing messages: to RabbitMQ with publisher confirms, or to standard output (the
//! default without a broker).

use std::io::Write;
use std::sync::{Arc, Mutex, PoisonError};

use futures_util::future::BoxFuture;

use super::broker::{AmqpError, BrokerError, Exchanges};
use super::ops::current_request_id;
pub(crate) use super::reply::{Delivered, JournalStatus};
use super::reply::{Outcome, RETRY_AFTER_UNAVAILABLE, Refusal};
use crate::amq::TealExchange;
use crate::axum::Authenticity;
use crate::domain::Event;
use crate::message::TealMessage;

mod amqp;

pub(crate) use amqp::{AmqpPublisher, AmqpSettings, REPLAY_HEADER};

/// What to answer when the broker returns a message no queue is bound to receive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Unroutable {
    /// 503: nobody would have received it, so Powens should retry.
    #[default]
    Reject,
    /// 204, as TeaL does: the message is dropped and a warning logged.
    Accept,
    /// 204 once kept in the journal, published from it when a queue is bound (needs
    /// the journal; the broker's publisher itself answers it as `Reject`).
    Hold,
}

/// How messages are published.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PublisherSettings {
    /// The answer to a message no queue is bound to receive.
    pub(crate) unroutable: Unroutable,
    /// How long a publish may wait for the broker's confirm.
    pub(crate) publish_timeout: std::time::Duration,
}

/// One of TeaL's exchanges, with its full name (prefix included). Cheap to clone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Exchange {
    /// Which exchange.
    pub(crate) kind: TealExchange,
    /// Its name, prefix included.
    pub(crate) name: Arc<str>,
}

impl Exchange {
    /// `kind` as `exchanges` name it.
    pub(crate) fn of(kind: TealExchange, exchanges: &Exchanges) -> Self {
        Self {
            kind,
            name: exchanges.name(kind).into(),
        }
    }
}

/// What the relay knows of a webhook it publishes, read once as it arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WebhookFacts {
    /// The event.
    pub(crate) event: Event,
    /// The body's `id_webhook_data`, if it has one.
    pub(crate) id_webhook_data: Option<u64>,
    /// Verified, or forwarded unverified.
    pub(crate) authenticity: Authenticity,
}

/// A message ready to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Outgoing {
    /// The exchange.
    pub(crate) exchange: Exchange,
    /// A webhook's facts; `None` for a callback or a CIBA notification.
    pub(crate) webhook: Option<WebhookFacts>,
    /// Published again on an operator's request (`journal replay`): the AMQP header
    /// `x-powens-relay-replay` says so.
    pub(crate) replay: bool,
    /// The routing key (for webhooks, the Powens domain).
    pub(crate) routing_key: String,
    /// The message body (TeaL JSON).
    pub(crate) body: Vec<u8>,
    /// The AMQP `message_id` (the webhook's `id_webhook_data`, when it has one).
    pub(crate) message_id: Option<String>,
}

impl Outgoing {
    /// `message` on `exchange`, with no message id: a callback or a CIBA notification.
    pub(crate) fn of(exchange: &Exchange, message: &impl TealMessage) -> Self {
        Self {
            exchange: exchange.clone(),
            routing_key: message.routing_key().to_owned(),
            body: message.to_json(),
            message_id: None,
            webhook: None,
            replay: false,
        }
    }
}

/// Why a message was not published. Every variant means "not confirmed": the relay
/// answers 503 and Powens retries.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum PublishError {
    /// No usable broker connection.
    #[error("the message broker is unavailable")]
    Unavailable,
    /// The broker refused the message (nack).
    #[error("the message broker refused the message")]
    Nacked,
    /// No queue is bound to receive the message.
    #[error("no queue is bound to receive messages for this domain")]
    Unroutable,
    /// No broker, and no websocket client of the hosted dispatcher is registered to
    /// receive the message: `for_what` is what it is routed by ("domain", …).
    #[error(
        "no websocket client is registered for this {for_what} (no broker: messages go only to the dispatcher's clients)"
    )]
    NoClient {
        /// What the message is routed by.
        for_what: &'static str,
    },
    /// The broker did not confirm in time.
    #[error("the message broker did not confirm the message in time")]
    Timeout,
    /// The broker could not be reached or set up, or a name is too long for AMQP.
    #[error(transparent)]
    Broker(#[from] BrokerError),
    /// The publish failed on the connection or channel.
    #[error("publishing failed: {0}")]
    Channel(#[source] AmqpError),
    /// The journal holds `journal_max_bytes` of webhooks not yet published.
    #[error("the relay's journal is full")]
    JournalFull {
        /// The limit.
        max_bytes: u64,
    },
    /// The journal could not commit the message (a full disk, an I/O error).
    #[error("the journal could not keep the message: {0}")]
    Journal(#[source] crate::relay::journal::AppendError),
    /// The message could not be made into a websocket frame (the in-process bus).
    #[error("the message could not be written for the websocket clients: {0}")]
    Frame(#[source] crate::relay::dispatch::frames::FrameEncodingError),
    /// The message could not be written to standard output.
    #[error("cannot write to standard output: {0}")]
    Output(#[source] Arc<std::io::Error>),
}

impl PublishError {
    /// Whether this is a fault whose detail belongs in the log rather than in the answer
    /// (the broker's or the output's), as opposed to the broker's verdict on a message.
    pub(crate) fn is_broker_fault(&self) -> bool {
        matches!(
            self,
            Self::Broker(_)
                | Self::Channel(_)
                | Self::Output(_)
                | Self::Frame(_)
                | Self::Journal(_)
        )
    }

    /// Whether the broker did not take the message (it is down, slow, or refused it):
    /// what the journal takes over, as opposed to a verdict on the message itself.
    pub(crate) fn is_broker_unavailable(&self) -> bool {
        matches!(
            self,
            Self::Unavailable | Self::Nacked | Self::Timeout | Self::Broker(_) | Self::Channel(_)
        )
    }

    /// What the answer to Powens says: the verdict, or "unavailable" for a fault.
    pub(crate) fn public_reason(&self) -> String {
        if let Self::Journal(_) = self {
            "the relay's journal cannot take the webhook now".to_owned()
        } else if self.is_broker_fault() {
            Self::Unavailable.to_string()
        } else {
            self.to_string()
        }
    }
}

impl From<PublishError> for Refusal {
    /// 503: the message was not confirmed, so Powens (or the browser) should try again.
    fn from(error: PublishError) -> Self {
        if error.is_broker_fault() {
            // The detail goes to the log, not to Powens.
            tracing::error!(
                request_id = current_request_id().as_deref(),
                error = %error,
                "publish failed"
            );
        }
        Self::unavailable(
            Outcome::Unavailable,
            format!("{}; retry later", error.public_reason()),
            RETRY_AFTER_UNAVAILABLE,
        )
    }
}

/// Where the relay sends messages.
pub(crate) trait Publisher: Send + Sync + 'static {
    /// Publishes `message`, resolving once it is safely stored (for RabbitMQ: confirmed).
    fn publish<'a>(
        &'a self,
        message: &'a Outgoing,
    ) -> BoxFuture<'a, Result<Delivered, PublishError>>;

    /// Whether a publish could succeed now (`/readyz`).
    fn is_ready(&self) -> bool;

    /// The journal's state, when messages go through one (`/readyz`).
    fn journal(&self) -> Option<JournalStatus> {
        None
    }

    /// Registers the publisher's own metrics (the journal's) in `registry`.
    fn register_metrics(&self, _registry: &mut prometheus_client::registry::Registry) {}

    /// Whether every message needs a `message_id` (a journal publishes again with the
    /// same one): the webhook route gives one to a body without `id_webhook_data`.
    fn assigns_message_ids(&self) -> bool {
        false
    }

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
pub(crate) struct StdoutPublisher {
    lock: Mutex<()>,
}

impl Publisher for StdoutPublisher {
    fn publish<'a>(
        &'a self,
        message: &'a Outgoing,
    ) -> BoxFuture<'a, Result<Delivered, PublishError>> {
        Box::pin(async move {
            let _guard = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
            let mut out = std::io::stdout().lock();
            out.write_all(&message.body)
                .and_then(|()| out.write_all(b"\n"))
                .and_then(|()| out.flush())
                .map(|()| Delivered::Confirmed)
                .map_err(|e| PublishError::Output(Arc::new(e)))
        })
    }

    fn is_ready(&self) -> bool {
        true
    }
}
