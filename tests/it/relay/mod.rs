//! The relay: router tests with an in-memory publisher, end-to-end tests against the
//! real RabbitMQ on 127.0.0.1:5672, and graceful shutdown of the binary.

mod e2e;
mod router;
mod shutdown;

use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::body::Bytes;
use chrono::{DateTime, Utc};
use http::Request;
use http_body_util::Full;
use powens_webhooks::Secret;
use powens_webhooks::relay::config::{AmqpUrl, Overrides, RelayConfig};
use powens_webhooks::relay::send::{Target, signature_date, signed_request};

/// The broker every relay test uses.
pub const AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// The broker's URL, after checking that it answers: a test that needs RabbitMQ fails,
/// saying how to start it, rather than passing without it.
pub fn broker() -> AmqpUrl {
    if TcpStream::connect_timeout(&"127.0.0.1:5672".parse().unwrap(), Duration::from_secs(2))
        .is_err()
    {
        panic!(
            "RabbitMQ is not reachable on 127.0.0.1:5672; start it with \
             `rabbitmq-server -detached && rabbitmqctl await_startup` (or run `bash .ci/run`)"
        );
    }
    AmqpUrl::parse(AMQP_URL).unwrap()
}

/// A name no other test (or earlier run) uses, for exchange prefixes and queues.
pub fn unique(what: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = Utc::now().timestamp_nanos_opt().unwrap_or_default();
    format!(
        "test_{what}_{}_{nanos:x}_{}_",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Writes `secret` to a new file and returns its path, for `file:` references.
pub fn secret_file(secret: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(unique("secrets"));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("secret");
    std::fs::write(&path, secret).unwrap();
    path
}

/// A configuration from TOML text (secrets as `file:` references), listening on port 0.
pub fn config(toml: &str) -> RelayConfig {
    let overrides = Overrides {
        listen: Some("127.0.0.1:0".into()),
        ..Overrides::default()
    };
    RelayConfig::from_toml(toml, &overrides).unwrap()
}

/// `[domains."<domain>"]` in verify mode with `secret`.
pub fn verify_domain(domain: &str, secret: &str) -> String {
    format!(
        "[domains.\"{domain}\"]\nsecrets = [\"file:{}\"]\n",
        secret_file(secret).display()
    )
}

/// A request as Powens signs it: `POST path`, date `at`, body, signed with `secret`.
pub fn signed_at(path: &str, body: &[u8], secret: &str, at: DateTime<Utc>) -> Request<Full<Bytes>> {
    let target = Target::parse(&format!("http://127.0.0.1:1{path}"), None).unwrap();
    signed_request(
        &target,
        Bytes::copy_from_slice(body),
        &Secret::new(secret).unwrap(),
        &signature_date(at),
    )
    .unwrap()
}

/// [`signed_at`] now.
pub fn signed(path: &str, body: &[u8], secret: &str) -> Request<Full<Bytes>> {
    signed_at(path, body, secret, Utc::now())
}

/// Deletes the TeaL exchanges of `prefix`, so that test runs leave nothing behind.
pub async fn delete_exchanges(prefix: &str) {
    use lapin::options::ExchangeDeleteOptions;
    let connection = lapin::Connection::connect(AMQP_URL, lapin::ConnectionProperties::default())
        .await
        .unwrap();
    let channel = connection.create_channel().await.unwrap();
    for exchange in powens_webhooks::TealExchange::ALL {
        channel
            .exchange_delete(
                exchange.name(prefix).into(),
                ExchangeDeleteOptions::default(),
            )
            .await
            .unwrap();
    }
    let _ = connection.close(200, "done".into()).await;
}
