//! Replicas: two `serve` and two `dispatch` processes on one broker and one Redis, as
//! behind a load balancer. Webhooks POSTed alternately to both relays reach a consumer
//! once each; websocket clients on either dispatcher get exactly their messages; a
//! callback created through one dispatcher is answered by either relay.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use chrono::{TimeDelta, Utc};
use powens_webhooks::relay::consume::Incoming;
use serde_json::Value;
use tokio::time::{Instant, timeout};

use super::dispatch::{
    Client, PASSWORD, bound_queues, connect, get_body, next_json, nothing_for, post_forward,
    register_domain, send,
};
use super::e2e::consumer;
use super::redis_url;
use super::{AMQP_URL, Serve, broker, delete_exchanges, secret_file, unique};

const DOMAINS: [&str; 2] = ["alpha", "beta"];

/// Waits until `count` queues are bound to the webhook exchange of `prefix`.
async fn until_bound(prefix: &str, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut queues = bound_queues(prefix);
        queues.sort();
        queues.dedup();
        if queues.len() >= count {
            return;
        }
        assert!(Instant::now() < deadline, "bound after 10 s: {queues:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Creates callback `state` through `client`'s dispatcher, then GETs it from `relay`
/// until the store and the binding are there: the redirect's status.
async fn callback_through(client: &mut Client, relay: SocketAddr, state: &str) -> u16 {
    let expires = (Utc::now() + TimeDelta::hours(1)).format("%Y-%m-%dT%H:%M:%S%.6fZ");
    send(client, &format!(
        r#"{{"create":{{"type":"callback","state":"{state}","final_redirect_url":"https://app.example.com/done","expires_at":"{expires}"}},"register_to":{{"type":"callback","state":"{state}"}}}}"#
    )).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, _, body) = get_body(relay, &format!("/callback?state={state}&code=c")).await;
        let pending = status == 503 || body == "Unknown state\n";
        if !pending || Instant::now() > deadline {
            return status;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn two_relays_and_two_dispatchers_share_the_work_without_loss_or_duplicates() {
    broker();
    let prefix = unique("replicas");
    let domains: String = DOMAINS
        .iter()
        .map(|d| format!("[domains.\"{d}.biapi.pro\"]\nmode = \"forward\"\n"))
        .collect();
    // One configuration file for all four processes, as a deployment would have.
    let file = secret_file(&format!(
        "exchange_prefix = \"{prefix}\"\ncallback_store = \"{}\"\n\
         public_url = \"https://listener.example.org/\"\n\
         dispatcher_password = \"file:{}\"\n{domains}",
        redis_url(),
        secret_file(PASSWORD).display()
    ));
    let file = file.display().to_string();
    let env = [
        ("POWENS_RELAY_AMQP_URL", AMQP_URL),
        ("POWENS_RELAY_CONFIG", file.as_str()),
    ];
    let null = std::process::Stdio::null;
    let relays = [
        Serve::spawn_command("serve", &env, null()),
        Serve::spawn_command("serve", &env, null()),
    ];
    let dispatchers = [
        Serve::spawn_command("dispatch", &env, null()),
        Serve::spawn_command("dispatch", &env, null()),
    ];

    // The services' consumer, and a client of each dispatcher on a domain each.
    let mut consumer = consumer(&prefix, &["alpha.biapi.pro", "beta.biapi.pro"]).await;
    let mut clients = [
        connect(dispatchers[0].addr).await,
        connect(dispatchers[1].addr).await,
    ];
    for (client, domain) in clients.iter_mut().zip(DOMAINS) {
        register_domain(client, &format!("{domain}.biapi.pro")).await;
    }
    until_bound(&prefix, 3).await;

    // 20 webhooks, to the relays in turn; each relay gets both domains (alpha for
    // n = 0, 1, 4, 5, …, beta for 2, 3, 6, 7, …).
    const SENT: usize = 20;
    let domain_of = |n: usize| n / 2 % 2;
    for n in 0..SENT {
        let relay = relays[n % 2].addr;
        let domain = DOMAINS[domain_of(n)];
        let body = format!(r#"{{"n":{n}}}"#);
        assert_eq!(post_forward(relay, domain, &body).await, 204, "{n}");
    }
    let mut received = BTreeMap::<u64, usize>::new();
    while received.values().sum::<usize>() < SENT {
        let next = timeout(Duration::from_secs(10), consumer.next())
            .await
            .expect("every webhook reaches the consumer")
            .unwrap();
        next.ack().await.unwrap();
        let Incoming::Webhook(message) = &next.message else {
            panic!("expected a webhook, got {:?}", next.message);
        };
        let n: Value = serde_json::from_str(&message.payload).unwrap();
        *received.entry(n["n"].as_u64().unwrap()).or_default() += 1;
    }
    let extra = timeout(Duration::from_millis(500), consumer.next()).await;
    assert!(extra.is_err(), "no message twice");
    let expected: BTreeMap<u64, usize> = (0..SENT as u64).map(|n| (n, 1)).collect();
    assert_eq!(received, expected, "each webhook once");

    // Each client: exactly its domain's webhooks, in order.
    for (i, client) in clients.iter_mut().enumerate() {
        for n in (0..SENT).filter(|n| domain_of(*n) == i) {
            let frame = next_json(client).await;
            assert_eq!(frame["type"], "powens_webhook");
            assert_eq!(frame["payload"], format!(r#"{{"n":{n}}}"#));
        }
        nothing_for(client, Duration::from_millis(300)).await;
    }

    // A callback created through either dispatcher, answered by the other side's relay
    // (the store is the shared Redis; the message goes through the broker).
    for (i, client) in clients.iter_mut().enumerate() {
        let state = unique("replica_state");
        let relay = relays[1 - i].addr;
        assert_eq!(callback_through(client, relay, &state).await, 302);
        let frame = next_json(client).await;
        assert_eq!(frame["type"], "callback");
        assert_eq!(frame["state"], state.as_str());
    }

    consumer.close().await;
    for process in relays.into_iter().chain(dispatchers) {
        let (status, logs) = process.terminate();
        assert!(status.success(), "{logs:#?}");
    }
    delete_exchanges(&prefix).await;
}
