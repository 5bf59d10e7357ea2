//! Signing and verifying arbitrary requests.
//!
//! Input: lines `secret`, `method`, `endpoint`, `date`, `signature`, then the body (the
//! rest, newlines included).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| powens_webhooks::fuzzing::verify(data));
