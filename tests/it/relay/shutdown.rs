//! `powens-relay serve` as a process: SIGTERM while webhooks are flowing loses none that
//! were answered 204, and the process exits 0.

use std::collections::BTreeSet;
use std::time::Duration;

use powens_webhooks::Domain;
use powens_webhooks::relay::consume::{Bindings, ConsumerSettings, Incoming, TealConsumer};
use tokio::time::timeout;

use super::{AMQP_URL, Serve, broker, delete_exchanges, secret_file, signed, try_post, unique};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_webhook_answered_204_before_sigterm_is_consumable_afterwards() {
    let prefix = unique("shutdown");
    let settings = ConsumerSettings {
        exchange_prefix: prefix.clone(),
        ..ConsumerSettings::default()
    };
    let bindings = Bindings {
        domains: vec![Domain::parse("budgea.biapi.pro").unwrap()],
        ..Bindings::default()
    };
    let mut consumer = TealConsumer::connect(&broker(), &settings, &bindings)
        .await
        .unwrap();

    let secret = format!("budgea.biapi.pro=file:{}", secret_file("s3cr3t").display());
    let relay = Serve::spawn(&[
        ("POWENS_RELAY_AMQP_URL", AMQP_URL),
        ("POWENS_RELAY_EXCHANGE_PREFIX", &prefix),
        ("POWENS_RELAY_DOMAINS", &secret),
    ]);
    let addr = relay.addr;

    // 8 senders post webhooks with distinct ids until the relay stops answering.
    let mut senders = Vec::new();
    for sender in 0..8u64 {
        senders.push(tokio::spawn(async move {
            let mut accepted = Vec::new();
            for n in 0.. {
                let id = sender * 1_000_000 + n;
                let body = format!("{{\"id_webhook_data\": {id}}}");
                let path = "/powens-webhook/budgea.biapi.pro/USER_SYNCED";
                match try_post(addr, signed(path, body.as_bytes(), "s3cr3t"))
                    .await
                    .map(|(status, _)| status)
                {
                    Some(204) => accepted.push(id),
                    Some(status) => panic!("unexpected status {status}"),
                    // Connection refused or closed: the relay is shutting down.
                    None => break,
                }
            }
            accepted
        }));
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    let (exit, logs) = tokio::task::spawn_blocking(move || relay.terminate())
        .await
        .unwrap();
    assert!(exit.success(), "the relay exited with {exit}");
    assert!(
        logs.iter().any(|l| l.contains("shutdown signal received")),
        "{logs:#?}"
    );

    let mut accepted = BTreeSet::new();
    for sender in senders {
        accepted.extend(sender.await.unwrap());
    }
    eprintln!("{} webhooks answered 204 before SIGTERM", accepted.len());
    assert!(
        accepted.len() > 10,
        "too few webhooks before SIGTERM: {}",
        accepted.len()
    );

    let mut consumed = BTreeSet::new();
    while consumed.len() < accepted.len() {
        let received = timeout(Duration::from_secs(10), consumer.next())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "{} of {} accepted webhooks consumed",
                    consumed.len(),
                    accepted.len()
                )
            })
            .unwrap();
        received.ack().await.unwrap();
        let Incoming::Webhook(message) = &received.message else {
            panic!("not a webhook")
        };
        consumed.insert(message.id_webhook_data().unwrap());
        assert_eq!(
            received.message_id,
            message.id_webhook_data().map(|i| i.to_string())
        );
    }
    assert!(
        accepted.is_subset(&consumed),
        "lost: {:?}",
        accepted.difference(&consumed).collect::<Vec<_>>()
    );
    consumer.close().await;
    delete_exchanges(&prefix).await;
}
