//! Load harness: drives the relay with concurrent connections of signed ~1 KiB webhooks
//! and compares it with raw lapin publishing of the same messages, in the same run.
//!
//! ```sh
//! cargo run --release --example load -- --connections 64 --seconds 10 --rounds 3
//! cargo build --release && cargo run --release --example load -- --separate-process --json
//! cargo run --release --example load -- --separate-process --rate 2000 --seconds 5
//! cargo run --release --example load -- --separate-process --at-half-max --compare log_format=text,json
//! cargo run --release --example load -- --separate-process --drain --seconds 10
//! cargo run --release --example load -- --separate-process --rate 1000 --bad-signatures 10000 --compare diagnosis_rate=0,10
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
//! By default each connection sends its next request as soon as the last one was
//! answered (closed loop). `--rate R` offers R requests per second instead, at fixed
//! intended times, to the relay and to raw lapin alike (open loop, `pace.rs`): latency
//! is then counted from each request's intended send time, so that requests queued
//! behind a slow answer count their wait. `--at-half-max` first measures the relay's
//! maximum (a short closed-loop run), then runs the open loop at half of it.
//!
//! `--relay-set KEY=VALUE` sets a key of the relay's configuration; `--compare
//! KEY=V1,V2` starts one relay per value and alternates them (raw, V1, raw, V2, raw, …),
//! reporting each against raw lapin and V2 against V1. Every relay has a `data_dir` of
//! its own, removed at the end.
//!
//! By default the relay and the raw publisher run in this process. With
//! `--separate-process` they run as processes of their own, as an operator runs them:
//! `powens-relay serve` (the release binary beside this example) and this example again
//! as the raw publisher; the harness then also measures, from `/proc`, the relay's CPU
//! time per webhook, the raw publisher's per message, RabbitMQ's per message (its pid is
//! found by name), the relay's peak RSS, and, in a last run, the relay's CPU per
//! `GET /healthz` (the HTTP floor).
//!
//! `--drain` measures the journal instead: raw lapin, then the relay under load with
//! its broker cut (through a switch of the harness's, `drain.rs`) for `--seconds`, the
//! drain once the broker is back, raw lapin through the same switch (the relay's
//! path, forwarding included), raw lapin again; the drain's rate against raw lapin's,
//! direct and through the switch. `--bad-signatures N` sends, beside each relay run, N webhooks signed with a
//! wrong secret: what refusals (and their diagnosis) cost.
//!
//! Prints a row per run, totals, and relay / raw: each relay run against the mean of the
//! raw runs on either side, median over the rounds; `--json` prints all of it as one
//! JSON document instead. Exits non-zero if any confirmed message was not consumed.
// Items are `pub` for the modules the examples share, not an API.
#![allow(unreachable_pub)]

mod broker_side;
#[path = "../common/mod.rs"]
mod common;
mod compare;
mod drain;
mod large;
mod pace;
mod print;
mod process;
mod raw;
mod relays;
mod report;
mod runs;
mod series;
mod settings;

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use chrono::Utc;
use clap::Parser;
use powens_webhooks::relay::AmqpUrl;

use broker_side::{delete_exchange, spawn_acking_consumer, spawn_counting_consumer};
use pace::Load;
use raw::raw_run;
use relays::RelayUnderTest;
use report::{RelayFigures, Report};
use series::Bench;
use settings::{Compare, Setting};

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
    /// Open loop: offer this many requests per second, at fixed intended times, over
    /// at most `--connections` connections (raw lapin: publishes in flight); latencies
    /// count from each request's intended send time.
    #[arg(long, value_name = "PER_SECOND", value_parser = positive_rate)]
    rate: Option<f64>,
    /// Measure the relay's maximum first (a closed-loop run of `--max-seconds`), then
    /// run the open loop at half of it (with `--compare`: half of the first relay's).
    #[arg(long, conflicts_with = "rate")]
    at_half_max: bool,
    /// Seconds of the closed-loop run that measures the maximum (`--at-half-max`).
    #[arg(long, default_value_t = 3)]
    max_seconds: u64,
    /// A key of the relay's configuration for every relay started (repeatable): set
    /// with `Overrides::with` in this process, as `POWENS_RELAY_<KEY>` for a process.
    #[arg(long, value_name = "KEY=VALUE")]
    relay_set: Vec<Setting>,
    /// One relay per value of a configuration key, measured in alternating runs (raw,
    /// V1, raw, V2, raw, …, `--rounds` runs of each), each against raw lapin and
    /// against V1.
    #[arg(long, value_name = "KEY=V1,V2")]
    compare: Option<Compare>,
    /// Beside each relay run, a flood of this many webhooks signed with a secret the
    /// relay does not know (over 8 more connections, as fast as it answers): what
    /// refused webhooks cost it, and what they do to the good ones' latency (with
    /// `--rate`, the good webhooks are the same in number whatever the flood costs;
    /// `--compare diagnosis_rate=0,10` sets the diagnosis of refused signatures against
    /// none).
    #[arg(long, default_value_t = 0, value_name = "COUNT")]
    bad_signatures: u64,
    /// Instead of the runs: a broker outage of `--seconds` under load (the relay's
    /// broker connection goes through a switch of the harness's that cuts it), during
    /// which the journal takes every webhook, then the drain once the broker is back,
    /// its rate against raw lapin's (raw runs before and after, and one through the same
    /// switch).
    #[arg(long, conflicts_with_all = ["large_bodies", "compare", "rate", "at_half_max"])]
    drain: bool,
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

fn positive_rate(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(rate) if rate.is_finite() && rate > 0.0 => Ok(rate),
        _ => Err(format!(
            "{text:?}: expected a number of requests per second above 0"
        )),
    }
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
        let load = Load::of(args.rate);
        let run = raw_run(&url, &prefix, &args, load, duration, ids).await?;
        // The publisher's CPU time, without the open loop's pacer thread: that is the
        // load generator's, as the closed loop's has none.
        let cpu = process::Cpu::of("self");
        let pacer = run.pacer_cpu.unwrap_or_default();
        let cpu = process::Cpu {
            total: cpu.total.saturating_sub(pacer.total),
            kernel: cpu.kernel.saturating_sub(pacer.kernel),
        };
        let micros = |d: Duration| u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        let report = process::ChildReport {
            ok: run.ok,
            failed: run.failed,
            seconds: run.seconds,
            latencies_us: run.latencies_us,
            cpu_us: micros(cpu.total),
            kernel_cpu_us: micros(cpu.kernel),
            schedule: run.schedule,
            lags_us: run.lags_us,
        };
        println!("{}", serde_json::to_string(&report)?);
        return Ok(());
    }
    let variants = settings::variants(&args.relay_set, args.compare.as_ref())?;

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
    let mut bench = Bench {
        args: &args,
        url: url.clone(),
        prefix: prefix.clone(),
        consumed,
        ids: Arc::new(AtomicU64::new(0)),
        rabbitmq: None,
        runs: 0,
        raw_url: None,
    };
    if args.drain {
        let data_dir = dir.join("data-drain");
        let result = drain::measure(&mut bench, &variants[0], &secret_path, &data_dir).await;
        delete_exchange(&url, &prefix).await?;
        let _ = std::fs::remove_dir_all(&dir);
        let drained = result?;
        match args.json {
            true => println!("{}", serde_json::to_string_pretty(&drained.to_json())?),
            false => drained.print(),
        }
        if drained.lost() > 0 || drained.refused > 0 {
            return Err(format!(
                "{} webhooks refused during the outage, {} accepted ones not consumed",
                drained.refused,
                drained.lost()
            )
            .into());
        }
        return Ok(());
    }
    let result = measure_all(bench, &variants, &secret_path, &dir).await;
    // Whatever happened: the run's exchange and every relay's data go.
    delete_exchange(&url, &prefix).await?;
    let _ = std::fs::remove_dir_all(&dir);
    let report = result?;
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

/// Starts a relay per variant, each with a `data_dir` of its own under `dir`, runs the
/// series (after the maxima, with `--at-half-max`) and the `/healthz` floors, stops the
/// relays.
async fn measure_all(
    mut bench: Bench<'_>,
    variants: &[settings::Variant],
    secret_path: &std::path::Path,
    dir: &std::path::Path,
) -> Result<Report, Box<dyn std::error::Error>> {
    let args = bench.args;
    let mut relays = Vec::new();
    for (index, variant) in variants.iter().enumerate() {
        let data_dir = dir.join(format!("data-{index}"));
        let relay =
            RelayUnderTest::start(args, &bench.prefix, secret_path, &data_dir, variant).await?;
        relays.push(relay);
    }
    if args.separate_process {
        bench.rabbitmq = process::rabbitmq_pid().map(|pid| pid.to_string());
    }
    let (maxima, load) = match args.at_half_max {
        true => bench.maxima(&relays).await?,
        false => (Vec::new(), Load::of(args.rate)),
    };
    let measured = bench.series(&relays, load).await?;
    let mut floors = bench.floors(&relays).await?.into_iter();
    let mut figures = Vec::new();
    for (relay, variant) in relays.into_iter().zip(variants) {
        let healthz = relay.pid().and_then(|_| floors.next());
        let peak_rss_kib = relay.peak_rss_kib();
        let name = relay.name.clone();
        relay.stop().await?;
        figures.push(RelayFigures {
            name,
            value: variant.value.clone(),
            healthz,
            peak_rss_kib,
        });
    }
    Ok(Report::new(args, load, maxima, measured, figures))
}
