//! `--drain`: a broker outage under load, taken by the journal, then the drain once the
//! broker is back, its rate against raw lapin's in the same run.
//!
//! The relay reaches RabbitMQ through a switch of the harness's own (a TCP forwarder,
//! `TCP_NODELAY` both ways): cut, it closes every connection through it and refuses new
//! ones, as a broker going down does; healed, it forwards again.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::pace::Load;
use crate::relays::RelayUnderTest;
use crate::report::show;
use crate::runs::relay_run;
use crate::series::{Bench, Target};
use crate::settings::{Setting, Variant};

/// How long the drain may take before the harness gives up on it.
const DRAIN_LIMIT: Duration = Duration::from_secs(300);

/// The harness's switch between the relay and RabbitMQ.
struct Switch {
    addr: SocketAddr,
    up: Arc<AtomicBool>,
    links: Arc<Mutex<Vec<JoinHandle<()>>>>,
    acceptor: JoinHandle<()>,
}

impl Switch {
    async fn start(broker: SocketAddr) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let up = Arc::new(AtomicBool::new(true));
        let links: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let (is_up, kept) = (up.clone(), links.clone());
        let acceptor = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !is_up.load(Ordering::SeqCst) {
                    continue; // dropped: the connection is closed at once
                }
                let link = tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(broker).await else {
                        return;
                    };
                    let _ = inbound.set_nodelay(true);
                    let _ = outbound.set_nodelay(true);
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                });
                lock(&kept).push(link);
            }
        });
        Ok(Self {
            addr,
            up,
            links,
            acceptor,
        })
    }

    /// Closes every connection through the switch, and refuses new ones.
    fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for link in lock(&self.links).drain(..) {
            link.abort();
        }
    }

    fn heal(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

impl Drop for Switch {
    fn drop(&mut self) {
        self.cut();
        self.acceptor.abort();
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// What `--drain` measured.
pub struct Drained {
    /// Webhooks answered 2xx during the outage (each in the journal), and the others.
    pub accepted: u64,
    pub refused: u64,
    /// Webhooks per second the relay took into its journal during the outage.
    pub journal_rate: f64,
    /// From the heal to the first message consumed (the relay's reconnection).
    pub reconnect: Duration,
    /// From the first message consumed to the last of the outage's.
    pub drain: Duration,
    pub consumed: u64,
    /// Raw lapin before and after.
    pub raw_rates: [f64; 2],
    /// Raw lapin through the switch (healed), as the relay's connection goes.
    pub switched_rate: f64,
    /// The relay process's CPU time over the drain, per message.
    pub drain_cpu_us: Option<f64>,
}

impl Drained {
    /// Messages per second of the drain proper (first to last consumed).
    pub fn drain_rate(&self) -> f64 {
        self.consumed.saturating_sub(1) as f64 / self.drain.as_secs_f64()
    }

    pub fn raw_rate(&self) -> f64 {
        (self.raw_rates[0] + self.raw_rates[1]) / 2.0
    }

    pub fn lost(&self) -> u64 {
        self.accepted.saturating_sub(self.consumed)
    }

    pub fn print(&self) {
        println!(
            "outage: {} webhooks answered 2xx ({:.0}/s, into the journal), {} refused",
            self.accepted, self.journal_rate, self.refused
        );
        println!(
            "drain: reconnected {:.2} s after the broker came back, then {} messages in {:.2} s: {:.0}/s (relay CPU {} µs/msg)",
            self.reconnect.as_secs_f64(),
            self.consumed,
            self.drain.as_secs_f64(),
            self.drain_rate(),
            show(self.drain_cpu_us)
        );
        println!(
            "raw lapin: {:.0}/s and {:.0}/s; drain / raw = {:.3}; lost: {}",
            self.raw_rates[0],
            self.raw_rates[1],
            self.drain_rate() / self.raw_rate(),
            self.lost()
        );
        println!(
            "raw lapin through the same switch: {:.0}/s; drain / that = {:.3}",
            self.switched_rate,
            self.drain_rate() / self.switched_rate
        );
    }

    pub fn to_json(&self) -> Value {
        json!({
            "accepted": self.accepted,
            "refused": self.refused,
            "journal_msgs_per_s": self.journal_rate,
            "reconnect_s": self.reconnect.as_secs_f64(),
            "drain_s": self.drain.as_secs_f64(),
            "consumed": self.consumed,
            "lost": self.lost(),
            "drain_msgs_per_s": self.drain_rate(),
            "raw_msgs_per_s": self.raw_rates,
            "drain_over_raw": self.drain_rate() / self.raw_rate(),
            "raw_through_switch_msgs_per_s": self.switched_rate,
            "drain_over_raw_through_switch": self.drain_rate() / self.switched_rate,
            "drain_cpu_us_per_msg": self.drain_cpu_us,
        })
    }
}

/// The `host:port` of an `amqp://user:password@host:port/vhost` URL, as an address.
fn broker_addr(url: &str) -> Option<SocketAddr> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split('/').next()?;
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    host_port.parse().ok()
}

/// raw lapin; the relay under load with its broker cut for `--seconds`; the drain
/// once healed, until every accepted webhook is consumed; raw lapin through the
/// switch, then directly again.
pub async fn measure(
    bench: &mut Bench<'_>,
    variant: &Variant,
    secret_path: &Path,
    data_dir: &Path,
) -> Result<Drained, Box<dyn std::error::Error>> {
    let args = bench.args;
    let duration = Duration::from_secs(args.seconds);
    let first = bench.measure(Target::Raw, Load::Closed, duration).await?;

    let broker = broker_addr(&args.amqp_url)
        .ok_or("--drain: the broker's URL has no 127.0.0.1:PORT-like host:port to forward to")?;
    let switch = Switch::start(broker).await?;
    let switched_url = args
        .amqp_url
        .replacen(&broker.to_string(), &switch.addr.to_string(), 1);
    let mut variant = variant.clone();
    variant.settings.push(Setting {
        key: "amqp_url".to_owned(),
        value: switched_url.clone(),
    });
    let relay = RelayUnderTest::start(args, &bench.prefix, secret_path, data_dir, &variant).await?;

    switch.cut();
    let before = bench.consumed.load(Ordering::Relaxed);
    eprintln!(
        "broker cut: {} s of webhooks into the journal",
        args.seconds
    );
    let outage = relay_run(relay.addr, args, Load::Closed, duration, bench.ids.clone()).await;

    let cpu_before = relay.pid().as_deref().map(crate::process::Cpu::of);
    switch.heal();
    let healed = Instant::now();
    let mut first_seen = None;
    let mut count = 0;
    while count < outage.ok && healed.elapsed() < DRAIN_LIMIT {
        count = bench.consumed.load(Ordering::Relaxed) - before;
        if count > 0 && first_seen.is_none() {
            first_seen = Some(Instant::now());
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let last_seen = Instant::now();
    let drain_cpu_us = relay
        .pid()
        .zip(cpu_before)
        .map(|(pid, before)| crate::process::Cpu::since(&pid, before).total)
        .map(|cpu| cpu.as_secs_f64() * 1e6 / count.max(1) as f64);
    relay.stop().await?;
    // Raw lapin on the relay's path: the switch's forwarding costs CPU on the same
    // cores, which a drain through it pays and a direct raw run does not.
    bench.raw_url = Some(switched_url);
    let switched = bench.measure(Target::Raw, Load::Closed, duration).await;
    bench.raw_url = None;
    let switched = switched?;
    drop(switch);

    let second = bench.measure(Target::Raw, Load::Closed, duration).await?;
    let first_seen = first_seen.unwrap_or(last_seen);
    Ok(Drained {
        accepted: outage.ok,
        refused: outage.failed,
        journal_rate: outage.rate(),
        reconnect: first_seen - healed,
        drain: last_seen - first_seen,
        consumed: count,
        raw_rates: [first.run.rate(), second.run.rate()],
        switched_rate: switched.run.rate(),
        drain_cpu_us,
    })
}
