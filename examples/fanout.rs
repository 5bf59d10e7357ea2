//! Fan-out benchmark of the websocket dispatcher: websocket clients spread over Powens
//! domains, webhooks POSTed to the relay at a steady rate, each pushed by
//! `powens-relay dispatch` (the release binary, a process of its own, as an operator
//! runs it) to every client registered to its domain.
//!
//! ```sh
//! cargo build --release && cargo run --release --example fanout -- --clients 1000 --domains 100 --rate 500
//! ```
//!
//! Needs RabbitMQ on 127.0.0.1:5672 (guest/guest) and about `clients` + 100 file
//! descriptors. Measures, in one run: the raw consume rate of the same broker (a lapin
//! consumer draining a pre-filled queue, prefetch 256, acknowledging each message: what
//! the dispatcher does, minus the websockets); the dispatcher's resident memory before
//! and after the clients connect (per 1 000 idle clients); then, under load, delivered
//! frames per second, the latency from the start of the POST to the frame's arrival
//! (p50, p99), the dispatcher's CPU time per message, and what was lost (every 2xx
//! webhook must reach every client of its domain). Exits non-zero on a loss.
// Items are `pub` for the modules the examples share, not an API.
#![allow(unreachable_pub)]

#[path = "common/mod.rs"]
mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use base64::Engine;
use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions,
};
use powens_webhooks::relay::Relay;
use powens_webhooks::relay::testing::{
    Target, amqp_channel, close, signature_date, signed_request,
};
use powens_webhooks::relay::{AmqpUrl, Overrides, RelayConfig};
use powens_webhooks::{Secret, TealExchange};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const SECRET: &str = "fanout-test-secret";
const PASSWORD: &str = "fanout-password";

#[derive(Debug, Parser)]
struct Args {
    /// Websocket clients.
    #[arg(long, default_value_t = 1000)]
    clients: usize,
    /// Powens domains the clients are spread over (client i registers to domain i mod N).
    #[arg(long, default_value_t = 100)]
    domains: usize,
    /// Webhooks POSTed per second, in all.
    #[arg(long, default_value_t = 500)]
    rate: u64,
    /// Seconds of load.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// HTTP connections the webhooks are sent on.
    #[arg(long, default_value_t = 16)]
    connections: usize,
    /// Messages of the raw consume measurement.
    #[arg(long, default_value_t = 20000)]
    raw_messages: u64,
    /// RabbitMQ URL.
    #[arg(long, default_value = "amqp://guest:guest@127.0.0.1:5672/%2f")]
    amqp_url: String,
}

/// Nanoseconds since the harness started: the clock the bodies carry.
fn now_ns(epoch: Instant) -> u64 {
    u64::try_from(epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let url = AmqpUrl::parse(&args.amqp_url)?;
    let prefix = format!(
        "fanout_{}_{}_",
        std::process::id(),
        chrono::Utc::now().timestamp()
    );

    let raw_rate = raw_consume_rate(&url, &prefix, args.raw_messages).await?;
    eprintln!("raw consume: {raw_rate:.0} msg/s");

    let dir = std::env::temp_dir().join(format!("{prefix}dir"));
    std::fs::create_dir_all(&dir)?;
    let secret_path = dir.join("secret");
    std::fs::write(&secret_path, SECRET)?;
    let domains: Vec<String> = (0..args.domains)
        .map(|i| format!("fan{i}.biapi.pro"))
        .collect();
    let mut overrides = Overrides::new()
        .with("listen", "127.0.0.1:0")
        .with("amqp_url", args.amqp_url.as_str())
        .with("exchange_prefix", prefix.as_str())
        .with("data_dir", dir.display().to_string());
    for domain in &domains {
        overrides = overrides.with_domain(format!("{domain}=file:{}", secret_path.display()));
    }
    let config = RelayConfig::load(&overrides)?;
    let relay = Relay::start(&config).await?;
    let relay_addr = relay.local_addr()?;
    let (stop_relay, stopped) = tokio::sync::oneshot::channel::<()>();
    let relay_task = tokio::spawn(relay.run(async {
        let _ = stopped.await;
    }));

    let (mut dispatcher, dispatcher_addr) = spawn_dispatcher(&args, &prefix, &dir)?;
    let pid = dispatcher.id();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_before = common::status_kib(pid, "VmRSS:");

    // The clients, each registered to its domain; they count frames and latencies.
    let epoch = Instant::now();
    let frames = Arc::new(AtomicU64::new(0));
    let measuring = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let latencies = Arc::new(std::sync::Mutex::new(Vec::<u64>::new()));
    let mut clients = Vec::new();
    for i in 0..args.clients {
        let domain = domains[i % domains.len()].clone();
        let socket = connect(dispatcher_addr, &domain).await?;
        clients.push(tokio::spawn(client(
            socket,
            epoch,
            frames.clone(),
            measuring.clone(),
            latencies.clone(),
        )));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_idle = common::status_kib(pid, "VmRSS:");
    let per_thousand_mib =
        rss_idle.saturating_sub(rss_before) as f64 * 1000.0 / args.clients as f64 / 1024.0;
    eprintln!(
        "dispatcher RSS: {:.1} MiB alone, {:.1} MiB with {} idle clients ({per_thousand_mib:.2} MiB per 1000)",
        rss_before as f64 / 1024.0,
        rss_idle as f64 / 1024.0,
        args.clients
    );

    // Every domain routable before measuring (bindings are made as clients register).
    let secret = Secret::new(SECRET)?;
    for domain in &domains {
        let deadline = Instant::now() + Duration::from_secs(10);
        while post(relay_addr, domain, &secret, epoch).await? != 204 {
            if Instant::now() > deadline {
                return Err(format!("{domain} is not routable after 10 s").into());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    frames.store(0, Ordering::Relaxed);
    measuring.store(true, Ordering::Relaxed);

    let cpu_before = common::cpu_time(&pid.to_string());
    let started = Instant::now();
    let sent_ok = Arc::new(AtomicU64::new(0));
    let sent_failed = Arc::new(AtomicU64::new(0));
    let per_connection = (args.rate as f64 / args.connections as f64).max(0.001);
    let mut senders = Vec::new();
    for c in 0..args.connections {
        let domains = domains.clone();
        let (ok, failed) = (sent_ok.clone(), sent_failed.clone());
        let secret = secret.clone();
        let seconds = args.seconds;
        senders.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / per_connection));
            let mut n = c;
            while started.elapsed() < Duration::from_secs(seconds) {
                tick.tick().await;
                let domain = &domains[n % domains.len()];
                n += 1;
                match post(relay_addr, domain, &secret, epoch).await {
                    Ok(204) => ok.fetch_add(1, Ordering::Relaxed),
                    _ => failed.fetch_add(1, Ordering::Relaxed),
                };
            }
        }));
    }
    for sender in senders {
        sender.await?;
    }
    let send_seconds = started.elapsed().as_secs_f64();
    // Every 2xx webhook reaches every client of its domain (the rate spreads evenly).
    let per_domain = args.clients / args.domains;
    let expected = sent_ok.load(Ordering::Relaxed) * per_domain as u64;
    let deadline = Instant::now() + Duration::from_secs(15);
    while frames.load(Ordering::Relaxed) < expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let seconds = started.elapsed().as_secs_f64();
    let cpu_ms = u64::try_from(
        common::cpu_time(&pid.to_string())
            .saturating_sub(cpu_before)
            .as_millis(),
    )
    .unwrap_or(u64::MAX);
    let delivered = frames.load(Ordering::Relaxed);
    let peak_rss = common::status_kib(pid, "VmHWM:");
    measuring.store(false, Ordering::Relaxed);
    for client in &clients {
        client.abort();
    }
    let mut latencies = std::mem::take(&mut *latencies.lock().unwrap_or_else(|e| e.into_inner()));
    latencies.sort_unstable();
    let percentile = |p: f64| {
        latencies
            .get(((latencies.len().saturating_sub(1)) as f64 * p).round() as usize)
            .map_or(f64::NAN, |us| *us as f64 / 1000.0)
    };
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let _ = dispatcher.wait();
    let _ = stop_relay.send(());
    relay_task.await?;
    delete_exchanges(&url, &prefix).await?;
    let _ = std::fs::remove_dir_all(&dir);

    let ok = sent_ok.load(Ordering::Relaxed);
    let messages_rate = ok as f64 / send_seconds;
    let frames_rate = delivered as f64 / seconds;
    println!(
        "\n{} clients over {} domains ({} per domain), {} webhooks/s offered for {} s\n",
        args.clients, args.domains, per_domain, args.rate, args.seconds
    );
    println!("| figure | value |\n|---|---|");
    println!(
        "| webhooks 2xx (messages consumed by the dispatcher) | {ok} ({messages_rate:.0}/s) |"
    );
    println!(
        "| webhooks refused | {} |",
        sent_failed.load(Ordering::Relaxed)
    );
    println!("| frames delivered | {delivered} of {expected} ({frames_rate:.0}/s) |");
    println!("| raw consume rate, same broker | {raw_rate:.0} msg/s |");
    println!(
        "| frames delivered / raw consume | {:.2} |",
        frames_rate / raw_rate
    );
    println!(
        "| POST → websocket latency p50 / p99 / max | {:.2} / {:.2} / {:.2} ms |",
        percentile(0.5),
        percentile(0.99),
        percentile(1.0)
    );
    println!(
        "| dispatcher CPU per message consumed | {:.0} µs |",
        cpu_ms as f64 * 1000.0 / ok.max(1) as f64
    );
    println!(
        "| dispatcher CPU per frame delivered | {:.1} µs |",
        cpu_ms as f64 * 1000.0 / delivered.max(1) as f64
    );
    println!(
        "| dispatcher RSS: alone / {} idle clients / peak | {:.1} / {:.1} / {:.1} MiB |",
        args.clients,
        rss_before as f64 / 1024.0,
        rss_idle as f64 / 1024.0,
        peak_rss as f64 / 1024.0
    );
    println!("| RSS per 1 000 idle clients | {per_thousand_mib:.2} MiB |");
    if delivered < expected {
        return Err(format!(
            "{} frames of 2xx webhooks were not delivered",
            expected - delivered
        )
        .into());
    }
    Ok(())
}

/// One client: counts the frames it receives while measuring, and their latency from
/// the time the body carries.
async fn client(
    mut socket: Socket,
    epoch: Instant,
    frames: Arc<AtomicU64>,
    measuring: Arc<std::sync::atomic::AtomicBool>,
    latencies: Arc<std::sync::Mutex<Vec<u64>>>,
) {
    while let Some(Ok(frame)) = socket.next().await {
        let Message::Text(text) = frame else { continue };
        let received = now_ns(epoch);
        if !measuring.load(Ordering::Relaxed) {
            continue;
        }
        // The payload is `{"t":<ns>,...}`, escaped inside the frame's JSON string.
        let Some(sent) = text
            .split_once(r#"{\"t\":"#)
            .and_then(|(_, rest)| rest.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|digits| digits.parse::<u64>().ok())
        else {
            continue;
        };
        frames.fetch_add(1, Ordering::Relaxed);
        let micros = received.saturating_sub(sent) / 1000;
        latencies
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(micros);
    }
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A client registered to `domain`.
async fn connect(addr: SocketAddr, domain: &str) -> Result<Socket, Box<dyn std::error::Error>> {
    let mut request = format!("ws://{addr}/websocket").into_client_request()?;
    let credentials =
        base64::engine::general_purpose::STANDARD.encode(format!("anonymous:{PASSWORD}"));
    request
        .headers_mut()
        .insert("authorization", format!("Basic {credentials}").parse()?);
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await?;
    let frame =
        format!(r#"{{"register_to":{{"type":"powens_domain","powens_domain":"{domain}"}}}}"#);
    socket.send(Message::text(frame)).await?;
    Ok(socket)
}

/// POSTs one signed webhook for `domain` carrying the time it was sent; the status.
async fn post(
    relay: SocketAddr,
    domain: &str,
    secret: &Secret,
    epoch: Instant,
) -> Result<u16, Box<dyn std::error::Error>> {
    use http_body_util::BodyExt;
    let body = format!(
        r#"{{"t":{},"connection":{{"id":42,"state":null}}}}"#,
        now_ns(epoch)
    );
    let target = Target::parse(&format!(
        "http://{relay}/powens-webhook/{domain}/CONNECTION_SYNCED"
    ))?;
    let request = signed_request(
        &target,
        Bytes::from(body),
        secret,
        &signature_date(chrono::Utc::now()),
    )?;
    let stream = tokio::net::TcpStream::connect(relay).await?;
    stream.set_nodelay(true)?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
    let driver = tokio::spawn(connection);
    let response = sender.send_request(request).await?;
    let status = response.status().as_u16();
    let _ = response.into_body().collect().await;
    driver.abort();
    Ok(status)
}

/// `powens-relay dispatch` from the same target directory, on a port of its choosing.
fn spawn_dispatcher(
    args: &Args,
    prefix: &str,
    dir: &std::path::Path,
) -> Result<(std::process::Child, SocketAddr), Box<dyn std::error::Error>> {
    use std::io::{BufRead, BufReader};
    let mut child = std::process::Command::new(common::relay_binary()?)
        .arg("dispatch")
        .env("POWENS_RELAY_AMQP_URL", &args.amqp_url)
        .env("POWENS_RELAY_EXCHANGE_PREFIX", prefix)
        .env("POWENS_RELAY_DISPATCHER_LISTEN", "127.0.0.1:0")
        .env("POWENS_RELAY_DISPATCHER_PASSWORD", PASSWORD)
        .env("POWENS_RELAY_DISPATCHER_MAX_CLIENTS", "100000")
        .env("POWENS_RELAY_MAX_CONNECTIONS", "100000")
        .env("POWENS_RELAY_DATA_DIR", dir)
        .env("RUST_LOG", "info")
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    let mut stderr = BufReader::new(child.stderr.take().ok_or("no stderr")?);
    let addr = loop {
        let mut line = String::new();
        if stderr.read_line(&mut line)? == 0 {
            return Err("the dispatcher exited before listening".into());
        }
        if let Some(rest) = line.split("listening on ").nth(1) {
            let addr = rest.split(|c: char| c == '"' || c.is_whitespace()).next();
            break addr.ok_or("no address")?.parse()?;
        }
    };
    // Keep draining its log so that it never blocks on a full pipe.
    std::thread::spawn(move || for _ in stderr.lines() {});
    Ok((child, addr))
}

/// The broker's raw consume rate: `count` webhook-sized messages published to a queue
/// of the run's exchange, then drained by a lapin consumer with prefetch 256 that
/// acknowledges each one (what the dispatcher does, without the websockets).
async fn raw_consume_rate(
    url: &AmqpUrl,
    prefix: &str,
    count: u64,
) -> Result<f64, Box<dyn std::error::Error>> {
    let (connection, channel) = amqp_channel(url).await?;
    let queue = common::private_queue(&channel, prefix, "raw.biapi.pro").await?;
    let exchange = TealExchange::PowensDomainWebhooks.name(prefix);
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    let body = format!(
        r#"{{"timestamp":"2026-11-23T10:00:00.123456","domain":"raw.biapi.pro","event":"CONNECTION_SYNCED","hmac_signature":null,"user_token":null,"payload":"{}"}}"#,
        "x".repeat(1000)
    );
    let mut pending = std::collections::VecDeque::new();
    for _ in 0..count {
        let confirm = channel
            .basic_publish(
                exchange.as_str().into(),
                "raw.biapi.pro".into(),
                BasicPublishOptions::default(),
                body.as_bytes(),
                Default::default(),
            )
            .await?;
        pending.push_back(confirm);
        if pending.len() >= 256
            && let Some(confirm) = pending.pop_front()
        {
            confirm.await?;
        }
    }
    for confirm in pending {
        confirm.await?;
    }
    channel.basic_qos(256, BasicQosOptions::default()).await?;
    let mut deliveries = channel
        .basic_consume(
            queue.as_str().into(),
            "".into(),
            BasicConsumeOptions::default(),
            Default::default(),
        )
        .await?;
    let started = Instant::now();
    let mut received = 0;
    while received < count {
        let Some(delivery) = deliveries.next().await else {
            break;
        };
        delivery?.acker.ack(BasicAckOptions::default()).await?;
        received += 1;
    }
    let rate = received as f64 / started.elapsed().as_secs_f64();
    close(&connection, &channel).await;
    Ok(rate)
}

/// Removes the run's exchanges.
async fn delete_exchanges(url: &AmqpUrl, prefix: &str) -> Result<(), Box<dyn std::error::Error>> {
    let (connection, channel) = amqp_channel(url).await?;
    for exchange in TealExchange::ALL {
        channel
            .exchange_delete(exchange.name(prefix).as_str().into(), Default::default())
            .await?;
    }
    close(&connection, &channel).await;
    Ok(())
}
