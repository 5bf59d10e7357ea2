//! Load harness: drives the relay with concurrent connections of signed ~1 KiB webhooks
//! and compares it with raw lapin publishing of the same messages, in the same run.
//!
//! ```sh
//! cargo run --release --example load -- --connections 64 --seconds 10 --rounds 3
//! ```
//!
//! Needs RabbitMQ on 127.0.0.1:5672 (guest/guest). Runs, in turn: raw lapin (confirms,
//! N in flight), the relay (in this process, N keep-alive HTTP/1.1 connections), raw
//! lapin again, and so on. A consumer bound to the exchange counts every message, and
//! each run must be consumed in full (consumed = confirmed / answered 2xx) before the
//! next starts. By default it only counts deliveries (no acknowledgements, so that the
//! measuring device does not load the broker); `--acking-consumer` uses the library's
//! `TealConsumer` instead, which acknowledges each message. Prints a row per run,
//! totals, and relay / raw: each relay run against the mean of the raw runs on either
//! side, median over the rounds. Exits non-zero if any confirmed message was not
//! consumed.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use chrono::Utc;
use clap::Parser;
use http_body_util::BodyExt;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::{BasicProperties, Confirmation};
use powens_webhooks::relay::Relay;
use powens_webhooks::relay::broker::{self, Broker, Exchanges};
use powens_webhooks::relay::config::{AmqpUrl, Overrides, RelayConfig};
use powens_webhooks::relay::consume::{Bindings, ConsumerSettings, TealConsumer};
use powens_webhooks::relay::send::{Target, signature_date, signed_request};
use powens_webhooks::{
    Domain, Event, IsoDateTime, PowensHeaders, Secret, SignedPrefix, TealExchange, TealMessage,
    WebhookRequest, sign,
};

const DOMAIN: &str = "load.biapi.pro";
const PATH: &str = "/powens-webhook/load.biapi.pro/CONNECTION_SYNCED";
const SECRET: &str = "load-test-secret";

#[derive(Debug, Parser)]
struct Args {
    /// Concurrent HTTP connections to the relay, and raw publishes in flight.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Seconds per run.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Approximate body size in bytes.
    #[arg(long, default_value_t = 1024)]
    body_bytes: usize,
    /// Rounds of (raw, relay); a last raw run closes the series.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Count with the library's `TealConsumer`, which parses every message and
    /// acknowledges each one after its handler, instead of a consumer that only counts
    /// deliveries (no acknowledgements): heavier on the broker, as real consumers are.
    #[arg(long)]
    acking_consumer: bool,
    /// RabbitMQ URL.
    #[arg(long, default_value = "amqp://guest:guest@127.0.0.1:5672/%2f")]
    amqp_url: String,
}

/// What one run measured.
struct Run {
    name: &'static str,
    ok: u64,
    failed: u64,
    seconds: f64,
    latencies_us: Vec<u64>,
    consumed: u64,
}

impl Run {
    fn rate(&self) -> f64 {
        self.ok as f64 / self.seconds
    }

    fn percentile_ms(&self, p: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return f64::NAN;
        }
        let rank = ((self.latencies_us.len() - 1) as f64 * p).round() as usize;
        self.latencies_us[rank] as f64 / 1000.0
    }
}

/// A body of about `size` bytes carrying `id` as `id_webhook_data`.
fn body(id: u64, size: usize) -> Vec<u8> {
    let head = format!(
        "{{\"id_webhook_data\": {id}, \"connection\": {{\"id\": 42, \"state\": null, \"padding\": \""
    );
    let fill = size.saturating_sub(head.len() + 3);
    let mut body = head.into_bytes();
    body.extend(std::iter::repeat_n(b'x', fill));
    body.extend_from_slice(b"\"}}");
    body
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let url = AmqpUrl::parse(&args.amqp_url)?;
    let prefix = format!("load_{}_{}_", std::process::id(), Utc::now().timestamp());
    let consumed = Arc::new(AtomicU64::new(0));
    if args.acking_consumer {
        spawn_acking_consumer(&url, &prefix, consumed.clone()).await?;
    } else {
        spawn_counting_consumer(&url, &prefix, consumed.clone()).await?;
    }

    let secret_path = std::env::temp_dir().join(format!("{prefix}secret"));
    std::fs::write(&secret_path, SECRET)?;
    let overrides = Overrides::new()
        .with("listen", "127.0.0.1:0")
        .with("amqp_url", args.amqp_url.as_str())
        .with("exchange_prefix", prefix.as_str())
        .with(
            "data_dir",
            std::env::temp_dir()
                .join(format!("{prefix}data"))
                .display()
                .to_string(),
        )
        .with_domain(format!("{DOMAIN}=file:{}", secret_path.display()));
    let config = RelayConfig::load(&overrides)?;
    std::fs::remove_file(&secret_path)?;
    let relay = Relay::start(&config).await?;
    let addr = relay.local_addr()?;
    let (stop_relay, stopped) = tokio::sync::oneshot::channel::<()>();
    let relay_task = tokio::spawn(relay.run(async {
        let _ = stopped.await;
    }));

    let duration = Duration::from_secs(args.seconds);
    let ids = Arc::new(AtomicU64::new(0));
    let mut runs = Vec::new();
    // raw, relay, raw, relay, ..., raw: each relay run sits between two raw runs, so a
    // slow spell of the shared machine hits both.
    let order: Vec<&'static str> = (0..args.rounds)
        .flat_map(|_| ["raw lapin", "relay"])
        .chain(["raw lapin"])
        .collect();
    for name in order {
        let before = consumed.load(Ordering::Relaxed);
        let mut run = if name == "relay" {
            relay_run(addr, &args, duration, ids.clone()).await
        } else {
            raw_run(&url, &prefix, &args, duration, ids.clone()).await?
        };
        // Every confirmed message must reach the consumer.
        let deadline = Instant::now() + Duration::from_secs(30);
        while consumed.load(Ordering::Relaxed) - before < run.ok && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        run.consumed = consumed.load(Ordering::Relaxed) - before;
        run.name = name;
        eprintln!(
            "{name}: {:.0}/s, {} ok, {} failed, {} consumed",
            run.rate(),
            run.ok,
            run.failed,
            run.consumed
        );
        runs.push(run);
    }
    let _ = stop_relay.send(());
    relay_task.await?;
    delete_exchange(&url, &prefix).await?;

    println!(
        "\n{} connections / in flight, {} s per run, ~{} B bodies, {} rounds\n",
        args.connections, args.seconds, args.body_bytes, args.rounds
    );
    println!(
        "| run | msgs/s | p50 (ms) | p99 (ms) | 2xx / confirmed | non-2xx / failed | consumed | lost |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for run in &runs {
        println!(
            "| {} | {:.0} | {:.2} | {:.2} | {} | {} | {} | {} |",
            run.name,
            run.rate(),
            run.percentile_ms(0.50),
            run.percentile_ms(0.99),
            run.ok,
            run.failed,
            run.consumed,
            run.ok.saturating_sub(run.consumed),
        );
    }
    // Each relay run against the mean of the raw runs on either side of it.
    let mut ratios: Vec<f64> = runs
        .windows(3)
        .step_by(2)
        .map(|w| w[1].rate() / ((w[0].rate() + w[2].rate()) / 2.0))
        .collect();
    ratios.sort_by(f64::total_cmp);
    let median = ratios[ratios.len() / 2];
    let all = |name: &str| {
        let mut merged = Run {
            name: "",
            ok: 0,
            failed: 0,
            seconds: 0.0,
            latencies_us: Vec::new(),
            consumed: 0,
        };
        for run in runs.iter().filter(|r| r.name == name) {
            merged.ok += run.ok;
            merged.failed += run.failed;
            merged.seconds += run.seconds;
            merged.consumed += run.consumed;
            merged.latencies_us.extend(&run.latencies_us);
        }
        merged.latencies_us.sort_unstable();
        merged
    };
    let (relay, raw) = (all("relay"), all("raw lapin"));
    println!("\n| | relay | raw lapin |\n|---|---|---|");
    println!("| msgs/s | {:.0} | {:.0} |", relay.rate(), raw.rate());
    println!(
        "| p50 (ms) | {:.2} | {:.2} |",
        relay.percentile_ms(0.5),
        raw.percentile_ms(0.5)
    );
    println!(
        "| p99 (ms) | {:.2} | {:.2} |",
        relay.percentile_ms(0.99),
        raw.percentile_ms(0.99)
    );
    println!("| non-2xx / failed | {} | {} |", relay.failed, raw.failed);
    println!(
        "| lost (2xx or confirmed, not consumed) | {} | {} |",
        relay.ok.saturating_sub(relay.consumed),
        raw.ok.saturating_sub(raw.consumed)
    );
    println!(
        "\nrelay / raw: median of {} rounds {:.3} (each round: {})",
        ratios.len(),
        median,
        ratios
            .iter()
            .map(|r| format!("{r:.3}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let lost: u64 = runs.iter().map(|r| r.ok.saturating_sub(r.consumed)).sum();
    if lost > 0 {
        return Err(format!("{lost} confirmed messages were not consumed").into());
    }
    Ok(())
}

/// A consumer that only counts deliveries: a private queue bound to the webhook
/// exchange, consumed without acknowledgements, so that the measuring device costs the
/// broker as little as possible.
async fn spawn_counting_consumer(
    url: &AmqpUrl,
    prefix: &str,
    counter: Arc<AtomicU64>,
) -> Result<(), Box<dyn std::error::Error>> {
    use futures_util::StreamExt;
    use lapin::options::{BasicConsumeOptions, QueueDeclareOptions};
    let (connection, channel) = Broker::new(url.clone()).open().await?;
    let exchanges = exchanges(prefix);
    let exchange = exchanges.name(TealExchange::PowensDomainWebhooks);
    exchanges
        .declare(&channel, &[TealExchange::PowensDomainWebhooks])
        .await?;
    let private = QueueDeclareOptions {
        exclusive: true,
        auto_delete: true,
        ..QueueDeclareOptions::default()
    };
    let queue = channel
        .queue_declare("".into(), private, Default::default())
        .await?;
    channel
        .queue_bind(
            queue.name().clone(),
            exchange.as_str().into(),
            DOMAIN.into(),
            Default::default(),
            Default::default(),
        )
        .await?;
    let no_ack = BasicConsumeOptions {
        no_ack: true,
        ..BasicConsumeOptions::default()
    };
    let mut deliveries = channel
        .basic_consume(queue.name().clone(), "".into(), no_ack, Default::default())
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
async fn spawn_acking_consumer(
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

/// `connections` keep-alive HTTP/1.1 connections, each posting signed webhooks in turn.
///
/// The client is a minimal HTTP/1.1 writer and reader (as wrk is), so that the load
/// generator, which shares the machine's cores, costs the relay as little as possible.
async fn relay_run(addr: SocketAddr, args: &Args, duration: Duration, ids: Arc<AtomicU64>) -> Run {
    let secret = Secret::new(SECRET).expect("non-empty secret");
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..args.connections {
        let (secret, ids) = (secret.clone(), ids.clone());
        let size = args.body_bytes;
        tasks.push(tokio::spawn(async move {
            let (mut ok, mut failed, mut latencies) = (0u64, 0u64, Vec::new());
            let mut stream = tokio::net::TcpStream::connect(addr)
                .await
                .expect("relay is listening");
            stream.set_nodelay(true).expect("nodelay");
            let mut buffer = Vec::with_capacity(4096);
            while started.elapsed() < duration {
                let id = ids.fetch_add(1, Ordering::Relaxed);
                let request = raw_request(addr, &body(id, size), &secret);
                let sent = Instant::now();
                let status = match exchange(&mut stream, &request, &mut buffer).await {
                    Ok(status) => status,
                    Err(_) => {
                        failed += 1;
                        break;
                    }
                };
                latencies.push(sent.elapsed().as_micros() as u64);
                if (200..300).contains(&status) {
                    ok += 1
                } else {
                    failed += 1
                }
            }
            (ok, failed, latencies)
        }));
    }
    collect(tasks, started).await
}

/// A signed `POST` as bytes on the wire.
fn raw_request(addr: SocketAddr, body: &[u8], secret: &Secret) -> Vec<u8> {
    let date = signature_date(Utc::now());
    let signature = sign(secret, &SignedPrefix::new("POST", PATH, &date), body).to_base64();
    let mut request = format!(
        "POST {PATH} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         BI-Signature-Date: {date}\r\nBI-Signature: {signature}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body);
    request
}

/// Writes `request`, reads one response (status line, headers, Content-Length body);
/// returns the status.
async fn exchange(
    stream: &mut tokio::net::TcpStream,
    request: &[u8],
    buffer: &mut Vec<u8>,
) -> std::io::Result<u16> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let broken = || std::io::Error::new(std::io::ErrorKind::InvalidData, "bad response");
    stream.write_all(request).await?;
    buffer.clear();
    loop {
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = std::str::from_utf8(&buffer[..end]).map_err(|_| broken())?;
            let status = head
                .get(9..12)
                .and_then(|s| s.parse().ok())
                .ok_or_else(broken)?;
            let length: usize = head
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse().ok())?
                })
                .unwrap_or(0);
            while buffer.len() < end + 4 + length {
                if stream.read_buf(buffer).await? == 0 {
                    return Err(broken());
                }
            }
            return Ok(status);
        }
        if stream.read_buf(buffer).await? == 0 {
            return Err(broken());
        }
    }
}

/// Raw lapin: one confirm channel, `connections` publishes in flight, the same message
/// (TeaL JSON of a signed webhook) the relay would publish.
async fn raw_run(
    url: &AmqpUrl,
    prefix: &str,
    args: &Args,
    duration: Duration,
    ids: Arc<AtomicU64>,
) -> Result<Run, Box<dyn std::error::Error>> {
    let (connection, channel) = Broker::new(url.clone()).open().await?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    let exchange = exchanges(prefix).name(TealExchange::PowensDomainWebhooks);
    let domain = Domain::parse(DOMAIN)?;
    let event = Event::parse("CONNECTION_SYNCED")?;
    let target = Target::parse(&format!("http://127.0.0.1{PATH}"), None)?;
    let secret = Secret::new(SECRET)?;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..args.connections {
        let (channel, exchange, ids) = (channel.clone(), exchange.clone(), ids.clone());
        let (domain, event, target, secret) = (
            domain.clone(),
            event.clone(),
            target.clone(),
            secret.clone(),
        );
        let size = args.body_bytes;
        tasks.push(tokio::spawn(async move {
            let (mut ok, mut failed, mut latencies) = (0u64, 0u64, Vec::new());
            while started.elapsed() < duration {
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
                latencies.push(sent.elapsed().as_micros() as u64);
                if confirmed { ok += 1 } else { failed += 1 }
            }
            (ok, failed, latencies)
        }));
    }
    let run = collect(tasks, started).await;
    broker::close(&connection, &channel, "done").await;
    Ok(run)
}

/// The run's exchanges: TeaL's flags under the run's prefix.
fn exchanges(prefix: &str) -> Exchanges {
    Exchanges {
        prefix: prefix.to_owned(),
        durable: false,
    }
}

/// Removes the run's exchange, so that runs leave nothing behind.
async fn delete_exchange(url: &AmqpUrl, prefix: &str) -> Result<(), Box<dyn std::error::Error>> {
    let (connection, channel) = Broker::new(url.clone()).open().await?;
    let exchange = exchanges(prefix).name(TealExchange::PowensDomainWebhooks);
    channel
        .exchange_delete(exchange.as_str().into(), Default::default())
        .await?;
    broker::close(&connection, &channel, "done").await;
    Ok(())
}

type TaskResult = (u64, u64, Vec<u64>);

async fn collect(tasks: Vec<tokio::task::JoinHandle<TaskResult>>, started: Instant) -> Run {
    let (mut ok, mut failed, mut latencies_us) = (0, 0, Vec::new());
    for task in tasks {
        let (o, f, l) = task.await.expect("load task");
        ok += o;
        failed += f;
        latencies_us.extend(l);
    }
    let seconds = started.elapsed().as_secs_f64();
    latencies_us.sort_unstable();
    Run {
        name: "",
        ok,
        failed,
        seconds,
        latencies_us,
        consumed: 0,
    }
}
