//! The fuzz targets' oracles (`fuzz/`): each function takes the fuzzer's bytes, feeds
//! them to a parser of untrusted input and checks what must hold whatever they are.
//! The targets are one line each, calling these.
//!
//! Not part of the stable API (hidden from the documentation): these functions may
//! change or go in any release.
// An oracle panics on purpose when what must hold does not: that is the fuzzer's
// finding.
#![allow(clippy::unwrap_used, missing_docs)]

#[cfg(feature = "axum")]
mod axum;
#[cfg(feature = "relay")]
mod relay;

#[cfg(feature = "axum")]
pub use axum::content_encoding;
#[cfg(all(feature = "relay", feature = "test-util"))]
pub use relay::relay_request;
#[cfg(feature = "relay")]
pub use relay::{callback_input, dispatch_input};

use std::time::Duration;

use chrono::{TimeZone, Utc};
use http::{HeaderMap, HeaderName, HeaderValue};

use crate::{
    CallbackMessage, FreshnessWindow, HmacHeaders, IsoDateTime, KeyRing, OpenIdCibaCallbackMessage,
    PowensHeaders, PowensWebhookMessage, Secret, Signature, SignatureDate, SignedPrefix,
    TealMessage, Verifier, sign,
};

/// The signature headers (`BI-Signature`, `BI-Signature-Date`, `Authorization`, a second
/// `BI-Signature`), one per line.
pub fn headers(data: &[u8]) {
    let names = [
        "bi-signature",
        "bi-signature-date",
        "authorization",
        "bi-signature",
    ];
    let mut map = HeaderMap::new();
    for (name, value) in names.iter().zip(data.split(|&b| b == b'\n')) {
        if value.is_empty() {
            continue;
        }
        if let Ok(value) = HeaderValue::from_bytes(value) {
            map.append(HeaderName::from_static(name), value);
        }
    }
    if let Ok(headers) = PowensHeaders::from_header_map(&map) {
        assert!(headers.hmac().is_some() || headers.bearer().is_some());
        if let Some(hmac) = headers.hmac() {
            // What was accepted is exactly what was sent.
            let sent = map.get("bi-signature").unwrap().to_str().unwrap();
            assert_eq!(hmac.signature.to_base64(), sent);
            assert_eq!(
                hmac.date.raw(),
                map.get("bi-signature-date").unwrap().to_str().unwrap()
            );
        }
    }
}

/// A `BI-Signature-Date`, and a TeaL timestamp.
pub fn date(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(date) = SignatureDate::parse(text) {
        assert_eq!(date.raw(), text);
        // Whatever the date, the window check returns and never panics.
        for now in [Utc::now(), Utc.timestamp_opt(0, 0).unwrap()] {
            let _ = FreshnessWindow::default().check(date.at(), now);
            let _ = FreshnessWindow::new(Duration::MAX, Duration::ZERO).check(date.at(), now);
        }
        // The TeaL form of the date reads back as the same instant (to the microsecond).
        let teal = IsoDateTime::aware(date.at());
        let back: IsoDateTime = teal.to_string().parse().unwrap();
        assert_eq!(back, teal);
    }
    if let Ok(iso) = text.parse::<IsoDateTime>() {
        let again: IsoDateTime = iso.to_string().parse().unwrap();
        assert_eq!(again, iso);
    }
}

/// A whole request as the verifier sees it: secret, method, endpoint, date, signature and
/// body, one per line (the body last).
pub fn verify(data: &[u8]) {
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
}

/// A TeaL message's JSON, as a consumer reads it.
pub fn message_json(data: &[u8]) {
    round_trip::<PowensWebhookMessage>(data);
    round_trip::<CallbackMessage>(data);
    round_trip::<OpenIdCibaCallbackMessage>(data);
}

fn round_trip<M: TealMessage + PartialEq + std::fmt::Debug>(data: &[u8]) {
    if let Ok(message) = M::from_json(data) {
        let wire = message.to_json();
        assert!(wire.is_ascii());
        assert_eq!(M::from_json(&wire).unwrap(), message);
    }
}
