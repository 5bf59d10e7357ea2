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

mod broker_side;
mod runs;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::Utc;
use clap::Parser;
use powens_webhooks::relay::Relay;
use powens_webhooks::relay::config::{AmqpUrl, Overrides, RelayConfig};

use broker_side::{delete_exchange, spawn_acking_consumer, spawn_counting_consumer};
use runs::{Run, raw_run, relay_run};

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
    /// RabbitMQ URL.
    #[arg(long, default_value = "amqp://guest:guest@127.0.0.1:5672/%2f")]
    amqp_url: String,
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
