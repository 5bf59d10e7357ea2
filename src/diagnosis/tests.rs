//! One test per cause: the mistake made, the diagnosis read back.

use std::io::Write;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use proptest::prelude::*;

use super::*;
use crate::headers::{HmacHeaders, SignatureDate};
use crate::keyring::{Key, KeyRing};
use crate::secret::Secret;
use crate::signature::{SignedPrefix, sign};
use crate::verify::{FreshnessWindow, Verifier, VerifyError};

const PATH: &str = "/powens-webhook/budgea.biapi.pro/USER_SYNCED";
const BODY: &[u8] = br#"{"id_webhook_data": 1}"#;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 3, 12, 0, 0).unwrap()
}

fn secret(text: &str) -> Secret {
    Secret::new(text).unwrap()
}

fn domain(name: &str) -> Domain {
    Domain::parse(name).unwrap()
}

/// A date `at`, signed by `key` for `endpoint` over `body`.
fn hmac(key: &str, endpoint: &str, body: &[u8], at: DateTime<Utc>) -> HmacHeaders {
    let date = SignatureDate::parse(&at.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()).unwrap();
    let signature = sign(
        &secret(key),
        &SignedPrefix::new("POST", endpoint, date.raw()),
        body,
    );
    HmacHeaders { signature, date }
}

/// The relay's setting: budgea with "current" (and "old", expired an hour ago), other
/// with "other-secret"; the prefix put back.
struct Setting {
    own: Verifier,
    other: KeyRing,
    other_domain: Domain,
    domain: Domain,
}

impl Setting {
    fn new() -> Self {
        let ring = KeyRing::from_keys(vec![
            Key::new(secret("current"), None),
            Key::new(secret("old"), Some(now() - TimeDelta::hours(1))),
        ])
        .unwrap();
        let domain = domain("budgea.biapi.pro");
        Self {
            own: Verifier::new(ring)
                .for_domain(domain.clone())
                .with_freshness(FreshnessWindow::default()),
            other: KeyRing::new(secret("other-secret")),
            other_domain: self::domain("other.biapi.pro"),
            domain,
        }
    }

    /// The diagnosis of a request received at `PATH` with `prefix` put back.
    fn diagnose(
        &self,
        prefix: &str,
        hmac: &HmacHeaders,
        received: &[u8],
        decoded: Option<&[u8]>,
        refusal: &VerifyError,
    ) -> Diagnosis {
        let hints = vec!["/from-header".to_owned()];
        let suspect = Suspect {
            method: "POST",
            path: PATH,
            prefix,
            hints: &hints,
            domain: &self.domain,
            hmac,
            received,
            decoded,
            limit: 1 << 20,
        };
        let rings = Rings {
            own: &self.own,
            others: vec![(&self.other_domain, &self.other)],
        };
        diagnose(&suspect, &rings, refusal, now()).expect("a signature refusal")
    }
}

fn mismatch() -> VerifyError {
    VerifyError::SignatureMismatch { domain: None }
}

fn gzip(data: &[u8], level: u32) -> Vec<u8> {
    let mut gz = flate2::GzBuilder::new().write(Vec::new(), flate2::Compression::new(level));
    gz.write_all(data).unwrap();
    gz.finish().unwrap()
}

#[test]
fn a_prefix_the_proxy_strips_is_named() {
    let setting = Setting::new();
    let signed = hmac("current", &format!("/hooks{PATH}"), BODY, now());
    let found = setting.diagnose("", &signed, BODY, None, &mismatch());
    assert_eq!(found.cause(), Cause::PathPrefix);
    assert_eq!(
        found.to_string(),
        "signed as /hooks/powens-webhook/…: set public_path_prefix = \"/hooks\" (it is (none))"
    );
    // A prefix the proxy's header gives.
    let signed = hmac("current", &format!("/from-header{PATH}"), BODY, now());
    let found = setting.diagnose("/hooks", &signed, BODY, None, &mismatch());
    assert!(
        found
            .to_string()
            .contains("= \"/from-header\" (it is /hooks)"),
        "{found}"
    );
}

#[test]
fn a_prefix_the_proxy_does_not_strip_is_named() {
    let setting = Setting::new();
    let signed = hmac("current", PATH, BODY, now());
    let found = setting.diagnose("/hooks", &signed, BODY, None, &mismatch());
    assert_eq!(found.cause(), Cause::PathPrefix);
    assert!(
        found.to_string().ends_with("remove public_path_prefix"),
        "{found}"
    );
    // Part of it stripped.
    let signed = hmac("current", &format!("/v1{PATH}"), BODY, now());
    let found = setting.diagnose("/edge/v1", &signed, BODY, None, &mismatch());
    assert!(
        found
            .to_string()
            .contains("set public_path_prefix = \"/v1\""),
        "{found}"
    );
}

#[test]
fn an_expired_secret_is_named_with_its_date() {
    let setting = Setting::new();
    let signed = hmac("old", PATH, BODY, now());
    let found = setting.diagnose("", &signed, BODY, None, &mismatch());
    assert_eq!(found.cause(), Cause::ExpiredSecret);
    assert!(
        found.to_string().starts_with(
            "signed with a secret of this domain that expired at 2026-12-03T11:00:00Z (secrets[1])"
        ),
        "{found}"
    );
}

#[test]
fn another_domains_secret_is_named() {
    let setting = Setting::new();
    let signed = hmac("other-secret", PATH, BODY, now());
    let found = setting.diagnose("", &signed, BODY, None, &mismatch());
    assert_eq!(found.cause(), Cause::OtherDomain);
    assert!(
        found.to_string().starts_with(
            "signed with the secret of domain other.biapi.pro, not budgea.biapi.pro's"
        ),
        "{found}"
    );
}

#[test]
fn a_body_in_the_other_encoding_is_named() {
    let setting = Setting::new();
    // Signed decompressed, arrived compressed without its header.
    let signed = hmac("current", PATH, BODY, now());
    let compressed = gzip(BODY, 6);
    let found = setting.diagnose("", &signed, &compressed, None, &mismatch());
    assert_eq!(found.cause(), Cause::ContentEncoding);
    assert!(
        found.to_string().contains("without Content-Encoding"),
        "{found}"
    );
    // Signed compressed (level 9, no date in the header), arrived decompressed.
    let signed = hmac("current", PATH, &gzip(BODY, 9), now());
    let found = setting.diagnose("", &signed, BODY, None, &mismatch());
    assert_eq!(found.cause(), Cause::ContentEncoding);
    assert!(
        found.to_string().contains("arrived decompressed"),
        "{found}"
    );
}

#[test]
fn a_date_outside_the_window_says_by_how_much() {
    let setting = Setting::new();
    let at = now() - TimeDelta::seconds(15 * 60 + 432);
    let signed = hmac("current", PATH, BODY, at);
    let stale = VerifyError::Stale {
        age_secs: 1332,
        max_age_secs: 900,
    };
    let found = setting.diagnose("", &signed, BODY, None, &stale);
    assert_eq!(found.cause(), Cause::Clock);
    assert_eq!(
        found.to_string(),
        "the BI-Signature-Date is 22 min 12 s behind this relay's clock; the window is 15 min \
         behind to 2 min ahead; check the clock of this host and of the sender (NTP), or this \
         is a replayed or long-delayed request"
    );
    let ahead = hmac("other-secret", PATH, BODY, now() + TimeDelta::seconds(200));
    let future = VerifyError::FromTheFuture {
        ahead_secs: 200,
        max_future_secs: 120,
    };
    let found = setting.diagnose("", &ahead, BODY, None, &future);
    assert_eq!(found.cause(), Cause::Clock);
    let text = found.to_string();
    assert!(
        text.starts_with("the BI-Signature-Date is 3 min 20 s ahead"),
        "{text}"
    );
    assert!(text.contains("does not match either: signed with the secret of domain other"));
}

#[test]
fn nothing_matched_says_the_secret_differs_and_quotes_no_secret() {
    let setting = Setting::new();
    let signed = hmac("unknown", PATH, BODY, now());
    let found = setting.diagnose("", &signed, BODY, None, &mismatch());
    assert_eq!(found.cause(), Cause::Secret);
    let text = found.to_string();
    assert!(text.contains("the secret most likely differs"), "{text}");
    for secret in ["current", "old", "other-secret", "unknown"] {
        assert!(!text.contains(secret), "{text}");
    }
    assert!(!text.contains(&signed.signature.to_base64()));
    // Not a refusal of the signature: nothing to diagnose.
    let suspect = Suspect {
        method: "POST",
        path: PATH,
        prefix: "",
        hints: &[],
        domain: &setting.domain,
        hmac: &signed,
        received: BODY,
        decoded: None,
        limit: 1,
    };
    let rings = Rings {
        own: &setting.own,
        others: Vec::new(),
    };
    assert_eq!(
        diagnose(&suspect, &rings, &VerifyError::UnsignedRequest, now()),
        None
    );
}

#[test]
fn a_large_body_is_checked_within_the_budget() {
    let setting = Setting::new();
    let body = vec![b'x'; 40 << 20];
    let signed = hmac("unknown", PATH, &body, now());
    let found = setting.diagnose("", &signed, &body, None, &mismatch());
    assert_eq!(found.cause(), Cause::Secret);
    assert!(
        found.to_string().starts_with("the body is too large"),
        "{found}"
    );
}

proptest! {
    /// The diagnosis of any request, however malformed its path, prefix, body or date,
    /// returns a sentence without panicking.
    #[test]
    fn the_diagnosis_never_panics(
        prefix in "(/[a-z]{0,4}){0,3}",
        hint in "\\PC{0,30}",
        body in proptest::collection::vec(any::<u8>(), 0..200),
        gzip_magic in any::<bool>(),
        offset in any::<i32>(),
        stale in any::<bool>(),
    ) {
        let setting = Setting::new();
        let mut body = body;
        if gzip_magic {
            body.splice(0..0, [0x1f, 0x8b]);
        }
        let at = now() + TimeDelta::seconds(i64::from(offset));
        let signed = hmac("unknown", PATH, &body, at);
        let refusal = if stale {
            VerifyError::Stale { age_secs: 0, max_age_secs: 0 }
        } else {
            mismatch()
        };
        let hints = vec![hint];
        let suspect = Suspect {
            method: "POST",
            path: PATH,
            prefix: &prefix,
            hints: &hints,
            domain: &setting.domain,
            hmac: &signed,
            received: &body,
            decoded: None,
            limit: 1 << 16,
        };
        let rings = Rings { own: &setting.own, others: vec![(&setting.other_domain, &setting.other)] };
        let found = diagnose(&suspect, &rings, &refusal, now()).unwrap();
        prop_assert!(!found.to_string().is_empty());
    }
}

#[test]
fn the_freshness_window_shows_in_whole_units() {
    let window = FreshnessWindow::new(Duration::from_secs(300), Duration::from_secs(60));
    assert_eq!(window.bounds_secs(), (300, 60));
}
