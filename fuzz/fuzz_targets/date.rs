//! The date parsers (`BI-Signature-Date`, TeaL's ISO dates) on arbitrary text, and the
//! freshness check on whatever they accept.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| powens_webhooks::fuzzing::date(data));
