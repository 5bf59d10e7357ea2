//! The nodes of a cluster given as `amqp_url`, and quorum queues, against the real
//! RabbitMQ (one node here: the node that does not answer is a closed port). The
//! three-node cluster with a node stopped under load is `tests/cluster`.

use std::time::Duration;

use axum::body::Bytes;
use http::Request;
use http_body_util::Full;
use powens_webhooks::Domain;
use powens_webhooks::relay::AmqpUrl;
use powens_webhooks::relay::Relay;
use powens_webhooks::relay::consume::{
    Bindings, ConsumeError, ConsumerSettings, Incoming, QueueType, TealConsumer,
};
use tokio::time::timeout;

use super::{AMQP_URL, broker, config, delete_exchanges, signed, try_post, unique, verify_domain};

/// A URL of this machine's port where nothing listens.
fn dead_node() -> AmqpUrl {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    AmqpUrl::parse(&format!("amqp://guest:guest@127.0.0.1:{port}/%2f")).unwrap()
}

/// GET `path` on `addr`: status and body.
async fn get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    let request = Request::get(path).body(Full::new(Bytes::new())).unwrap();
    try_post(addr, request).await.expect("the relay answered")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_dead_node_listed_the_relay_publishes_through_the_live_one_and_names_it() {
    let live = broker();
    let shown = live.to_string();
    assert!(!shown.contains("guest:"), "no credentials in the shown URL");
    // Whichever node it draws first, it starts: a dead first node is passed over.
    for round in 0..4 {
        let prefix = unique("nodes");
        let nodes = match round % 2 {
            0 => vec![dead_node(), live.clone()],
            _ => vec![live.clone(), dead_node()],
        };
        let toml = format!(
            "exchange_prefix = \"{prefix}\"\n{}",
            verify_domain("budgea.biapi.pro", "s")
        );
        let config = config(&toml).with_amqp_urls(nodes);
        let settings = ConsumerSettings {
            exchange_prefix: prefix.clone(),
            ..ConsumerSettings::default()
        };
        let bindings = Bindings {
            domains: vec![Domain::parse("budgea.biapi.pro").unwrap()],
            ..Bindings::default()
        };
        let cluster = vec![dead_node(), live.clone()];
        let mut consumer = TealConsumer::connect_cluster(cluster, &settings, &bindings)
            .await
            .expect("the consumer passes over the dead node too");
        assert_eq!(consumer.bindings().node().as_deref(), Some(shown.as_str()));

        let relay = Relay::start(&config).await.unwrap();
        let addr = relay.local_addr().unwrap();
        let task = tokio::spawn(relay.run(std::future::pending()));

        let (status, body) = get(addr, "/readyz").await;
        assert_eq!(status, 200);
        assert_eq!(body, format!("ready\nbroker node: {shown}\n"));
        let (_, metrics) = get(addr, "/metrics").await;
        assert!(
            metrics.contains(&format!("powens_relay_broker_node{{node=\"{shown}\"}} 1")),
            "{metrics}"
        );
        let path = "/powens-webhook/budgea.biapi.pro/USER_CREATED";
        let sent = try_post(addr, signed(path, b"{\"n\": 1}", "s")).await;
        assert_eq!(sent.map(|(status, _)| status), Some(204));
        let received = timeout(Duration::from_secs(10), consumer.next())
            .await
            .expect("the webhook arrives")
            .unwrap();
        received.ack().await.unwrap();
        assert!(matches!(received.message, Incoming::Webhook(_)));
        task.abort();
        consumer.close().await;
        delete_exchanges(&prefix).await;
    }
}

/// The queue's type, as the broker reports it.
fn queue_type(queue: &str) -> String {
    let output = std::process::Command::new("rabbitmqctl")
        .args([
            "list_queues",
            "name",
            "type",
            "--no-table-headers",
            "--quiet",
        ])
        .output()
        .expect("rabbitmqctl runs beside the broker");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.lines()
        .find_map(|line| {
            let mut cells = line.split_whitespace();
            (cells.next() == Some(queue)).then(|| cells.next().unwrap_or_default().to_owned())
        })
        .unwrap_or_else(|| panic!("no queue {queue} in {text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_named_quorum_queue_keeps_messages_while_its_consumer_is_away() {
    let prefix = unique("quorum");
    let queue = format!("{prefix}queue");
    let settings = ConsumerSettings {
        exchange_prefix: prefix.clone(),
        queue: Some(queue.clone()),
        queue_type: QueueType::Quorum,
        ..ConsumerSettings::default()
    };
    let bindings = Bindings {
        domains: vec![Domain::parse("budgea.biapi.pro").unwrap()],
        ..Bindings::default()
    };
    let consumer = TealConsumer::connect(&broker(), &settings, &bindings)
        .await
        .unwrap();
    assert_eq!(queue_type(&queue), "quorum");
    consumer.close().await;

    // Published while nobody consumes: the queue keeps it.
    let toml = format!(
        "exchange_prefix = \"{prefix}\"\n{}",
        verify_domain("budgea.biapi.pro", "s")
    );
    let relay = Relay::start(&config(&toml).with_amqp_url(broker()))
        .await
        .unwrap();
    let addr = relay.local_addr().unwrap();
    let task = tokio::spawn(relay.run(std::future::pending()));
    let path = "/powens-webhook/budgea.biapi.pro/USER_CREATED";
    let sent = try_post(addr, signed(path, b"{\"kept\": true}", "s")).await;
    assert_eq!(sent.map(|(status, _)| status), Some(204));
    task.abort();

    let mut consumer = TealConsumer::connect(&broker(), &settings, &bindings)
        .await
        .unwrap();
    let received = timeout(Duration::from_secs(10), consumer.next())
        .await
        .expect("the message waited in the quorum queue")
        .unwrap();
    received.ack().await.unwrap();
    let Incoming::Webhook(message) = &received.message else {
        panic!("expected a webhook, got {:?}", received.message);
    };
    assert_eq!(message.payload, "{\"kept\": true}");
    consumer.close().await;

    // The same name as a classic queue is refused: the broker keeps its type.
    let classic = ConsumerSettings {
        queue_type: QueueType::Classic,
        ..settings.clone()
    };
    let refused = TealConsumer::connect(&broker(), &classic, &bindings).await;
    let Err(ConsumeError::Broker(error)) = refused else {
        panic!("a classic declaration of a quorum queue must be refused");
    };
    assert!(error.to_string().contains("x-queue-type"), "{error}");
    delete_queue(&queue).await;
    delete_exchanges(&prefix).await;
}

#[tokio::test]
async fn a_private_queue_cannot_be_a_quorum_queue() {
    let settings = ConsumerSettings {
        queue: None,
        queue_type: QueueType::Quorum,
        ..ConsumerSettings::default()
    };
    let refused = TealConsumer::connect(&broker(), &settings, &Bindings::default()).await;
    assert!(
        matches!(refused, Err(ConsumeError::UnnamedQuorumQueue)),
        "{refused:?}"
    );
}

async fn delete_queue(queue: &str) {
    let connection = lapin::Connection::connect(AMQP_URL, lapin::ConnectionProperties::default())
        .await
        .unwrap();
    let channel = connection.create_channel().await.unwrap();
    channel
        .queue_delete(queue.into(), lapin::options::QueueDeleteOptions::default())
        .await
        .unwrap();
    let _ = connection.close(200, "done".into()).await;
}
