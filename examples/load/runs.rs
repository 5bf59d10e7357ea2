//! The runs over HTTP (webhooks to the relay, `GET /healthz`), each timed, and what a
//! run measured.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::Utc;
use powens_webhooks::relay::testing::signature_date;
use powens_webhooks::{Secret, SignedPrefix, sign};

use crate::pace::{BEHIND, Load, Pace, Schedule, Turn};
use crate::process::Cpu;
use crate::{Args, PATH, SECRET};

/// What one run measured.
#[derive(Default)]
pub struct Run {
    pub name: String,
    pub ok: u64,
    pub failed: u64,
    /// From the start (the first intended time in the open loop) to the last answer.
    pub seconds: f64,
    /// From when each request was sent, or (open loop) from its intended time; sorted.
    pub latencies_us: Vec<u64>,
    /// Open loop: how late each request went (the pacer's and the runtime's wake-ups,
    /// then the wait for a free connection); sorted.
    pub lags_us: Vec<u64>,
    pub consumed: u64,
    /// The open loop's schedule.
    pub schedule: Option<Schedule>,
    /// The open loop's pacer thread's CPU time (in the load generator's process).
    pub pacer_cpu: Option<Cpu>,
    /// `--bad-signatures`: the flood sent beside the run, as (refused with 401,
    /// answered otherwise or not at all).
    pub flood: Option<(u64, u64)>,
}

impl Run {
    pub fn rate(&self) -> f64 {
        self.ok as f64 / self.seconds
    }

    pub fn percentile_ms(&self, p: f64) -> f64 {
        quantile_ms(&self.latencies_us, p)
    }

    /// Open loop: the quantile `p` of how late requests went.
    pub fn lag_ms(&self, p: f64) -> f64 {
        quantile_ms(&self.lags_us, p)
    }
}

/// The quantile `p` of `sorted` (µs), in ms.
fn quantile_ms(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[rank] as f64 / 1000.0
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

/// `connections` keep-alive HTTP/1.1 connections, each posting signed webhooks in turn
/// (closed loop), or taking the next one due (open loop).
///
/// The client is a minimal HTTP/1.1 writer and reader (as wrk is), so that the load
/// generator, which shares the machine's cores, costs the relay as little as possible.
pub async fn relay_run(
    addr: SocketAddr,
    args: &Args,
    load: Load,
    duration: Duration,
    ids: Arc<AtomicU64>,
) -> Run {
    let secret = Secret::new(SECRET).expect("non-empty secret");
    let size = args.body_bytes;
    let request = move || {
        let id = ids.fetch_add(1, Ordering::Relaxed);
        raw_request(addr, &body(id, size), &secret)
    };
    http_run(addr, args.connections, load, duration, request, |status| {
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
        Load::Closed,
        duration,
        move || request.clone(),
        |status| status == 200,
    )
    .await;
    // Nothing is published: nothing to consume.
    run.consumed = run.ok;
    run
}

/// `connections` keep-alive connections, each sending what `request` makes for
/// `duration`, paced by `load`; a response is a success when `ok(status)`.
async fn http_run(
    addr: SocketAddr,
    connections: usize,
    load: Load,
    duration: Duration,
    request: impl Fn() -> Vec<u8> + Clone + Send + 'static,
    ok: fn(u16) -> bool,
) -> Run {
    let pace = Pace::start(load, duration);
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (request, pace) = (request.clone(), pace.clone());
        tasks.push(tokio::spawn(async move {
            let mut tally = Tally::default();
            let mut stream = tokio::net::TcpStream::connect(addr)
                .await
                .expect("relay is listening");
            stream.set_nodelay(true).expect("nodelay");
            let mut buffer = Vec::with_capacity(4096);
            while let Some(turn) = pace.next().await {
                let request = request();
                let sent = Instant::now();
                let status = match exchange(&mut stream, &request, &mut buffer).await {
                    Ok(status) => status,
                    Err(_) => {
                        tally.failed += 1;
                        break;
                    }
                };
                tally.record(turn, sent, ok(status));
            }
            tally
        }));
    }
    collect(tasks, &pace).await
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

/// What one connection (or publishing task) counted.
#[derive(Default)]
pub struct Tally {
    pub ok: u64,
    pub failed: u64,
    latencies_us: Vec<u64>,
    lags_us: Vec<u64>,
    behind: u64,
}

impl Tally {
    /// A request of `turn` sent at `sent` has just been answered.
    pub fn record(&mut self, turn: Turn, sent: Instant, success: bool) {
        self.latencies_us
            .push(turn.start(sent).elapsed().as_micros() as u64);
        if let Some(lag) = turn.lag(sent) {
            self.lags_us.push(lag.as_micros() as u64);
            self.behind += u64::from(lag > BEHIND);
        }
        if success {
            self.ok += 1
        } else {
            self.failed += 1
        }
    }
}

/// The tasks' tallies as one run.
pub async fn collect(tasks: Vec<tokio::task::JoinHandle<Tally>>, pace: &Pace) -> Run {
    let mut all = Tally::default();
    for task in tasks {
        let tally = task.await.expect("load task");
        all.ok += tally.ok;
        all.failed += tally.failed;
        all.behind += tally.behind;
        all.latencies_us.extend(tally.latencies_us);
        all.lags_us.extend(tally.lags_us);
    }
    let seconds = pace.started().elapsed().as_secs_f64();
    let pacer_cpu = pace.finish();
    all.latencies_us.sort_unstable();
    all.lags_us.sort_unstable();
    Run {
        ok: all.ok,
        failed: all.failed,
        seconds,
        latencies_us: all.latencies_us,
        lags_us: all.lags_us,
        schedule: pace.schedule(all.behind),
        pacer_cpu,
        ..Run::default()
    }
}

/// `--bad-signatures`: `count` webhooks signed with a secret the relay does not know,
/// over `connections` keep-alive connections, each sending its next as soon as the last
/// was answered. Returns how many were refused with 401, and how many got anything else.
pub async fn flood(addr: SocketAddr, count: u64, connections: usize) -> (u64, u64) {
    let left = Arc::new(AtomicU64::new(count));
    let wrong = Secret::new("not-the-relay-secret").expect("non-empty secret");
    let mut tasks = Vec::new();
    for connection in 0..connections {
        let (left, wrong) = (left.clone(), wrong.clone());
        tasks.push(tokio::spawn(async move {
            let (mut refused, mut other) = (0u64, 0u64);
            let Ok(mut stream) = tokio::net::TcpStream::connect(addr).await else {
                return (0, 0);
            };
            stream.set_nodelay(true).expect("nodelay");
            let mut buffer = Vec::with_capacity(4096);
            let mut id = u64::try_from(connection).unwrap_or(0) << 40;
            while left
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                .is_ok()
            {
                id += 1;
                let request = raw_request(addr, &body(id, 1024), &wrong);
                match exchange(&mut stream, &request, &mut buffer).await {
                    Ok(401) => refused += 1,
                    Ok(_) => other += 1,
                    Err(_) => break,
                }
            }
            (refused, other)
        }));
    }
    let mut all = (0, 0);
    for task in tasks {
        let (refused, other) = task.await.expect("flood task");
        all = (all.0 + refused, all.1 + other);
    }
    // Requests the broken connections never sent count as "anything else".
    let sent = all.0 + all.1;
    (all.0, all.1 + count.saturating_sub(sent))
}
