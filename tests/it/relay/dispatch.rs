//! The dispatcher end to end: real websocket clients (tokio-tungstenite) against the
//! dispatcher, webhooks and callbacks sent to the relay over HTTP, the real RabbitMQ and
//! Redis in between.

use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Bytes;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{TimeDelta, Utc};
use futures_util::{SinkExt, StreamExt};
use http::{Request, header};
use http_body_util::Full;
use powens_webhooks::relay::Dispatcher;
use powens_webhooks::relay::Relay;
use powens_webhooks::relay::RelayConfig;
use serde_json::Value;
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio::time::{Instant, timeout};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::proxy::{Fault, FaultProxy};
use super::redis_url;
use super::{broker, config, delete_exchanges, secret_file, signed, try_post, unique};

pub(super) type Client = WebSocketStream<MaybeTlsStream<TcpStream>>;

pub(super) const PASSWORD: &str = "correct horse+battery/staple=";
const SECRET: &str = "dispatch-test-secret";

/// The configuration shared by the relay and the dispatcher of one test: exchange
/// prefix, password file, store, `extra` keys; `budgea` verified with [`SECRET`].
fn both_config(prefix: &str, extra: &str) -> RelayConfig {
    let url = broker();
    config(&format!(
        "exchange_prefix = \"{prefix}\"\ndispatcher_password = \"file:{}\"\n\
         dispatcher_listen = \"127.0.0.1:0\"\n{extra}\n{}",
        secret_file(PASSWORD).display(),
        super::verify_domain("budgea.biapi.pro", SECRET),
    ))
    .with_amqp_url(url)
}

async fn start_relay(config: &RelayConfig) -> (SocketAddr, JoinHandle<()>) {
    let relay = Relay::start(config).await.unwrap();
    let addr = relay.local_addr().unwrap();
    (addr, tokio::spawn(relay.run(std::future::pending())))
}

async fn start_dispatcher(config: &RelayConfig) -> (SocketAddr, JoinHandle<()>) {
    let dispatcher = Dispatcher::start(config).await.unwrap();
    let addr = dispatcher.local_addr().unwrap();
    (addr, tokio::spawn(dispatcher.run(std::future::pending())))
}

fn basic(password: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("anonymous:{password}")))
}

async fn try_connect(
    addr: SocketAddr,
    authorization: Option<&str>,
    query: &str,
) -> Result<Client, tungstenite::Error> {
    let mut request = format!("ws://{addr}/websocket{query}")
        .into_client_request()
        .unwrap();
    if let Some(value) = authorization {
        request
            .headers_mut()
            .insert(header::AUTHORIZATION, value.parse().unwrap());
    }
    tokio_tungstenite::connect_async(request)
        .await
        .map(|(client, _)| client)
}

pub(super) async fn connect(addr: SocketAddr) -> Client {
    try_connect(addr, Some(&basic(PASSWORD)), "").await.unwrap()
}

pub(super) async fn send(client: &mut Client, frame: &str) {
    client.send(Message::text(frame)).await.unwrap();
}

pub(super) async fn register_domain(client: &mut Client, domain: &str) {
    let frame =
        format!(r#"{{"register_to":{{"type":"powens_domain","powens_domain":"{domain}"}}}}"#);
    send(client, &frame).await;
}

/// The next text frame within 10 s, raw.
pub(super) async fn next_text(client: &mut Client) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let frame = timeout(deadline - Instant::now(), client.next())
            .await
            .expect("no message within 10 s")
            .expect("the connection ended")
            .unwrap();
        match frame {
            Message::Text(text) => return text.to_string(),
            Message::Ping(_) | Message::Pong(_) => {}
            other => panic!("unexpected frame {other:?}"),
        }
    }
}

pub(super) async fn next_json(client: &mut Client) -> Value {
    serde_json::from_str(&next_text(client).await).unwrap()
}

/// Nothing but pings for `wait`.
pub(super) async fn nothing_for(client: &mut Client, wait: Duration) {
    if let Ok(Some(Ok(Message::Text(text)))) = timeout(wait, client.next()).await {
        panic!("unexpected message {text}");
    }
}

/// The close frame the server sends next (within 10 s), skipping messages.
async fn close_frame(client: &mut Client) -> (CloseCode, String) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match timeout(deadline - Instant::now(), client.next()).await {
            Ok(Some(Ok(Message::Close(Some(frame))))) => {
                return (frame.code, frame.reason.to_string());
            }
            Ok(Some(Ok(Message::Close(None)))) | Ok(None) | Ok(Some(Err(_))) => {
                panic!("closed without a close frame")
            }
            Ok(Some(Ok(_))) => {}
            Err(_) => panic!("not closed within 10 s"),
        }
    }
}

/// Sends the requests `request` makes to the relay until it stops answering 503 (the
/// dispatcher binds its queue asynchronously after a registration), for at most 10 s;
/// returns the last status.
pub(super) async fn until_routed(
    relay: SocketAddr,
    request: impl Fn() -> Request<Full<Bytes>>,
) -> u16 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, _) = try_post(relay, request()).await.expect("the relay answers");
        if status != 503 || Instant::now() > deadline {
            return status;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// POSTs a signed webhook for `domain` until it is routable; returns the status.
async fn post_webhook(relay: SocketAddr, domain: &str, body: &str) -> u16 {
    let path = format!("/powens-webhook/{domain}/CONNECTION_SYNCED");
    until_routed(relay, || signed(&path, body.as_bytes(), SECRET)).await
}

#[tokio::test]
async fn a_webhook_reaches_the_clients_registered_to_its_domain_as_teal_writes_it() {
    broker();
    let prefix = unique("dispatch_webhook");
    let config = both_config(&prefix, "");
    let (relay, _r) = start_relay(&config).await;
    let (dispatcher, _d) = start_dispatcher(&config).await;
    let mut budgea = connect(dispatcher).await;
    let mut full_name = connect(dispatcher).await;
    let mut other = connect(dispatcher).await;
    register_domain(&mut budgea, "budgea").await;
    register_domain(&mut full_name, "budgea.biapi.pro").await;
    register_domain(&mut other, "other").await;
    let body =
        r#"{"connection":{"id":42,"state":null},"name":"Caf\u00e9"}"#.replace("\\u00e9", "\u{e9}");
    assert_eq!(post_webhook(relay, "budgea.biapi.pro", &body).await, 204);

    let text = next_text(&mut budgea).await;
    assert_eq!(text, next_text(&mut full_name).await, "one frame for all");
    // TeaL's pydantic JSON: type first, compact, non-ASCII escaped.
    assert!(
        text.starts_with(r#"{"type":"powens_webhook","timestamp":""#),
        "{text}"
    );
    assert!(text.is_ascii() && text.contains(r#"Caf\u00e9"#), "{text}");
    let message: Value = serde_json::from_str(&text).unwrap();
    let fields: Vec<&str> = message
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let mut expected = vec![
        "type",
        "timestamp",
        "domain",
        "event",
        "hmac_signature",
        "user_token",
        "payload",
    ];
    expected.sort_unstable();
    assert_eq!(fields, expected, "serde_json sorts keys: the same set");
    assert_eq!(message["type"], "powens_webhook");
    let timestamp = message["timestamp"].as_str().unwrap();
    let at = chrono::NaiveDateTime::parse_from_str(timestamp, "%Y-%m-%dT%H:%M:%S%.f").unwrap();
    assert!(
        (Utc::now().naive_utc() - at).num_seconds().abs() < 30,
        "naive UTC, now"
    );
    assert_eq!(message["domain"], "budgea.biapi.pro");
    assert_eq!(message["event"], "CONNECTION_SYNCED");
    let hmac = message["hmac_signature"].as_object().unwrap();
    assert_eq!(hmac.len(), 3);
    assert!(!hmac["signature"].as_str().unwrap().is_empty());
    let prefix_signed = hmac["payload_prefix"].as_str().unwrap();
    assert!(prefix_signed.starts_with("POST./powens-webhook/budgea.biapi.pro/CONNECTION_SYNCED."));
    assert!(hmac["signature_date"].as_str().unwrap().ends_with("+00:00"));
    assert_eq!(message["user_token"], Value::Null);
    assert_eq!(message["payload"], body.as_str());
    // The signature checks out over payload_prefix + payload.
    let expected_signature = powens_webhooks::sign_parts(
        &powens_webhooks::Secret::new(SECRET).unwrap(),
        &[prefix_signed.as_bytes(), body.as_bytes()],
    );
    assert_eq!(hmac["signature"], expected_signature.to_base64());

    nothing_for(&mut other, Duration::from_millis(500)).await;
    delete_exchanges(&prefix).await;
}

#[tokio::test]
async fn create_then_callback_and_ciba_with_redis() {
    broker();
    let prefix = unique("dispatch_callback");
    let store = format!(
        "callback_store = \"{}\"\npublic_url = \"https://listener.example.org/\"",
        redis_url()
    );
    let config = both_config(&prefix, &store);
    let (relay, _r) = start_relay(&config).await;
    let (dispatcher, _d) = start_dispatcher(&config).await;
    let mut client = connect(dispatcher).await;
    let state = unique("state");
    let expires = (Utc::now() + TimeDelta::hours(1)).format("%Y-%m-%dT%H:%M:%S%.6fZ");

    // Too early: the failure, and register_to is applied all the same.
    let early = (Utc::now() - TimeDelta::hours(1)).format("%Y-%m-%dT%H:%M:%S");
    send(&mut client, &format!(
        r#"{{"create":{{"type":"callback","state":"{state}x","expires_at":"{early}"}},"register_to":{{"type":"callback","state":"{state}x"}}}}"#
    )).await;
    assert_eq!(
        next_text(&mut client).await,
        format!(
            r#"{{"type":"callback_creation_failure","state":"{state}x","detail":"Callback expiration date was too early."}}"#
        )
    );

    send(&mut client, &format!(
        r#"{{"create":{{"type":"callback","state":"{state}","final_redirect_url":"https://app.example.com/done","expires_at":"{expires}"}},"register_to":{{"type":"callback","state":"{state}"}}}}"#
    )).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let (status, location) = loop {
        let (status, location, body) =
            get_body(relay, &format!("/callback?state={state}&code=abc")).await;
        // The store is written as the frame is read, the binding made after: until
        // then, "Unknown state" or unroutable (503).
        let pending = status == 503 || body == "Unknown state\n";
        if !pending || Instant::now() > deadline {
            break (status, location);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(status, 302);
    assert_eq!(location.as_deref(), Some("https://app.example.com/done"));
    let message = next_json(&mut client).await;
    assert_eq!(message["type"], "callback");
    assert_eq!(message["state"], state.as_str());
    assert_eq!(
        message["url"],
        format!("https://listener.example.org/callback?state={state}&code=abc")
    );
    assert_eq!(message.as_object().unwrap().len(), 4);

    // CIBA: ping, push token, push error.
    let request_id = unique("auth_req");
    send(
        &mut client,
        &format!(
            r#"{{"register_to":{{"type":"openid_ciba_callback","request_id":"{request_id}"}}}}"#
        ),
    )
    .await;
    let bodies = [
        format!(r#"{{"auth_req_id":"{request_id}"}}"#),
        format!(
            r#"{{"auth_req_id":"{request_id}","access_token":"AT","token_type":"Bearer","refresh_token":"RT","expires_in":300,"id_token":"ID"}}"#
        ),
        format!(
            r#"{{"auth_req_id":"{request_id}","error":"access_denied","error_description":"no"}}"#
        ),
    ];
    for body in &bodies {
        let request = || {
            Request::post("/openid-ciba-callback")
                .header(header::AUTHORIZATION, "Bearer Notif-1")
                .header(header::CONTENT_TYPE, "application/json")
                .body(Full::new(Bytes::from(body.clone())))
                .unwrap()
        };
        assert_eq!(until_routed(relay, request).await, 204);
    }
    let ping = next_json(&mut client).await;
    assert_eq!(ping["type"], "openid_ciba_callback");
    assert_eq!(ping["request_id"], request_id.as_str());
    assert_eq!(ping["access_token"], "Notif-1");
    assert_eq!(
        (&ping["push_token"], &ping["push_error"]),
        (&Value::Null, &Value::Null)
    );
    let push = next_json(&mut client).await;
    assert_eq!(push["push_token"]["access_token"], "AT");
    assert_eq!(push["push_token"]["refresh_token"], "RT");
    assert_eq!(push["push_token"]["id_token"], "ID");
    assert_eq!(push["push_error"], Value::Null);
    let error = next_json(&mut client).await;
    assert_eq!(error["push_error"]["error"], "access_denied");
    assert_eq!(error["push_error"]["error_description"], "no");
    assert_eq!(error["push_token"], Value::Null);
    delete_exchanges(&prefix).await;
}

/// Status, `Location` and body of `GET path` at `addr`.
pub(super) async fn get_body(addr: SocketAddr, path: &str) -> (u16, Option<String>, String) {
    let request = Request::get(path)
        .header(header::HOST, "listener.example.org")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let answer = crate::http_client::exchange(addr, request).await.unwrap();
    (answer.status, answer.location, answer.body)
}

#[tokio::test]
async fn credentials_are_checked_before_the_upgrade_and_metadata_needs_none() {
    broker();
    let prefix = unique("dispatch_auth");
    let config = both_config(&prefix, "listener_url = \"https://hooks.example.com/teal\"");
    let (dispatcher, _d) = start_dispatcher(&config).await;
    for (authorization, query) in [
        (Some(basic("wrong")), ""),
        (Some(basic(PASSWORD).to_lowercase()), ""),
        (None, ""),
        (None, "?credentials=Zm9vOmJhcg=="),
    ] {
        match try_connect(dispatcher, authorization.as_deref(), query).await {
            Err(tungstenite::Error::Http(response)) => {
                assert_eq!(response.status(), 401, "{authorization:?} {query}");
                assert!(response.headers().contains_key(header::WWW_AUTHENTICATE));
            }
            other => panic!("not refused: {:?}", other.map(drop)),
        }
    }
    // The query parameter, `+` and `/` kept (percent-encoded or not).
    let encoded = STANDARD.encode(format!("anonymous:{PASSWORD}"));
    try_connect(dispatcher, None, &format!("?credentials={encoded}"))
        .await
        .unwrap();

    // Metadata: no credentials needed, a header it cannot read ignored.
    let stream = TcpStream::connect(dispatcher).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    let driver = tokio::spawn(connection);
    let request = Request::get("/.well-known/teapots-teal-metadata")
        .header(header::HOST, "dispatch.example.com")
        .header("x-forwarded-proto", "https")
        .header(header::AUTHORIZATION, "Nonsense")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
    let body = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    driver.abort();
    let metadata: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        metadata["websocket_url"],
        "wss://dispatch.example.com/websocket"
    );
    assert_eq!(
        metadata["callback_url"],
        "https://hooks.example.com/teal/callback"
    );
    assert_eq!(
        metadata["errback_url"],
        "https://hooks.example.com/teal/errback"
    );
    assert_eq!(
        metadata["openid_ciba_callback_url"],
        "https://hooks.example.com/teal/openid-ciba-callback"
    );
    assert_eq!(metadata["server_version"], env!("CARGO_PKG_VERSION"));
}

#[tokio::test]
async fn invalid_frames_close_the_connection_with_a_reason() {
    broker();
    let config = both_config(&unique("dispatch_frames"), "");
    let (dispatcher, _d) = start_dispatcher(&config).await;
    for (frame, code, says) in [
        (
            Message::text("hunter2"),
            CloseCode::Invalid,
            "not a ClientMessage",
        ),
        (
            Message::text(r#"{"register_to":{"type":"callback","state":""}}"#),
            CloseCode::Invalid,
            "Empty state",
        ),
        (
            Message::text(r#"{"register_to":{"type":"powens_domain","powens_domain":"evil.com"}}"#),
            CloseCode::Invalid,
            "Powens domain",
        ),
        (
            Message::binary(b"{}".to_vec()),
            CloseCode::Unsupported,
            "binary",
        ),
    ] {
        let mut client = connect(dispatcher).await;
        // Unknown keys are ignored, as TeaL does.
        send(&mut client, r#"{"hello":"world"}"#).await;
        client.send(frame).await.unwrap();
        let (got, reason) = close_frame(&mut client).await;
        assert_eq!(got, code, "{reason}");
        assert!(reason.contains(says), "{reason}");
        assert!(!reason.contains("hunter2"));
    }
}

/// The dispatcher's queue and what the broker says of it, by `rabbitmqctl`.
fn rabbitmqctl(args: &[&str]) -> String {
    let output = std::process::Command::new("rabbitmqctl")
        .args(["-q"])
        .args(args)
        .output()
        .expect("rabbitmqctl runs beside the broker");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The destination queues bound to the webhook exchange of `prefix`.
pub(super) fn bound_queues(prefix: &str) -> Vec<String> {
    let exchange = format!("{prefix}powens_domain_webhooks");
    rabbitmqctl(&["list_bindings", "source_name", "destination_name"])
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .filter(|(source, _)| *source == exchange)
        .map(|(_, queue)| queue.to_owned())
        .collect()
}

/// `messages_unacknowledged` of `queue`.
fn unacked(queue: &str) -> u64 {
    rabbitmqctl(&["list_queues", "name", "messages_unacknowledged"])
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .find(|(name, _)| *name == queue)
        .map_or(0, |(_, n)| n.trim().parse().unwrap())
}

#[tokio::test]
async fn messages_are_acknowledged_once_written_and_bindings_go_with_the_last_client() {
    broker();
    let prefix = unique("dispatch_ack");
    let config = both_config(&prefix, "dispatcher_queue_len = 10000");
    let (relay, _r) = start_relay(&config).await;
    let (dispatcher, _d) = start_dispatcher(&config).await;
    let mut reader = connect(dispatcher).await;
    register_domain(&mut reader, "budgea").await;
    assert_eq!(post_webhook(relay, "budgea.biapi.pro", "{}").await, 204);
    next_text(&mut reader).await;
    let queues = bound_queues(&prefix);
    assert_eq!(queues.len(), 1, "one queue per process: {queues:?}");
    let queue = &queues[0];

    // A client that does not read: what cannot be written to it stays unacknowledged.
    let body = format!(r#"{{"pad":"{}"}}"#, "x".repeat(200 * 1024));
    for _ in 0..120 {
        assert_eq!(post_webhook(relay, "budgea.biapi.pro", &body).await, 204);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let stuck = unacked(queue);
    assert!(stuck > 0, "messages not yet written were acknowledged");
    for _ in 0..120 {
        next_text(&mut reader).await;
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while unacked(queue) > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(unacked(queue), 0, "written messages are acknowledged");

    // The last client leaves: the binding goes, and the relay's next webhook for the
    // domain is unroutable (503) rather than lost in an orphaned queue.
    reader.close(None).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !bound_queues(&prefix).is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(bound_queues(&prefix), Vec::<String>::new());
    let request = signed(
        "/powens-webhook/budgea.biapi.pro/USER_SYNCED",
        b"{}",
        SECRET,
    );
    assert_eq!(try_post(relay, request).await.unwrap().0, 503);
    delete_exchanges(&prefix).await;
}

#[tokio::test]
async fn clients_stay_connected_through_a_broker_cut() {
    broker();
    let prefix = unique("dispatch_cut");
    let proxy = FaultProxy::start("127.0.0.1:5672".parse().unwrap()).await;
    let config = both_config(&prefix, "reconnect_max_delay_secs = 1");
    let (relay, _r) = start_relay(&config).await;
    let through = proxy.amqp_url();
    let (dispatcher, _d) = start_dispatcher(&config.clone().with_amqp_url(through)).await;
    let mut client = connect(dispatcher).await;
    register_domain(&mut client, "budgea").await;
    assert_eq!(
        post_webhook(relay, "budgea.biapi.pro", r#"{"n":1}"#).await,
        204
    );
    assert_eq!(next_json(&mut client).await["payload"], r#"{"n":1}"#);

    assert_eq!(readyz(dispatcher).await, 200);
    proxy.inject(Fault::Cut);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        readyz(dispatcher).await,
        503,
        "not ready while the broker is cut"
    );
    // While the dispatcher's queue is gone, the relay refuses rather than loses.
    let request = signed(
        "/powens-webhook/budgea.biapi.pro/USER_SYNCED",
        b"{}",
        SECRET,
    );
    assert_eq!(try_post(relay, request).await.unwrap().0, 503);
    proxy.heal();
    let deadline = Instant::now() + Duration::from_secs(10);
    while readyz(dispatcher).await != 200 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The queue and its binding come back; the client never noticed.
    assert_eq!(
        post_webhook(relay, "budgea.biapi.pro", r#"{"n":2}"#).await,
        204
    );
    assert_eq!(next_json(&mut client).await["payload"], r#"{"n":2}"#);
    nothing_for(&mut client, Duration::from_millis(300)).await;
    delete_exchanges(&prefix).await;
}

#[tokio::test]
async fn two_dispatcher_processes_each_deliver_exactly_their_clients_messages() {
    broker();
    let prefix = unique("dispatch_two");
    let password = secret_file(PASSWORD);
    let password_ref = format!("file:{}", password.display());
    let env = [
        ("POWENS_RELAY_AMQP_URL", super::AMQP_URL),
        ("POWENS_RELAY_EXCHANGE_PREFIX", prefix.as_str()),
        ("POWENS_RELAY_DISPATCHER_PASSWORD", PASSWORD),
    ];
    let first = super::Serve::spawn_command("dispatch", &env, std::process::Stdio::null());
    let second_env = [
        ("POWENS_RELAY_AMQP_URL", super::AMQP_URL),
        ("POWENS_RELAY_EXCHANGE_PREFIX", prefix.as_str()),
    ];
    let mut second_command_env = second_env.to_vec();
    // The second reads the password from a file, named in its configuration file.
    let file = secret_file(&format!("dispatcher_password = \"{password_ref}\"\n"));
    let file_path = file.display().to_string();
    second_command_env.push(("POWENS_RELAY_CONFIG", file_path.as_str()));
    let second =
        super::Serve::spawn_command("dispatch", &second_command_env, std::process::Stdio::null());
    let forward: String = ["alpha", "beta", "gamma"]
        .iter()
        .map(|d| format!("[domains.\"{d}.biapi.pro\"]\nmode = \"forward\"\n"))
        .collect();
    let config = both_config(&prefix, &forward);
    let (relay, _r) = start_relay(&config).await;

    let mut a = connect(first.addr).await;
    let mut b = connect(second.addr).await;
    let mut both_1 = connect(first.addr).await;
    let mut both_2 = connect(second.addr).await;
    register_domain(&mut a, "alpha").await;
    register_domain(&mut b, "beta").await;
    register_domain(&mut both_1, "gamma").await;
    register_domain(&mut both_2, "gamma").await;
    for (domain, n) in [("alpha", 1), ("beta", 2), ("gamma", 3), ("alpha", 4)] {
        let body = format!(r#"{{"n":{n}}}"#);
        assert_eq!(post_forward(relay, domain, &body).await, 204, "{domain}");
    }
    let payload = |v: Value| v["payload"].as_str().unwrap().to_owned();
    assert_eq!(payload(next_json(&mut a).await), r#"{"n":1}"#);
    assert_eq!(payload(next_json(&mut a).await), r#"{"n":4}"#);
    assert_eq!(payload(next_json(&mut b).await), r#"{"n":2}"#);
    assert_eq!(payload(next_json(&mut both_1).await), r#"{"n":3}"#);
    assert_eq!(payload(next_json(&mut both_2).await), r#"{"n":3}"#);
    for client in [&mut a, &mut b, &mut both_1, &mut both_2] {
        nothing_for(client, Duration::from_millis(300)).await;
    }

    let mut queues = bound_queues(&prefix);
    queues.sort();
    queues.dedup();
    assert_eq!(
        queues.len(),
        2,
        "one queue per process, bound per domain: {queues:?}"
    );

    // SIGTERM: each client gets a close frame with 1001, the process exits 0.
    let (status, _) = first.terminate();
    assert!(status.success());
    assert_eq!(close_frame(&mut a).await.0, CloseCode::Away);
    assert_eq!(close_frame(&mut both_1).await.0, CloseCode::Away);
    let (status, logs) = second.terminate();
    assert!(status.success());
    assert!(
        !logs.iter().any(|l| l.contains(PASSWORD)),
        "the password is never logged"
    );
    delete_exchanges(&prefix).await;
}

/// The status of the dispatcher's `/readyz`.
async fn readyz(dispatcher: SocketAddr) -> u16 {
    let request = Request::get("/readyz")
        .body(Full::new(Bytes::new()))
        .unwrap();
    try_post(dispatcher, request).await.unwrap().0
}

/// POSTs an unsigned webhook for `<domain>.biapi.pro`, relayed in forward mode, until it
/// is routable.
pub(super) async fn post_forward(relay: SocketAddr, domain: &str, body: &str) -> u16 {
    let path = format!("/powens-webhook/{domain}.biapi.pro/CONNECTION_SYNCED");
    let request = || {
        Request::post(path.as_str())
            .header(header::AUTHORIZATION, "Bearer user-token")
            .body(Full::new(Bytes::from(body.to_owned())))
            .unwrap()
    };
    until_routed(relay, request).await
}
