//! What the harness prints: a table per run and the totals, or one JSON document.

use std::time::Duration;

use serde_json::{Value, json};

use crate::Args;
use crate::process::Cpu;
use crate::runs::Run;

/// A run and the CPU time it cost: the process measured (relay, raw publisher) and
/// RabbitMQ.
pub struct Measured {
    pub run: Run,
    pub cpu: Option<Cpu>,
    pub broker_cpu: Option<Duration>,
}

/// The quantiles of the latency distribution in the JSON report.
const QUANTILES: [f64; 16] = [
    0.0, 0.01, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 0.999, 1.0,
];

fn per_message(cpu: Option<Duration>, count: u64) -> Option<f64> {
    cpu.filter(|_| count > 0)
        .map(|cpu| cpu.as_secs_f64() * 1e6 / count as f64)
}

fn show(value: Option<f64>) -> String {
    value.map_or_else(|| "–".to_owned(), |v| format!("{v:.1}"))
}

impl Measured {
    pub fn new(run: Run, cpu: Option<Cpu>, broker_cpu: Option<Duration>) -> Self {
        Self {
            run,
            cpu,
            broker_cpu,
        }
    }

    /// CPU µs of the process measured per 2xx / confirmed message.
    pub fn cpu_us(&self) -> Option<f64> {
        per_message(self.cpu.map(|cpu| cpu.total), self.run.ok)
    }

    /// The kernel's part of [`Self::cpu_us`].
    pub fn kernel_cpu_us(&self) -> Option<f64> {
        per_message(self.cpu.map(|cpu| cpu.kernel), self.run.ok)
    }

    /// RabbitMQ's CPU µs per message.
    pub fn broker_cpu_us(&self) -> Option<f64> {
        per_message(self.broker_cpu, self.run.ok)
    }

    pub fn summary_line(&self) -> String {
        format!(
            "{}: {:.0}/s, {} ok, {} failed, {} consumed, CPU {} µs/msg (kernel {}), broker {} µs/msg",
            self.run.name,
            self.run.rate(),
            self.run.ok,
            self.run.failed,
            self.run.consumed,
            show(self.cpu_us()),
            show(self.kernel_cpu_us()),
            show(self.broker_cpu_us())
        )
    }

    fn to_json(&self) -> Value {
        let run = &self.run;
        json!({
            "name": run.name,
            "msgs_per_s": run.rate(),
            "p50_ms": run.percentile_ms(0.5),
            "p99_ms": run.percentile_ms(0.99),
            "p999_ms": run.percentile_ms(0.999),
            // The latency distribution, for charts: [quantile, ms] pairs.
            "latency_quantiles_ms": QUANTILES
                .iter()
                .map(|q| [*q, run.percentile_ms(*q)])
                .collect::<Vec<_>>(),
            "ok": run.ok,
            "failed": run.failed,
            "consumed": run.consumed,
            "lost": run.ok.saturating_sub(run.consumed),
            "cpu_us_per_msg": self.cpu_us(),
            "kernel_cpu_us_per_msg": self.kernel_cpu_us(),
            "broker_cpu_us_per_msg": self.broker_cpu_us(),
        })
    }
}

/// Every run, the `/healthz` floor and the relay's peak RSS.
pub struct Report {
    connections: usize,
    seconds: u64,
    body_bytes: usize,
    rounds: usize,
    separate_process: bool,
    runs: Vec<Measured>,
    healthz: Option<Measured>,
    peak_rss_kib: Option<u64>,
}

impl Report {
    pub fn new(
        args: &Args,
        runs: Vec<Measured>,
        healthz: Option<Measured>,
        peak_rss_kib: Option<u64>,
    ) -> Self {
        Self {
            connections: args.connections,
            seconds: args.seconds,
            body_bytes: args.body_bytes,
            rounds: args.rounds,
            separate_process: args.separate_process,
            runs,
            healthz,
            peak_rss_kib,
        }
    }

    pub fn lost(&self) -> u64 {
        self.runs
            .iter()
            .map(|m| m.run.ok.saturating_sub(m.run.consumed))
            .sum()
    }

    /// Each relay run against the mean of the raw runs on either side of it, sorted.
    fn ratios(&self) -> Vec<f64> {
        let mut ratios: Vec<f64> = self
            .runs
            .windows(3)
            .step_by(2)
            .map(|w| w[1].run.rate() / ((w[0].run.rate() + w[2].run.rate()) / 2.0))
            .collect();
        ratios.sort_by(f64::total_cmp);
        ratios
    }

    /// The runs named `name` merged, with their CPU times summed.
    fn all(&self, name: &str) -> Measured {
        let mut merged = Run {
            name: "",
            ok: 0,
            failed: 0,
            seconds: 0.0,
            latencies_us: Vec::new(),
            consumed: 0,
        };
        let (mut cpu, mut broker) = (Some(Cpu::default()), Some(Duration::ZERO));
        for m in self.runs.iter().filter(|m| m.run.name == name) {
            merged.ok += m.run.ok;
            merged.failed += m.run.failed;
            merged.seconds += m.run.seconds;
            merged.consumed += m.run.consumed;
            merged.latencies_us.extend(&m.run.latencies_us);
            cpu = cpu.zip(m.cpu).map(|(a, b)| a + b);
            broker = broker.zip(m.broker_cpu).map(|(a, b)| a + b);
        }
        merged.latencies_us.sort_unstable();
        Measured::new(merged, cpu, broker)
    }

    pub fn to_json(&self) -> Value {
        let (relay, raw) = (self.all("relay"), self.all("raw lapin"));
        let ratios = self.ratios();
        let floor = self.healthz.as_ref().and_then(Measured::cpu_us);
        let kernel_floor = self.healthz.as_ref().and_then(Measured::kernel_cpu_us);
        json!({
            "connections": self.connections,
            "seconds": self.seconds,
            "body_bytes": self.body_bytes,
            "rounds": self.rounds,
            "separate_process": self.separate_process,
            "runs": self.runs.iter().map(Measured::to_json).collect::<Vec<_>>(),
            "healthz": self.healthz.as_ref().map(Measured::to_json),
            "relay": relay.to_json(),
            "raw": raw.to_json(),
            "relay_over_raw_median": ratios.get(ratios.len() / 2),
            "relay_over_raw": ratios,
            "relay_cpu_budget_us": raw.cpu_us().zip(floor).map(|(raw, floor)| raw + floor),
            // The kernel's part of the budget, to set against the relay's
            // `kernel_cpu_us_per_msg`.
            "relay_kernel_cpu_budget_us": raw
                .kernel_cpu_us()
                .zip(kernel_floor)
                .map(|(raw, floor)| raw + floor),
            "relay_peak_rss_mib": self.peak_rss_kib.map(|k| k as f64 / 1024.0),
            "lost": self.lost(),
        })
    }

    pub fn print(&self) {
        println!(
            "\n{} connections / in flight, {} s per run, ~{} B bodies, {} rounds, relay {}\n",
            self.connections,
            self.seconds,
            self.body_bytes,
            self.rounds,
            if self.separate_process {
                "and raw publisher in processes of their own"
            } else {
                "in the harness's process"
            }
        );
        println!(
            "| run | msgs/s | p50 (ms) | p99 (ms) | p99.9 (ms) | 2xx / confirmed | non-2xx / failed | consumed | lost | CPU µs/msg | RabbitMQ CPU µs/msg |"
        );
        println!("|---|---|---|---|---|---|---|---|---|---|---|");
        for m in self.runs.iter().chain(&self.healthz) {
            let run = &m.run;
            println!(
                "| {} | {:.0} | {:.2} | {:.2} | {:.2} | {} | {} | {} | {} | {} | {} |",
                run.name,
                run.rate(),
                run.percentile_ms(0.50),
                run.percentile_ms(0.99),
                run.percentile_ms(0.999),
                run.ok,
                run.failed,
                run.consumed,
                run.ok.saturating_sub(run.consumed),
                show(m.cpu_us()),
                show(m.broker_cpu_us()),
            );
        }
        let (relay, raw) = (self.all("relay"), self.all("raw lapin"));
        println!("\n| | relay | raw lapin |\n|---|---|---|");
        println!(
            "| msgs/s | {:.0} | {:.0} |",
            relay.run.rate(),
            raw.run.rate()
        );
        for (label, p) in [("p50", 0.5), ("p99", 0.99), ("p99.9", 0.999)] {
            println!(
                "| {label} (ms) | {:.2} | {:.2} |",
                relay.run.percentile_ms(p),
                raw.run.percentile_ms(p)
            );
        }
        println!(
            "| CPU µs per message | {} | {} |",
            show(relay.cpu_us()),
            show(raw.cpu_us())
        );
        println!(
            "| RabbitMQ CPU µs per message | {} | {} |",
            show(relay.broker_cpu_us()),
            show(raw.broker_cpu_us())
        );
        println!(
            "| non-2xx / failed | {} | {} |",
            relay.run.failed, raw.run.failed
        );
        println!(
            "| lost (2xx or confirmed, not consumed) | {} | {} |",
            relay.run.ok.saturating_sub(relay.run.consumed),
            raw.run.ok.saturating_sub(raw.run.consumed)
        );
        if let Some(healthz) = &self.healthz {
            for (what, of) in [
                ("CPU", Measured::cpu_us as fn(&Measured) -> Option<f64>),
                ("kernel CPU", Measured::kernel_cpu_us),
            ] {
                let floor = of(healthz);
                println!(
                    "relay {what} per webhook {} µs; budget = raw lapin {} + GET /healthz {} = {} µs",
                    show(of(&relay)),
                    show(of(&raw)),
                    show(floor),
                    show(of(&raw).zip(floor).map(|(raw, floor)| raw + floor))
                );
            }
        }
        if let Some(kib) = self.peak_rss_kib {
            println!("relay peak RSS: {:.1} MiB", kib as f64 / 1024.0);
        }
        let ratios = self.ratios();
        println!(
            "\nrelay / raw: median of {} rounds {:.3} (each round: {})",
            ratios.len(),
            ratios.get(ratios.len() / 2).copied().unwrap_or(f64::NAN),
            ratios
                .iter()
                .map(|r| format!("{r:.3}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
}
