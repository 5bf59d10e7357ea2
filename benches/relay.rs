//! The relay's own work per request: a signed webhook through the router (routing,
//! header parsing, verification, message building, metrics) with an in-memory
//! publisher, against `Verifier::verify` of the same request alone, in the same run.
//! No network and no broker: what the relay adds on top of verifying.
//!
//! Run: `cargo bench --bench relay`.
#![allow(missing_docs, clippy::unwrap_used, unreachable_pub)]

use std::hint::black_box;
use std::time::Instant;

use axum::body::{Body, Bytes};
use chrono::Utc;
use criterion::Criterion;
use http::Request;
use powens_webhooks::relay::testing::{
    MemoryPublisher, Target, router, signature_date, signed_request,
};
use powens_webhooks::relay::{Overrides, RelayConfig};
use powens_webhooks::{KeyRing, PowensHeaders, Secret, Verifier};
use tower::ServiceExt;

const PATH: &str = "/powens-webhook/budgea.biapi.pro/CONNECTION_SYNCED";
const SECRET: &str = "bench-secret";

struct Bench {
    runtime: tokio::runtime::Runtime,
    app: axum::Router,
    publisher: MemoryPublisher,
    verifier: Verifier,
    request: Request<Bytes>,
}

impl Bench {
    fn new() -> Self {
        let secret = std::env::temp_dir().join(format!("powens-bench-{}", std::process::id()));
        std::fs::write(&secret, SECRET).unwrap();
        let toml = format!(
            "[domains.\"budgea.biapi.pro\"]\nsecrets = [\"file:{}\"]\n",
            secret.display()
        );
        let config = RelayConfig::from_toml(&toml, &Overrides::default()).unwrap();
        std::fs::remove_file(&secret).unwrap();
        let publisher = MemoryPublisher::new();
        let app = router(&config, &publisher, None);
        // The relay's verifier for the domain: its key, the default freshness window.
        let verifier = Verifier::new(KeyRing::new(Secret::new(SECRET).unwrap()))
            .for_domain("budgea.biapi.pro".parse().unwrap());
        // A ~1 KiB body, as in the load harness; the date stays fresh for the run.
        let body = Bytes::from(format!(
            r#"{{"id_webhook_data": 7, "padding": "{}"}}"#,
            "x".repeat(980)
        ));
        let target = Target::parse(&format!("http://127.0.0.1{PATH}")).unwrap();
        let signed = signed_request(
            &target,
            body.clone(),
            &Secret::new(SECRET).unwrap(),
            &signature_date(Utc::now()),
        )
        .unwrap();
        let (parts, _) = signed.into_parts();
        let request = Request::from_parts(parts, body);
        // The router times body reads: timers on.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        Self {
            runtime,
            app,
            publisher,
            verifier,
            request,
        }
    }

    fn request(&self) -> Request<Body> {
        let mut request = Request::new(Body::from(self.request.body().clone()));
        *request.method_mut() = self.request.method().clone();
        *request.uri_mut() = self.request.uri().clone();
        *request.headers_mut() = self.request.headers().clone();
        request
    }

    /// The whole request through the router.
    fn through_router(&self) -> bool {
        let request = self.request();
        let ok = self.runtime.block_on(async {
            let response = self.app.clone().oneshot(request).await.unwrap();
            response.status() == 204
        });
        black_box(self.publisher.take());
        ok
    }

    /// Verification alone, headers parsed, the request built the same way.
    fn verify_only(&self) -> bool {
        let request = self.request();
        let headers = PowensHeaders::from_header_map(request.headers()).unwrap();
        self.verifier
            .verify(
                "POST",
                PATH,
                headers.hmac().unwrap(),
                black_box(self.request.body()),
                Utc::now(),
            )
            .is_ok()
    }
}

fn main() {
    let bench = Bench::new();
    assert!(bench.through_router() && bench.verify_only());
    let mut criterion = Criterion::default().configure_from_args();
    let mut group = criterion.benchmark_group("relay_request_1KiB");
    group.bench_function("verify_only", |b| b.iter(|| bench.verify_only()));
    group.bench_function("through_router", |b| b.iter(|| bench.through_router()));
    group.finish();
    criterion.final_summary();

    // Interleaved batches, medians: a slow spell of the machine hits both alike.
    let runs: [&dyn Fn() -> bool; 2] = [&|| bench.verify_only(), &|| bench.through_router()];
    let mut samples: [Vec<f64>; 2] = Default::default();
    for _ in 0..2000 {
        for (run, times) in runs.iter().zip(samples.iter_mut()) {
            let start = Instant::now();
            for _ in 0..32 {
                black_box(run());
            }
            times.push(start.elapsed().as_nanos() as f64 / 32.0);
        }
    }
    let [verify, router] = samples.map(|mut times| {
        times.sort_by(f64::total_cmp);
        times[times.len() / 2]
    });
    println!("\nInterleaved medians, same run:\n");
    println!("| verify only (ns) | through the router (ns) | router / verify |");
    println!("|---|---|---|");
    println!("| {verify:.0} | {router:.0} | {:.2} |", router / verify);
}
