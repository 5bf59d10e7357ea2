//! `serve` hosting the dispatcher without a broker: a webhook POSTed to the relay
//! reaches a websocket client in-process, with nothing else running; slow clients are
//! closed without holding up the others; shutdown closes clients with 1001.

use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Bytes;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use futures_util::{SinkExt, StreamExt};
use http::{Request, header};
use http_body_util::Full;
use powens_webhooks::relay::Relay;
use tokio::time::{Instant, timeout};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use super::{config, secret_file, try_post};

const PASSWORD: &str = "local-password";

async fn start(
    extra: &str,
) -> (
    SocketAddr,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let config = config(&format!(
        "dispatcher = true\ndispatcher_password = \"file:{}\"\n{extra}\n\
         [domains.\"sandbox.biapi.pro\"]\nmode = \"forward\"\n",
        secret_file(PASSWORD).display()
    ));
    let relay = Relay::start(&config).await.unwrap();
    let addr = relay.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(relay.run(async move {
        let _ = stopped.await;
    }));
    (addr, stop, task)
}

type Client =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn client(addr: SocketAddr) -> Client {
    let mut request = format!("ws://{addr}/websocket")
        .into_client_request()
        .unwrap();
    let credentials = STANDARD.encode(format!("anonymous:{PASSWORD}"));
    request.headers_mut().insert(
        header::AUTHORIZATION,
        format!("Basic {credentials}").parse().unwrap(),
    );
    let (mut client, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    client
        .send(Message::text(
            r#"{"register_to":{"type":"powens_domain","powens_domain":"sandbox"}}"#,
        ))
        .await
        .unwrap();
    client
}

async fn post(addr: SocketAddr, body: &str) -> u16 {
    let request = Request::post("/powens-webhook/sandbox.biapi.pro/USER_SYNCED")
        .header(header::AUTHORIZATION, "Bearer user-token")
        .body(Full::new(Bytes::from(body.to_owned())))
        .unwrap();
    try_post(addr, request).await.unwrap().0
}

/// POSTs until the registration is in the table (it is applied as the frame is read).
async fn post_routed(addr: SocketAddr, body: &str) -> u16 {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let status = post(addr, body).await;
        if status != 503 || Instant::now() > deadline {
            return status;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn next_payload(client: &mut Client) -> String {
    loop {
        let frame = timeout(Duration::from_secs(10), client.next())
            .await
            .expect("a message within 10 s")
            .unwrap()
            .unwrap();
        if let Message::Text(text) = frame {
            let value: serde_json::Value = serde_json::from_str(&text).unwrap();
            assert_eq!(value["type"], "powens_webhook");
            return value["payload"].as_str().unwrap().to_owned();
        }
    }
}

#[tokio::test]
async fn without_a_broker_a_webhook_reaches_a_websocket_client_in_process() {
    let (addr, stop, task) = start("").await;
    // Nobody registered: unroutable, as with RabbitMQ's mandatory flag.
    assert_eq!(post(addr, "{}").await, 503);
    let mut client = client(addr).await;
    assert_eq!(post_routed(addr, r#"{"n":1}"#).await, 204);
    assert_eq!(next_payload(&mut client).await, r#"{"n":1}"#);

    // Graceful shutdown: a close frame with 1001, and the relay stops.
    stop.send(()).unwrap();
    let close = loop {
        match timeout(Duration::from_secs(10), client.next())
            .await
            .unwrap()
        {
            Some(Ok(Message::Close(frame))) => break frame.unwrap(),
            Some(Ok(_)) => {}
            other => panic!("no close frame: {other:?}"),
        }
    };
    assert_eq!(close.code, CloseCode::Away);
    timeout(Duration::from_secs(10), task)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn a_client_that_does_not_read_is_closed_with_1013_and_holds_up_no_one() {
    let (addr, _stop, _task) = start("dispatcher_queue_len = 4").await;
    let mut slow = client(addr).await;
    let mut fast = client(addr).await;
    assert_eq!(post_routed(addr, "{}").await, 204);
    assert_eq!(next_payload(&mut fast).await, "{}");
    let reader = tokio::spawn(async move {
        let mut received = Vec::new();
        for _ in 0..60 {
            received.push(next_payload(&mut fast).await);
        }
        received
    });
    // 60 webhooks of 256 KiB: far more than the slow client's socket buffers and queue.
    let pad = "x".repeat(256 * 1024);
    for n in 0..60 {
        assert_eq!(
            post(addr, &format!(r#"{{"n":{n},"pad":"{pad}"}}"#)).await,
            204
        );
    }
    let received = timeout(Duration::from_secs(30), reader)
        .await
        .unwrap()
        .unwrap();
    for (n, payload) in received.iter().enumerate() {
        assert!(
            payload.starts_with(&format!(r#"{{"n":{n},"#)),
            "in order, none lost"
        );
    }
    // The slow client finds, after what it was sent, a close frame with 1013.
    let close = loop {
        match timeout(Duration::from_secs(10), slow.next()).await.unwrap() {
            Some(Ok(Message::Close(frame))) => break frame.unwrap(),
            Some(Ok(_)) => {}
            other => panic!("no close frame: {other:?}"),
        }
    };
    assert_eq!(close.code, CloseCode::Again);

    // The metrics say so.
    let request = Request::get("/metrics")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let (status, metrics) = try_post(addr, request).await.unwrap();
    assert_eq!(status, 200);
    let value = |name: &str| -> u64 {
        let line = metrics.lines().find(|l| l.starts_with(name));
        let line = line.unwrap_or_else(|| panic!("{name} not in\n{metrics}"));
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    assert_eq!(
        value("powens_dispatcher_closes_total{reason=\"overflow\"}"),
        1
    );
    // The fast client's 61, and what the slow one took before it stopped reading.
    assert!(value("powens_dispatcher_messages_pushed_total{type=\"powens_webhook\"}") > 61);
}

#[tokio::test]
async fn pings_keep_an_idle_client_and_drop_a_dead_one() {
    // A websocket outlives read_timeout_secs, which only bounds HTTP request heads.
    let (addr, _stop, _task) = start("dispatcher_ping_secs = 1\nread_timeout_secs = 1").await;
    let mut idle = client(addr).await;
    let mut dead = client(addr).await;
    // The idle client reads (and so answers pings) for 3.5 s; the dead one does not.
    let reading = async {
        let until = Instant::now() + Duration::from_millis(3500);
        let mut pings = 0;
        while let Ok(Some(frame)) = tokio::time::timeout_at(until, idle.next()).await {
            if matches!(frame.unwrap(), Message::Ping(_)) {
                pings += 1;
            }
        }
        pings
    };
    assert!(reading.await >= 2, "the dispatcher pings idle clients");
    assert_eq!(post_routed(addr, r#"{"n":1}"#).await, 204);
    assert_eq!(next_payload(&mut idle).await, r#"{"n":1}"#);
    // The dead client's connection was dropped: what it reads now ends without the
    // message.
    let mut got_message = false;
    while let Ok(Some(Ok(frame))) = timeout(Duration::from_secs(5), dead.next()).await {
        got_message |= matches!(frame, Message::Text(_));
    }
    assert!(
        !got_message,
        "a client silent for two ping intervals is dropped"
    );
}

#[tokio::test]
async fn a_webhook_no_client_is_registered_for_is_refused_in_terms_of_clients() {
    let (addr, _stop, _task) = start("").await;
    let request = Request::post("/powens-webhook/sandbox.biapi.pro/USER_SYNCED")
        .header(header::AUTHORIZATION, "Bearer user-token")
        .body(Full::new(Bytes::from_static(b"{}")))
        .unwrap();
    let (status, body) = try_post(addr, request).await.unwrap();
    assert_eq!(status, 503, "{body}");
    assert_eq!(
        body,
        "no websocket client is registered for this domain (no broker: messages go only \
         to the dispatcher's clients); retry later\n"
    );
    assert!(!body.contains("queue"), "{body}");
}
