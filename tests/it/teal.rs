//! Wire compatibility with TeaL (SPEC §3).

use chrono::{TimeZone, Utc};
use http::{HeaderMap, HeaderValue};
use powens_webhooks::{
    CallbackMessage, Domain, Event, IsoDateTime, KeyRing, MessageError, OpenIdCibaCallbackMessage,
    PowensHeaders, PowensWebhookMessage, Secret, TealExchange, TealMessage, Verifier, VerifyError,
    WebhookRequest,
};

/// SPEC §3, byte for byte.
const SPEC_EXAMPLE: &str = r#"{"timestamp":"2023-05-01T12:00:00","domain":"budgea.biapi.pro","event":"CONNECTION_SYNCED","hmac_signature":{"signature":"kXDKnuuou3BAq/QR73fHcZgN5nYxQUcMy3ye2o5FTFg=","payload_prefix":"POST./powens-webhook/budgea.biapi.pro/CONNECTION_SYNCED.2022-06-27T11:08:52.577831Z.","signature_date":"2022-06-27T11:08:52.577831+00:00"},"user_token":null,"payload":"{\"id\": 1, \"state\": \"done\", \"name\": \"Caf\u00e9\"}"}"#;

/// The message TeaL itself published in our run (SPEC §3).
const TEAL_RUN: &str = r#"{"timestamp":"2026-11-22T08:33:03.697265","domain":"budgea.biapi.pro","event":"CONNECTION_SYNCED","hmac_signature":{"signature":"2aKBLpQQeC6+ck4ztCI/PGTdF1ljstr3Bk2zuvBYraA=","payload_prefix":"POST./powens-webhook/budgea.biapi.pro/CONNECTION_SYNCED.2022-06-27T11:08:52.577831Z.","signature_date":"2022-06-27T11:08:52.577831+00:00"},"user_token":null,"payload":"{\"connection\":{\"id\":42,\"id_user\":7,\"state\":null},\"user\":{\"id\":7}}"}"#;

/// Parsed authentication headers from `(name, value)` pairs.
fn headers_of(pairs: &[(&'static str, &'static str)]) -> PowensHeaders {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.insert(*name, HeaderValue::from_static(value));
    }
    PowensHeaders::from_header_map(&map).unwrap()
}

fn verifier() -> Verifier {
    Verifier::new(KeyRing::new(Secret::new("s3cr3t").unwrap()))
}

#[test]
fn spec_example_parses_reserialises_identically_and_verifies() {
    for wire in [SPEC_EXAMPLE, TEAL_RUN] {
        let message = PowensWebhookMessage::from_json(wire.as_bytes()).unwrap();
        assert_eq!(String::from_utf8(message.to_json()).unwrap(), wire);
        assert_eq!(message.routing_key(), "budgea.biapi.pro");
        assert_eq!(message.verify(&verifier(), Utc::now()), Ok(0));
    }
    let message = PowensWebhookMessage::from_json(SPEC_EXAMPLE.as_bytes()).unwrap();
    assert_eq!(
        message.payload,
        r#"{"id": 1, "state": "done", "name": "Café"}"#
    );
    assert_eq!(message.event.as_str(), "CONNECTION_SYNCED");
    assert!(message.user_token.is_none());

    let mut tampered = message.clone();
    tampered.payload = tampered.payload.replace("done", "dune");
    assert!(matches!(
        tampered.verify(&verifier(), Utc::now()),
        Err(VerifyError::SignatureMismatch { .. })
    ));
}

#[test]
fn a_verified_request_builds_the_spec_example_byte_for_byte() {
    let headers = headers_of(&[
        (
            "bi-signature",
            "kXDKnuuou3BAq/QR73fHcZgN5nYxQUcMy3ye2o5FTFg=",
        ),
        ("bi-signature-date", "2022-06-27T11:08:52.577831Z"),
    ]);
    let domain: Domain = "budgea.biapi.pro".parse().unwrap();
    let event: Event = "CONNECTION_SYNCED".parse().unwrap();
    let body = r#"{"id": 1, "state": "done", "name": "Café"}"#;
    let request = WebhookRequest {
        method: "POST",
        endpoint: "/powens-webhook/budgea.biapi.pro/CONNECTION_SYNCED",
        domain: &domain,
        event: &event,
        headers: &headers,
        body: body.as_bytes(),
    };
    let received = Utc.with_ymd_and_hms(2023, 5, 1, 12, 0, 0).unwrap();
    let message = request
        .verify(&verifier(), received)
        .unwrap()
        .to_message(IsoDateTime::naive_utc(received))
        .unwrap();
    assert_eq!(String::from_utf8(message.to_json()).unwrap(), SPEC_EXAMPLE);
}

#[test]
fn bearer_only_request_is_forwarded_with_its_token_and_no_signature() {
    let headers = headers_of(&[("authorization", "Bearer user-token_42")]);
    let domain: Domain = "budgea.biapi.pro".parse().unwrap();
    let event: Event = "USER_SYNCED".parse().unwrap();
    let request = WebhookRequest {
        method: "POST",
        endpoint: "/powens-webhook/budgea.biapi.pro/USER_SYNCED",
        domain: &domain,
        event: &event,
        headers: &headers,
        body: b"{}",
    };
    assert_eq!(
        request.verify(&verifier(), Utc::now()).unwrap_err(),
        VerifyError::Unsigned
    );
    let message = request
        .to_unverified_message("2023-05-01T12:00:00".parse().unwrap())
        .unwrap();
    let wire = String::from_utf8(message.to_json()).unwrap();
    assert_eq!(
        wire,
        r#"{"timestamp":"2023-05-01T12:00:00","domain":"budgea.biapi.pro","event":"USER_SYNCED","hmac_signature":null,"user_token":"user-token_42","payload":"{}"}"#
    );
    assert!(
        !format!("{message:?}").contains("user-token_42"),
        "Debug hides the token"
    );
    assert_eq!(
        message.verify(&verifier(), Utc::now()),
        Err(VerifyError::Unsigned)
    );
}

#[test]
fn non_utf8_body_cannot_become_a_message() {
    let headers = headers_of(&[("authorization", "Bearer t")]);
    let domain: Domain = "budgea.biapi.pro".parse().unwrap();
    let event: Event = "USER_SYNCED".parse().unwrap();
    let request = WebhookRequest {
        method: "POST",
        endpoint: "/e",
        domain: &domain,
        event: &event,
        headers: &headers,
        body: b"ok\xff",
    };
    assert_eq!(
        request.to_unverified_message(IsoDateTime::now_naive_utc()),
        Err(MessageError::PayloadNotUtf8 { valid_up_to: 2 })
    );
}

#[test]
fn missing_optional_fields_read_as_null_and_are_written() {
    let minimal = r#"{"timestamp":"2023-05-01T12:00:00Z","domain":"budgea.biapi.pro","event":"USER_CREATED","payload":"{}","extra":"ignored"}"#;
    let message = PowensWebhookMessage::from_json(minimal.as_bytes()).unwrap();
    assert!(message.hmac_signature.is_none() && message.user_token.is_none());
    let wire = String::from_utf8(message.to_json()).unwrap();
    assert!(
        wire.contains(r#""hmac_signature":null,"user_token":null"#),
        "{wire}"
    );
}

#[test]
fn bad_messages_get_errors_that_quote_nothing() {
    let cases = [
        (
            r#"{"timestamp":"secret-token-value","domain":"budgea.biapi.pro","event":"E","payload":""}"#,
            "wrong type or value",
        ),
        (
            r#"{"timestamp":"2023-05-01T12:00:00","domain":"budgea.biapi.pro","event":"E"}"#,
            "missing field `payload`",
        ),
        (
            r#"{"timestamp":"2023-05-01T12:00:00","domain":"evil.example","event":"E","payload":""}"#,
            "wrong type or value",
        ),
        (r#"{"timestamp":"#, "ends too early"),
        ("not json", "not JSON"),
    ];
    for (wire, expected) in cases {
        let err = PowensWebhookMessage::from_json(wire.as_bytes()).unwrap_err();
        let text = err.to_string();
        assert!(text.contains(expected), "{wire}: {text}");
        assert!(
            !text.contains("secret-token-value") && !text.contains("evil"),
            "{text}"
        );
    }
}

#[test]
fn callback_and_ciba_messages_use_teal_field_names_and_exchanges() {
    let callback = r#"{"timestamp":"2023-05-01T12:00:00.123456","url":"https://example.invalid/cb?state=abc&code=x#frag","state":"abc"}"#;
    let message = CallbackMessage::from_json(callback.as_bytes()).unwrap();
    assert_eq!(String::from_utf8(message.to_json()).unwrap(), callback);
    assert_eq!(
        (message.routing_key(), CallbackMessage::EXCHANGE),
        ("abc", TealExchange::Callbacks)
    );

    let push = r#"{"timestamp":"2023-05-01T12:00:00","request_id":"req-1","access_token":"at","push_token":{"access_token":"a","token_type":"Bearer","refresh_token":"r","expires_at":"2023-05-01T13:00:00+00:00","id_token":null},"push_error":null}"#;
    let message = OpenIdCibaCallbackMessage::from_json(push.as_bytes()).unwrap();
    assert_eq!(String::from_utf8(message.to_json()).unwrap(), push);
    assert_eq!(message.routing_key(), "req-1");
    assert_eq!(
        OpenIdCibaCallbackMessage::EXCHANGE.name("teal_"),
        "teal_openid_ciba_callbacks"
    );
    let debug = format!("{message:?}");
    assert!(
        !debug.contains("\"at\"") && !debug.contains("\"r\""),
        "{debug}"
    );

    let error = r#"{"timestamp":"2023-05-01T12:00:00","request_id":"req-2","push_error":{"error":"access_denied"}}"#;
    let message = OpenIdCibaCallbackMessage::from_json(error.as_bytes()).unwrap();
    assert_eq!(message.push_error.as_ref().unwrap().error, "access_denied");
    assert_eq!(
        String::from_utf8(message.to_json()).unwrap(),
        r#"{"timestamp":"2023-05-01T12:00:00","request_id":"req-2","access_token":null,"push_token":null,"push_error":{"error":"access_denied","error_description":null}}"#
    );
}

/// Every message under `fixtures/teal/` was written by Python exactly as TeaL writes it
/// (`fixtures/generate.py`): reading and writing it again gives the same bytes.
#[test]
fn python_written_messages_reserialise_byte_for_byte() {
    fn check<M: TealMessage + PartialEq + std::fmt::Debug>(file: &str) -> Vec<M> {
        let text = std::fs::read_to_string(crate::fixture(format!("teal/{file}"))).unwrap();
        let messages: Vec<M> = text
            .lines()
            .map(|line| {
                let message =
                    M::from_json(line.as_bytes()).unwrap_or_else(|e| panic!("{file}: {e}: {line}"));
                assert_eq!(
                    String::from_utf8(message.to_json()).unwrap(),
                    line,
                    "{file}"
                );
                message
            })
            .collect();
        assert!(messages.len() >= 2, "{file}");
        messages
    }
    let webhooks = check::<PowensWebhookMessage>("powens_domain_webhooks.jsonl");
    assert!(webhooks.len() > 16, "one per event and a bearer-only one");
    let mut signed = 0;
    for message in &webhooks {
        if message.hmac_signature.is_some() {
            assert_eq!(
                message.verify(&verifier(), Utc::now()),
                Ok(0),
                "{message:?}"
            );
            signed += 1;
        }
    }
    assert!(signed >= 16 && webhooks.iter().any(|m| m.user_token.is_some()));
    check::<CallbackMessage>("callbacks.jsonl");
    check::<OpenIdCibaCallbackMessage>("openid_ciba_callbacks.jsonl");
}
