//! `--compare KEY=V1,V2[,…]`: each relay configuration against raw lapin and against
//! the first one (V2 / V1, …), from alternating runs of the same invocation.

use serde_json::{Value, json};

use crate::pace::Load;
use crate::report::{Measured, RelayFigures, Report, merge, show, sorted, true_median as median};

/// `a / b`, when both are known.
fn over(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    a.zip(b).map(|(a, b)| a / b)
}

fn ratio(value: Option<f64>) -> String {
    value.map_or_else(|| "–".to_owned(), |v| format!("{v:.3}"))
}

/// What `--compare` reports of one relay.
struct Figures<'r> {
    relay: &'r RelayFigures,
    merged: Measured,
    /// Against raw lapin, one per round, in the order run.
    over_raw: Vec<f64>,
    /// Its closed-loop maximum (`--at-half-max`).
    max: Option<f64>,
}

impl Figures<'_> {
    fn median_over_raw(&self) -> Option<f64> {
        median(&sorted(self.over_raw.clone()))
    }

    /// Raw lapin's CPU per message plus this relay's `GET /healthz`.
    fn budget(&self, raw: &Measured, of: fn(&Measured) -> Option<f64>) -> Option<f64> {
        let floor = self.relay.healthz.as_ref().and_then(of);
        of(raw).zip(floor).map(|(raw, floor)| raw + floor)
    }

    fn quantile(&self, p: f64) -> Option<f64> {
        Some(self.merged.run.percentile_ms(p)).filter(|v| v.is_finite())
    }

    /// Its throughput against the first relay's, round by round (each against the raw
    /// runs beside it, so that the machine's drift between rounds cancels out).
    fn per_round_over(&self, first: &Self) -> Vec<f64> {
        self.over_raw
            .iter()
            .zip(&first.over_raw)
            .map(|(a, b)| a / b)
            .collect()
    }
}

const QUANTILES: [(&str, &str, f64); 3] = [
    ("p50", "p50_ms", 0.5),
    ("p99", "p99_ms", 0.99),
    ("p99.9", "p999_ms", 0.999),
];

impl Report {
    fn figures(&self) -> Vec<Figures<'_>> {
        self.relays
            .iter()
            .map(|relay| Figures {
                relay,
                merged: self.all(&relay.name),
                over_raw: self.ratios(&relay.name),
                max: self
                    .maxima
                    .iter()
                    .find(|m| m.run.name == format!("{} (max)", relay.name))
                    .map(|m| m.run.rate()),
            })
            .collect()
    }

    pub fn compare_json(&self) -> Value {
        let raw = self.all("raw lapin");
        let figures = self.figures();
        let relays: Vec<Value> = figures
            .iter()
            .map(|f| {
                json!({
                    "name": f.relay.name,
                    "value": f.relay.value,
                    "relay": f.merged.to_json(),
                    "relay_over_raw_median": f.median_over_raw(),
                    "relay_over_raw": f.over_raw,
                    "max_msgs_per_s": f.max,
                    "healthz": f.relay.healthz.as_ref().map(Measured::to_json),
                    "cpu_budget_us": f.budget(&raw, Measured::cpu_us),
                    "kernel_cpu_budget_us": f.budget(&raw, Measured::kernel_cpu_us),
                    "peak_rss_mib": f.relay.peak_rss_kib.map(|k| k as f64 / 1024.0),
                })
            })
            .collect();
        let over_first: Vec<Value> = figures
            .split_first()
            .map(|(first, rest)| {
                rest.iter()
                    .map(|f| {
                        let per_round = f.per_round_over(first);
                        let mut value = json!({
                            "value": f.relay.value,
                            "over": first.relay.value,
                            "throughput_median": median(&sorted(per_round.clone())),
                            "throughput_per_round": per_round,
                            "msgs_per_s": f.merged.run.rate() / first.merged.run.rate(),
                            "max_msgs_per_s": over(f.max, first.max),
                            "cpu_us_per_msg": over(f.merged.cpu_us(), first.merged.cpu_us()),
                            "kernel_cpu_us_per_msg":
                                over(f.merged.kernel_cpu_us(), first.merged.kernel_cpu_us()),
                        });
                        for (_, key, p) in QUANTILES {
                            value[key] = json!(over(f.quantile(p), first.quantile(p)));
                        }
                        value
                    })
                    .collect()
            })
            .unwrap_or_default();
        let mut report = self.invocation_json();
        let more = json!({
            "raw": raw.to_json(),
            "compare": {
                "key": self.compare.as_ref().map(|c| c.key.clone()),
                "relays": relays,
                "over_first": over_first,
            },
            "lost": self.lost(),
        });
        merge(&mut report, more);
        report
    }

    pub fn print_compare(&self) {
        let raw = self.all("raw lapin");
        let figures = self.figures();
        let Some((first, rest)) = figures.split_first() else {
            return;
        };
        let value = |f: &Figures<'_>| f.relay.value.clone().unwrap_or_default();
        let mut head = vec![String::new(), "raw lapin".to_owned()];
        head.extend(figures.iter().map(|f| f.relay.name.clone()));
        head.extend(
            rest.iter()
                .map(|f| format!("{} / {}", value(f), value(first))),
        );
        println!("\n| {} |", head.join(" | "));
        println!("|{}", "---|".repeat(head.len()));
        // A row: its label, raw lapin's cell, each relay's, then each relay's ratio to
        // the first (none when `ratio` is `None`).
        let row = |label: &str,
                   raw: String,
                   cell: &dyn Fn(&Figures<'_>) -> String,
                   ratio: Option<&dyn Fn(&Figures<'_>) -> String>| {
            let mut cells = vec![label.to_owned(), raw];
            cells.extend(figures.iter().map(cell));
            cells.extend(
                rest.iter()
                    .map(|f| ratio.map_or_else(String::new, |r| r(f))),
            );
            println!("| {} |", cells.join(" | "));
        };
        if let Load::Open { rate } = self.load {
            row(
                "offered msgs/s",
                format!("{rate:.0}"),
                &|_| format!("{rate:.0}"),
                None,
            );
        }
        row(
            "msgs/s",
            format!("{:.0}", raw.run.rate()),
            &|f| format!("{:.0}", f.merged.run.rate()),
            Some(&|f| format!("{:.3}", f.merged.run.rate() / first.merged.run.rate())),
        );
        row(
            &format!("relay / raw, median of {} rounds", self.rounds),
            String::new(),
            &|f| {
                let each: Vec<String> = f.over_raw.iter().map(|r| format!("{r:.3}")).collect();
                format!("{} ({})", ratio(f.median_over_raw()), each.join(", "))
            },
            Some(&|f| {
                let per_round = f.per_round_over(first);
                let each: Vec<String> = per_round.iter().map(|r| format!("{r:.3}")).collect();
                let median = median(&sorted(per_round));
                format!("**{}** ({})", ratio(median), each.join(", "))
            }),
        );
        if !self.maxima.is_empty() {
            row(
                "maximum msgs/s (closed loop)",
                String::new(),
                &|f| {
                    f.max
                        .map_or_else(|| "–".to_owned(), |max| format!("{max:.0}"))
                },
                Some(&|f| ratio(over(f.max, first.max))),
            );
        }
        for (label, _, p) in QUANTILES {
            row(
                &format!("{label} (ms)"),
                format!("{:.2}", raw.run.percentile_ms(p)),
                &|f| format!("{:.2}", f.merged.run.percentile_ms(p)),
                Some(&|f| ratio(over(f.quantile(p), first.quantile(p)))),
            );
        }
        if matches!(self.load, Load::Open { .. }) {
            let behind = |m: &Measured| m.run.schedule.map_or(0, |s| s.behind).to_string();
            let unsent = |m: &Measured| m.run.schedule.map_or(0, |s| s.unsent).to_string();
            let lag =
                |m: &Measured| format!("{:.2} / {:.2}", m.run.lag_ms(0.5), m.run.lag_ms(0.99));
            row(
                "sent late by, p50 / p99 (ms)",
                lag(&raw),
                &|f| lag(&f.merged),
                None,
            );
            row(
                "behind schedule (> 1 ms late)",
                behind(&raw),
                &|f| behind(&f.merged),
                None,
            );
            row("unsent", unsent(&raw), &|f| unsent(&f.merged), None);
        }
        for (label, of) in [
            (
                "CPU µs per message",
                Measured::cpu_us as fn(&Measured) -> Option<f64>,
            ),
            ("kernel CPU µs per message", Measured::kernel_cpu_us),
            ("RabbitMQ CPU µs per message", Measured::broker_cpu_us),
        ] {
            row(
                label,
                show(of(&raw)),
                &|f| show(of(&f.merged)),
                Some(&|f| ratio(over(of(&f.merged), of(&first.merged)))),
            );
        }
        if self.relays.iter().any(|r| r.healthz.is_some()) {
            row(
                "CPU budget (raw + its GET /healthz) µs",
                String::new(),
                &|f| show(f.budget(&raw, Measured::cpu_us)),
                None,
            );
            row(
                "peak RSS (MiB)",
                String::new(),
                &|f| show(f.relay.peak_rss_kib.map(|k| k as f64 / 1024.0)),
                None,
            );
        }
        let failed = |m: &Measured| m.run.failed.to_string();
        let lost = |m: &Measured| m.run.ok.saturating_sub(m.run.consumed).to_string();
        row(
            "non-2xx / failed",
            failed(&raw),
            &|f| failed(&f.merged),
            None,
        );
        row("lost", lost(&raw), &|f| lost(&f.merged), None);
    }
}
