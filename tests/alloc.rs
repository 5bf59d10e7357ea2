//! Verifying a body allocates nothing in proportion to it: the HMAC is fed the prefix
//! parts and then the body, which is never copied.
//!
//! Its own test binary: it installs a counting global allocator (dhat's), which would
//! count every other test's allocations too.
#![allow(clippy::unwrap_used, unreachable_pub)]

use chrono::{TimeZone, Utc};
use powens_webhooks::{
    FreshnessWindow, HmacHeaders, KeyRing, Secret, SignatureDate, SignedPrefix, Verifier, sign,
};

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

/// Bytes `f` allocates in total (not net: a buffer allocated and freed still counts).
fn allocated_by(f: impl FnOnce()) -> u64 {
    let before = dhat::HeapStats::get().total_bytes;
    f();
    dhat::HeapStats::get().total_bytes - before
}

#[test]
fn verifying_a_1_mib_body_allocates_a_small_constant() {
    let _profiler = dhat::Profiler::builder().testing().build();

    let body: Vec<u8> = (0..1024 * 1024).map(|i| (i % 251) as u8).collect();
    let endpoint = "/powens-webhook/budgea.biapi.pro/CONNECTION_SYNCED";
    let date = SignatureDate::parse("2022-06-27T11:08:52.577831Z").unwrap();
    let secret = Secret::new("s3cr3t").unwrap();
    let signature = sign(
        &secret,
        &SignedPrefix::new("POST", endpoint, date.raw()),
        &body,
    );
    let hmac = HmacHeaders { signature, date };
    let verifier = Verifier::new(KeyRing::new(secret))
        .for_domain("budgea.biapi.pro".parse().unwrap())
        .with_freshness(FreshnessWindow::default());
    let now = Utc.with_ymd_and_hms(2022, 6, 27, 11, 9, 0).unwrap();

    // Sanity: the counter sees an allocation of the body's size.
    assert!(allocated_by(|| drop(body.clone())) >= body.len() as u64);

    let mut outcome = None;
    let bytes =
        allocated_by(|| outcome = Some(verifier.verify("POST", endpoint, &hmac, &body, now)));
    assert_eq!(outcome.unwrap(), Ok(0));
    assert!(
        bytes <= 256,
        "verifying a 1 MiB body allocated {bytes} bytes"
    );

    // A failed verification (the error names the domain) stays small too.
    let mut tampered = body.clone();
    tampered[512 * 1024] ^= 1;
    let mut outcome = None;
    let bytes =
        allocated_by(|| outcome = Some(verifier.verify("POST", endpoint, &hmac, &tampered, now)));
    assert!(outcome.unwrap().is_err());
    assert!(
        bytes <= 256,
        "refusing a 1 MiB body allocated {bytes} bytes"
    );
}
