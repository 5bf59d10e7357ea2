//! The charts of `docs/performance.md`, from the measurements in `docs/charts/data/`:
//! SVG files beside them, and the table of the same figures written into the doc
//! between its `charts:table` markers, so that the pictures and the table cannot
//! disagree.
//!
//! ```sh
//! docs/charts/regenerate.sh                   # measure again, then draw (a few minutes)
//! cargo run --example charts                  # draw from the committed measurements
//! cargo run --example charts -- --check       # fail if the doc's table is not theirs
//! ```
//!
//! Inputs: `load-<connections>.json` (`examples/load --separate-process --json`, one per
//! connection count) and `cluster-timeline.json` (`tests/cluster` with
//! `POWENS_CLUSTER_TIMELINE`).
// Items are `pub` for the modules the examples share, not an API.
#![allow(unreachable_pub)]

use std::error::Error;
use std::path::{Path, PathBuf};

use clap::Parser;
use plotters::prelude::*;
use serde_json::Value;

type Result<T> = std::result::Result<T, Box<dyn Error>>;

#[derive(Debug, Parser)]
struct Args {
    /// Where the measurements are.
    #[arg(long, default_value = "docs/charts/data")]
    data: PathBuf,
    /// Where the SVG files go.
    #[arg(long, default_value = "docs/charts")]
    out: PathBuf,
    /// The document whose table is written.
    #[arg(long, default_value = "docs/performance.md")]
    doc: PathBuf,
    /// Draw nothing; fail if the document's table differs from the measurements'.
    #[arg(long)]
    check: bool,
}

const BEGIN: &str = "<!-- charts:table:begin (written by `cargo run --example charts`) -->";
const END: &str = "<!-- charts:table:end -->";
const RELAY: RGBColor = RGBColor(0x1f, 0x77, 0xb4);
const RAW: RGBColor = RGBColor(0xff, 0x7f, 0x0e);
const LIGHT: RGBColor = RGBColor(0xee, 0xee, 0xee);
const OK: RGBColor = RGBColor(0x2c, 0xa0, 0x2c);
const FAILED: RGBColor = RGBColor(0xd6, 0x27, 0x28);

/// One load run at one connection count.
struct Load {
    connections: u32,
    json: Value,
}

impl Load {
    fn figure(&self, side: &str, key: &str) -> f64 {
        self.json[side][key].as_f64().unwrap_or(f64::NAN)
    }
}

fn read_json(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?)
}

/// The `load-*.json` files, by connection count.
fn loads(dir: &Path) -> Result<Vec<Load>> {
    let mut loads = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))? {
        let path = entry?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with("load-") && name.ends_with(".json") {
            let json = read_json(&path)?;
            let connections = json["connections"]
                .as_u64()
                .and_then(|c| u32::try_from(c).ok())
                .ok_or_else(|| format!("{}: no connections", path.display()))?;
            loads.push(Load { connections, json });
        }
    }
    loads.sort_by_key(|l| l.connections);
    if loads.is_empty() {
        return Err(format!("no load-*.json in {}", dir.display()).into());
    }
    Ok(loads)
}

fn show(value: f64, decimals: usize) -> String {
    if value.is_finite() {
        format!("{value:.decimals$}")
    } else {
        "–".to_owned()
    }
}

/// The table of the figures the charts show.
fn table(loads: &[Load], cut: &Value) -> String {
    let mut text = String::from(
        "| connections | relay webhooks/s | raw lapin msgs/s | relay / raw | relay p99 (ms) | raw p99 (ms) | relay CPU µs/webhook | raw CPU µs/msg | lost |\n\
         |---|---|---|---|---|---|---|---|---|\n",
    );
    for load in loads {
        let ratio = load.json["relay_over_raw_median"]
            .as_f64()
            .unwrap_or(f64::NAN);
        text.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            load.connections,
            show(load.figure("relay", "msgs_per_s"), 0),
            show(load.figure("raw", "msgs_per_s"), 0),
            show(ratio, 2),
            show(load.figure("relay", "p99_ms"), 1),
            show(load.figure("raw", "p99_ms"), 1),
            show(load.figure("relay", "cpu_us_per_msg"), 1),
            show(load.figure("raw", "cpu_us_per_msg"), 1),
            load.json["lost"].as_u64().unwrap_or(0),
        ));
    }
    let number = |key: &str| cut[key].as_f64().unwrap_or(f64::NAN);
    text.push_str(&format!(
        "\nBroker cut (`tests/cluster`): {} webhooks from {} senders, {} answered 2xx, every one \
         of them in the quorum queue afterwards; the relay's node killed at {} s, the last \
         non-2xx answer {} ms after.\n",
        number("sent"),
        number("senders"),
        number("answered_2xx"),
        show(number("killed_at_s"), 2),
        show(number("last_non_2xx_after_kill_ms"), 0),
    ));
    text
}

/// `doc` with the text between the markers replaced by `table`.
fn with_table(doc: &str, table: &str) -> Result<String> {
    let start = doc
        .find(BEGIN)
        .ok_or("the document has no charts:table:begin marker")?;
    let end = doc
        .find(END)
        .ok_or("the document has no charts:table:end marker")?;
    let head = &doc[..start + BEGIN.len()];
    Ok(format!("{head}\n{table}{}", &doc[end..]))
}

type Chart<'a, X, Y> = ChartContext<'a, SVGBackend<'a>, Cartesian2d<X, Y>>;

fn legend<X: Ranged, Y: Ranged>(chart: &mut Chart<'_, X, Y>) -> Result<()> {
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()?;
    Ok(())
}

/// A line per side (relay, raw) of `key` against the connection count.
fn by_connections(loads: &[Load], key: &str, title: &str, unit: &str, path: &Path) -> Result<()> {
    let max = loads
        .iter()
        .flat_map(|l| [l.figure("relay", key), l.figure("raw", key)])
        .filter(|v| v.is_finite())
        .fold(0.0, f64::max);
    let last = loads.last().map_or(256, |l| l.connections);
    let root = SVGBackend::new(path, (720, 420)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d((1u32..last).log_scale(), 0.0..max * 1.15)?;
    chart
        .configure_mesh()
        .light_line_style(LIGHT)
        .x_desc("concurrent connections (log scale)")
        .y_desc(unit)
        .draw()?;
    for (side, name, color) in [("relay", "relay", RELAY), ("raw", "raw lapin", RAW)] {
        let points: Vec<(u32, f64)> = loads
            .iter()
            .map(|l| (l.connections, l.figure(side, key)))
            .filter(|(_, v)| v.is_finite())
            .collect();
        chart
            .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))?
            .label(name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
        chart.draw_series(points.iter().map(|p| Circle::new(*p, 4, color.filled())))?;
    }
    legend(&mut chart)?;
    root.present()?;
    Ok(())
}

/// The latency distribution at the connection count nearest 64.
fn latency(loads: &[Load], path: &Path) -> Result<()> {
    let load = loads
        .iter()
        .min_by_key(|l| l.connections.abs_diff(64))
        .ok_or("no load")?;
    let quantiles = |side: &str| -> Vec<(f64, f64)> {
        load.json[side]["latency_quantiles_ms"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|pair| Some((pair[1].as_f64()?, pair[0].as_f64()? * 100.0)))
            .collect()
    };
    let (relay, raw) = (quantiles("relay"), quantiles("raw"));
    // Up to the 99.9th percentile: the maximum is one request, not a distribution.
    let max = relay
        .iter()
        .chain(&raw)
        .filter(|(_, q)| *q <= 99.9)
        .map(|(ms, _)| *ms)
        .fold(0.0, f64::max);
    let root = SVGBackend::new(path, (720, 420)).into_drawing_area();
    root.fill(&WHITE)?;
    let title = format!("Latency distribution, {} connections", load.connections);
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..max * 1.1, 0.0..100.0)?;
    chart
        .configure_mesh()
        .light_line_style(LIGHT)
        .x_desc("latency (ms)")
        .y_desc("requests answered within (%)")
        .draw()?;
    for (points, name, color) in [(relay, "relay", RELAY), (raw, "raw lapin", RAW)] {
        let shown: Vec<_> = points
            .into_iter()
            .filter(|(ms, _)| *ms <= max * 1.1)
            .collect();
        chart
            .draw_series(LineSeries::new(shown, color.stroke_width(2)))?
            .label(name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
    }
    legend(&mut chart)?;
    root.present()?;
    Ok(())
}

/// 2xx and non-2xx answers per 100 ms around the node's loss.
fn broker_cut(cut: &Value, path: &Path) -> Result<()> {
    let counts = |key: &str| -> Vec<u64> {
        cut[key]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_u64)
            .collect()
    };
    let (ok, failed) = (counts("ok_per_bucket"), counts("failed_per_bucket"));
    let step = cut["bucket_ms"].as_f64().unwrap_or(100.0) / 1000.0;
    let end = ok.len() as f64 * step;
    let max = ok
        .iter()
        .zip(&failed)
        .map(|(a, b)| a + b)
        .max()
        .unwrap_or(1) as f64;
    let root = SVGBackend::new(path, (720, 420)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Answers per 100 ms; the relay's RabbitMQ node killed",
            ("sans-serif", 20),
        )
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..end, 0.0..max * 1.2)?;
    chart
        .configure_mesh()
        .light_line_style(LIGHT)
        .x_desc("time (s)")
        .y_desc("answers per 100 ms")
        .draw()?;
    let bars = |values: Vec<u64>, below: Vec<u64>, color: RGBColor| {
        values
            .into_iter()
            .zip(below)
            .enumerate()
            .map(move |(i, (v, b))| {
                let x = i as f64 * step;
                Rectangle::new(
                    [(x, b as f64), (x + step * 0.9, (b + v) as f64)],
                    color.filled(),
                )
            })
    };
    chart
        .draw_series(bars(ok.clone(), vec![0; ok.len()], OK))?
        .label("2xx (in the quorum queue)")
        .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 15, y + 5)], OK.filled()));
    chart
        .draw_series(bars(failed, ok, FAILED))?
        .label("503 (Powens retries)")
        .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 15, y + 5)], FAILED.filled()));
    let killed = cut["killed_at_s"].as_f64().unwrap_or(0.0);
    chart
        .draw_series(LineSeries::new(
            [(killed, 0.0), (killed, max * 1.2)],
            BLACK.stroke_width(1),
        ))?
        .label("node killed")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK));
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .position(SeriesLabelPosition::LowerRight)
        .draw()?;
    root.present()?;
    Ok(())
}

fn main() -> Result<()> {
    let args = Args::parse();
    let loads = loads(&args.data)?;
    let cut = read_json(&args.data.join("cluster-timeline.json"))?;
    let doc =
        std::fs::read_to_string(&args.doc).map_err(|e| format!("{}: {e}", args.doc.display()))?;
    let updated = with_table(&doc, &table(&loads, &cut))?;
    if args.check {
        if updated != doc {
            return Err(format!(
                "{}'s table differs from the measurements in {}: run `cargo run --example charts`",
                args.doc.display(),
                args.data.display()
            )
            .into());
        }
        println!("{} matches {}", args.doc.display(), args.data.display());
        return Ok(());
    }
    by_connections(
        &loads,
        "msgs_per_s",
        "Throughput against connections",
        "webhooks (messages) confirmed per second",
        &args.out.join("throughput.svg"),
    )?;
    by_connections(
        &loads,
        "p99_ms",
        "p99 latency against connections",
        "p99 latency (ms)",
        &args.out.join("p99.svg"),
    )?;
    latency(&loads, &args.out.join("latency.svg"))?;
    broker_cut(&cut, &args.out.join("broker-cut.svg"))?;
    std::fs::write(&args.doc, updated)?;
    println!(
        "wrote {}/{{throughput,p99,latency,broker-cut}}.svg and the table of {}",
        args.out.display(),
        args.doc.display()
    );
    Ok(())
}
