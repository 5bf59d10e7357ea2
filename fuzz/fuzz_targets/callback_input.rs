//! What a browser or an OpenID provider sends the listener: states, query strings, the
//! raw-callback's `full_url`, the fallback's packed and base64 JSON states, CIBA bodies.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| powens_webhooks::fuzzing::callback_input(data));
