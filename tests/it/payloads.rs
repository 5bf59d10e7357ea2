//! The payload fixtures: one per Powens event, each relayed as a TeaL message.

use chrono::{TimeZone, Utc};
use http::{HeaderMap, HeaderValue};
use powens_webhooks::{
    Domain, Event, FreshnessWindow, IsoDateTime, KNOWN_EVENTS, KeyRing, PowensHeaders,
    PowensWebhookMessage, Secret, SignedPrefix, TealMessage, Verifier, WebhookRequest, sign,
};

use crate::fixture;

#[test]
fn every_known_event_has_a_payload_fixture() {
    for event in KNOWN_EVENTS {
        let path = fixture(format!("payloads/{event}.json"));
        let body = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert!(
            json["id_webhook_data"].is_u64(),
            "{event}: a Powens body carries an integer id_webhook_data"
        );
    }
}

#[test]
fn every_payload_fixture_is_relayed_intact() {
    let domain: Domain = "budgea.biapi.pro".parse().unwrap();
    let secret = Secret::new("s3cr3t").unwrap();
    let verifier = Verifier::new(KeyRing::new(secret.clone()))
        .for_domain(domain.clone())
        .with_freshness(FreshnessWindow::default());
    let date = "2024-03-04T09:13:01.654321Z";
    let now = Utc.with_ymd_and_hms(2024, 3, 4, 9, 14, 0).unwrap();
    let mut seen = 0;
    for entry in std::fs::read_dir(fixture("payloads")).unwrap() {
        let path = entry.unwrap().path();
        let file_name = path.file_name().unwrap().to_str().unwrap().to_owned();
        let event: Event = file_name.split('.').next().unwrap().parse().unwrap();
        let body = std::fs::read(&path).unwrap();
        let endpoint = format!("/powens-webhook/{domain}/{event}");
        let signature = sign(&secret, &SignedPrefix::new("POST", &endpoint, date), &body);
        let mut map = HeaderMap::new();
        map.insert(
            "bi-signature",
            HeaderValue::from_str(&signature.to_base64()).unwrap(),
        );
        map.insert("bi-signature-date", HeaderValue::from_static(date));
        let headers = PowensHeaders::from_header_map(&map).unwrap();
        let request = WebhookRequest {
            method: "POST",
            endpoint: &endpoint,
            domain: &domain,
            event: &event,
            headers: &headers,
            body: &body,
        };
        let message = request
            .verify(&verifier, now)
            .unwrap()
            .to_message(IsoDateTime::naive_utc(now))
            .unwrap();
        assert_eq!(message.payload.as_bytes(), &body[..], "{file_name}");
        let wire = message.to_json();
        assert!(wire.is_ascii(), "{file_name}: TeaL JSON is ASCII");
        let back = PowensWebhookMessage::from_json(&wire).unwrap();
        assert_eq!(back, message, "{file_name}");
        assert_eq!(
            back.verify(&verifier, now),
            Ok(0),
            "{file_name}: consumer-side check"
        );
        if file_name.ends_with(".json") {
            let id = serde_json::from_slice::<serde_json::Value>(&body).unwrap()["id_webhook_data"]
                .as_u64();
            assert_eq!(back.id_webhook_data(), id, "{file_name}");
        }
        seen += 1;
    }
    assert!(
        seen > KNOWN_EVENTS.len(),
        "payload fixtures missing: saw {seen}"
    );
}
