//! `TealConsumer` against the real RabbitMQ: bindings on all three TeaL exchanges, and
//! acknowledgement only after the handler succeeds.

use std::time::Duration;

use lapin::options::BasicPublishOptions;
use lapin::{BasicProperties, Connection, ConnectionProperties};
use powens_webhooks::relay::consume::{
    Bindings, ConsumeError, ConsumerSettings, Incoming, Received, TealConsumer,
};
use powens_webhooks::{
    CallbackMessage, Domain, OpenIdCibaCallbackMessage, TealExchange, TealMessage,
};
use tokio::time::timeout;

use crate::fixture;

use super::{AMQP_URL, broker, delete_exchanges, unique};

/// TeaL's messages, as TeaL writes them, from the fixtures.
fn first_line(file: &str) -> Vec<u8> {
    let text = std::fs::read_to_string(fixture(format!("teal/{file}"))).unwrap();
    text.lines().next().unwrap().as_bytes().to_vec()
}

/// A consumer bound to every TeaL exchange under a fresh prefix, and a connection to
/// publish with.
struct Fixture {
    prefix: String,
    consumer: TealConsumer,
    connection: Connection,
}

impl Fixture {
    async fn new(what: &str) -> Self {
        let prefix = unique(what);
        let settings = ConsumerSettings {
            exchange_prefix: prefix.clone(),
            ..ConsumerSettings::default()
        };
        let bindings = Bindings {
            domains: vec![Domain::parse("budgea.biapi.pro").unwrap()],
            callback_states: vec!["s-1".into()],
            ciba_request_ids: vec!["req-1".into()],
        };
        let consumer = TealConsumer::connect(&broker(), &settings, &bindings)
            .await
            .unwrap();
        let connection = Connection::connect(AMQP_URL, ConnectionProperties::default())
            .await
            .unwrap();
        Self {
            prefix,
            consumer,
            connection,
        }
    }

    /// Publishes `body` as TeaL does (no properties) on `exchange` with `key`.
    async fn publish(&self, exchange: TealExchange, key: &str, body: &[u8]) {
        let channel = self.connection.create_channel().await.unwrap();
        channel
            .basic_publish(
                exchange.name(&self.prefix).into(),
                key.into(),
                BasicPublishOptions::default(),
                body,
                BasicProperties::default(),
            )
            .await
            .unwrap();
        channel.close(200, "done".into()).await.unwrap();
    }

    async fn assert_nothing_more(&mut self) {
        let next = timeout(Duration::from_millis(300), self.consumer.next()).await;
        assert!(next.is_err(), "unexpected delivery: {next:?}");
    }

    async fn finish(self) {
        self.consumer.close().await;
        let _ = self.connection.close(200, "done".into()).await;
        delete_exchanges(&self.prefix).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callbacks_and_ciba_callbacks_arrive_typed_by_their_bindings() {
    let mut f = Fixture::new("consume").await;
    let callback = first_line("callbacks.jsonl");
    let ciba = first_line("openid_ciba_callbacks.jsonl");
    // Another state and another request id: not bound, never received.
    f.publish(TealExchange::Callbacks, "s-other", &callback)
        .await;
    f.publish(TealExchange::Callbacks, "s-1", &callback).await;
    f.publish(TealExchange::OpenIdCibaCallbacks, "req-other", &ciba)
        .await;
    f.publish(TealExchange::OpenIdCibaCallbacks, "req-1", &ciba)
        .await;

    let received = next(&mut f.consumer).await.unwrap();
    assert_eq!(
        received.message,
        Incoming::Callback(CallbackMessage::from_json(&callback).unwrap())
    );
    assert_eq!(
        (received.routing_key.as_str(), received.body.as_slice()),
        ("s-1", callback.as_slice())
    );
    received.ack().await.unwrap();
    let received = next(&mut f.consumer).await.unwrap();
    assert_eq!(
        received.message,
        Incoming::OpenIdCiba(OpenIdCibaCallbackMessage::from_json(&ciba).unwrap())
    );
    assert_eq!(received.routing_key, "req-1");
    received.ack().await.unwrap();
    f.assert_nothing_more().await;
    f.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_is_acknowledged_only_after_its_handler_succeeds() {
    let mut f = Fixture::new("ack").await;
    let callback = first_line("callbacks.jsonl");
    f.publish(TealExchange::Callbacks, "s-1", &callback).await;

    // The handler fails: the message comes back, marked redelivered.
    let failed = timeout(
        Duration::from_secs(10),
        f.consumer.handle_next(|_| async { Err("database down") }),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(failed, Some(Err("database down")));
    let mut seen_redelivered = false;
    let handled = timeout(
        Duration::from_secs(10),
        f.consumer.handle_next(|received| {
            seen_redelivered = received.redelivered;
            async { Ok::<(), &str>(()) }
        }),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(handled, Some(Ok(())));
    assert!(seen_redelivered);
    // Acknowledged: never delivered again.
    f.assert_nothing_more().await;

    // A message that is not TeaL's: rejected without requeue, reported, not redelivered.
    f.publish(TealExchange::Callbacks, "s-1", b"{\"not\": \"a callback\"}")
        .await;
    let error = next(&mut f.consumer).await.unwrap_err();
    assert!(matches!(error, ConsumeError::Malformed { .. }), "{error}");
    f.assert_nothing_more().await;
    f.finish().await;
}

/// The next delivery, within 10 s.
async fn next(consumer: &mut TealConsumer) -> Result<Received, ConsumeError> {
    timeout(Duration::from_secs(10), consumer.next())
        .await
        .expect("no delivery within 10 s")
        .map(|received| received.expect("the consumer was cancelled"))
}
