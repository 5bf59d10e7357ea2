//! What the harness prints: a table per run and the totals, or one JSON document. The
//! comparison of relay configurations (`--compare`) is in `compare.rs`.

use std::time::Duration;

use serde_json::{Value, json};

use crate::Args;
use crate::pace::{Load, Schedule};
use crate::process::Cpu;
use crate::runs::Run;
use crate::settings::{Compare, Setting};

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

pub fn show(value: Option<f64>) -> String {
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
        let schedule = self.run.schedule.map_or_else(String::new, |s| {
            format!(
                ", p99 {:.2} ms from the intended time, sent late by {:.2} ms (p50) / {:.2} \
                 (p99), {} behind schedule, {} unsent",
                self.run.percentile_ms(0.99),
                self.run.lag_ms(0.5),
                self.run.lag_ms(0.99),
                s.behind,
                s.unsent
            )
        });
        let flood = self.run.flood.map_or_else(String::new, |(refused, other)| {
            format!(", beside it {refused} bad signatures refused (401), {other} otherwise")
        });
        format!(
            "{}: {:.0}/s, {} ok, {} failed, {} consumed, CPU {} µs/msg (kernel {}), broker {} µs/msg{schedule}{flood}",
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

    pub fn to_json(&self) -> Value {
        let run = &self.run;
        let mut value = json!({
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
        });
        if let Some((refused, other)) = run.flood {
            value["bad_signatures"] = json!({ "refused": refused, "other": other });
        }
        if let Some(schedule) = run.schedule {
            // Latencies above are then counted from each request's intended time.
            let mut open = json!(schedule);
            open["send_lag_p50_ms"] = json!(run.lag_ms(0.5));
            open["send_lag_p99_ms"] = json!(run.lag_ms(0.99));
            value["open_loop"] = open;
        }
        value
    }
}

/// A relay of the invocation: its `GET /healthz` floor and peak RSS.
pub struct RelayFigures {
    pub name: String,
    pub value: Option<String>,
    pub healthz: Option<Measured>,
    pub peak_rss_kib: Option<u64>,
}

/// Every run, each relay's `/healthz` floor and peak RSS.
pub struct Report {
    pub connections: usize,
    pub seconds: u64,
    pub body_bytes: usize,
    pub rounds: usize,
    pub separate_process: bool,
    pub load: Load,
    pub settings: Vec<Setting>,
    pub compare: Option<Compare>,
    /// `--at-half-max`: the closed-loop runs that measured each relay's maximum.
    pub maxima: Vec<Measured>,
    pub runs: Vec<Measured>,
    pub relays: Vec<RelayFigures>,
}

/// The median as the harness has always taken it for relay / raw: the upper one of
/// an even count.
pub fn median(sorted: &[f64]) -> Option<f64> {
    sorted.get(sorted.len() / 2).copied()
}

/// The median, of an even count the mean of the middle two (`--compare`: with two
/// rounds, the upper one alone would favour the second configuration).
pub fn true_median(sorted: &[f64]) -> Option<f64> {
    let middle = sorted.len() / 2;
    match sorted.len() % 2 {
        0 if middle > 0 => Some((sorted[middle - 1] + sorted[middle]) / 2.0),
        0 => None,
        _ => Some(sorted[middle]),
    }
}

pub fn sorted(mut values: Vec<f64>) -> Vec<f64> {
    values.sort_by(f64::total_cmp);
    values
}

impl Report {
    pub fn new(
        args: &Args,
        load: Load,
        maxima: Vec<Measured>,
        runs: Vec<Measured>,
        relays: Vec<RelayFigures>,
    ) -> Self {
        Self {
            connections: args.connections,
            seconds: args.seconds,
            body_bytes: args.body_bytes,
            rounds: args.rounds,
            separate_process: args.separate_process,
            load,
            settings: args.relay_set.clone(),
            compare: args.compare.clone(),
            maxima,
            runs,
            relays,
        }
    }

    pub fn lost(&self) -> u64 {
        self.maxima
            .iter()
            .chain(&self.runs)
            .map(|m| m.run.ok.saturating_sub(m.run.consumed))
            .sum()
    }

    /// The runs of relay `name`, each against the mean of the raw runs on either side
    /// of it, in the order run (one per round).
    pub fn ratios(&self, name: &str) -> Vec<f64> {
        self.runs
            .windows(3)
            .step_by(2)
            .filter(|w| w[1].run.name == name)
            .map(|w| w[1].run.rate() / ((w[0].run.rate() + w[2].run.rate()) / 2.0))
            .collect()
    }

    /// The runs named `name` merged, with their CPU times summed.
    pub fn all(&self, name: &str) -> Measured {
        let mut merged = Run::default();
        let (mut cpu, mut broker) = (Some(Cpu::default()), Some(Duration::ZERO));
        let mut schedule: Option<Schedule> = None;
        for m in self.runs.iter().filter(|m| m.run.name == name) {
            merged.ok += m.run.ok;
            merged.failed += m.run.failed;
            merged.seconds += m.run.seconds;
            merged.consumed += m.run.consumed;
            merged.latencies_us.extend(&m.run.latencies_us);
            merged.lags_us.extend(&m.run.lags_us);
            cpu = cpu.zip(m.cpu).map(|(a, b)| a + b);
            broker = broker.zip(m.broker_cpu).map(|(a, b)| a + b);
            schedule = match (schedule, m.run.schedule) {
                (Some(a), Some(b)) => Some(a + b),
                (a, b) => a.or(b),
            };
        }
        merged.latencies_us.sort_unstable();
        merged.lags_us.sort_unstable();
        merged.schedule = schedule;
        Measured::new(merged, cpu, broker)
    }

    /// The figures an open loop and `--relay-set` add, when used.
    fn extras(&self, report: &mut Value) {
        if let Load::Open { rate } = self.load {
            report["open_loop"] = json!({
                "rate_per_s": rate,
                "behind_after_ms": crate::pace::BEHIND.as_secs_f64() * 1e3,
                "latency_from": "intended send time",
            });
        }
        if !self.maxima.is_empty() {
            report["at_half_max"] = json!({
                "fraction": crate::series::FRACTION_OF_MAX,
                "max_runs": self.maxima.iter().map(Measured::to_json).collect::<Vec<_>>(),
            });
        }
        if !self.settings.is_empty() {
            report["relay_settings"] = json!(
                self.settings
                    .iter()
                    .map(Setting::to_string)
                    .collect::<Vec<_>>()
            );
        }
    }

    pub fn to_json(&self) -> Value {
        if self.compare.is_some() {
            let mut report = self.compare_json();
            self.extras(&mut report);
            return report;
        }
        let (relay, raw) = (self.all("relay"), self.all("raw lapin"));
        let ratios = sorted(self.ratios("relay"));
        let healthz = self.relays.first().and_then(|r| r.healthz.as_ref());
        let floor = healthz.and_then(Measured::cpu_us);
        let kernel_floor = healthz.and_then(Measured::kernel_cpu_us);
        let peak_rss_kib = self.relays.first().and_then(|r| r.peak_rss_kib);
        let mut report = self.invocation_json();
        let more = json!({
            "healthz": healthz.map(Measured::to_json),
            "relay": relay.to_json(),
            "raw": raw.to_json(),
            "relay_over_raw_median": median(&ratios),
            "relay_over_raw": ratios,
            "relay_cpu_budget_us": raw.cpu_us().zip(floor).map(|(raw, floor)| raw + floor),
            // The kernel's part of the budget, to set against the relay's
            // `kernel_cpu_us_per_msg`.
            "relay_kernel_cpu_budget_us": raw
                .kernel_cpu_us()
                .zip(kernel_floor)
                .map(|(raw, floor)| raw + floor),
            "relay_peak_rss_mib": peak_rss_kib.map(|k| k as f64 / 1024.0),
            "lost": self.lost(),
        });
        merge(&mut report, more);
        self.extras(&mut report);
        report
    }

    /// What every JSON report starts with: the invocation's parameters and its runs.
    pub fn invocation_json(&self) -> Value {
        json!({
            "connections": self.connections,
            "seconds": self.seconds,
            "body_bytes": self.body_bytes,
            "rounds": self.rounds,
            "separate_process": self.separate_process,
            "runs": self.runs.iter().map(Measured::to_json).collect::<Vec<_>>(),
        })
    }
}

/// `more`'s fields added to `report` (both JSON objects).
pub fn merge(report: &mut Value, more: Value) {
    if let (Some(report), Value::Object(more)) = (report.as_object_mut(), more) {
        report.extend(more);
    }
}
