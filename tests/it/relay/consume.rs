//! `TealConsumer` against the real RabbitMQ: bindings on all three TeaL exchanges, and
//! acknowledgement only after the handler succeeds.

use std::time::Duration;

use lapin::options::BasicPublishOptions;
use lapin::types::FieldTable;
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
    assert_eq!(failed, Err("database down"));
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
    assert_eq!(handled, Ok(()));
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
}

/// A TeaL callback message for `state`, its URL numbered `n`.
fn callback_body(state: &str, n: u32) -> String {
    format!(
        r#"{{"timestamp":"2024-01-01T00:00:00","url":"https://x.example/cb?n={n}","state":"{state}"}}"#
    )
}

/// `future`'s output, or a panic naming `what` after 20 s: a step that never ends
/// fails the test instead of hanging it.
async fn within<F: std::future::IntoFuture>(what: &str, future: F) -> F::Output {
    timeout(Duration::from_secs(20), future.into_future())
        .await
        .unwrap_or_else(|_| panic!("{what}: not done within 20 s"))
}

/// The consumer's connection is cut while messages keep coming: it reconnects by
/// itself, its named queue kept them, and every one is received; a binding added while
/// it runs delivers, one removed stops; nothing is left unacknowledged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_consumer_reconnects_and_loses_nothing_and_bindings_change_while_it_runs() {
    use super::proxy::{Fault, FaultProxy};
    use lapin::options::{ConfirmSelectOptions, QueueDeclareOptions, QueueDeleteOptions};
    use std::collections::BTreeSet;

    let upstream = broker();
    let proxy = FaultProxy::start("127.0.0.1:5672".parse().unwrap()).await;
    let prefix = unique("reconnect");
    let queue = format!("{prefix}queue");
    let settings = ConsumerSettings {
        exchange_prefix: prefix.clone(),
        queue: Some(queue.clone()),
        reconnect_max_delay: Duration::from_millis(200),
        ..ConsumerSettings::default()
    };
    let bindings = Bindings {
        callback_states: vec!["kept".into()],
        ..Bindings::default()
    };
    let through_proxy = proxy.amqp_url();
    let mut consumer = within(
        "the consumer's first connection",
        TealConsumer::connect(&through_proxy, &settings, &bindings),
    )
    .await
    .unwrap();
    let handle = consumer.bindings();

    // A publisher connected to the broker directly, with confirms: every id it sends
    // is stored in the queue.
    let connection = Connection::connect(AMQP_URL, ConnectionProperties::default())
        .await
        .unwrap();
    let channel = connection.create_channel().await.unwrap();
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    let exchange = TealExchange::Callbacks.name(&prefix);
    let publish = {
        let (channel, exchange) = (channel.clone(), exchange.clone());
        move |key: &'static str, n: u32| {
            let (channel, exchange) = (channel.clone(), exchange.clone());
            async move {
                let body = callback_body(key, n);
                channel
                    .basic_publish(
                        exchange.as_str().into(),
                        key.into(),
                        BasicPublishOptions::default(),
                        body.as_bytes(),
                        BasicProperties::default().with_message_id(n.to_string().into()),
                    )
                    .await
                    .unwrap()
                    .await
                    .unwrap();
            }
        }
    };

    // 200 messages over about 2 s, with the consumer's link cut in the middle.
    let sender = tokio::spawn({
        let publish = publish.clone();
        async move {
            for n in 0..200 {
                publish("kept", n).await;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    });
    let cutter = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(600)).await;
        proxy.inject(Fault::Cut);
        tokio::time::sleep(Duration::from_millis(700)).await;
        proxy.heal();
        proxy
    });
    let mut seen = BTreeSet::new();
    while seen.len() < 200 {
        let received = timeout(Duration::from_secs(15), consumer.next())
            .await
            .unwrap_or_else(|_| panic!("{} of 200 received", seen.len()))
            .unwrap();
        // An ack lost with the connection brings the message again: count it once.
        let _ = within("an ack around the cut", received.ack()).await;
        seen.insert(received.message_id.clone().unwrap());
    }
    within("the sender", sender).await.unwrap();
    let _proxy = within("the cutter", cutter).await.unwrap();

    // Bindings changed while running: a new state delivers, a removed one stops.
    within("bind", handle.bind(TealExchange::Callbacks, "added"))
        .await
        .unwrap();
    within("unbind", handle.unbind(TealExchange::Callbacks, "kept"))
        .await
        .unwrap();
    assert_eq!(
        handle.current().await,
        [(TealExchange::Callbacks, "added".to_owned())]
    );
    within("a publish", publish("kept", 1000)).await;
    within("a publish", publish("added", 1001)).await;
    let received = next(&mut consumer).await.unwrap();
    assert_eq!(
        (
            received.routing_key.as_str(),
            received.message_id.as_deref()
        ),
        ("added", Some("1001"))
    );
    within("the last ack", received.ack()).await.unwrap();
    let next_one = timeout(Duration::from_millis(300), consumer.next()).await;
    assert!(next_one.is_err(), "an unbound key delivered: {next_one:?}");

    // Nothing left unacknowledged: with the consumer gone, the queue is empty.
    within("the consumer's close", consumer.close()).await;
    let _ = upstream;
    let declared = channel
        .queue_declare(
            queue.as_str().into(),
            QueueDeclareOptions {
                passive: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    assert_eq!(declared.message_count(), 0, "messages left in the queue");
    channel
        .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
        .await
        .unwrap();
    let _ = connection.close(200, "done".into()).await;
    delete_exchanges(&prefix).await;
}

/// Acknowledgements sent while the consumer's connection is being cut: lapin leaves
/// some of them pending forever (about one cut in twelve here), so each ends within
/// `ACK_TIMEOUT`, as a success (the frame went nowhere; the broker delivers the message
/// again) or an error, instead of hanging the consumer. Many cuts at once, each with
/// its own proxy, consumer and exchanges, to meet the race.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledgements_racing_a_cut_connection_end_instead_of_hanging() {
    use super::proxy::{Fault, FaultProxy};
    use powens_webhooks::relay::consume::ACK_TIMEOUT;

    const CUTS: usize = 32;
    const MESSAGES: u32 = 50;
    let _ = broker();
    let publisher = Connection::connect(AMQP_URL, ConnectionProperties::default())
        .await
        .unwrap();
    let channel = publisher.create_channel().await.unwrap();
    let mut cuts = tokio::task::JoinSet::new();
    for cut in 0..CUTS {
        let proxy = FaultProxy::start("127.0.0.1:5672".parse().unwrap()).await;
        let prefix = unique("ackcut");
        let settings = ConsumerSettings {
            exchange_prefix: prefix.clone(),
            ..ConsumerSettings::default()
        };
        let bindings = Bindings {
            callback_states: vec!["s".into()],
            ..Bindings::default()
        };
        let url = proxy.amqp_url();
        let mut consumer = TealConsumer::connect(&url, &settings, &bindings)
            .await
            .unwrap();
        for n in 0..MESSAGES {
            let body = callback_body("s", n);
            channel
                .basic_publish(
                    TealExchange::Callbacks.name(&prefix).into(),
                    "s".into(),
                    BasicPublishOptions::default(),
                    body.as_bytes(),
                    BasicProperties::default(),
                )
                .await
                .unwrap();
        }
        let mut held = Vec::new();
        for _ in 0..MESSAGES {
            held.push(next(&mut consumer).await.unwrap());
        }
        cuts.spawn(async move {
            // Acknowledge one by one while the proxy cuts the connection.
            let acks = tokio::spawn(async move {
                let mut errors = Vec::new();
                for (n, received) in held.iter().enumerate() {
                    match timeout(ACK_TIMEOUT + Duration::from_secs(5), received.ack()).await {
                        Err(_) => panic!("cut {cut}: acknowledgement {n} never ended"),
                        Ok(Err(e)) => errors.push(e),
                        Ok(Ok(())) => {}
                    }
                    tokio::time::sleep(Duration::from_micros(50)).await;
                }
                errors
            });
            tokio::time::sleep(Duration::from_millis(3)).await;
            proxy.inject(Fault::Cut);
            let errors = acks.await.unwrap();
            for error in &errors {
                assert!(
                    matches!(
                        error,
                        ConsumeError::AckTimeout { .. } | ConsumeError::Connection(_)
                    ),
                    "{error}"
                );
            }
            drop(consumer);
            prefix
        });
    }
    while let Some(prefix) = cuts.join_next().await {
        delete_exchanges(&prefix.unwrap()).await;
    }
    let _ = publisher.close(200, "done".into()).await;
}
