//! A series of runs: raw lapin, a relay, raw lapin, the next relay, …, raw lapin, each
//! run consumed in full before the next, with the CPU time it cost.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use powens_webhooks::relay::AmqpUrl;

use crate::Args;
use crate::pace::Load;
use crate::process;
use crate::raw::raw_run;
use crate::relays::RelayUnderTest;
use crate::report::Measured;
use crate::runs::{flood, healthz_run, relay_run};

/// `--at-half-max`: the open loop's rate, as a fraction of the relay's maximum.
pub const FRACTION_OF_MAX: f64 = 0.5;

/// `--bad-signatures`: the connections the flood of bad signatures comes over.
pub const FLOOD_CONNECTIONS: usize = 8;

/// What a run drives.
#[derive(Clone, Copy)]
pub enum Target<'r> {
    /// Webhooks to a relay.
    Relay(&'r RelayUnderTest),
    /// Raw lapin publishing (a process of its own with `--separate-process`).
    Raw,
    /// `GET /healthz` on a relay: the HTTP floor.
    Healthz(&'r RelayUnderTest),
}

/// What every run of the invocation shares.
pub struct Bench<'a> {
    pub args: &'a Args,
    pub url: AmqpUrl,
    pub prefix: String,
    /// Messages the consumer has seen.
    pub consumed: Arc<AtomicU64>,
    /// The next `id_webhook_data`: unique within the invocation, so that no relay
    /// takes a webhook for a duplicate of an earlier one.
    pub ids: Arc<AtomicU64>,
    /// RabbitMQ's pid, when measuring processes.
    pub rabbitmq: Option<String>,
    /// Runs so far.
    pub runs: usize,
    /// The broker URL raw lapin publishes to instead of `--amqp-url` (`--drain`: the
    /// switch the relay's connection goes through, for a raw run on the same path).
    pub raw_url: Option<String>,
}

impl Bench<'_> {
    /// One run of `duration` against `target`, consumed in full (but `/healthz`), its
    /// line printed on standard error.
    pub async fn measure(
        &mut self,
        target: Target<'_>,
        load: Load,
        duration: Duration,
    ) -> Result<Measured, Box<dyn std::error::Error>> {
        self.runs += 1;
        let before = self.consumed.load(Ordering::Relaxed);
        let broker_before = self.rabbitmq.as_deref().map(process::cpu_time);
        let (mut run, cpu) = match target {
            Target::Relay(relay) | Target::Healthz(relay) => {
                let pid = relay.pid();
                let cpu_before = pid.as_deref().map(process::Cpu::of);
                let run = match target {
                    Target::Healthz(_) => healthz_run(relay.addr, self.args, duration).await,
                    _ => {
                        let run =
                            relay_run(relay.addr, self.args, load, duration, self.ids.clone());
                        match self.args.bad_signatures {
                            0 => run.await,
                            count => {
                                let bad = flood(relay.addr, count, FLOOD_CONNECTIONS);
                                let (mut run, flooded) = tokio::join!(run, bad);
                                run.flood = Some(flooded);
                                run
                            }
                        }
                    }
                };
                let cpu = pid
                    .as_deref()
                    .zip(cpu_before)
                    .map(|(pid, before)| process::Cpu::since(pid, before));
                (run, cpu)
            }
            Target::Raw if self.args.separate_process => {
                let first_id = u64::try_from(self.runs).unwrap_or(u64::MAX) * 1_000_000_000;
                let url = self.raw_url.as_deref().unwrap_or(&self.args.amqp_url);
                let (run, cpu) =
                    process::raw_child(self.args, url, &self.prefix, first_id, load)?.into_run();
                (run, Some(cpu))
            }
            Target::Raw => {
                let ids = self.ids.clone();
                let url = match &self.raw_url {
                    Some(url) => AmqpUrl::parse(url)?,
                    None => self.url.clone(),
                };
                let run = raw_run(&url, &self.prefix, self.args, load, duration, ids);
                (run.await?, None)
            }
        };
        run.name = match target {
            Target::Relay(relay) => relay.name.clone(),
            Target::Raw if self.raw_url.is_some() => "raw lapin, through the switch".to_owned(),
            Target::Raw => "raw lapin".to_owned(),
            Target::Healthz(relay) if relay.name == "relay" => "GET /healthz".to_owned(),
            Target::Healthz(relay) => format!("GET /healthz, {}", relay.name),
        };
        if let Target::Healthz(_) = target {
            // Nothing is published: nothing to consume.
            let entry = Measured::new(run, cpu, None);
            eprintln!("{}", entry.summary_line());
            return Ok(entry);
        }
        // Every confirmed message must reach the consumer.
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.consumed.load(Ordering::Relaxed) - before < run.ok && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        run.consumed = self.consumed.load(Ordering::Relaxed) - before;
        let broker_cpu = self
            .rabbitmq
            .as_deref()
            .zip(broker_before)
            .map(|(pid, before)| process::cpu_time(pid).saturating_sub(before));
        let entry = Measured::new(run, cpu, broker_cpu);
        eprintln!("{}", entry.summary_line());
        Ok(entry)
    }

    /// raw, relay 1, raw, relay 2, …, raw, `rounds` times over: each relay run sits
    /// between two raw runs, so that a slow spell of the shared machine hits both, and
    /// the relays take turns, so that it hits each alike.
    pub async fn series(
        &mut self,
        relays: &[RelayUnderTest],
        load: Load,
    ) -> Result<Vec<Measured>, Box<dyn std::error::Error>> {
        let duration = Duration::from_secs(self.args.seconds);
        let mut measured = vec![self.measure(Target::Raw, load, duration).await?];
        for _ in 0..self.args.rounds {
            for relay in relays {
                measured.push(self.measure(Target::Relay(relay), load, duration).await?);
                measured.push(self.measure(Target::Raw, load, duration).await?);
            }
        }
        Ok(measured)
    }

    /// `--at-half-max`: a short closed-loop run of each relay, its throughput the
    /// relay's maximum; the open loop then offers half of the first relay's, so that
    /// every relay is compared at the same offered load.
    pub async fn maxima(
        &mut self,
        relays: &[RelayUnderTest],
    ) -> Result<(Vec<Measured>, Load), Box<dyn std::error::Error>> {
        let duration = Duration::from_secs(self.args.max_seconds);
        let mut measured = Vec::new();
        for relay in relays {
            let mut entry = self
                .measure(Target::Relay(relay), Load::Closed, duration)
                .await?;
            entry.run.name = format!("{} (max)", entry.run.name);
            measured.push(entry);
        }
        let max = measured.first().map_or(0.0, |m| m.run.rate());
        let rate = (max * FRACTION_OF_MAX).round();
        if rate < 1.0 {
            return Err(format!("the relay's maximum ({max:.0}/s) is too low to run at").into());
        }
        eprintln!(
            "open loop at {rate:.0} webhooks/s: {:.0} % of {}'s maximum, {max:.0}/s",
            FRACTION_OF_MAX * 100.0,
            relays.first().map_or("the relay", |r| r.name.as_str())
        );
        Ok((measured, Load::Open { rate }))
    }

    /// `GET /healthz` on each relay process: the CPU an HTTP request costs it.
    pub async fn floors(
        &mut self,
        relays: &[RelayUnderTest],
    ) -> Result<Vec<Measured>, Box<dyn std::error::Error>> {
        let duration = Duration::from_secs(self.args.seconds);
        let mut measured = Vec::new();
        for relay in relays.iter().filter(|r| r.pid().is_some()) {
            let entry = self
                .measure(Target::Healthz(relay), Load::Closed, duration)
                .await?;
            measured.push(entry);
        }
        Ok(measured)
    }
}
