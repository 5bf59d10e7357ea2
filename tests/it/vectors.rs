//! Known-answer vectors: every file in `fixtures/signatures/` runs here.

use chrono::{DateTime, Utc};
use http::{HeaderMap, HeaderValue};
use powens_webhooks::{
    FreshnessWindow, HeaderError, KeyRing, PowensHeaders, Secret, SignedPrefix, Verifier,
    VerifyError, sign,
};
use serde::Deserialize;
use std::time::Duration;

use crate::fixture;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct VectorFile {
    source: String,
    how: String,
    cases: Vec<Case>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    secret: String,
    method: String,
    endpoint: String,
    date: String,
    body: Option<String>,
    body_file: Option<String>,
    signature: String,
    expect: String,
    now: Option<String>,
    max_age_secs: Option<u64>,
    max_future_secs: Option<u64>,
}

impl Case {
    fn body(&self) -> Vec<u8> {
        match (&self.body, &self.body_file) {
            (Some(body), None) => body.as_bytes().to_vec(),
            (None, Some(file)) => std::fs::read(fixture(file)).unwrap(),
            _ => panic!("{}: give exactly one of body and body_file", self.name),
        }
    }

    /// Runs the case through header parsing and verification; `Err` describes a mismatch
    /// between what happened and what the file expects.
    fn run(&self) -> Result<(), String> {
        let body = self.body();
        let mut headers = HeaderMap::new();
        headers.insert(
            "bi-signature",
            HeaderValue::from_str(&self.signature).unwrap(),
        );
        headers.insert(
            "bi-signature-date",
            HeaderValue::from_str(&self.date).unwrap(),
        );
        let secret = Secret::new(&self.secret).unwrap();
        let outcome = match PowensHeaders::from_header_map(&headers) {
            Err(HeaderError::SignatureWrongLength { .. }) => "signature-wrong-length".to_owned(),
            Err(HeaderError::SignatureNotBase64) => "signature-not-base64".to_owned(),
            Err(other) => format!("header error: {other}"),
            Ok(parsed) => {
                let hmac = parsed.hmac().unwrap();
                assert_eq!(
                    hmac.date.raw(),
                    self.date,
                    "the raw date is kept byte for byte"
                );
                let mut verifier = Verifier::new(KeyRing::new(secret.clone()));
                if let Some(max_age) = self.max_age_secs {
                    verifier = verifier.with_freshness(FreshnessWindow::new(
                        Duration::from_secs(max_age),
                        Duration::from_secs(self.max_future_secs.unwrap()),
                    ));
                }
                let now = self.now.as_deref().map_or_else(
                    || hmac.date.at().with_timezone(&Utc),
                    |now| {
                        DateTime::parse_from_rfc3339(now)
                            .unwrap()
                            .with_timezone(&Utc)
                    },
                );
                match verifier.verify(&self.method, &self.endpoint, hmac, &body, now) {
                    Ok(0) => "valid".to_owned(),
                    Ok(index) => format!("matched key {index}"),
                    Err(VerifyError::SignatureMismatch { .. }) => "mismatch".to_owned(),
                    Err(VerifyError::Stale { .. }) => "stale".to_owned(),
                    Err(VerifyError::FromTheFuture { .. }) => "future".to_owned(),
                    Err(other) => format!("verify error: {other}"),
                }
            }
        };
        if outcome != self.expect {
            return Err(format!(
                "{}: expected {}, got {outcome}",
                self.name, self.expect
            ));
        }
        if self.expect == "valid" {
            let prefix = SignedPrefix::new(&self.method, &self.endpoint, &self.date);
            let ours = sign(&secret, &prefix, &body).to_base64();
            if ours != self.signature {
                return Err(format!(
                    "{}: sign gave {ours}, the vector says {}",
                    self.name, self.signature
                ));
            }
        }
        Ok(())
    }
}

#[test]
fn every_signature_vector_file() {
    let mut files: Vec<_> = std::fs::read_dir(fixture("signatures"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    files.sort();
    assert!(files.len() >= 4, "vector files missing: {files:?}");
    let mut failures = Vec::new();
    let mut counts = std::collections::BTreeMap::<String, usize>::new();
    for path in &files {
        let file: VectorFile = serde_json::from_slice(&std::fs::read(path).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(
            !file.source.is_empty() && !file.how.is_empty(),
            "{}",
            path.display()
        );
        assert!(!file.cases.is_empty(), "{} has no case", path.display());
        for case in &file.cases {
            *counts.entry(case.expect.clone()).or_default() += 1;
            if let Err(failure) = case.run() {
                failures.push(format!("{}: {failure}", path.display()));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} vector(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // Each kind of outcome is exercised, so a file that silently lost its negative cases
    // is noticed.
    for expect in [
        "valid",
        "mismatch",
        "stale",
        "future",
        "signature-wrong-length",
        "signature-not-base64",
    ] {
        assert!(
            counts.get(expect).is_some_and(|&n| n > 0),
            "no {expect} case: {counts:?}"
        );
    }
}

#[test]
fn the_docs_example_is_the_first_case_of_its_file() {
    let file: VectorFile =
        serde_json::from_slice(&std::fs::read(fixture("signatures/powens-docs.json")).unwrap())
            .unwrap();
    let first = &file.cases[0];
    assert_eq!(
        first.signature,
        "GVtud1v5GUAqTGvCgbxdjk+/+KTNLYKdQe4j88dxTbo="
    );
    assert_eq!(first.expect, "valid");
    first.run().unwrap();
}

#[test]
fn errors_never_show_the_secret_or_the_signature() {
    let secret = "a-very-recognisable-secret";
    let signature = "GVtud1v5GUAqTGvCgbxdjk+/+KTNLYKdQe4j88dxTbo=";
    let mut headers = HeaderMap::new();
    headers.insert("bi-signature", HeaderValue::from_static(signature));
    headers.insert(
        "bi-signature-date",
        HeaderValue::from_static("2022-06-27T11:08:52Z"),
    );
    let parsed = PowensHeaders::from_header_map(&headers).unwrap();
    let verifier = Verifier::new(KeyRing::new(Secret::new(secret).unwrap()))
        .for_domain("budgea.biapi.pro".parse().unwrap());
    let err = verifier
        .verify("POST", "/x", parsed.hmac().unwrap(), b"{}", Utc::now())
        .unwrap_err();
    let shown = format!("{err} {err:?} {verifier:?} {parsed:?}");
    assert_eq!(
        err.to_string(),
        "signature does not match any key for budgea.biapi.pro"
    );
    for needle in [secret, signature, &signature[..12]] {
        assert!(!shown.contains(needle), "{needle:?} shown in {shown}");
    }
    let mut headers = HeaderMap::new();
    headers.insert(
        "bi-signature",
        HeaderValue::from_static("R1Z0dWQxdjVHVUFxVEd2Q2dieGRqaw=="),
    );
    headers.insert(
        "bi-signature-date",
        HeaderValue::from_static("2022-06-27T11:08:52Z"),
    );
    let err = PowensHeaders::from_header_map(&headers).unwrap_err();
    assert!(!format!("{err} {err:?}").contains("R1Z0dWQx"), "{err}");
}
