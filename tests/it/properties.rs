//! proptest properties over everything that signs, verifies or parses.

use chrono::{DateTime, FixedOffset, TimeZone, Utc};
use hmac::{Hmac, KeyInit, Mac};
use http::{HeaderMap, HeaderName, HeaderValue};
use powens_webhooks::{
    BearerToken, CallbackMessage, Domain, Event, FreshnessWindow, HmacHeaders, IsoDateTime,
    KeyRing, OpenIdCibaCallbackMessage, OpenIdCibaPushError, OpenIdCibaPushToken, PowensHeaders,
    PowensHmacSignature, PowensWebhookMessage, Secret, Signature, SignatureDate, SignedPrefix,
    TealMessage, Verifier, sign, sign_parts,
};
use proptest::prelude::*;
use sha2::Sha256;
use std::time::Duration;

/// A `BI-Signature-Date` text: any instant from year 0 to 9999, `Z` or an offset,
/// 0 to 9 fraction digits.
fn date_text() -> impl Strategy<Value = String> {
    (
        -62_167_219_200_i64..253_402_300_799,
        0_u32..1_000_000_000,
        0_usize..=9,
        prop_oneof![
            Just(None),
            (-86_340_i32..86_340).prop_map(|m| Some(m / 60 * 60))
        ],
    )
        .prop_map(|(secs, nanos, digits, offset)| {
            let utc = Utc.timestamp_opt(secs, nanos).unwrap();
            let (base, zone) = match offset {
                None => (utc.naive_utc(), "Z".to_owned()),
                Some(offset) => {
                    let offset = FixedOffset::east_opt(offset).unwrap();
                    let local = utc.with_timezone(&offset);
                    (local.naive_local(), local.format("%:z").to_string())
                }
            };
            let fraction = if digits == 0 {
                String::new()
            } else {
                format!(".{:09}", nanos)[..=digits].to_owned()
            };
            format!("{}{fraction}{zone}", base.format("%Y-%m-%dT%H:%M:%S"))
        })
}

fn method() -> impl Strategy<Value = String> {
    "[A-Z]{1,10}"
}

fn endpoint() -> impl Strategy<Value = String> {
    "/[ -~]{0,200}"
}

fn secret_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 1..200)
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..4096)
}

proptest! {
    /// Whatever the method, endpoint, date, body and secret, what `sign` produces passes
    /// header parsing and `verify`, including the freshness check at the signing instant.
    #[test]
    fn sign_then_verify_round_trips(
        method in method(), endpoint in endpoint(), date in date_text(),
        body in body(), secret in secret_bytes(),
    ) {
        let secret = Secret::from_bytes(secret).unwrap();
        let signature = sign(&secret, &SignedPrefix::new(&method, &endpoint, &date), &body);
        let mut map = HeaderMap::new();
        map.insert("bi-signature", HeaderValue::from_str(&signature.to_base64()).unwrap());
        map.insert("bi-signature-date", HeaderValue::from_str(&date).unwrap());
        let headers = PowensHeaders::from_header_map(&map).unwrap();
        let hmac = headers.hmac().unwrap();
        prop_assert_eq!(hmac.date.raw(), date.as_str());
        let now = hmac.date.at().with_timezone(&Utc);
        let verifier = Verifier::new(KeyRing::new(secret)).with_freshness(FreshnessWindow::default());
        prop_assert_eq!(verifier.verify(&method, &endpoint, hmac, &body, now), Ok(0));
    }

    /// Changing any single bit of any signed part (method, endpoint, date, body) or of the
    /// signature makes verification fail.
    #[test]
    fn any_single_bit_flip_is_refused(
        method in method(), endpoint in endpoint(), date in date_text(),
        body in prop::collection::vec(any::<u8>(), 1..2048), secret in secret_bytes(),
        part in 0_usize..5, position in any::<prop::sample::Index>(), bit in 0_u8..8,
    ) {
        let secret = Secret::from_bytes(secret).unwrap();
        let mut parts: Vec<Vec<u8>> = vec![
            method.into_bytes(), endpoint.into_bytes(), date.into_bytes(), body,
        ];
        let joined = |parts: &[Vec<u8>]| -> Vec<Vec<u8>> {
            vec![
                parts[0].clone(), b".".to_vec(), parts[1].clone(), b".".to_vec(),
                parts[2].clone(), b".".to_vec(), parts[3].clone(),
            ]
        };
        let signed = joined(&parts);
        let refs: Vec<&[u8]> = signed.iter().map(Vec::as_slice).collect();
        let mut signature = *sign_parts(&secret, &refs).as_bytes();
        if part == 4 {
            signature[position.index(32)] ^= 1 << bit;
        } else {
            let target = &mut parts[part];
            let i = position.index(target.len());
            target[i] ^= 1 << bit;
        }
        let changed = joined(&parts);
        let refs: Vec<&[u8]> = changed.iter().map(Vec::as_slice).collect();
        let verifier = Verifier::new(KeyRing::new(secret));
        prop_assert!(verifier.verify_parts(&refs, &Signature::from_bytes(signature), Utc::now()).is_err());
    }

    /// `sign` is exactly `Hmac<Sha256>` over `METHOD.ENDPOINT.DATE.` + body, computed
    /// directly.
    #[test]
    fn sign_equals_a_direct_hmac(
        method in method(), endpoint in endpoint(), date in "[ -~]{0,40}",
        body in body(), secret in secret_bytes(),
    ) {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&secret).unwrap();
        mac.update(format!("{method}.{endpoint}.{date}.").as_bytes());
        mac.update(&body);
        let direct: [u8; 32] = mac.finalize().into_bytes().into();
        let ours = sign(&Secret::from_bytes(secret).unwrap(), &SignedPrefix::new(&method, &endpoint, &date), &body);
        prop_assert_eq!(ours.as_bytes(), &direct);
    }

    /// Header parsing never panics, whatever bytes the three headers hold, and accepts
    /// nothing that lacks both HMAC headers and a bearer token.
    #[test]
    fn header_parsing_never_panics(
        signature in prop::option::of(prop::collection::vec(any::<u8>(), 0..120)),
        date in prop::option::of(prop::collection::vec(any::<u8>(), 0..80)),
        authorization in prop::option::of(prop::collection::vec(any::<u8>(), 0..120)),
        repeat in any::<bool>(),
    ) {
        let mut map = HeaderMap::new();
        let named = [("bi-signature", &signature), ("bi-signature-date", &date), ("authorization", &authorization)];
        for (name, value) in named {
            if let Some(value) = value.as_ref().and_then(|v| HeaderValue::from_bytes(v).ok()) {
                map.append(HeaderName::from_static(name), value.clone());
                if repeat && name == "bi-signature" {
                    map.append(HeaderName::from_static(name), value);
                }
            }
        }
        if let Ok(headers) = PowensHeaders::from_header_map(&map) {
            prop_assert!(headers.hmac().is_some() || headers.bearer().is_some());
        }
    }

    /// Every parser of untrusted text returns, on any string, without panicking.
    #[test]
    fn text_parsers_never_panic(text in any::<String>()) {
        let _ = SignatureDate::parse(&text);
        let _ = Signature::from_base64(&text);
        let _ = BearerToken::parse_authorization(&text);
        let _ = Domain::parse(&text);
        let _ = Event::parse(&text);
        let _ = text.parse::<IsoDateTime>();
    }

    /// The freshness check never panics or wraps, for any date a header can carry and any
    /// clock, and accepts exactly the dates inside the window.
    #[test]
    fn freshness_is_exact_and_total(
        date in date_text(), now_secs in -62_167_219_200_i64..253_402_300_799,
        max_age in 0_u64..1_000_000_000, max_future in 0_u64..1_000_000_000,
    ) {
        let date = SignatureDate::parse(&date).unwrap();
        let now = Utc.timestamp_opt(now_secs, 0).unwrap();
        let window = FreshnessWindow::new(Duration::from_secs(max_age), Duration::from_secs(max_future));
        let at = date.at().with_timezone(&Utc);
        let age_nanos = i128::from(now.timestamp()) * 1_000_000_000 + i128::from(now.timestamp_subsec_nanos())
            - (i128::from(at.timestamp()) * 1_000_000_000 + i128::from(at.timestamp_subsec_nanos()));
        let inside = age_nanos <= i128::from(max_age) * 1_000_000_000
            && -age_nanos <= i128::from(max_future) * 1_000_000_000;
        prop_assert_eq!(window.check(date.at(), now).is_ok(), inside);
    }

    /// A webhook message survives TeaL JSON unchanged, the JSON is ASCII, and it is the same
    /// JSON value serde_json's own writer gives.
    #[test]
    fn webhook_message_json_round_trips(message in webhook_message()) {
        let wire = message.to_json();
        prop_assert!(wire.is_ascii());
        prop_assert_eq!(&PowensWebhookMessage::from_json(&wire).unwrap(), &message);
        let plain: serde_json::Value = serde_json::from_slice(&serde_json::to_vec(&message).unwrap()).unwrap();
        prop_assert_eq!(serde_json::from_slice::<serde_json::Value>(&wire).unwrap(), plain);
    }

    /// Callback and CIBA messages survive TeaL JSON unchanged.
    #[test]
    fn other_messages_json_round_trip(
        t in timestamp(), url in any::<String>(), state in any::<String>(),
        token in prop::option::of(any::<String>()), push in any::<bool>(), expires in timestamp(),
    ) {
        let callback = CallbackMessage { timestamp: t, url: url.clone(), state: state.clone() };
        prop_assert_eq!(CallbackMessage::from_json(&callback.to_json()).unwrap(), callback);
        let ciba = OpenIdCibaCallbackMessage {
            timestamp: t,
            request_id: state,
            access_token: token.clone(),
            push_token: push.then(|| OpenIdCibaPushToken {
                access_token: url.clone(), token_type: "Bearer".into(), refresh_token: url.clone(),
                expires_at: expires, id_token: token.clone(),
            }),
            push_error: (!push).then_some(OpenIdCibaPushError { error: url, error_description: token }),
        };
        prop_assert_eq!(OpenIdCibaCallbackMessage::from_json(&ciba.to_json()).unwrap(), ciba);
    }
}

fn timestamp() -> impl Strategy<Value = IsoDateTime> {
    (
        -62_135_596_800_i64..253_402_300_799,
        0_u32..1_000_000_000,
        any::<bool>(),
    )
        .prop_map(|(secs, nanos, aware)| {
            let utc = Utc.timestamp_opt(secs, nanos).unwrap();
            if aware {
                IsoDateTime::aware(utc.fixed_offset())
            } else {
                IsoDateTime::naive_utc(utc)
            }
        })
}

fn webhook_message() -> impl Strategy<Value = PowensWebhookMessage> {
    (
        timestamp(),
        "[a-z0-9]{1,20}(\\.[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?)?\\.biapi\\.pro",
        "[A-Z_]{1,40}",
        prop::option::of((
            any::<[u8; 32]>(),
            any::<String>(),
            prop::option::of(timestamp()),
        )),
        prop::option::of("[A-Za-z0-9._~+/-]{1,60}"),
        any::<String>(),
    )
        .prop_map(
            |(timestamp, domain, event, hmac, token, payload)| PowensWebhookMessage {
                timestamp,
                domain: domain.parse().unwrap(),
                event: event.parse().unwrap(),
                hmac_signature: hmac.map(|(sig, prefix, date)| PowensHmacSignature {
                    signature: Signature::from_bytes(sig).to_base64(),
                    payload_prefix: prefix,
                    signature_date: date,
                }),
                user_token: token
                    .map(|t| BearerToken::parse_authorization(&format!("Bearer {t}")).unwrap()),
                payload,
            },
        )
}

#[test]
fn generated_dates_cover_the_extremes() {
    // The strategy's bounds are the years 0 and 9999: both parse.
    for raw in [
        "0000-01-01T00:00:00Z",
        "9999-12-31T23:59:59.999999999+23:59",
    ] {
        let date = SignatureDate::parse(raw).unwrap();
        let _: DateTime<FixedOffset> = date.at();
    }
    let _ = HmacHeaders {
        signature: Signature::from_bytes([0; 32]),
        date: SignatureDate::parse("2022-06-27T11:08:52Z").unwrap(),
    };
}
