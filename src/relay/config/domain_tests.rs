//! The configuration's domains: their flags, their secrets and a secret's expiry.

use super::tests::{ONE_DOMAIN, invalid_keys, secret_file};
use super::*;
use crate::axum::DomainPolicy;

#[test]
fn no_domain_is_an_error() {
    assert_eq!(invalid_keys("", &Overrides::default()), ["domains"]);
}

#[test]
fn domain_flags_replace_file_entries_and_resolve_secrets() {
    let path = secret_file("config", "s3cr3t\n");
    let overrides =
        Overrides::new().with_domain(format!("BUDGEA.biapi.pro=file:{}", path.display()));
    let config = RelayConfig::from_toml(ONE_DOMAIN, &overrides).unwrap();
    std::fs::remove_file(&path).unwrap();
    // The flag names the file's domain in another case: it replaces the entry.
    let domains = config.webhook.webhooks.domains();
    assert_eq!(domains.len(), 1);
    match domains.values().next() {
        Some(DomainPolicy::Verify(v)) => assert_eq!(v.keys().keys().len(), 1),
        other => panic!("expected a verifier, got {other:?}"),
    }
}

#[test]
fn a_secret_with_an_expiry_keeps_it_in_the_key_ring_and_a_bad_one_is_named() {
    let path = secret_file("expiry", "old");
    let text = format!(
        "[domains.\"budgea.biapi.pro\"]\nsecrets = [\"file:{0}\", \
         {{ ref = \"file:{0}\", expires_at = \"2026-11-01T00:00:00Z\" }}]\n",
        path.display()
    );
    let config = RelayConfig::from_toml(&text, &Overrides::default()).unwrap();
    let domains = config.webhook.webhooks.domains();
    let Some(DomainPolicy::Verify(verifier)) = domains.values().next() else {
        panic!("a verifier");
    };
    let expiries: Vec<_> = verifier
        .keys()
        .keys()
        .iter()
        .map(|k| k.expires_at())
        .collect();
    assert_eq!(
        expiries,
        [None, Some("2026-11-01T00:00:00Z".parse().unwrap())]
    );
    let bad = text.replace("2026-11-01T00:00:00Z", "soon");
    assert_eq!(
        invalid_keys(&bad, &Overrides::default()),
        ["domains.\"budgea.biapi.pro\".secrets[1]"]
    );
}
