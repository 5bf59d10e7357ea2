//! The broker side: the consumer that counts what arrives, and the run's exchanges.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use powens_webhooks::relay::AmqpUrl;
use powens_webhooks::relay::consume::{Bindings, ConsumerSettings, TealConsumer};
use powens_webhooks::relay::testing::{amqp_channel, close};
use powens_webhooks::{Domain, TealExchange};

use crate::DOMAIN;

/// A consumer that only counts deliveries: a private queue bound to the webhook
/// exchange, consumed without acknowledgements, so that the measuring device costs the
/// broker as little as possible.
pub async fn spawn_counting_consumer(
    url: &AmqpUrl,
    prefix: &str,
    counter: Arc<AtomicU64>,
) -> Result<(), Box<dyn std::error::Error>> {
    use futures_util::StreamExt;
    use lapin::options::BasicConsumeOptions;
    let (connection, channel) = amqp_channel(url).await?;
    let queue = crate::common::private_queue(&channel, prefix, DOMAIN).await?;
    let no_ack = BasicConsumeOptions {
        no_ack: true,
        ..BasicConsumeOptions::default()
    };
    let mut deliveries = channel
        .basic_consume(queue.as_str().into(), "".into(), no_ack, Default::default())
        .await?;
    tokio::spawn(async move {
        let _connection = connection;
        while let Some(Ok(_)) = deliveries.next().await {
            counter.fetch_add(1, Ordering::Relaxed);
        }
    });
    Ok(())
}

/// The library's consumer: parses each message, acknowledges it after the handler.
pub async fn spawn_acking_consumer(
    url: &AmqpUrl,
    prefix: &str,
    counter: Arc<AtomicU64>,
) -> Result<(), Box<dyn std::error::Error>> {
    let settings = ConsumerSettings {
        exchange_prefix: prefix.to_owned(),
        prefetch: 1000,
        ..ConsumerSettings::default()
    };
    let bindings = Bindings {
        domains: vec![Domain::parse(DOMAIN)?],
        ..Bindings::default()
    };
    let mut consumer = TealConsumer::connect(url, &settings, &bindings).await?;
    tokio::spawn(async move {
        while let Ok(Ok(())) = consumer
            .handle_next(|_| std::future::ready(Ok::<(), ()>(())))
            .await
        {
            counter.fetch_add(1, Ordering::Relaxed);
        }
    });
    Ok(())
}

/// Removes the run's exchange, so that runs leave nothing behind.
pub async fn delete_exchange(
    url: &AmqpUrl,
    prefix: &str,
) -> Result<(), Box<dyn std::error::Error>> {
    let (connection, channel) = amqp_channel(url).await?;
    let exchange = TealExchange::PowensDomainWebhooks.name(prefix);
    channel
        .exchange_delete(exchange.as_str().into(), Default::default())
        .await?;
    close(&connection, &channel).await;
    Ok(())
}
