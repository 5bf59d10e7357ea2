//! A delivery, read into TeaL's typed messages, and its acknowledgement.

use std::time::Duration;

use lapin::options::{BasicAckOptions, BasicRejectOptions};

use super::ConsumeError;
use crate::amq::TealExchange;
use crate::message::{
    CallbackMessage, MessageError, OpenIdCibaCallbackMessage, PowensWebhookMessage, TealMessage,
};
use crate::relay::publish::REPLAY_HEADER;

/// A received message, by exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    /// From `powens_domain_webhooks`.
    Webhook(PowensWebhookMessage),
    /// From `callbacks`.
    Callback(CallbackMessage),
    /// From `openid_ciba_callbacks`.
    OpenIdCiba(OpenIdCibaCallbackMessage),
}

impl Incoming {
    /// Reads the body of a message published on `exchange`.
    ///
    /// # Errors
    /// [`MessageError::Json`] when it is not that exchange's message.
    pub fn from_json(exchange: TealExchange, body: &[u8]) -> Result<Self, MessageError> {
        match exchange {
            TealExchange::PowensDomainWebhooks => {
                PowensWebhookMessage::from_json(body).map(Incoming::Webhook)
            }
            TealExchange::Callbacks => CallbackMessage::from_json(body).map(Incoming::Callback),
            TealExchange::OpenIdCibaCallbacks => {
                OpenIdCibaCallbackMessage::from_json(body).map(Incoming::OpenIdCiba)
            }
        }
    }

    /// The exchange it comes from and its routing key (the domain, state or request id).
    pub fn route(&self) -> (TealExchange, &str) {
        match self {
            Self::Webhook(m) => (TealExchange::PowensDomainWebhooks, m.routing_key()),
            Self::Callback(m) => (TealExchange::Callbacks, m.routing_key()),
            Self::OpenIdCiba(m) => (TealExchange::OpenIdCibaCallbacks, m.routing_key()),
        }
    }
}

/// A delivery: the message and its AMQP envelope.
#[derive(Debug)]
pub struct Received {
    /// The typed message.
    pub message: Incoming,
    /// The body exactly as received.
    pub body: Vec<u8>,
    /// The routing key.
    pub routing_key: String,
    /// The AMQP `message_id`, if set.
    pub message_id: Option<String>,
    /// The AMQP `content_type`, if set.
    pub content_type: Option<String>,
    /// The AMQP delivery mode (1 transient, 2 persistent), if set.
    pub delivery_mode: Option<u8>,
    /// Whether the broker delivered it before.
    pub redelivered: bool,
    /// Whether the relay published it again on an operator's request (`powens-relay
    /// journal replay`; the AMQP header `x-powens-relay-replay`): a consumer that
    /// drops duplicates by `message_id` may want to take it all the same.
    pub replayed: bool,
    acker: lapin::Acker,
}

impl Received {
    /// Acknowledges the message: the broker forgets it.
    ///
    /// # Errors
    /// - [`ConsumeError::Connection`]: the message will be delivered again.
    /// - [`ConsumeError::AckTimeout`]: not sent within [`ACK_TIMEOUT`]; the message will
    ///   be delivered again.
    pub async fn ack(&self) -> Result<(), ConsumeError> {
        settle(self.acker.ack(BasicAckOptions::default())).await
    }

    /// Returns the message to the queue, for redelivery.
    ///
    /// # Errors
    /// - [`ConsumeError::Connection`].
    /// - [`ConsumeError::AckTimeout`]: not sent within [`ACK_TIMEOUT`]; the message will
    ///   be delivered again all the same.
    pub async fn requeue(&self) -> Result<(), ConsumeError> {
        settle(self.acker.reject(BasicRejectOptions { requeue: true })).await
    }
}

/// How long an acknowledgement (or a rejection) may take to be written to the
/// connection before it is given up as lost with it.
///
/// lapin can leave an acknowledgement pending forever when the connection dies under it
/// (seen when a connection is cut while messages are being acknowledged; lapin issue
/// #409 is the same defect for publishes). An acknowledgement is a frame lapin only has
/// to write, which takes well under a millisecond on a live connection, so one still
/// pending after this long belongs to a dead connection: the consumer reconnects, and
/// the broker delivers the message again.
pub const ACK_TIMEOUT: Duration = Duration::from_secs(5);

/// Waits for `settling` (an acknowledgement or a rejection) at most [`ACK_TIMEOUT`].
async fn settle(settling: impl Future<Output = lapin::Result<bool>>) -> Result<(), ConsumeError> {
    match tokio::time::timeout(ACK_TIMEOUT, settling).await {
        Ok(settled) => settled
            .map(drop)
            .map_err(|e| ConsumeError::Connection(e.into())),
        Err(_) => Err(ConsumeError::AckTimeout {
            secs: ACK_TIMEOUT.as_secs(),
        }),
    }
}

/// Reads `delivery` from an exchange named with `prefix`; a message that cannot be read
/// is rejected without requeueing.
pub(super) async fn read(
    delivery: lapin::message::Delivery,
    prefix: &str,
) -> Result<Received, ConsumeError> {
    let exchange = delivery.exchange.as_str().to_owned();
    let parsed = match TealExchange::from_name(&exchange, prefix) {
        Some(from) => Incoming::from_json(from, &delivery.data),
        None => Err(MessageError::Json {
            what: "it came from an exchange that is not TeaL's".into(),
            line: 0,
            column: 0,
        }),
    };
    let message = match parsed {
        Ok(message) => message,
        Err(error) => {
            settle(delivery.acker.reject(BasicRejectOptions { requeue: false })).await?;
            return Err(ConsumeError::Malformed { exchange, error });
        }
    };
    let properties = &delivery.properties;
    Ok(Received {
        message,
        routing_key: delivery.routing_key.as_str().to_owned(),
        message_id: properties
            .message_id()
            .as_ref()
            .map(|s| s.as_str().to_owned()),
        content_type: properties
            .content_type()
            .as_ref()
            .map(|s| s.as_str().to_owned()),
        delivery_mode: *properties.delivery_mode(),
        redelivered: delivery.redelivered,
        replayed: properties.headers().as_ref().is_some_and(|headers| {
            matches!(
                headers.inner().get(REPLAY_HEADER),
                Some(lapin::types::AMQPValue::Boolean(true))
            )
        }),
        body: delivery.data,
        acker: delivery.acker,
    })
}
