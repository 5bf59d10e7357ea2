//! Every metric the docs name is one `/metrics` serves, under that name.

use std::collections::BTreeSet;
use std::io::{Read, Write};

use powens_webhooks::relay::{Overrides, Relay, RelayConfig};

/// The metric names in `text`: `powens_relay_…` and `powens_dispatcher_…`.
fn named_in(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for prefix in ["powens_relay_", "powens_dispatcher_"] {
        for (at, _) in text.match_indices(prefix) {
            let name: String = text[at..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                .collect();
            names.insert(name);
        }
    }
    names
}

/// The names a scrape of `exposition` can show: each sample's, and each family's
/// (a counter is scraped as `<name>_total`, a histogram as its family name and
/// `_bucket`, `_sum`, `_count`), whether or not a series exists yet.
fn served(exposition: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in exposition.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut words = rest.split(' ');
            let (name, kind) = (words.next().unwrap(), words.next().unwrap());
            match kind {
                "counter" => {
                    names.insert(format!("{name}_total"));
                }
                "histogram" => {
                    for suffix in ["", "_bucket", "_sum", "_count"] {
                        names.insert(format!("{name}{suffix}"));
                    }
                }
                _ => {
                    names.insert(name.to_owned());
                }
            }
        } else if !line.starts_with('#') && !line.is_empty() {
            let name = line.split(['{', ' ']).next().unwrap();
            names.insert(name.to_owned());
        }
    }
    names
}

/// GET `/metrics` on `addr`, over HTTP/1.1, closing after.
fn scrape(addr: std::net::SocketAddr) -> String {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nhost: relay\r\nconnection: close\r\n\r\n")
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    response
}

/// `request` on a connection of its own; the status line.
fn exchange(addr: std::net::SocketAddr, request: &str) -> String {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response.lines().next().unwrap_or_default().to_owned()
}

/// What makes each labelled family show (an empty one is not scraped): a refused
/// handshake, a client registered to `a.biapi.pro` that receives a webhook and leaves.
async fn traffic(addr: std::net::SocketAddr) {
    use base64::Engine;
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;

    let refused = tokio::task::spawn_blocking(move || {
        exchange(
            addr,
            "GET /websocket HTTP/1.1\r\nhost: relay\r\nconnection: upgrade\r\nupgrade: websocket\r\n\
             sec-websocket-version: 13\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
        )
    })
    .await
    .unwrap();
    assert!(refused.contains("401"), "{refused}");

    let mut request = format!("ws://{addr}/websocket")
        .into_client_request()
        .unwrap();
    let basic = base64::engine::general_purpose::STANDARD.encode("anonymous:pw");
    request
        .headers_mut()
        .insert("authorization", format!("Basic {basic}").parse().unwrap());
    let (mut client, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    client
        .send(Message::text(
            r#"{"register_to":{"type":"powens_domain","powens_domain":"a.biapi.pro"}}"#,
        ))
        .await
        .unwrap();
    let post = "POST /powens-webhook/a.biapi.pro/USER_SYNCED HTTP/1.1\r\nhost: relay\r\n\
                authorization: Bearer t\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}";
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    // 503 until the dispatcher's queue is bound to the domain.
    loop {
        let status = tokio::task::spawn_blocking(move || exchange(addr, post))
            .await
            .unwrap();
        if status.contains(" 204") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{status}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let frame = tokio::time::timeout(std::time::Duration::from_secs(10), client.next()).await;
    assert!(matches!(frame, Ok(Some(Ok(Message::Text(_))))), "{frame:?}");
    client.close(None).await.unwrap();
    // The server counts the close once it has seen it.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn every_metric_the_docs_name_is_served_under_that_name() {
    if std::net::TcpStream::connect("127.0.0.1:5672").is_err() {
        panic!(
            "RabbitMQ is not reachable on 127.0.0.1:5672; start it with \
             `rabbitmq-server -detached && rabbitmqctl await_startup`"
        );
    }
    let dir = std::env::temp_dir().join(format!("powens-docs-metrics-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let password = dir.join("password");
    std::fs::write(&password, "pw").unwrap();
    let prefix = format!("test_docs_metrics_{}_", std::process::id());
    // Every part that registers metrics: the broker, the journal, the hosted dispatcher.
    let toml = format!(
        "amqp_url = \"amqp://guest:guest@127.0.0.1:5672/%2f\"\nexchange_prefix = \"{prefix}\"\n\
         data_dir = {:?}\njournal = \"fallback\"\ndispatcher = true\n\
         dispatcher_password = \"file:{}\"\n[domains.\"a.biapi.pro\"]\nmode = \"forward\"\n",
        dir.join("data"),
        password.display()
    );
    let overrides = Overrides::new().with("listen", "127.0.0.1:0");
    let config = RelayConfig::from_toml(&toml, &overrides).unwrap();
    let relay = Relay::start(&config).await.unwrap();
    let addr = relay.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(relay.run(async move {
        let _ = stopped.await;
    }));
    traffic(addr).await;
    let exposition = tokio::task::spawn_blocking(move || scrape(addr))
        .await
        .unwrap();
    let served = served(&exposition);
    let _ = stop.send(());
    let _ = task.await;
    let _ = std::fs::remove_dir_all(&dir);

    let mut checked = 0;
    for page in ["README.md", "docs/operations.md", "docs/teal.md"] {
        let text = std::fs::read_to_string(crate::root().join(page)).unwrap();
        for name in named_in(&text) {
            assert!(
                served.contains(&name),
                "{page} names {name}, which /metrics does not serve; it serves {served:#?}"
            );
            checked += 1;
        }
    }
    assert!(
        checked > 15,
        "only {checked} metric names found in the docs"
    );
}
