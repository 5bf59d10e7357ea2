//! The report as Markdown tables: a row per run, then the relay against raw lapin (or,
//! with `--compare`, each relay against the first: `compare.rs`).

use crate::pace::Load;
use crate::report::{Measured, Report, median, show, sorted};

impl Report {
    pub fn print(&self) {
        let open = matches!(self.load, Load::Open { .. });
        let pacing = match self.load {
            Load::Closed => format!("{} connections / in flight", self.connections),
            Load::Open { rate } => format!(
                "open loop at {rate:.0}/s over at most {} connections / in flight \
                 (latencies from each request's intended send time)",
                self.connections
            ),
        };
        println!(
            "\n{pacing}, {} s per run, ~{} B bodies, {} rounds, relay {}\n",
            self.seconds,
            self.body_bytes,
            self.rounds,
            if self.separate_process {
                "and raw publisher in processes of their own"
            } else {
                "in the harness's process"
            }
        );
        if !self.settings.is_empty() {
            let set: Vec<String> = self.settings.iter().map(ToString::to_string).collect();
            println!("relay settings: {}\n", set.join(", "));
        }
        self.print_runs(open);
        if self.compare.is_some() {
            self.print_compare();
        } else {
            self.print_relay_against_raw(open);
        }
    }

    fn print_runs(&self, open: bool) {
        let healthz = self.relays.iter().filter_map(|r| r.healthz.as_ref());
        let rows = self.maxima.iter().chain(&self.runs).chain(healthz);
        if !open {
            println!(
                "| run | msgs/s | p50 (ms) | p99 (ms) | p99.9 (ms) | 2xx / confirmed | non-2xx / failed | consumed | lost | CPU µs/msg | RabbitMQ CPU µs/msg |"
            );
            println!("|---|---|---|---|---|---|---|---|---|---|---|");
            for m in rows {
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
            return;
        }
        println!(
            "| run | offered/s | msgs/s | p50 (ms) | p99 (ms) | p99.9 (ms) | behind schedule | unsent | 2xx / confirmed | non-2xx / failed | lost | CPU µs/msg | RabbitMQ CPU µs/msg |"
        );
        println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
        for m in rows {
            let (run, schedule) = (&m.run, m.run.schedule);
            let figure = |f: fn(&crate::pace::Schedule) -> String| {
                schedule.as_ref().map_or_else(|| "–".to_owned(), f)
            };
            println!(
                "| {} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {} | {} | {} | {} | {} | {} | {} |",
                run.name,
                figure(|s| format!("{:.0}", s.offered_per_s)),
                run.rate(),
                run.percentile_ms(0.50),
                run.percentile_ms(0.99),
                run.percentile_ms(0.999),
                figure(|s| s.behind.to_string()),
                figure(|s| s.unsent.to_string()),
                run.ok,
                run.failed,
                run.ok.saturating_sub(run.consumed),
                show(m.cpu_us()),
                show(m.broker_cpu_us()),
            );
        }
    }

    fn print_relay_against_raw(&self, open: bool) {
        let (relay, raw) = (self.all("relay"), self.all("raw lapin"));
        println!("\n| | relay | raw lapin |\n|---|---|---|");
        if let Load::Open { rate } = self.load {
            println!("| offered msgs/s | {rate:.0} | {rate:.0} |");
        }
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
        if open {
            let of = |m: &Measured, f: fn(&crate::pace::Schedule) -> u64| {
                m.run.schedule.as_ref().map_or(0, f)
            };
            println!(
                "| sent late by, p50 / p99 (ms) | {:.2} / {:.2} | {:.2} / {:.2} |",
                relay.run.lag_ms(0.5),
                relay.run.lag_ms(0.99),
                raw.run.lag_ms(0.5),
                raw.run.lag_ms(0.99)
            );
            println!(
                "| behind schedule (sent > 1 ms late) | {} | {} |",
                of(&relay, |s| s.behind),
                of(&raw, |s| s.behind)
            );
            println!(
                "| unsent (not sent by 1 s after the run) | {} | {} |",
                of(&relay, |s| s.unsent),
                of(&raw, |s| s.unsent)
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
        if let Some(healthz) = self.relays.first().and_then(|r| r.healthz.as_ref()) {
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
        if let Some(kib) = self.relays.first().and_then(|r| r.peak_rss_kib) {
            println!("relay peak RSS: {:.1} MiB", kib as f64 / 1024.0);
        }
        let ratios = sorted(self.ratios("relay"));
        println!(
            "\nrelay / raw: median of {} rounds {:.3} (each round: {})",
            ratios.len(),
            median(&ratios).unwrap_or(f64::NAN),
            ratios
                .iter()
                .map(|r| format!("{r:.3}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
}
