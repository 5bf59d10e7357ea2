//! `PowensHeaders::from_header_map` on arbitrary header bytes.
//!
//! Input: up to three lines, the values of `BI-Signature`, `BI-Signature-Date` and
//! `Authorization`; an empty line leaves that header out; a fourth line repeats the first
//! header.
#![no_main]

use http::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;
use powens_webhooks::PowensHeaders;

fuzz_target!(|data: &[u8]| {
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
});
