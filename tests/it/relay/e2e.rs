//! End to end against the real RabbitMQ: the relay on port 0, a consumer bound through
//! the library, webhooks sent over HTTP.

use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Bytes;
use chrono::Utc;
use http_body_util::Full;
use powens_webhooks::relay::Relay;
use powens_webhooks::relay::RelayConfig;
use powens_webhooks::relay::consume::{
    Bindings, ConsumerSettings, Incoming, Received, TealConsumer,
};
use powens_webhooks::{Domain, TealMessage};
use tokio::task::JoinHandle;
use tokio::time::timeout;

use super::{
    AMQP_URL, assert_signed_for, broker, config, delete_exchanges, signed, signed_at, strip_hooks,
    try_post, unique, verify_domain,
};

/// Starts the relay of `config`; stops when the handle is dropped with the runtime.
async fn start(config: RelayConfig) -> (SocketAddr, JoinHandle<()>) {
    let config = config.with_amqp_url(broker());
    let relay = Relay::start(&config).await.unwrap();
    let addr = relay.local_addr().unwrap();
    let handle = tokio::spawn(async move {
        relay.run(std::future::pending()).await;
    });
    (addr, handle)
}

pub(super) async fn consumer(prefix: &str, domains: &[&str]) -> TealConsumer {
    let settings = ConsumerSettings {
        exchange_prefix: prefix.to_owned(),
        ..ConsumerSettings::default()
    };
    let bindings = Bindings {
        domains: domains.iter().map(|d| Domain::parse(d).unwrap()).collect(),
        ..Bindings::default()
    };
    TealConsumer::connect(&broker(), &settings, &bindings)
        .await
        .unwrap()
}

/// Sends `request` to the relay at `addr`; returns the status and body.
pub async fn post(addr: SocketAddr, request: http::Request<Full<Bytes>>) -> (u16, String) {
    try_post(addr, request).await.expect("the relay answered")
}

/// The next delivery within 10 s, acknowledged.
pub async fn next(consumer: &mut TealConsumer) -> Received {
    let received = timeout(Duration::from_secs(10), consumer.next())
        .await
        .expect("no message within 10 s")
        .unwrap();
    received.ack().await.unwrap();
    received
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_webhooks_for_two_domains_arrive_intact_and_refused_ones_never_do() {
    let prefix = unique("e2e");
    let toml = format!(
        "exchange_prefix = \"{prefix}\"\n{}{}",
        verify_domain("budgea.biapi.pro", "secret-one"),
        verify_domain("other.biapi.pro", "secret-two"),
    );
    let mut consumer = consumer(&prefix, &["budgea.biapi.pro", "other.biapi.pro"]).await;
    let (addr, _relay) = start(config(&toml)).await;

    let sent = [
        (
            "budgea.biapi.pro",
            "CONNECTION_SYNCED",
            "secret-one",
            r#"{"id_webhook_data": 1, "name": "Café"}"#.as_bytes(),
        ),
        (
            "other.biapi.pro",
            "USER_CREATED",
            "secret-two",
            br#"{"id_webhook_data": 2}"#.as_slice(),
        ),
        (
            "budgea.biapi.pro",
            "ACCOUNT_SYNCED",
            "secret-one",
            b"0101234    CFONB text, not JSON\n".as_slice(),
        ),
    ];
    for (domain, event, secret, body) in sent {
        let path = format!("/powens-webhook/{domain}/{event}");
        let request = signed(&path, body, secret);
        let signature = request.headers()["BI-Signature"]
            .to_str()
            .unwrap()
            .to_owned();
        let date = request.headers()["BI-Signature-Date"]
            .to_str()
            .unwrap()
            .to_owned();
        assert_eq!(post(addr, request).await, (204, String::new()));

        let received = next(&mut consumer).await;
        let Incoming::Webhook(message) = &received.message else {
            panic!("expected a webhook, got {:?}", received.message);
        };
        assert_eq!(received.routing_key, domain);
        assert_eq!(received.content_type.as_deref(), Some("application/json"));
        assert_eq!(received.delivery_mode, Some(2));
        assert_eq!(
            received.body,
            message.to_json(),
            "the body is TeaL's JSON of the message"
        );
        assert_eq!(message.domain.as_str(), domain);
        assert_eq!(message.event.as_str(), event);
        assert_eq!(message.payload.as_bytes(), body, "payload byte for byte");
        assert!(message.user_token.is_none());
        let hmac = message.hmac_signature.as_ref().unwrap();
        assert_eq!(hmac.signature, signature);
        assert_eq!(hmac.payload_prefix, format!("POST.{path}.{date}."));
        assert_eq!(
            hmac.signature_date.unwrap().to_utc(),
            date.parse::<chrono::DateTime<Utc>>().unwrap()
        );
        let age = Utc::now() - message.timestamp.to_utc();
        assert!(
            age >= chrono::Duration::zero() && age < chrono::Duration::seconds(60),
            "{age}"
        );
        let expected_id = message.id_webhook_data().map(|id| id.to_string());
        assert_eq!(received.message_id, expected_id);
    }

    // Refused: wrong signature, stale date, unknown domain. Then one good webhook, which
    // must be the next message: nothing refused was published in between.
    let path = "/powens-webhook/budgea.biapi.pro/USER_SYNCED";
    let stale = Utc::now() - chrono::Duration::hours(2);
    for (request, status) in [
        (signed(path, b"{}", "secret-two"), 401),
        (signed_at(path, b"{}", "secret-one", stale), 401),
        (
            signed(
                "/powens-webhook/unknown.biapi.pro/USER_SYNCED",
                b"{}",
                "secret-one",
            ),
            404,
        ),
    ] {
        assert_eq!(post(addr, request).await.0, status);
    }
    assert_eq!(
        post(addr, signed(path, b"{\"last\": true}", "secret-one"))
            .await
            .0,
        204
    );
    let Incoming::Webhook(last) = next(&mut consumer).await.message else {
        panic!("expected a webhook");
    };
    assert_eq!(last.payload, "{\"last\": true}");
    consumer.close().await;
    delete_exchanges(&prefix).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unroutable_webhook_is_503_by_default_and_204_when_accepted() {
    for (policy, status) in [("", 503), ("unroutable = \"accept\"\n", 204)] {
        // A fresh prefix: no queue is bound to this exchange.
        let prefix = unique("unroutable");
        let toml = format!(
            "exchange_prefix = \"{prefix}\"\n{policy}{}",
            verify_domain("budgea.biapi.pro", "s")
        );
        let (addr, _relay) = start(config(&toml)).await;
        let path = "/powens-webhook/budgea.biapi.pro/USER_SYNCED";
        let (got, body) = post(addr, signed(path, b"{}", "s")).await;
        assert_eq!(got, status, "{policy:?}: {body}");
        if status == 503 {
            assert_eq!(
                body,
                "no queue is bound to receive messages for this domain; retry later\n"
            );
        }
        delete_exchanges(&prefix).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forward_mode_relays_a_bearer_only_request_through_the_broker() {
    let prefix = unique("forward");
    let toml = format!(
        "exchange_prefix = \"{prefix}\"\n[domains.\"forward.biapi.pro\"]\nmode = \"forward\"\n"
    );
    let mut consumer = consumer(&prefix, &["forward.biapi.pro"]).await;
    let (addr, _relay) = start(config(&toml)).await;
    let request = http::Request::post("/powens-webhook/forward.biapi.pro/USER_CREATED")
        .header("host", "relay")
        .header("authorization", "Bearer eyJ0.user-token")
        .body(Full::new(Bytes::from_static(b"{\"user\": {\"id\": 5}}")))
        .unwrap();
    assert_eq!(post(addr, request).await.0, 204);
    let Incoming::Webhook(message) = next(&mut consumer).await.message else {
        panic!("expected a webhook");
    };
    assert_eq!(message.user_token.unwrap().as_str(), "eyJ0.user-token");
    assert!(message.hmac_signature.is_none());
    assert_eq!(message.payload, "{\"user\": {\"id\": 5}}");
    consumer.close().await;
    delete_exchanges(&prefix).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declared_exchange_with_other_flags_stops_start_up_with_a_clear_error() {
    let prefix = unique("flags");
    let durable = format!(
        "exchange_prefix = \"{prefix}\"\nexchange_durable = true\n{}",
        verify_domain("budgea.biapi.pro", "s")
    );
    let (_, first) = start(config(&durable)).await;
    let second = config(&durable.replace("exchange_durable = true", "exchange_durable = false"))
        .with_amqp_url(powens_webhooks::relay::AmqpUrl::parse(AMQP_URL).unwrap());
    let error = Relay::start(&second).await.unwrap_err().to_string();
    assert!(error.contains("set exchange_durable to match"), "{error}");
    assert!(!error.contains("guest:guest"), "{error}");
    first.abort();
    delete_exchanges(&prefix).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_proxy_that_strips_hooks_the_prefix_makes_the_signature_match() {
    let prefix = unique("proxy");
    let mut consumer = consumer(&prefix, &["budgea.biapi.pro"]).await;
    let domain = verify_domain("budgea.biapi.pro", "s");
    let base = format!("exchange_prefix = \"{prefix}\"\n");
    let (with_prefix, _a) = start(config(&format!(
        "{base}public_path_prefix = \"/hooks\"\n{domain}"
    )))
    .await;
    let (without_prefix, _b) = start(config(&format!("{base}{domain}"))).await;

    // Powens signed the public path; the proxy forwards the path without /hooks.
    let public = "/hooks/powens-webhook/budgea.biapi.pro/USER_SYNCED";
    let (status, body) = post(
        without_prefix,
        strip_hooks(signed(public, b"{\"n\": 1}", "s")),
    )
    .await;
    assert_eq!(
        (status, body.as_str()),
        (
            401,
            "signature does not match any key for budgea.biapi.pro\n"
        )
    );
    assert_eq!(
        post(with_prefix, strip_hooks(signed(public, b"{\"n\": 2}", "s")))
            .await
            .0,
        204
    );

    let Incoming::Webhook(message) = next(&mut consumer).await.message else {
        panic!("expected a webhook");
    };
    assert_eq!(
        message.payload, "{\"n\": 2}",
        "only the prefixed relay published"
    );
    assert_signed_for(&message, public);
    consumer.close().await;
    delete_exchanges(&prefix).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_exchange_is_declared_again_and_publishing_resumes() {
    let prefix = unique("redeclare");
    let (addr, _relay) = start(config(&format!(
        "exchange_prefix = \"{prefix}\"\nunroutable = \"accept\"\n{}",
        verify_domain("budgea.biapi.pro", "s3cr3t")
    )))
    .await;
    let path = "/powens-webhook/budgea.biapi.pro/USER_SYNCED";
    let webhook = || signed(path, br#"{"id_webhook_data": 8}"#, "s3cr3t");
    assert_eq!(post(addr, webhook()).await.0, 204);

    // Someone deletes the exchange: the next publish makes the broker close the
    // relay's channel (404), and that webhook is not confirmed.
    delete_exchanges(&prefix).await;
    let (status, body) = post(addr, webhook()).await;
    assert_eq!(status, 503, "{body}");

    // The relay opens a new connection and declares the exchange again.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let (status, body) = post(addr, webhook()).await;
        if status == 204 {
            break;
        }
        assert_eq!(status, 503, "{body}");
        assert!(
            tokio::time::Instant::now() < deadline,
            "not publishing again 5 s after the channel closed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let connection = lapin::Connection::connect(AMQP_URL, lapin::ConnectionProperties::default())
        .await
        .unwrap();
    let channel = connection.create_channel().await.unwrap();
    channel
        .exchange_declare(
            format!("{prefix}powens_domain_webhooks").as_str().into(),
            lapin::ExchangeKind::Direct,
            lapin::options::ExchangeDeclareOptions {
                passive: true,
                ..Default::default()
            },
            lapin::types::FieldTable::default(),
        )
        .await
        .expect("the exchange exists again");
    let _ = connection.close(200, "done".into()).await;
    delete_exchanges(&prefix).await;
}
