//! What a websocket client sends the dispatcher: its credentials (header or query) and
//! its text frames.
#![no_main]

use libfuzzer_sys::fuzz_target;
use powens_webhooks::Secret;
use powens_webhooks::TealExchange;
use powens_webhooks::http::{HeaderMap, HeaderValue, header};
use powens_webhooks::relay::dispatch::protocol::{ClientMessage, INVALID_PAYLOAD};
use powens_webhooks::relay::dispatch::{Password, Refused};

fuzz_target!(|data: &[u8]| {
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
});
