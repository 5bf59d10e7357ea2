//! `verify` against the physical limit: a bare `Hmac<Sha256>` over the same bytes,
//! measured in the same run. Prints a table of throughput ratios at the end.
//!
//! Run: `cargo bench --bench verify`.
#![allow(missing_docs, clippy::unwrap_used)]

use std::hint::black_box;
use std::path::PathBuf;

use chrono::{TimeZone, Utc};
use criterion::{BenchmarkId, Criterion, Throughput};
use hmac::{Hmac, KeyInit, Mac};
use powens_webhooks::{
    FreshnessWindow, HmacHeaders, KeyRing, Secret, SignatureDate, SignedPrefix, Verifier, sign,
};
use sha2::Sha256;

const GROUP: &str = "verify_vs_bare_hmac";
const SIZES: [(usize, &str); 4] = [
    (256, "256 B"),
    (1024, "1 KiB"),
    (64 * 1024, "64 KiB"),
    (1024 * 1024, "1 MiB"),
];
const SECRET: &str = "c2VjcmV0LWtleS1mcm9tLXBvd2Vucy13ZWJob29rcy1hdXRo";
const ENDPOINT: &str = "/powens-webhook/budgea.biapi.pro/CONNECTION_SYNCED";
const DATE: &str = "2022-06-27T11:08:52.577831Z";

fn bench(c: &mut Criterion) {
    let secret = Secret::new(SECRET).unwrap();
    let date = SignatureDate::parse(DATE).unwrap();
    let now = Utc.with_ymd_and_hms(2022, 6, 27, 11, 9, 0).unwrap();
    let verifier = Verifier::new(KeyRing::new(secret.clone()))
        .for_domain("budgea.biapi.pro".parse().unwrap())
        .with_freshness(FreshnessWindow::default());
    let mut group = c.benchmark_group(GROUP);
    for (size, _) in SIZES {
        let body: Vec<u8> = (0..size).map(|i| b'a' + (i % 26) as u8).collect();
        let prefix = SignedPrefix::new("POST", ENDPOINT, DATE);
        let hmac = HmacHeaders {
            signature: sign(&secret, &prefix, &body),
            date: date.clone(),
        };
        // The baseline gets the signed bytes already contiguous: one update, no parsing,
        // no freshness check, no key ring. The best a verifier could do.
        let mut signed = prefix.to_payload_prefix().into_bytes();
        signed.extend_from_slice(&body);
        let expected = hmac.signature;
        group.throughput(Throughput::Bytes(signed.len() as u64));
        group.bench_with_input(BenchmarkId::new("bare_hmac", size), &signed, |b, signed| {
            b.iter(|| {
                let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(SECRET.as_bytes()).unwrap();
                mac.update(black_box(signed));
                mac.verify_slice(black_box(expected.as_bytes())).is_ok()
            });
        });
        // The same with the keyed HMAC state prepared once, as `KeyRing` does: what is
        // left between this and `verify` is the verifier's own work.
        let prekeyed = <Hmac<Sha256> as KeyInit>::new_from_slice(SECRET.as_bytes()).unwrap();
        group.bench_with_input(BenchmarkId::new("prekeyed_hmac", size), &signed, |b, signed| {
            b.iter(|| {
                let mut mac = prekeyed.clone();
                mac.update(black_box(signed));
                mac.verify_slice(black_box(expected.as_bytes())).is_ok()
            });
        });
        group.bench_with_input(BenchmarkId::new("verify", size), &body, |b, body| {
            b.iter(|| verifier.verify("POST", ENDPOINT, black_box(&hmac), black_box(body), now));
        });
        assert_eq!(verifier.verify("POST", ENDPOINT, &hmac, &body, now), Ok(0));
    }
    group.finish();
}

/// Mean time per iteration, in ns, of one benchmark of this run.
fn mean_ns(function: &str, size: usize) -> Option<f64> {
    let home = std::env::var_os("CRITERION_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("../criterion"));
    let path = home.join(format!("{GROUP}/{function}/{size}/new/estimates.json"));
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    json["mean"]["point_estimate"].as_f64()
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    bench(&mut criterion);
    criterion.final_summary();

    println!(
        "\n| body | bare HMAC | pre-keyed HMAC | verify | verify / bare | verify / pre-keyed |"
    );
    println!("|---|---|---|---|---|---|");
    for (size, label) in SIZES {
        let times = (
            mean_ns("bare_hmac", size),
            mean_ns("prekeyed_hmac", size),
            mean_ns("verify", size),
        );
        let (Some(bare), Some(prekeyed), Some(verify)) = times else {
            println!("| {label} | (not measured in this run) | | | | |");
            continue;
        };
        println!(
            "| {label} | {bare:.0} ns | {prekeyed:.0} ns | {verify:.0} ns | {:.3} | {:.3} |",
            bare / verify,
            prekeyed / verify
        );
    }
}
