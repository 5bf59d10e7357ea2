//! The consumer side: bind a queue to TeaL's exchanges, as TeaL's `AMQHandler` does,
//! and receive typed messages, acknowledged only once the caller has handled them.
//!
//! ```no_run
//! use powens_webhooks::Domain;
//! use powens_webhooks::relay::config::AmqpUrl;
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
//! while let Some(handled) = consumer
//!     .handle_next(|received| {
//!         if let Incoming::Webhook(webhook) = &received.message {
//!             println!("{} from {}", webhook.event, webhook.domain);
//!         }
//!         std::future::ready(Ok::<(), std::io::Error>(()))
//!     })
//!     .await?
//! {
//!     handled?;
//! }
//! # Ok(())
//! # }
//! ```

use std::future::Future;

use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicQosOptions, BasicRejectOptions, QueueBindOptions,
    QueueDeclareOptions,
};
use lapin::types::{FieldTable, ShortString};
use lapin::{Channel, Connection, ConnectionProperties};

use super::config::AmqpUrl;
use super::publish::{ExchangeSettings, PublishError, declare_exchanges, short_string};
use crate::amq::TealExchange;
use crate::domain::Domain;
use crate::message::{
    CallbackMessage, MessageError, OpenIdCibaCallbackMessage, PowensWebhookMessage, TealMessage,
};

/// What to receive: webhooks by Powens domain, callbacks by state, CIBA callbacks by
/// authentication request id.
#[derive(Debug, Clone, Default)]
pub struct Bindings {
    /// Powens domains (`powens_domain_webhooks`).
    pub domains: Vec<Domain>,
    /// Callback states (`callbacks`).
    pub callback_states: Vec<String>,
    /// CIBA authentication request ids (`openid_ciba_callbacks`).
    pub ciba_request_ids: Vec<String>,
}

/// How to set up the queue.
#[derive(Debug, Clone)]
pub struct ConsumerSettings {
    /// Prefix of the exchange names, as the relay's.
    pub exchange_prefix: String,
    /// Declare the exchanges durable, as the relay does.
    pub exchange_durable: bool,
    /// A named durable queue that outlives the consumer; `None` (TeaL's way) declares a
    /// private, server-named queue deleted when the consumer disconnects.
    pub queue: Option<String>,
    /// Messages delivered before they are acknowledged (0: unlimited).
    pub prefetch: u16,
}

impl Default for ConsumerSettings {
    fn default() -> Self {
        Self {
            exchange_prefix: String::new(),
            exchange_durable: false,
            queue: None,
            prefetch: 64,
        }
    }
}

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
    acker: lapin::Acker,
}

/// Why consuming failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConsumeError {
    /// Connecting, declaring or binding failed.
    #[error("{0}")]
    Setup(String),
    /// The connection or channel failed while consuming.
    #[error("the broker connection failed: {0}")]
    Connection(String),
    /// A message could not be read; it was rejected without requeueing (so it goes to
    /// the queue's dead-letter exchange, if any) rather than redelivered forever.
    #[error("a message on {exchange} could not be read and was rejected: {error}")]
    Malformed {
        /// The exchange it came from.
        exchange: String,
        /// What was wrong.
        error: MessageError,
    },
}

/// A consumer bound to TeaL's exchanges.
#[derive(Debug)]
pub struct TealConsumer {
    connection: Connection,
    channel: Channel,
    consumer: lapin::Consumer,
    prefix: String,
    queue: String,
}

impl TealConsumer {
    /// Connects, declares the exchanges (with the relay's flags) and the queue, binds it
    /// and starts consuming.
    ///
    /// # Errors
    /// [`ConsumeError::Setup`] saying which step failed.
    pub async fn connect(
        url: &AmqpUrl,
        settings: &ConsumerSettings,
        bindings: &Bindings,
    ) -> Result<Self, ConsumeError> {
        let setup = |what: &str, e: lapin::Error| ConsumeError::Setup(format!("{what}: {e}"));
        let connection = Connection::connect_uri(
            url.uri(),
            ConnectionProperties::default().with_connection_name("powens-consumer".into()),
        )
        .await
        .map_err(|e| setup(&format!("cannot connect to {url}"), e))?;
        let channel = connection
            .create_channel()
            .await
            .map_err(|e| setup("cannot open a channel", e))?;
        channel
            .basic_qos(settings.prefetch, BasicQosOptions::default())
            .await
            .map_err(|e| setup("cannot set the prefetch count", e))?;

        let prefix = settings.exchange_prefix.clone();
        let wanted = [
            (
                TealExchange::PowensDomainWebhooks,
                bindings
                    .domains
                    .iter()
                    .map(|d| d.as_str().to_owned())
                    .collect::<Vec<_>>(),
            ),
            (TealExchange::Callbacks, bindings.callback_states.clone()),
            (
                TealExchange::OpenIdCibaCallbacks,
                bindings.ciba_request_ids.clone(),
            ),
        ];
        let exchanges = ExchangeSettings {
            names: wanted
                .iter()
                .filter(|(_, keys)| !keys.is_empty())
                .map(|(e, _)| e.name(&prefix))
                .collect(),
            durable: settings.exchange_durable,
        };
        declare_exchanges(&channel, &exchanges)
            .await
            .map_err(|e: PublishError| ConsumeError::Setup(e.to_string()))?;

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
        let name = short(settings.queue.as_deref().unwrap_or(""))?;
        let queue = channel
            .queue_declare(name, options, FieldTable::default())
            .await
            .map_err(|e| setup("cannot declare the queue", e))?;
        let queue = queue.name().as_str().to_owned();
        for (exchange, keys) in &wanted {
            for key in keys {
                channel
                    .queue_bind(
                        short(&queue)?,
                        short(&exchange.name(&prefix))?,
                        short(key)?,
                        QueueBindOptions::default(),
                        FieldTable::default(),
                    )
                    .await
                    .map_err(|e| setup(&format!("cannot bind to {exchange} with {key}"), e))?;
            }
        }
        let consumer = channel
            .basic_consume(
                short(&queue)?,
                "".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(|e| setup("cannot start consuming", e))?;
        Ok(Self {
            connection,
            channel,
            consumer,
            prefix,
            queue,
        })
    }

    /// The queue's name (server-generated unless one was configured).
    pub fn queue(&self) -> &str {
        &self.queue
    }

    /// The next message; `None` once the consumer is cancelled. Acknowledge it with
    /// [`Received::ack`] (or use [`TealConsumer::handle_next`]).
    ///
    /// # Errors
    /// [`ConsumeError::Malformed`] (the message was rejected) or
    /// [`ConsumeError::Connection`].
    pub async fn next(&mut self) -> Result<Option<Received>, ConsumeError> {
        let Some(delivery) = self.consumer.next().await else {
            return Ok(None);
        };
        let delivery = delivery.map_err(|e| ConsumeError::Connection(e.to_string()))?;
        let exchange = delivery.exchange.as_str().to_owned();
        let parsed = match TealExchange::from_name(&exchange, &self.prefix) {
            Some(TealExchange::PowensDomainWebhooks) => {
                PowensWebhookMessage::from_json(&delivery.data).map(Incoming::Webhook)
            }
            Some(TealExchange::Callbacks) => {
                CallbackMessage::from_json(&delivery.data).map(Incoming::Callback)
            }
            Some(TealExchange::OpenIdCibaCallbacks) => {
                OpenIdCibaCallbackMessage::from_json(&delivery.data).map(Incoming::OpenIdCiba)
            }
            None => Err(MessageError::Json {
                what: "it came from an exchange that is not TeaL's".into(),
                line: 0,
                column: 0,
            }),
        };
        let message = match parsed {
            Ok(message) => message,
            Err(error) => {
                delivery
                    .acker
                    .reject(BasicRejectOptions { requeue: false })
                    .await
                    .map_err(|e| ConsumeError::Connection(e.to_string()))?;
                return Err(ConsumeError::Malformed { exchange, error });
            }
        };
        let properties = &delivery.properties;
        Ok(Some(Received {
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
            body: delivery.data,
            acker: delivery.acker,
        }))
    }

    /// Receives the next message and runs `handler` on it: acknowledged if the handler
    /// succeeds, requeued (for redelivery) if it fails. Returns the handler's result, or
    /// `None` once the consumer is cancelled.
    ///
    /// # Errors
    /// As [`TealConsumer::next`], and [`ConsumeError::Connection`] if the
    /// acknowledgement cannot be sent.
    pub async fn handle_next<F, Fut, E>(
        &mut self,
        handler: F,
    ) -> Result<Option<Result<(), E>>, ConsumeError>
    where
        F: FnOnce(&Received) -> Fut,
        Fut: Future<Output = Result<(), E>>,
    {
        let Some(received) = self.next().await? else {
            return Ok(None);
        };
        let result = handler(&received).await;
        match &result {
            Ok(()) => received.ack().await?,
            Err(_) => received.requeue().await?,
        }
        Ok(Some(result))
    }

    /// Closes the channel and the connection (a private queue is then deleted).
    pub async fn close(self) {
        let _ = self.channel.close(200, "consumer done".into()).await;
        let _ = self.connection.close(200, "consumer done".into()).await;
    }
}

impl Received {
    /// Acknowledges the message: the broker forgets it.
    ///
    /// # Errors
    /// [`ConsumeError::Connection`].
    pub async fn ack(&self) -> Result<(), ConsumeError> {
        self.acker
            .ack(BasicAckOptions::default())
            .await
            .map(drop)
            .map_err(|e| ConsumeError::Connection(e.to_string()))
    }

    /// Returns the message to the queue, for redelivery.
    ///
    /// # Errors
    /// [`ConsumeError::Connection`].
    pub async fn requeue(&self) -> Result<(), ConsumeError> {
        self.acker
            .reject(BasicRejectOptions { requeue: true })
            .await
            .map(drop)
            .map_err(|e| ConsumeError::Connection(e.to_string()))
    }
}

fn short(text: &str) -> Result<ShortString, ConsumeError> {
    short_string(text).map_err(ConsumeError::Setup)
}
