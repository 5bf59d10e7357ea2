//! The runs: the relay over HTTP, and raw lapin publishing, each timed.

use std::net::SocketAddr;
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
    Domain, Event, IsoDateTime, PowensHeaders, Secret, SignedPrefix, TealExchange, TealMessage,
    WebhookRequest, sign,
};

use crate::{Args, DOMAIN, PATH, SECRET};

/// What one run measured.
pub struct Run {
    pub name: &'static str,
    pub ok: u64,
    pub failed: u64,
    pub seconds: f64,
    pub latencies_us: Vec<u64>,
    pub consumed: u64,
}

impl Run {
    pub fn rate(&self) -> f64 {
        self.ok as f64 / self.seconds
    }

    pub fn percentile_ms(&self, p: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return f64::NAN;
        }
        let rank = ((self.latencies_us.len() - 1) as f64 * p).round() as usize;
        self.latencies_us[rank] as f64 / 1000.0
    }
}

/// A body of about `size` bytes carrying `id` as `id_webhook_data`.
pub fn body(id: u64, size: usize) -> Vec<u8> {
    let head = format!(
        "{{\"id_webhook_data\": {id}, \"connection\": {{\"id\": 42, \"state\": null, \"padding\": \""
    );
    let fill = size.saturating_sub(head.len() + 3);
    let mut body = head.into_bytes();
    body.extend(std::iter::repeat_n(b'x', fill));
    body.extend_from_slice(b"\"}}");
    body
}

/// `connections` keep-alive HTTP/1.1 connections, each posting signed webhooks in turn.
///
/// The client is a minimal HTTP/1.1 writer and reader (as wrk is), so that the load
/// generator, which shares the machine's cores, costs the relay as little as possible.
pub async fn relay_run(
    addr: SocketAddr,
    args: &Args,
    duration: Duration,
    ids: Arc<AtomicU64>,
) -> Run {
    let secret = Secret::new(SECRET).expect("non-empty secret");
    let size = args.body_bytes;
    let request = move || {
        let id = ids.fetch_add(1, Ordering::Relaxed);
        raw_request(addr, &body(id, size), &secret)
    };
    http_run(addr, args.connections, duration, request, |status| {
        (200..300).contains(&status)
    })
    .await
}

/// `connections` keep-alive connections sending `GET /healthz` in turn: the HTTP floor.
pub async fn healthz_run(addr: SocketAddr, args: &Args, duration: Duration) -> Run {
    let request = format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\n\r\n").into_bytes();
    let mut run = http_run(
        addr,
        args.connections,
        duration,
        move || request.clone(),
        |status| status == 200,
    )
    .await;
    // Nothing is published: nothing to consume.
    run.consumed = run.ok;
    run
}

/// `connections` keep-alive connections, each sending what `request` makes in turn for
/// `duration`; a response is a success when `ok(status)`.
async fn http_run(
    addr: SocketAddr,
    connections: usize,
    duration: Duration,
    request: impl Fn() -> Vec<u8> + Clone + Send + 'static,
    ok: fn(u16) -> bool,
) -> Run {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let request = request.clone();
        tasks.push(tokio::spawn(async move {
            let (mut succeeded, mut failed, mut latencies) = (0u64, 0u64, Vec::new());
            let mut stream = tokio::net::TcpStream::connect(addr)
                .await
                .expect("relay is listening");
            stream.set_nodelay(true).expect("nodelay");
            let mut buffer = Vec::with_capacity(4096);
            while started.elapsed() < duration {
                let request = request();
                let sent = Instant::now();
                let status = match exchange(&mut stream, &request, &mut buffer).await {
                    Ok(status) => status,
                    Err(_) => {
                        failed += 1;
                        break;
                    }
                };
                latencies.push(sent.elapsed().as_micros() as u64);
                if ok(status) {
                    succeeded += 1
                } else {
                    failed += 1
                }
            }
            (succeeded, failed, latencies)
        }));
    }
    collect(tasks, started).await
}

/// A signed `POST` as bytes on the wire.
pub fn raw_request(addr: SocketAddr, body: &[u8], secret: &Secret) -> Vec<u8> {
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
pub async fn exchange(
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
pub async fn raw_run(
    url: &AmqpUrl,
    prefix: &str,
    args: &Args,
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
    close(&connection, &channel).await;
    Ok(run)
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
