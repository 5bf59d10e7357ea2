//! Signing and verifying arbitrary requests.
//!
//! Input: lines `secret`, `method`, `endpoint`, `date`, `signature`, then the body (the
//! rest, newlines included).
#![no_main]

use chrono::Utc;
use libfuzzer_sys::fuzz_target;
use powens_webhooks::{
    FreshnessWindow, HmacHeaders, KeyRing, Secret, Signature, SignatureDate, SignedPrefix,
    Verifier, sign,
};

fuzz_target!(|data: &[u8]| {
    let mut fields = data.splitn(6, |&b| b == b'\n');
    let (Some(secret), Some(method), Some(endpoint), Some(date), Some(signature)) = (
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
    ) else {
        return;
    };
    let body = fields.next().unwrap_or_default();
    let (Ok(method), Ok(endpoint), Ok(date_text), Ok(signature_text)) = (
        std::str::from_utf8(method),
        std::str::from_utf8(endpoint),
        std::str::from_utf8(date),
        std::str::from_utf8(signature),
    ) else {
        return;
    };
    let Ok(secret) = Secret::from_bytes(secret.to_vec()) else {
        return;
    };
    let verifier =
        Verifier::new(KeyRing::new(secret.clone())).with_freshness(FreshnessWindow::default());
    let Ok(date) = SignatureDate::parse(date_text) else {
        return;
    };
    let now = Utc::now();
    // The given signature: whatever the outcome, no panic.
    if let Ok(signature) = Signature::from_base64(signature_text) {
        let hmac = HmacHeaders {
            signature,
            date: date.clone(),
        };
        let _ = verifier.verify(method, endpoint, &hmac, body, now);
    }
    // Our own signature always verifies (without the clock), and a changed body never does.
    let signature = sign(
        &secret,
        &SignedPrefix::new(method, endpoint, date_text),
        body,
    );
    let hmac = HmacHeaders { signature, date };
    let at = hmac.date.at().with_timezone(&Utc);
    assert_eq!(verifier.verify(method, endpoint, &hmac, body, at), Ok(0));
    let mut changed = body.to_vec();
    changed.push(b'!');
    assert!(
        verifier
            .verify(method, endpoint, &hmac, &changed, at)
            .is_err()
    );
});
