//! Decoding TeaL messages from arbitrary bytes; whatever decodes re-encodes to JSON that
//! decodes to the same message.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| powens_webhooks::fuzzing::message_json(data));
