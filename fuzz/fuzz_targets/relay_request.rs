//! The relay's router on arbitrary requests, with an in-memory publisher.
//!
//! Input: the path after `/powens-webhook/` on the first line, then `name: value` header
//! lines up to an empty line, then the body. Checks: the status is one of SPEC §4's,
//! every refusal is one `text/plain` line, only a 204 publishes, and whatever was
//! published for the `verify` domain verifies with its secret, over the payload or (a
//! gzip body) over the bytes as received: nothing forged gets through.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| powens_webhooks::fuzzing::relay_request(data));
