//! `PowensHeaders::from_header_map` on arbitrary header bytes.
//!
//! Input: up to three lines, the values of `BI-Signature`, `BI-Signature-Date` and
//! `Authorization`; an empty line leaves that header out; a fourth line repeats the first
//! header.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| powens_webhooks::fuzzing::headers(data));
