//! The relay's inputs: a whole request through the router, the listener's and the
//! dispatcher's parsers.

use url::Url;

use crate::TealExchange;
use crate::relay::callback::{
    CallbackState, CibaNotification, FullUrl, MAX_PARAMS, Query, decode_base64_json, decode_packed,
};
use crate::relay::dispatch::protocol::{ClientMessage, INVALID_PAYLOAD};
use crate::relay::dispatch::{Password, Refused};
use crate::secret::Secret;
use http::{HeaderMap, HeaderValue, header};

/// What a browser or an OpenID provider sends the listener: states, query strings, the
/// raw-callback's `full_url`, the fallback's packed and base64 JSON states, CIBA bodies.
pub fn callback_input(data: &[u8]) {
    // A CIBA body is bytes, JSON or not.
    if let Ok(notification) = CibaNotification::parse(data) {
        assert!(!notification.auth_req_id().is_empty());
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(state) = CallbackState::parse(text) {
        assert_eq!(state.as_str(), text);
        assert!(!text.chars().any(char::is_control));
    }
    if let Ok(query) = Query::parse(text) {
        assert!(query.pairs().len() <= MAX_PARAMS);
    }
    let public = Url::parse("https://listener.example.org/teal/").unwrap();
    if let Ok(full) = FullUrl::parse(text, &public) {
        // Whatever was sent, an accepted URL points at the listener.
        assert_eq!(full.url.origin(), public.origin());
        assert!(full.url.path().starts_with("/teal/"));
    }
    for decoded in [decode_packed(text), decode_base64_json(text)]
        .into_iter()
        .flatten()
    {
        assert!(matches!(decoded.url.scheme(), "http" | "https"));
    }
}

/// What a websocket client sends the dispatcher: its credentials (header or query) and
/// its text frames.
pub fn dispatch_input(data: &[u8]) {
    let password = Password::new(&Secret::new("fuzz-password").unwrap());
    // The bytes as an Authorization header, and as a query string.
    if let Ok(value) = HeaderValue::from_bytes(data) {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, value);
        if password.check(&headers, None).is_ok() {
            // Only the right credentials pass.
            assert_eq!(data, b"Basic YW5vbnltb3VzOmZ1enotcGFzc3dvcmQ=");
        }
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match password.check(&HeaderMap::new(), Some(text)) {
        Ok(()) => assert!(text.contains("credentials=")),
        Err(Refused::Missing) => {
            assert!(!text.split('&').any(|pair| pair.starts_with("credentials=")));
        }
        Err(_) => {}
    }

    match ClientMessage::parse(text) {
        Ok(message) => {
            if let Some(registration) = &message.register_to {
                match registration.binding() {
                    Ok((exchange, key)) => {
                        assert!(!key.is_empty() && key.len() <= 255);
                        if exchange == TealExchange::PowensDomainWebhooks {
                            assert!(key.ends_with(".biapi.pro"));
                        }
                    }
                    Err(e) => assert_eq!(e.code, INVALID_PAYLOAD),
                }
            }
            if let Some(create) = &message.create {
                let now = chrono::Utc::now();
                if let Ok((_, record)) = create.record(now) {
                    let expires = record.expires_at.unwrap();
                    assert!(expires >= now && expires <= now + chrono::TimeDelta::days(8));
                }
            }
        }
        Err(error) => {
            assert_eq!(error.code, INVALID_PAYLOAD);
            // The reason never quotes the frame (it may carry a token): it is one of a
            // few fixed texts, whatever the frame's length, and a value in the frame
            // does not show up in it.
            assert!(error.reason.starts_with("not a ClientMessage: "));
            assert!(error.reason.len() <= 100, "{}", error.reason);
            if text.contains("hunter2") {
                assert!(!error.reason.contains("hunter2"));
            }
        }
    }
}

/// The relay's router on arbitrary requests, with an in-memory publisher.
///
/// Input: the path after `/powens-webhook/` on the first line, then `name: value` header
/// lines up to an empty line, then the body. Checks: the status is one of SPEC §4's,
/// every refusal is one `text/plain` line, only a 204 publishes, and whatever was
/// published for the `verify` domain verifies with its secret, over the payload or (a
/// gzip body) over the bytes as received: nothing forged gets through.
#[cfg(feature = "test-util")]
pub fn relay_request(data: &[u8]) {
    use axum::body::Body;
    use chrono::Utc;
    use http::{HeaderName, Request};
    use tower_service::Service;

    use crate::{KeyRing, PowensWebhookMessage, TealMessage, Verifier, sign_parts};

    let relay = fuzzed_relay();
    let mut parts = data.splitn(2, |&b| b == b'\n');
    let path = parts.next().unwrap_or_default();
    let rest = parts.next().unwrap_or_default();
    let (head, body) = match rest.windows(2).position(|w| w == b"\n\n") {
        Some(i) => (&rest[..i], &rest[i + 2..]),
        None => (rest, &[][..]),
    };
    let Ok(path) = std::str::from_utf8(path) else {
        return;
    };
    let mut builder = Request::post(format!("/powens-webhook/{path}"));
    for line in head.split(|&b| b == b'\n') {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(&line[..colon]),
            HeaderValue::from_bytes(line[colon + 1..].trim_ascii()),
        ) else {
            continue;
        };
        builder = builder.header(name, value);
    }
    let Ok(request) = builder.body(Body::from(body.to_vec())) else {
        return;
    };

    relay.publisher.take();
    let (status, content_type, text) = relay.runtime.block_on(async {
        let response = relay.app.clone().call(request).await.unwrap();
        let status = response.status().as_u16();
        let content_type = response.headers().get("content-type").cloned();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, content_type, bytes)
    });
    let published = relay.publisher.take();
    assert!(
        [204, 400, 401, 404, 405, 413, 415].contains(&status),
        "unexpected status {status}"
    );
    if status == 204 {
        assert_eq!(published.len(), 1, "a 204 must publish exactly one message");
        let message = PowensWebhookMessage::from_json(&published[0].body).unwrap();
        if message.domain.as_str() == "budgea.biapi.pro" {
            let secret = Secret::new(FUZZ_SECRET).unwrap();
            let verifier = Verifier::new(KeyRing::new(secret.clone()));
            // Either the payload verifies, or (a gzip body signed as sent) the body as
            // received does: nothing unsigned is published.
            let hmac = message.hmac_signature.as_ref().expect("signed");
            let signed_as_sent =
                sign_parts(&secret, &[hmac.payload_prefix.as_bytes(), body]).to_base64();
            assert!(
                message.verify(&verifier, Utc::now()).is_ok() || signed_as_sent == hmac.signature,
                "a published webhook verifies"
            );
        }
    } else {
        assert!(published.is_empty(), "a refusal must publish nothing");
        if status != 405 {
            assert_eq!(content_type.unwrap(), "text/plain; charset=utf-8");
            let text = std::str::from_utf8(&text).unwrap();
            assert!(
                text.ends_with('\n') && text.lines().count() == 1,
                "{text:?}"
            );
        }
    }
}

#[cfg(feature = "test-util")]
const FUZZ_SECRET: &str = "fuzz-secret";

/// The relay every [`relay_request`] run goes through.
#[cfg(feature = "test-util")]
struct FuzzedRelay {
    runtime: tokio::runtime::Runtime,
    app: axum::Router,
    publisher: crate::relay::testing::MemoryPublisher,
}

#[cfg(feature = "test-util")]
fn fuzzed_relay() -> &'static FuzzedRelay {
    use std::sync::OnceLock;

    use crate::relay::testing::{MemoryPublisher, router};
    use crate::relay::{Overrides, RelayConfig};

    static RELAY: OnceLock<FuzzedRelay> = OnceLock::new();
    RELAY.get_or_init(|| {
        let secret =
            std::env::temp_dir().join(format!("powens-fuzz-secret-{}", std::process::id()));
        std::fs::write(&secret, FUZZ_SECRET).unwrap();
        let toml = format!(
            // The seeds' dates are fixed: accept any age, so that signed seeds reach
            // the publisher and the "nothing forged" check.
            "body_limit_bytes = 4096\npublic_path_prefix = \"/hooks\"\n\
             signature_max_age_secs = 3153600000\n\
             [domains.\"budgea.biapi.pro\"]\nsecrets = [\"file:{}\"]\n\
             [domains.\"forward.biapi.pro\"]\nmode = \"forward\"\n",
            secret.display()
        );
        let config = RelayConfig::from_toml(&toml, &Overrides::default()).unwrap();
        let publisher = MemoryPublisher::new();
        let app = router(&config, &publisher, None);
        // The router times body reads, so it needs timers.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        FuzzedRelay {
            runtime,
            app,
            publisher,
        }
    })
}
