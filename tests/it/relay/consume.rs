//! `TealConsumer` against the real RabbitMQ: bindings on all three TeaL exchanges, and
//! acknowledgement only after the handler succeeds.

use std::time::Duration;

use lapin::options::BasicPublishOptions;
use lapin::{BasicProperties, Connection, ConnectionProperties};
use powens_webhooks::relay::consume::{
    Bindings, ConsumeError, ConsumerSettings, Incoming, TealConsumer,
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

async fn consumer(prefix: &str) -> TealConsumer {
    let settings = ConsumerSettings {
        exchange_prefix: prefix.to_owned(),
        ..ConsumerSettings::default()
    };
    let bindings = Bindings {
        domains: vec![Domain::parse("budgea.biapi.pro").unwrap()],
        callback_states: vec!["s-1".into()],
        ciba_request_ids: vec!["req-1".into()],
    };
    TealConsumer::connect(&broker(), &settings, &bindings)
        .await
        .unwrap()
}

/// Publishes `body` as TeaL does (no properties) on `exchange` with `key`.
async fn publish(
    connection: &Connection,
    prefix: &str,
    exchange: TealExchange,
    key: &str,
    body: &[u8],
) {
    let channel = connection.create_channel().await.unwrap();
    channel
        .basic_publish(
            exchange.name(prefix).into(),
            key.into(),
            BasicPublishOptions::default(),
            body,
            BasicProperties::default(),
        )
        .await
        .unwrap();
    channel.close(200, "done".into()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callbacks_and_ciba_callbacks_arrive_typed_by_their_bindings() {
    let prefix = unique("consume");
    let mut consumer = consumer(&prefix).await;
    let connection = Connection::connect(AMQP_URL, ConnectionProperties::default())
        .await
        .unwrap();
    let callback = first_line("callbacks.jsonl");
    let ciba = first_line("openid_ciba_callbacks.jsonl");
    // Another state and another request id: not bound, never received.
    publish(
        &connection,
        &prefix,
        TealExchange::Callbacks,
        "s-other",
        &callback,
    )
    .await;
    publish(
        &connection,
        &prefix,
        TealExchange::Callbacks,
        "s-1",
        &callback,
    )
    .await;
    publish(
        &connection,
        &prefix,
        TealExchange::OpenIdCibaCallbacks,
        "req-other",
        &ciba,
    )
    .await;
    publish(
        &connection,
        &prefix,
        TealExchange::OpenIdCibaCallbacks,
        "req-1",
        &ciba,
    )
    .await;

    let received = timeout(Duration::from_secs(10), consumer.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(
        received.message,
        Incoming::Callback(CallbackMessage::from_json(&callback).unwrap())
    );
    assert_eq!(
        (received.routing_key.as_str(), received.body.as_slice()),
        ("s-1", callback.as_slice())
    );
    received.ack().await.unwrap();
    let received = timeout(Duration::from_secs(10), consumer.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(
        received.message,
        Incoming::OpenIdCiba(OpenIdCibaCallbackMessage::from_json(&ciba).unwrap())
    );
    assert_eq!(received.routing_key, "req-1");
    received.ack().await.unwrap();
    assert!(
        timeout(Duration::from_millis(300), consumer.next())
            .await
            .is_err(),
        "a message for an unbound key was delivered"
    );
    consumer.close().await;
    let _ = connection.close(200, "done".into()).await;
    delete_exchanges(&prefix).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_is_acknowledged_only_after_its_handler_succeeds() {
    let prefix = unique("ack");
    let mut consumer = consumer(&prefix).await;
    let connection = Connection::connect(AMQP_URL, ConnectionProperties::default())
        .await
        .unwrap();
    let callback = first_line("callbacks.jsonl");
    publish(
        &connection,
        &prefix,
        TealExchange::Callbacks,
        "s-1",
        &callback,
    )
    .await;

    // The handler fails: the message comes back, marked redelivered.
    let failed = timeout(
        Duration::from_secs(10),
        consumer.handle_next(|_| async { Err("database down") }),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(failed, Some(Err("database down")));
    let mut seen_redelivered = false;
    let handled = timeout(
        Duration::from_secs(10),
        consumer.handle_next(|received| {
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
    assert!(
        timeout(Duration::from_millis(300), consumer.next())
            .await
            .is_err()
    );

    // A message that is not TeaL's: rejected without requeue, reported, not redelivered.
    publish(
        &connection,
        &prefix,
        TealExchange::Callbacks,
        "s-1",
        b"{\"not\": \"a callback\"}",
    )
    .await;
    let error = timeout(Duration::from_secs(10), consumer.next())
        .await
        .unwrap()
        .unwrap_err();
    assert!(matches!(error, ConsumeError::Malformed { .. }), "{error}");
    assert!(
        timeout(Duration::from_millis(300), consumer.next())
            .await
            .is_err()
    );

    consumer.close().await;
    let _ = connection.close(200, "done".into()).await;
    delete_exchanges(&prefix).await;
}
