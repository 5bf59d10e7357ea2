//! Raw lapin publishing: the baseline the relay is compared with, the same messages
//! published straight to RabbitMQ with confirms.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use chrono::Utc;
use http_body_util::BodyExt;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::{BasicProperties, Confirmation};
use powens_webhooks::relay::AmqpUrl;
use powens_webhooks::relay::testing::{
    Target, amqp_channel, close, signature_date, signed_request,
};
use powens_webhooks::{
    Domain, Event, IsoDateTime, PowensHeaders, Secret, TealExchange, TealMessage, WebhookRequest,
};

use crate::pace::{Load, Pace};
use crate::runs::{Run, Tally, body, collect};
use crate::{Args, DOMAIN, PATH, SECRET};

/// Raw lapin: one confirm channel, `connections` publishes in flight (closed loop), or
/// at most that many, each publishing the next one due (open loop); the same message
/// (TeaL JSON of a signed webhook) the relay would publish.
pub async fn raw_run(
    url: &AmqpUrl,
    prefix: &str,
    args: &Args,
    load: Load,
    duration: Duration,
    ids: Arc<AtomicU64>,
) -> Result<Run, Box<dyn std::error::Error>> {
    let (connection, channel) = amqp_channel(url).await?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    let exchange = TealExchange::PowensDomainWebhooks.name(prefix);
    let domain = Domain::parse(DOMAIN)?;
    let event = Event::parse("CONNECTION_SYNCED")?;
    let target = Target::parse(&format!("http://127.0.0.1{PATH}"))?;
    let secret = Secret::new(SECRET)?;
    let pace = Pace::start(load, duration);
    let mut tasks = Vec::new();
    for _ in 0..args.connections {
        let (channel, exchange, ids) = (channel.clone(), exchange.clone(), ids.clone());
        let pace = pace.clone();
        let (domain, event, target, secret) = (
            domain.clone(),
            event.clone(),
            target.clone(),
            secret.clone(),
        );
        let size = args.body_bytes;
        tasks.push(tokio::spawn(async move {
            let mut tally = Tally::default();
            while let Some(turn) = pace.next().await {
                let id = ids.fetch_add(1, Ordering::Relaxed);
                // Build the message as the relay does (signed request, parsed headers).
                let request = signed_request(
                    &target,
                    Bytes::from(body(id, size)),
                    &secret,
                    &signature_date(Utc::now()),
                )
                .expect("valid request");
                let headers = PowensHeaders::from_header_map(request.headers()).expect("headers");
                let payload = request
                    .body()
                    .clone()
                    .collect()
                    .await
                    .expect("body")
                    .to_bytes();
                let message = WebhookRequest {
                    method: "POST",
                    endpoint: PATH,
                    domain: &domain,
                    event: &event,
                    headers: &headers,
                    body: &payload,
                }
                .to_unverified_message(IsoDateTime::now_naive_utc())
                .expect("UTF-8 body");
                let properties = BasicProperties::default()
                    .with_content_type("application/json".into())
                    .with_delivery_mode(2)
                    .with_message_id(id.to_string().into());
                let sent = Instant::now();
                let confirm = channel
                    .basic_publish(
                        exchange.as_str().into(),
                        DOMAIN.into(),
                        BasicPublishOptions {
                            mandatory: true,
                            immediate: false,
                        },
                        &message.to_json(),
                        properties,
                    )
                    .await;
                let confirmed = match confirm {
                    Ok(confirm) => matches!(confirm.await, Ok(Confirmation::Ack(None))),
                    Err(_) => false,
                };
                tally.record(turn, sent, confirmed);
            }
            tally
        }));
    }
    let run = collect(tasks, &pace).await;
    close(&connection, &channel).await;
    Ok(run)
}
