//! `verify` against the physical limit: a bare `Hmac<Sha256>` over the same bytes, and
//! one whose key was prepared once, all measured in the same run. Criterion prints its
//! statistics; the table of throughput ratios at the end comes from interleaved batches.
//!
//! Run: `cargo bench --bench verify`.
#![allow(missing_docs, clippy::unwrap_used, unreachable_pub)]

use std::hint::black_box;
use std::time::Instant;

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

/// Criterion's detailed statistics for each contender.
fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group(GROUP);
    for (size, _) in SIZES {
        let contenders = Contenders::new(size);
        assert!(contenders.bare() && contenders.prekeyed() && contenders.verify());
        group.throughput(Throughput::Bytes(contenders.signed.len() as u64));
        group.bench_function(BenchmarkId::new("bare_hmac", size), |b| {
            b.iter(|| contenders.bare())
        });
        group.bench_function(BenchmarkId::new("prekeyed_hmac", size), |b| {
            b.iter(|| contenders.prekeyed())
        });
        group.bench_function(BenchmarkId::new("verify", size), |b| {
            b.iter(|| contenders.verify())
        });
    }
    group.finish();
}

/// The three contenders at one body size, ready to run. The baselines get the signed
/// bytes already contiguous: one update, no parsing, no freshness check, no key ring.
struct Contenders {
    secret: &'static [u8],
    prekeyed: Hmac<Sha256>,
    signed: Vec<u8>,
    verifier: Verifier,
    hmac: HmacHeaders,
    body: Vec<u8>,
    now: chrono::DateTime<Utc>,
}

impl Contenders {
    fn new(size: usize) -> Self {
        let secret = Secret::new(SECRET).unwrap();
        let body: Vec<u8> = (0..size).map(|i| b'a' + (i % 26) as u8).collect();
        let prefix = SignedPrefix::new("POST", ENDPOINT, DATE);
        let hmac = HmacHeaders {
            signature: sign(&secret, &prefix, &body),
            date: SignatureDate::parse(DATE).unwrap(),
        };
        let mut signed = prefix.to_payload_prefix().into_bytes();
        signed.extend_from_slice(&body);
        Self {
            secret: SECRET.as_bytes(),
            prekeyed: <Hmac<Sha256> as KeyInit>::new_from_slice(SECRET.as_bytes()).unwrap(),
            signed,
            verifier: Verifier::new(KeyRing::new(secret))
                .for_domain("budgea.biapi.pro".parse().unwrap())
                .with_freshness(FreshnessWindow::default()),
            hmac,
            body,
            now: Utc.with_ymd_and_hms(2022, 6, 27, 11, 9, 0).unwrap(),
        }
    }

    fn bare(&self) -> bool {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(black_box(self.secret)).unwrap();
        mac.update(black_box(&self.signed));
        mac.verify_slice(black_box(self.hmac.signature.as_bytes()))
            .is_ok()
    }

    fn prekeyed(&self) -> bool {
        let mut mac = self.prekeyed.clone();
        mac.update(black_box(&self.signed));
        mac.verify_slice(black_box(self.hmac.signature.as_bytes()))
            .is_ok()
    }

    fn verify(&self) -> bool {
        self.verifier
            .verify(
                "POST",
                ENDPOINT,
                black_box(&self.hmac),
                black_box(&self.body),
                self.now,
            )
            .is_ok()
    }
}

/// Median nanoseconds per call of bare HMAC, pre-keyed HMAC and `verify`, measured in
/// short batches taken in turn, so that a slow spell of this shared machine hits all
/// three alike. This is what the ratio table reports.
fn interleaved(size: usize) -> [f64; 3] {
    let c = Contenders::new(size);
    let per_batch = (64 * 1024 / size).clamp(1, 256);
    let rounds = (200 * 1024 * 1024 / (size * per_batch)).clamp(300, 3000);
    let mut samples: [Vec<f64>; 3] = Default::default();
    let runs: [&dyn Fn() -> bool; 3] = [&|| c.bare(), &|| c.prekeyed(), &|| c.verify()];
    for _ in 0..rounds {
        for (run, times) in runs.iter().zip(samples.iter_mut()) {
            let start = Instant::now();
            for _ in 0..per_batch {
                black_box(run());
            }
            times.push(start.elapsed().as_nanos() as f64 / per_batch as f64);
        }
    }
    samples.map(|mut times| {
        times.sort_by(f64::total_cmp);
        times[times.len() / 2]
    })
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    bench(&mut criterion);
    criterion.final_summary();

    println!("\nInterleaved medians (ns per call) and throughput ratios, same run:\n");
    println!("| body | bare HMAC | pre-keyed HMAC | verify | verify / bare | verify / pre-keyed |");
    println!("|---|---|---|---|---|---|");
    for (size, label) in SIZES {
        let [bare, prekeyed, verify] = interleaved(size);
        println!(
            "| {label} | {bare:.0} | {prekeyed:.0} | {verify:.0} | {:.3} | {:.3} |",
            bare / verify,
            prekeyed / verify
        );
    }
}
