//! Where the dispatcher's messages come from: its own queue on the broker (one
//! exclusive, auto-delete queue per process, bound key by key as clients register), or,
//! in `serve` without a broker, the relay's publishes handed over in-process.

use std::sync::Arc;

use futures_util::future::BoxFuture;

use super::frames::{Kind, push_frame, server_frame};
use super::hub::{Delivery, Hub, Key, Subscriber};
use crate::amq::TealExchange;
use crate::relay::broker::BrokerError;
use crate::relay::consume::{BindingHandle, ConsumeError, TealConsumer};
use crate::relay::publish::{Delivered, Outgoing, PublishError, Publisher};

/// Bindings on the consumer's queue.
pub(crate) struct BrokerSubscriber(pub(crate) BindingHandle);

impl Subscriber for BrokerSubscriber {
    fn bind<'a>(&'a self, key: &'a Key) -> BoxFuture<'a, Result<(), BrokerError>> {
        Box::pin(self.0.bind(key.0, &key.1))
    }

    fn unbind<'a>(&'a self, key: &'a Key) -> BoxFuture<'a, Result<(), BrokerError>> {
        Box::pin(self.0.unbind(key.0, &key.1))
    }

    fn is_ready(&self) -> bool {
        self.0.is_connected()
    }

    fn broker_node(&self) -> Option<String> {
        self.0.node()
    }
}

/// Receives from `consumer` until it is dropped, handing each message to the clients
/// registered to its key. A message no client of this process wants is acknowledged at
/// once (it was bound for a client that has just left).
pub(crate) async fn consume(mut consumer: TealConsumer, hub: Arc<Hub>) {
    loop {
        let received = match consumer.next().await {
            Ok(received) => received,
            Err(ConsumeError::Malformed { exchange, error }) => {
                tracing::warn!(%exchange, %error, "a message could not be read and was rejected");
                continue;
            }
            Err(e) => {
                tracing::warn!(error = %e, "consuming failed");
                continue;
            }
        };
        let framed = push_frame(&received.message);
        let (exchange, key) = received.message.route();
        let key = (exchange, key.to_owned());
        let delivery = Arc::new(Delivery::new(received));
        let (kind, frame) = match framed {
            Ok(framed) => framed,
            Err(e) => {
                // Acknowledged as the delivery drops: no client could read it.
                tracing::error!(error = %e, "a message could not be made into a frame");
                continue;
            }
        };
        let queued = hub.deliver((key.0, &key.1), kind, frame, Some(delivery));
        if queued == 0 {
            hub.metrics.unwanted();
        }
    }
}

/// No broker: bindings are the hub's table itself.
pub(crate) struct LocalSubscriber;

impl Subscriber for LocalSubscriber {
    fn bind<'a>(&'a self, _: &'a Key) -> BoxFuture<'a, Result<(), BrokerError>> {
        Box::pin(async { Ok(()) })
    }

    fn unbind<'a>(&'a self, _: &'a Key) -> BoxFuture<'a, Result<(), BrokerError>> {
        Box::pin(async { Ok(()) })
    }

    fn is_ready(&self) -> bool {
        true
    }
}

/// The relay's publisher when `serve` hosts the dispatcher without a broker: a message
/// is "published" once queued for every websocket client registered to its key, and
/// refused (503, as an unroutable message with `mandatory` on RabbitMQ, but said in
/// terms of clients) when there is none, unless `accept_unroutable`.
///
/// The message's JSON is made into the frame as it is, never parsed back: see
/// [`server_frame`].
#[derive(Debug)]
pub(crate) struct InProcessBus {
    pub(crate) hub: Arc<Hub>,
    pub(crate) accept_unroutable: bool,
}

impl Publisher for InProcessBus {
    fn publish<'a>(
        &'a self,
        message: &'a Outgoing,
    ) -> BoxFuture<'a, Result<Delivered, PublishError>> {
        Box::pin(async move {
            let exchange = message.exchange.kind;
            let kind = Kind::of(exchange);
            let frame = server_frame(kind, &message.body).map_err(PublishError::Frame)?;
            let queued = self
                .hub
                .deliver((exchange, &message.routing_key), kind, frame, None);
            match (queued, self.accept_unroutable) {
                (0, false) => Err(PublishError::NoClient {
                    for_what: match exchange {
                        TealExchange::PowensDomainWebhooks => "domain",
                        TealExchange::Callbacks => "callback state",
                        TealExchange::OpenIdCibaCallbacks => "CIBA request",
                    },
                }),
                (0, true) => Ok(Delivered::Dropped),
                _ => Ok(Delivered::Confirmed),
            }
        })
    }

    fn is_ready(&self) -> bool {
        true
    }
}
