//! What a browser or an OpenID provider sends the listener: states, query strings, the
//! raw-callback's `full_url`, the fallback's packed and base64 JSON states, CIBA bodies.
#![no_main]

use libfuzzer_sys::fuzz_target;
use powens_webhooks::relay::callback::{
    CallbackState, CibaNotification, FullUrl, Query, decode_base64_json, decode_packed,
};
use url::Url;

fuzz_target!(|data: &[u8]| {
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
        assert!(query.pairs().len() <= powens_webhooks::relay::callback::MAX_PARAMS);
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
});
