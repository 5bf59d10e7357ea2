//! The relay's router on arbitrary requests, with an in-memory publisher.
//!
//! Input: the path after `/powens-webhook/` on the first line, then `name: value` header
//! lines up to an empty line, then the body. Checks: the status is one of SPEC §4's,
//! every refusal is one `text/plain` line, only a 204 publishes, and whatever was
//! published for the `verify` domain verifies with its secret, over the payload or (a
//! gzip body) over the bytes as received: nothing forged gets through.
#![no_main]

use std::sync::{Arc, OnceLock};

use axum::body::Body;
use chrono::Utc;
use http::{HeaderName, HeaderValue, Request};
use libfuzzer_sys::fuzz_target;
use powens_webhooks::relay::config::{Overrides, RelayConfig};
use powens_webhooks::relay::http::{AppState, router};
use powens_webhooks::relay::publish::MemoryPublisher;
use powens_webhooks::{KeyRing, PowensWebhookMessage, Secret, TealMessage, Verifier, sign_parts};
use tower::ServiceExt;

const SECRET: &str = "fuzz-secret";

struct Relay {
    runtime: tokio::runtime::Runtime,
    app: axum::Router,
    publisher: MemoryPublisher,
}

fn relay() -> &'static Relay {
    static RELAY: OnceLock<Relay> = OnceLock::new();
    RELAY.get_or_init(|| {
        let secret =
            std::env::temp_dir().join(format!("powens-fuzz-secret-{}", std::process::id()));
        std::fs::write(&secret, SECRET).unwrap();
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
        let app = router(AppState::new(&config, Arc::new(publisher.clone())));
        // The router times body reads, so it needs timers.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        Relay {
            runtime,
            app,
            publisher,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let relay = relay();
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
        let response = relay.app.clone().oneshot(request).await.unwrap();
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
            let secret = Secret::new(SECRET).unwrap();
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
});
