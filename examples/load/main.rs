//! Load harness: drives the relay with concurrent connections of signed ~1 KiB webhooks
//! and compares it with raw lapin publishing of the same messages, in the same run.
//!
//! ```sh
//! cargo run --release --example load -- --connections 64 --seconds 10 --rounds 3
//! cargo build --release && cargo run --release --example load -- --separate-process --json
//! ```
//!
//! Needs RabbitMQ on 127.0.0.1:5672 (guest/guest). Runs, in turn: raw lapin (confirms,
//! N in flight), the relay (N keep-alive HTTP/1.1 connections), raw lapin again, and so
//! on. A consumer bound to the exchange counts every message, and each run must be
//! consumed in full (consumed = confirmed / answered 2xx) before the next starts. By
//! default it only counts deliveries (no acknowledgements, so that the measuring device
//! does not load the broker); `--acking-consumer` uses the library's `TealConsumer`
//! instead, which acknowledges each message.
//!
//! By default the relay and the raw publisher run in this process. With
//! `--separate-process` they run as processes of their own, as an operator runs them:
//! `powens-relay serve` (the release binary beside this example) and this example again
//! as the raw publisher; the harness then also measures, from `/proc`, the relay's CPU
//! time per webhook, the raw publisher's per message, RabbitMQ's per message (its pid is
//! found by name), the relay's peak RSS, and, in a last run, the relay's CPU per
//! `GET /healthz` (the HTTP floor).
//!
//! Prints a row per run, totals, and relay / raw: each relay run against the mean of the
//! raw runs on either side, median over the rounds; `--json` prints all of it as one
//! JSON document instead. Exits non-zero if any confirmed message was not consumed.
// Items are `pub` for the modules the examples share, not an API.
#![allow(unreachable_pub)]

mod broker_side;
#[path = "../common/mod.rs"]
mod common;
mod large;
mod process;
mod report;
mod runs;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::Utc;
use clap::Parser;
use powens_webhooks::relay::Relay;
use powens_webhooks::relay::{AmqpUrl, Overrides, RelayConfig};

use broker_side::{delete_exchange, spawn_acking_consumer, spawn_counting_consumer};
use report::{Measured, Report};
use runs::{healthz_run, raw_run, relay_run};

pub(crate) const DOMAIN: &str = "load.biapi.pro";
pub(crate) const PATH: &str = "/powens-webhook/load.biapi.pro/CONNECTION_SYNCED";
pub(crate) const SECRET: &str = "load-test-secret";

#[derive(Debug, Parser)]
pub(crate) struct Args {
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
    /// Run the relay (`powens-relay serve`, the release binary) and the raw publisher as
    /// processes of their own, and measure their CPU time and memory.
    #[arg(long)]
    separate_process: bool,
    /// `RUST_LOG` of the relay process.
    #[arg(long, default_value = "info")]
    relay_log: String,
    /// Tokio worker threads of the relay process (`TOKIO_WORKER_THREADS`; default: one
    /// per core).
    #[arg(long)]
    relay_workers: Option<usize>,
    /// Print the results as one JSON document.
    #[arg(long)]
    json: bool,
    /// Instead of the runs: the relay's peak RSS relaying one 32 MiB webhook, then 64
    /// concurrent 1 MiB webhooks (each in a relay process of its own).
    #[arg(long)]
    large_bodies: bool,
    /// RabbitMQ URL.
    #[arg(long, default_value = "amqp://guest:guest@127.0.0.1:5672/%2f")]
    amqp_url: String,
    /// Internal: `raw` runs one raw publishing run and prints its report.
    #[arg(long, hide = true)]
    role: Option<String>,
    /// Internal: the exchange prefix of the raw publisher's run.
    #[arg(long, hide = true)]
    prefix: Option<String>,
    /// Internal: the first `id_webhook_data` of the raw publisher's run.
    #[arg(long, hide = true, default_value_t = 0)]
    first_id: u64,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let url = AmqpUrl::parse(&args.amqp_url)?;
    let duration = Duration::from_secs(args.seconds);
    if args.role.as_deref() == Some("raw") {
        // The raw publisher as a process of its own: one run, its report on stdout.
        let prefix = args.prefix.clone().ok_or("--prefix is required")?;
        let ids = Arc::new(AtomicU64::new(args.first_id));
        let run = raw_run(&url, &prefix, &args, duration, ids).await?;
        let cpu = process::Cpu::of("self");
        let micros = |d: Duration| u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        let report = process::ChildReport {
            ok: run.ok,
            failed: run.failed,
            seconds: run.seconds,
            latencies_us: run.latencies_us,
            cpu_us: micros(cpu.total),
            kernel_cpu_us: micros(cpu.kernel),
        };
        println!("{}", serde_json::to_string(&report)?);
        return Ok(());
    }

    let prefix = format!("load_{}_{}_", std::process::id(), Utc::now().timestamp());
    let consumed = Arc::new(AtomicU64::new(0));
    if args.acking_consumer {
        spawn_acking_consumer(&url, &prefix, consumed.clone()).await?;
    } else {
        spawn_counting_consumer(&url, &prefix, consumed.clone()).await?;
    }

    let dir = std::env::temp_dir().join(format!("{prefix}dir"));
    std::fs::create_dir_all(&dir)?;
    let secret_path = dir.join("secret");
    std::fs::write(&secret_path, SECRET)?;
    let data_dir = dir.join("data");
    if args.large_bodies {
        let result = large::large_bodies(&args, &prefix, &dir).await;
        delete_exchange(&url, &prefix).await?;
        let _ = std::fs::remove_dir_all(&dir);
        let result = result?;
        if args.json {
            println!("{}", serde_json::to_string_pretty(&result)?);
        }
        return Ok(());
    }
    let (mut child, addr, stop_relay) = if args.separate_process {
        let (child, addr) = process::spawn_relay(&args, &prefix, &secret_path, &data_dir)?;
        (Some(child), addr, None)
    } else {
        let overrides = Overrides::new()
            .with("listen", "127.0.0.1:0")
            .with("amqp_url", args.amqp_url.as_str())
            .with("exchange_prefix", prefix.as_str())
            .with("data_dir", data_dir.display().to_string())
            .with_domain(format!("{DOMAIN}=file:{}", secret_path.display()));
        let config = RelayConfig::load(&overrides)?;
        let relay = Relay::start(&config).await?;
        let addr = relay.local_addr()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(relay.run(async {
            let _ = stopped.await;
        }));
        (None, addr, Some((stop, task)))
    };
    let relay_pid = child.as_ref().map(|c| c.id().to_string());
    let rabbitmq = if args.separate_process {
        process::rabbitmq_pid().map(|pid| pid.to_string())
    } else {
        None
    };

    let ids = Arc::new(AtomicU64::new(0));
    let mut measured = Vec::new();
    // raw, relay, raw, relay, ..., raw: each relay run sits between two raw runs, so a
    // slow spell of the shared machine hits both.
    let order: Vec<&'static str> = (0..args.rounds)
        .flat_map(|_| ["raw lapin", "relay"])
        .chain(["raw lapin"])
        .collect();
    for (index, name) in order.into_iter().enumerate() {
        let before = consumed.load(Ordering::Relaxed);
        let broker_before = rabbitmq.as_deref().map(process::cpu_time);
        let (mut run, cpu) = match (name, &relay_pid) {
            ("relay", pid) => {
                let cpu_before = pid.as_deref().map(process::Cpu::of);
                let run = relay_run(addr, &args, duration, ids.clone()).await;
                let cpu = pid
                    .as_deref()
                    .zip(cpu_before)
                    .map(|(pid, before)| process::Cpu::since(pid, before));
                (run, cpu)
            }
            (_, Some(_)) => {
                let first_id = u64::try_from(index + 1).unwrap_or(u64::MAX) * 1_000_000_000;
                let (run, cpu) = process::raw_child(&args, &prefix, first_id)?.into_run();
                (run, Some(cpu))
            }
            (_, None) => (
                raw_run(&url, &prefix, &args, duration, ids.clone()).await?,
                None,
            ),
        };
        // Every confirmed message must reach the consumer.
        let deadline = Instant::now() + Duration::from_secs(30);
        while consumed.load(Ordering::Relaxed) - before < run.ok && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        run.consumed = consumed.load(Ordering::Relaxed) - before;
        run.name = name;
        let broker_cpu = rabbitmq
            .as_deref()
            .zip(broker_before)
            .map(|(pid, before)| process::cpu_time(pid).saturating_sub(before));
        let entry = Measured::new(run, cpu, broker_cpu);
        eprintln!("{}", entry.summary_line());
        measured.push(entry);
    }

    // The HTTP floor: the relay's own CPU per `GET /healthz`.
    let healthz = match &relay_pid {
        Some(pid) => {
            let before = process::Cpu::of(pid);
            let mut run = healthz_run(addr, &args, duration).await;
            run.name = "GET /healthz";
            let cpu = process::Cpu::since(pid, before);
            let entry = Measured::new(run, Some(cpu), None);
            eprintln!("{}", entry.summary_line());
            Some(entry)
        }
        None => None,
    };
    let peak_rss_kib = child.as_ref().map(|c| process::peak_rss_kib(c.id()));

    if let Some(child) = child.as_mut() {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let status = child.wait()?;
        if !status.success() {
            return Err(format!("the relay exited with {status}").into());
        }
    }
    if let Some((stop, task)) = stop_relay {
        let _ = stop.send(());
        task.await?;
    }
    delete_exchange(&url, &prefix).await?;
    let _ = std::fs::remove_dir_all(&dir);

    let report = Report::new(&args, measured, healthz, peak_rss_kib);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report.to_json())?);
    } else {
        report.print();
    }
    if report.lost() > 0 {
        return Err(format!("{} confirmed messages were not consumed", report.lost()).into());
    }
    Ok(())
}
