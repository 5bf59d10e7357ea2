//! The listener end to end: `powens-relay callback create` (another process) writes the
//! store, the relay (real socket) reads it and publishes to the real RabbitMQ, a TeaL
//! consumer receives the messages; with the embedded store and with Redis; across a
//! restart; and through a broker cut.

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use axum::body::Bytes;
use chrono::{TimeDelta, Utc};
use http::{Request, header};
use http_body_util::Full;
use powens_webhooks::relay::Relay;
use powens_webhooks::relay::RelayConfig;
use powens_webhooks::relay::consume::{Bindings, ConsumerSettings, Incoming, TealConsumer};
use powens_webhooks::relay::testing::Store;
use tokio::task::JoinHandle;
use tokio::time::timeout;

use super::proxy::{Fault, FaultProxy};
use super::redis_url;
use super::{broker, config, delete_exchanges, unique};

const PUBLIC: &str = "https://listener.example.org/";

/// `callback_store` and `data_dir` lines for the embedded store in a new directory, or
/// for Redis.
fn store_toml(redis: bool) -> String {
    if redis {
        format!("callback_store = \"{}\"\n", redis_url())
    } else {
        let dir = std::env::temp_dir().join(unique("data"));
        format!("data_dir = \"{}\"\n", dir.display())
    }
}

fn relay_config(prefix: &str, store: &str, extra: &str) -> RelayConfig {
    config(&format!(
        "exchange_prefix = \"{prefix}\"\npublic_url = \"{PUBLIC}\"\n{store}{extra}\n\
         [domains.\"sandbox.biapi.pro\"]\nmode = \"forward\"\n"
    ))
}

/// `powens-relay callback <args>` with the store of `store` (a TOML fragment), as an
/// operator runs it: another process.
fn cli(store: &str, args: &[&str]) -> (bool, String) {
    let file = super::secret_file(store);
    let output = Command::new(env!("CARGO_BIN_EXE_powens-relay"))
        .arg("callback")
        .args(args)
        .args(["--config", file.to_str().unwrap()])
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

async fn start(config: RelayConfig) -> (SocketAddr, JoinHandle<()>) {
    let relay = Relay::start(&config).await.unwrap();
    let addr = relay.local_addr().unwrap();
    (addr, tokio::spawn(relay.run(std::future::pending())))
}

/// Status, `Location` and body of a request to the relay at `addr`.
async fn fetch(addr: SocketAddr, request: Request<Full<Bytes>>) -> (u16, Option<String>, String) {
    let answer = crate::http_client::exchange(addr, request).await.unwrap();
    (answer.status, answer.location, answer.body)
}

fn get(uri: &str) -> Request<Full<Bytes>> {
    Request::get(uri)
        .header(header::HOST, "listener.example.org")
        .body(Full::new(Bytes::new()))
        .unwrap()
}

async fn consumer(prefix: &str, states: &[&str], requests: &[&str]) -> TealConsumer {
    let settings = ConsumerSettings {
        exchange_prefix: prefix.to_owned(),
        ..ConsumerSettings::default()
    };
    let bindings = Bindings {
        callback_states: states.iter().map(|s| (*s).to_owned()).collect(),
        ciba_request_ids: requests.iter().map(|s| (*s).to_owned()).collect(),
        ..Bindings::default()
    };
    TealConsumer::connect(&broker(), &settings, &bindings)
        .await
        .unwrap()
}

async fn next(consumer: &mut TealConsumer) -> Incoming {
    super::e2e::next(consumer).await.message
}

async fn nothing_more(consumer: &mut TealConsumer) {
    let next = timeout(Duration::from_millis(300), consumer.next()).await;
    assert!(next.is_err(), "unexpected delivery: {next:?}");
}

async fn the_listener_end_to_end(redis: bool) {
    let prefix = unique(if redis { "cb_redis" } else { "cb_embedded" });
    let store = store_toml(redis);
    let state = unique("state");
    let (created, text) = cli(
        &store,
        &[
            "create",
            "--state",
            &state,
            "--expires-in",
            "60",
            "--final-redirect-url",
            "https://app.example.org/done",
        ],
    );
    assert!(created, "{text}");
    let (shown, text) = cli(&store, &["show", "--state", &state]);
    assert!(
        shown && text.contains("\"final_redirect_url\":\"https://app.example.org/done\""),
        "{text}"
    );
    let (shown, _) = cli(&store, &["show", "--state", "nobody-has-this"]);
    assert!(!shown);
    let (created, text) = cli(&store, &["create", "--state", "x", "--expires-in", "5"]);
    assert!(!created && text.contains("too early"), "{text}");

    let request_id = unique("req");
    let mut consumer = consumer(&prefix, &[&state, "unknown-state"], &[&request_id]).await;
    let (addr, relay) = start(relay_config(&prefix, &store, "").with_amqp_url(broker())).await;

    let (status, location, body) =
        fetch(addr, get(&format!("/callback?state={state}&code=c1"))).await;
    assert_eq!(status, 302, "{body}");
    assert_eq!(location.as_deref(), Some("https://app.example.org/done"));
    let Incoming::Callback(message) = next(&mut consumer).await else {
        panic!("not a callback")
    };
    assert_eq!(message.state, state);
    assert_eq!(
        message.url,
        format!("{PUBLIC}callback?state={state}&code=c1")
    );

    // Unknown, and expired: 400, nothing published.
    let (status, _, body) = fetch(addr, get("/callback?state=unknown-state")).await;
    assert_eq!((status, body.as_str()), (400, "Unknown state\n"));
    let spec = Store::configured(
        &powens_webhooks::relay::Overrides::new().with_config(super::secret_file(&store)),
    )
    .await
    .unwrap();
    let short = Utc::now() + TimeDelta::milliseconds(100);
    spec.put_callback("unknown-state", short, None, false)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (status, _, body) = fetch(addr, get("/callback?state=unknown-state")).await;
    assert_eq!((status, body.as_str()), (400, "Unknown state\n"));
    nothing_more(&mut consumer).await;

    // CIBA push: expires_at = now + expires_in.
    let push = format!(
        r#"{{"auth_req_id":"{request_id}","access_token":"AT","token_type":"Bearer","refresh_token":"RT","expires_in":300,"id_token":"ID"}}"#
    );
    let before = Utc::now();
    let request = Request::post("/openid-ciba-callback")
        .header(header::AUTHORIZATION, "Bearer Notif-1")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(push)))
        .unwrap();
    assert_eq!(fetch(addr, request).await.0, 204);
    let Incoming::OpenIdCiba(message) = next(&mut consumer).await else {
        panic!("not a CIBA callback")
    };
    let token = message.push_token.unwrap();
    let expires = token.expires_at.to_utc();
    assert!(
        expires >= before + TimeDelta::seconds(299)
            && expires <= Utc::now() + TimeDelta::seconds(301)
    );
    assert_eq!(message.access_token.as_deref(), Some("Notif-1"));

    // CIBA ping and push error.
    for body in [
        format!(r#"{{"auth_req_id":"{request_id}"}}"#),
        format!(
            r#"{{"auth_req_id":"{request_id}","error":"access_denied","error_description":"no"}}"#
        ),
    ] {
        let request = Request::post("/openid-ciba-callback")
            .header(header::AUTHORIZATION, "Bearer Notif-2")
            .body(Full::new(Bytes::from(body)))
            .unwrap();
        assert_eq!(fetch(addr, request).await.0, 204);
    }
    let Incoming::OpenIdCiba(ping) = next(&mut consumer).await else {
        panic!("not a CIBA callback")
    };
    assert!(ping.push_token.is_none() && ping.push_error.is_none());
    let Incoming::OpenIdCiba(error) = next(&mut consumer).await else {
        panic!("not a CIBA callback")
    };
    assert_eq!(error.push_error.unwrap().error, "access_denied");

    // with_fragment: the fragment page, then raw-callback with the whole URL.
    let fragment_state = unique("fragment");
    let (created, text) = cli(
        &store,
        &[
            "create",
            "--state",
            &fragment_state,
            "--expires-in",
            "60",
            "--with-fragment",
        ],
    );
    assert!(created, "{text}");
    consumer
        .bindings()
        .bind(powens_webhooks::TealExchange::Callbacks, &fragment_state)
        .await
        .unwrap();
    let (status, _, page) = fetch(addr, get(&format!("/callback?state={fragment_state}"))).await;
    assert!(
        status == 200 && page.contains("raw-callback?full_url="),
        "{status} {page}"
    );
    let full = format!("{PUBLIC}callback?state={fragment_state}#id_token=abc");
    let encoded: String = url::form_urlencoded::byte_serialize(full.as_bytes()).collect();
    let (status, _, body) = fetch(addr, get(&format!("/raw-callback?full_url={encoded}"))).await;
    assert_eq!(status, 204, "{body}");
    let Incoming::Callback(message) = next(&mut consumer).await else {
        panic!("not a callback")
    };
    assert_eq!((message.url, message.state), (full, fragment_state));

    relay.abort();
    consumer.close().await;
    delete_exchanges(&prefix).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callbacks_and_ciba_with_the_embedded_store() {
    the_listener_end_to_end(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callbacks_and_ciba_with_redis() {
    the_listener_end_to_end(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_callbacks_survive_a_restart_and_a_broker_cut_answers_503() {
    let prefix = unique("cb_restart");
    let store = store_toml(false);
    let state = unique("kept");
    assert!(
        cli(
            &store,
            &["create", "--state", &state, "--expires-in", "120"]
        )
        .0
    );
    let mut consumer = consumer(&prefix, &[&state], &[]).await;

    // A first relay, stopped: the callback is still there for the next one.
    let (_, first) = start(relay_config(&prefix, &store, "").with_amqp_url(broker())).await;
    first.abort();
    let _ = first.await;

    let proxy = FaultProxy::start("127.0.0.1:5672".parse().unwrap()).await;
    let through = proxy.amqp_url();
    let config = relay_config(
        &prefix,
        &store,
        "publish_timeout_secs = 2\nconnect_timeout_secs = 1",
    )
    .with_amqp_url(through);
    let (addr, relay) = start(config).await;
    proxy.inject(Fault::Cut);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, _, body) = fetch(addr, get(&format!("/callback?state={state}"))).await;
    assert_eq!(status, 503, "{body}");
    proxy.heal();
    // Published once the broker is back, within 5 s; nothing answered 2xx was lost.
    let mut answered = 0;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        answered = fetch(addr, get(&format!("/callback?state={state}")))
            .await
            .0;
        if answered == 204 {
            break;
        }
    }
    assert_eq!(answered, 204);
    let Incoming::Callback(message) = next(&mut consumer).await else {
        panic!("not a callback")
    };
    assert_eq!(message.state, state);
    relay.abort();
    consumer.close().await;
    delete_exchanges(&prefix).await;
}
